"""Evaluate a checkpoint or an exported model: top-1 / top-5 / loss on the val split."""
import sys

from src.cli import run, start
from src.config import ExtraArg, parse_config

EXTRA = (
    ExtraArg("backend", "mindspore", "str", "mindspore (checkpoint), mindir or onnx (exported file)",
             choices=("mindspore", "mindir", "onnx")),
    ExtraArg("model", None, "path", "exported .mindir / .onnx file (backend mindir/onnx)"),
    ExtraArg("output", None, "path", "also write the results as JSON to this file"),
)


def main(argv=None):
    cfg, args = parse_config(argv, prog="eval.py", description=__doc__, extra=EXTRA)
    start(cfg, mode="graph")
    if args.backend == "mindspore":
        from src.engine.evaluator import evaluate_checkpoint

        return evaluate_checkpoint(cfg, output=args.output)
    from src.deploy.infer import evaluate_exported

    return evaluate_exported(cfg, backend=args.backend, model_file=args.model, output=args.output)


if __name__ == "__main__":
    sys.exit(run(main))
