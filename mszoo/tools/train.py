"""Train a model: python train.py --config configs/quickstart.yaml [--key value ...]"""
from mszoo.cli import console, start
from mszoo.config import parse_config


def main(argv=None):
    cfg, _ = parse_config(argv, prog="train.py", description="Train a Twins / T2T-ViT / TNT classifier.")
    start(cfg, notes=False)  # the trainer writes the notes into train.log
    from mszoo.engine.trainer import train

    return train(cfg)


cli = console(main)
