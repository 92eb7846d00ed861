"""Convert a timm / official PyTorch checkpoint to a MindSpore .ckpt.

python convert_from_pt.py --arch twins_pcpvt_small --input pcpvt_small.pth --output pcpvt_small.ckpt
"""
import sys

from src.cli import run


def main(argv=None):
    from src.deploy.convert_cli import convert_main

    return convert_main(argv)


if __name__ == "__main__":
    sys.exit(run(main))
