"""Hyper-parameter search with Optuna over a YAML search space, through the same trainer."""
import sys

from src.cli import run, start


def main(argv=None):
    from src.engine.tuning import tune_main

    return tune_main(argv, start=start)


if __name__ == "__main__":
    sys.exit(run(main))
