"""Classify images: python infer.py --config ... --pretrained x.ckpt --input photos/ --output preds.json"""
import sys

from mszoo.cli import run
from mszoo.tools.infer import main

if __name__ == "__main__":
    sys.exit(run(main))
