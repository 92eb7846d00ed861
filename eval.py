"""Evaluate a checkpoint or an exported model: top-1 / top-5 / loss on the val split."""
import sys

from src.cli import run, start
from src.config import ConfigError, ExtraArg, parse_config

EXTRA = (
    ExtraArg("backend", "mindspore", "str", "mindspore (checkpoint), mindir, onnx or openvino (exported file)",
             choices=("mindspore", "mindir", "onnx", "openvino")),
    ExtraArg("model", None, "path", "exported .mindir / .onnx / OpenVINO .xml file (backend mindir/onnx/openvino)"),
    ExtraArg("precision", "f32", "str", "openvino: f32 (exact), bf16 (CPUs with BF16) or int8 (NNCF)",
             choices=("f32", "bf16", "int8")),
    ExtraArg("calib_data", None, "path", "openvino int8 from a float model: folder of calibration images"),
    ExtraArg("output", None, "path", "also write the results as JSON to this file"),
)


def main(argv=None):
    cfg, args = parse_config(argv, prog="eval.py", description=__doc__, extra=EXTRA)
    start(cfg, mode="graph", cpu_kernels=args.backend in ("mindspore", "mindir"))
    if args.backend == "mindspore":
        if args.precision != "f32":
            raise ConfigError(f"precision: {args.precision} needs --backend openvino and --model FILE "
                              "(from command line)")
        from src.engine.evaluator import evaluate_checkpoint

        return evaluate_checkpoint(cfg, output=args.output)
    from src.deploy.infer import evaluate_exported

    return evaluate_exported(cfg, backend=args.backend, model_file=args.model, output=args.output,
                             precision=args.precision, calib_data=args.calib_data)


if __name__ == "__main__":
    sys.exit(run(main))
