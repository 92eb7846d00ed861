"""Train a model: python train.py --config configs/quickstart.yaml [--key value ...]"""
from mszoo.cli import compile_cache_confined, console, start, use_compile_cache
from mszoo.config import parse_config
from mszoo.engine.interrupt import hold_stop_signals


def main(argv=None):
    hold_stop_signals()  # first, while this is the process's only thread (mszoo/engine/interrupt.py)
    cfg, _ = parse_config(argv, prog="train.py", description="Train a Twins / T2T-ViT / TNT classifier.")
    start(cfg, notes=False, fused_kernels=True)  # the trainer writes the notes into train.log
    if cfg.device_target == "CPU":
        from mszoo.cpu.kernels import build_in_background

        build_in_background()
    from mszoo.engine.trainer import train

    with compile_cache_confined():
        return train(cfg, before_compile=use_compile_cache)


cli = console(main)
