"""Export a checkpoint to MINDIR, ONNX (dynamic batch), an OpenVINO IR (f32, or int8 with NNCF) or AIR (Ascend)."""
import sys

from mszoo.cli import run
from mszoo.tools.export import main

if __name__ == "__main__":
    sys.exit(run(main))
