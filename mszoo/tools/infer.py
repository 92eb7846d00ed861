"""Classify images: python infer.py --config ... --pretrained x.ckpt --input photos/ --output preds.json"""
from mszoo.cli import console, start
from mszoo.config import BACKEND_ARGS, ExtraArg, parse_config

EXTRA = BACKEND_ARGS + (
    ExtraArg("input", None, "path", "an image file or a directory (walked recursively, sorted)", nullable=False),
    ExtraArg("output", None, "path", "write predictions as JSON to this file"),
    ExtraArg("topk", 5, "int", "number of classes listed per image"),
    ExtraArg("class_names", None, "path", "text file with one class name per line (default: from checkpoint)"),
)


def main(argv=None):
    cfg, args = parse_config(argv, prog="infer.py", description=__doc__, extra=EXTRA)
    from mszoo.deploy.infer import infer_images
    from mszoo.logger import get_logger

    from .fast_path import prepare_backend

    chosen, line = prepare_backend(cfg, args)
    args.update(chosen)
    if args.checked_record is None:  # the cached IR's run needs no MindSpore device (and no MindSpore)
        start(cfg, mode="graph", cpu_kernels=args.backend in ("mindspore", "mindir"),
              fused_kernels=args.backend == "mindspore")
    get_logger().info(line)
    return infer_images(cfg, **args)


cli = console(main)
