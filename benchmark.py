"""Measure images/s (inference, training, data pipeline), compile time and memory, side by side with timm."""
import sys

from src.cli import run


def main(argv=None):
    from src.benchmark import benchmark_main

    return benchmark_main(argv)


if __name__ == "__main__":
    sys.exit(run(main))
