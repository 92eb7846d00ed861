"""benchmark.py logic (issue 10)."""
from src.cli import NotImplementedYet


def benchmark_main(argv=None):
    raise NotImplementedYet("benchmark.py is built in the benchmark issue (#10)")
