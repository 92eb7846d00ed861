"""Convert a timm / official PyTorch checkpoint to a MindSpore .ckpt.

python convert_from_pt.py --arch twins_pcpvt_small --input pcpvt_small.pth --output pcpvt_small.ckpt"""
import sys

from mszoo.cli import run
from mszoo.tools.convert import main

if __name__ == "__main__":
    sys.exit(run(main))
