"""tune_params.py logic (issue 7)."""
from src.cli import NotImplementedYet


def tune_main(argv=None):
    raise NotImplementedYet("tune_params.py is built in the tuning issue (#7)")
