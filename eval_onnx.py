"""The Twins GPU readme's eval_onnx.py: eval.py --backend onnx (an exported NAME.onnx, given with --model)."""
import sys

from mszoo.cli import run
from mszoo.tools.eval import main

if __name__ == "__main__":
    sys.exit(run(main, ["--backend", "onnx", *sys.argv[1:]]))
