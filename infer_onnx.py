"""The Twins GPU readme's infer_onnx.py: infer.py --backend onnx (an exported NAME.onnx, given with --model)."""
import sys

from mszoo.cli import run
from mszoo.tools.infer import main

if __name__ == "__main__":
    sys.exit(run(main, ["--backend", "onnx", *sys.argv[1:]]))
