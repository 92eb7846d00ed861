"""Train a model: python train.py --config configs/quickstart.yaml [--key value ...]"""
import sys

from src.cli import run, start
from src.config import parse_config


def main(argv=None):
    cfg, _ = parse_config(argv, prog="train.py", description="Train a Twins / T2T-ViT / TNT classifier.")
    start(cfg)
    from src.engine.trainer import train

    return train(cfg)


if __name__ == "__main__":
    sys.exit(run(main))
