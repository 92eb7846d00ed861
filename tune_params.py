"""Hyper-parameter search with Optuna over a YAML search space, through the same trainer."""
import sys

from mszoo.cli import run
from mszoo.tools.tune import main

if __name__ == "__main__":
    sys.exit(run(main))
