"""Deployment: PyTorch checkpoint conversion, export (MindIR/ONNX/AIR) and inference."""
