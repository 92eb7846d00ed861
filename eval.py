"""Evaluate a checkpoint or an exported model: top-1 / top-5 / loss on the val split."""
import sys

from mszoo.cli import run
from mszoo.tools.eval import main

if __name__ == "__main__":
    sys.exit(run(main))
