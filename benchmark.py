"""Measure images/s (inference, training, data pipeline), compile time and memory, side by side with timm."""
import sys

from mszoo.cli import run
from mszoo.tools.benchmark import main

if __name__ == "__main__":
    sys.exit(run(main))
