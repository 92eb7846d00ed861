"""Train a model: python train.py --config configs/quickstart.yaml [--key value ...]"""
import sys

from mszoo.cli import run
from mszoo.tools.train import main

if __name__ == "__main__":
    sys.exit(run(main))
