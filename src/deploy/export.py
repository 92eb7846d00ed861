"""Export to MINDIR / ONNX / AIR (issue 5)."""
from src.cli import NotImplementedYet


def export_model(cfg):
    raise NotImplementedYet("export.py is built in the export/inference issue (#5)")
