"""Inference on image files and evaluation of exported models (issue 5)."""
from src.cli import NotImplementedYet


def infer_images(cfg, **kwargs):
    raise NotImplementedYet("infer.py is built in the export/inference issue (#5)")


def evaluate_exported(cfg, backend, model_file=None, output=None):
    raise NotImplementedYet(f"eval.py --backend {backend} is built in the export/inference issue (#5)")
