"""One optimizer step of a recipe as written, shared by the shipped recipes' and the model-zoo readmes' YAML tests."""
import json
import os

from mszoo.config import parse_config
from mszoo.models import resolve_name


def train_one_step_of(config_args, digits_cache, tmp_path):
    """Train one step of the recipe named by ``config_args`` (``["--config", path]`` or a seed spelling).

    What the recipe sets runs: its augmentation (RandAugment, random erasing, mixup/cutmix), loss, optimizer,
    schedule, clipping, EMA and its amp_level (O2: float16 cells, norms float32, loss scaling; MindSpore 2.10
    runs it on CPU, ~3 s more compile per recipe). What cannot run here is overridden: the device (CPU), the
    data (the digits folders), a tiny width of the same model family at 32 px, one step of one epoch, and no
    published weights (a fine-tuning recipe's ``pretrained: timm`` cannot be fetched here, nor fit a tiny
    width; starting from published weights is tested in tests/models/test_hub.py).

    The step runs as ``python train.py`` in a process of its own: a MindSpore process compiles each graph more
    slowly the more graphs it keeps, and a recipe's step compiled in 12 s alone but 33-70 s late in the suite.
    """
    from mszoo.data import prepare_digits
    from tests.conftest import script
    from tests.tiny import tiny_kwargs

    recipe, _ = parse_config(config_args)
    name = resolve_name(recipe.arch)
    kwargs = {k: v for k, v in tiny_kwargs(name).items() if k != "img_size"}
    argv = [*config_args, "--data_url", prepare_digits(digits_cache), "--num_classes", "10",
            "--dataset", "imagefolder", "--train_dir", "train", "--val_dir", "val",
            "--device_target", "CPU", "--model_kwargs", json.dumps(kwargs), "--image_size", "32",
            "--batch_size", "4", "--epochs", "1", "--steps_per_epoch", "1", "--warmup_length", "0",
            "--cooldown_epochs", "0", "--val_num_samples", "8", "--train_num_samples", "-1",
            "--num_parallel_workers", "1", "--output_dir", str(tmp_path), "--run_name", "dry",
            "--progress", "false", "--pretrained", "none"]
    cfg, _ = parse_config(argv)
    assert cfg.amp_level == recipe.amp_level and cfg.keep_bn_fp32 == recipe.keep_bn_fp32
    run = script("train.py", *argv)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    run_dir = tmp_path / "dry"
    log = (run_dir / "train.log").read_text()
    assert f"amp {recipe.amp_level}," in log
    if recipe.amp_level != "O0":  # the step line shows the loss scale under mixed precision
        assert ", scale:[" in log
    assert {"config.yaml", "metrics.csv", "last.ckpt"} <= set(os.listdir(run_dir))
    with open(run_dir / "metrics.csv") as f:
        rows = f.read().splitlines()
    assert len(rows) == 2  # header + epoch 1 with its validation
    return log
