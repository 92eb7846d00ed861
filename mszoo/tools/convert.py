"""Command line of ``convert_from_pt.py`` (arguments -> ``convert_file``)."""
import argparse

from mszoo.cli import console
from mszoo.config import parse_script_args


def build_parser():
    p = argparse.ArgumentParser(prog="convert_from_pt.py", allow_abbrev=False,
                                description="Convert a timm/official PyTorch checkpoint (.pth, .pt, .bin, "
                                            ".safetensors) to a MindSpore .ckpt, checking every key and shape.")
    p.add_argument("--arch", required=True, help="model name, e.g. twins_pcpvt_small (see list_models())")
    p.add_argument("--input", required=True, help="PyTorch checkpoint to read")
    p.add_argument("--output", required=True, help="MindSpore .ckpt to write")
    p.add_argument("--num_classes", "--num-classes", type=int, default=None,
                   help="re-head for fine-tuning: a classifier of another size is not converted (the file then has "
                        "no head: train.py --pretrained gives it a new one; eval/infer/export refuse it)")
    p.add_argument("--img_size", "--img-size", type=int, default=None,
                   help="build the model at this resolution; position embeddings are adapted")
    p.add_argument("--ema", action="store_true", help="prefer the EMA weights (state_dict_ema) when present")
    return p


def main(argv=None):
    args = parse_script_args(build_parser(), argv)
    from mszoo.models.convert import convert_file

    info = convert_file(args.arch, args.input, args.output, num_classes=args.num_classes,
                        img_size=args.img_size, prefer_ema=args.ema)
    print(f"converted {args.input} -> {info['output']}: {info['arch']}, {info['num_params']:,} parameters "
          f"from {info['num_tensors']} tensors")
    if info["dropped_head"]:
        print(f"saved without a classifier for fine-tuning to {args.num_classes} classes (not converted: "
              f"{', '.join(info['dropped_head'])}); train it with train.py --pretrained {info['output']}")
    return 0


cli = console(main)
