"""Export a checkpoint to MINDIR, ONNX (dynamic batch) or AIR (Ascend only)."""
import sys

from src.cli import run, start
from src.config import parse_config


def main(argv=None):
    cfg, _ = parse_config(argv, prog="export.py", description=__doc__)
    start(cfg, mode="graph")
    from src.deploy.export import export_model

    return export_model(cfg)


if __name__ == "__main__":
    sys.exit(run(main))
