"""Evaluate a checkpoint or an exported model: top-1 / top-5 / loss on the val split."""
from mszoo.cli import console, start
from mszoo.config import BACKEND_ARGS, ConfigError, ExtraArg, parse_config

EXTRA = BACKEND_ARGS + (
    ExtraArg("output", None, "path", "also write the results as JSON to this file"),
)


def main(argv=None):
    cfg, args = parse_config(argv, prog="eval.py", description=__doc__, extra=EXTRA)
    from mszoo.logger import get_logger

    from .fast_path import prepare_backend

    chosen, line = prepare_backend(cfg, args, need_data=True)
    args.update(chosen)
    if args.checked_record is None:  # the cached IR's run needs no MindSpore device
        start(cfg, mode="graph", cpu_kernels=args.backend in ("mindspore", "mindir"),
              fused_kernels=args.backend == "mindspore")
    get_logger().info(line)
    if args.backend == "mindspore":
        if args.precision != "f32":
            raise ConfigError(f"precision: {args.precision} needs --backend openvino (from command line)")
        from mszoo.engine.evaluator import evaluate_checkpoint

        return evaluate_checkpoint(cfg, output=args.output)
    from mszoo.deploy.infer import evaluate_exported

    return evaluate_exported(cfg, backend=args.backend, model_file=args.model, output=args.output,
                             precision=args.precision, calib_data=args.calib_data,
                             checked_record=args.checked_record)


cli = console(main)
