"""Hyper-parameter search with Optuna over a YAML search space, through the same trainer."""
import sys

from src.cli import run


def main(argv=None):
    from src.engine.tuning import tune_main

    return tune_main(argv)


if __name__ == "__main__":
    sys.exit(run(main))
