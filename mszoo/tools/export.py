"""Export a checkpoint to MINDIR, ONNX (dynamic batch), an OpenVINO IR (f32, or int8 with NNCF) or AIR (Ascend)."""
from mszoo.cli import console, start
from mszoo.config import ExtraArg, parse_config

EXTRA = (
    ExtraArg("precision", "f32", "str", "f32, or int8 (OPENVINO only: NNCF post-training quantization)",
             choices=("f32", "int8")),
    ExtraArg("calib_data", None, "path", "int8: folder of calibration images (a few hundred, your data)"),
)


def main(argv=None):
    cfg, args = parse_config(argv, prog="export.py", description=__doc__, extra=EXTRA)
    start(cfg, mode="graph")
    from mszoo.deploy.export import export_model

    return export_model(cfg, precision=args.precision, calib_data=args.calib_data)


cli = console(main)
