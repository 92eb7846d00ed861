"""MindSpore model zoo for vision transformers: Twins (PCPVT, SVT), T2T-ViT and TNT."""
