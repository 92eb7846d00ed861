"""Every shipped recipe loads, validates and names a registered model (no download needed)."""
import glob
import os

import pytest

from src.config import parse_config, source_of, validate
from src.models import get_default_cfg, resolve_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))


def test_every_family_has_recipes():
    names = {os.path.relpath(p, ROOT) for p in CONFIGS}
    assert "configs/quickstart.yaml" in names
    assert sum(n.startswith("configs/twins/") for n in names) == 6
    assert sum(n.startswith("configs/tnt/") for n in names) == 2
    assert sum(n.startswith("configs/t2t_vit/") for n in names) == 9
    assert {n for n in names if n.startswith("configs/finetune/")} == {
        "configs/finetune/twins_svt_small.yaml", "configs/finetune/tnt_s_patch16_224.yaml",
        "configs/finetune/t2t_vit_t_14.yaml"}


@pytest.mark.parametrize("path", [p for p in CONFIGS if os.sep + "finetune" + os.sep in p],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_fine_tuning_recipes_start_from_published_weights_and_take_their_preprocessing(path):
    cfg, _ = parse_config(["--config", path])
    assert cfg.pretrained == "timm" and source_of(cfg, "num_classes") == "default"
    assert all(cfg[k] is None for k in ("crop_pct", "interpolation", "mean", "std"))
    assert cfg.base_lr < 5e-4 and cfg.epochs <= 50


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_config_loads_validates_and_names_a_model(path):
    cfg, _ = parse_config(["--config", path])
    validate(cfg)
    name = resolve_name(cfg.arch)
    if cfg.dataset == "imagefolder" and cfg.pretrained is None:
        # Eval preprocessing of the recipe equals the model's published default cfg (fine-tuning recipes
        # leave it to the published weights' record).
        default = get_default_cfg(name)
        assert tuple(cfg.mean) == pytest.approx(default["mean"])
        assert tuple(cfg.std) == pytest.approx(default["std"])
        assert cfg.image_size == default["input_size"][-1]


@pytest.mark.parametrize("path", [p for p in CONFIGS if os.sep + "configs" + os.sep + "quickstart" not in p],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_recipe_trains_one_step_and_validates(path, digits_cache, tmp_path, graph_mode):
    """One optimizer step of the recipe as written: its augmentation (RandAugment, random erasing,
    mixup/cutmix), loss, optimizer, schedule, clipping, EMA and its amp_level (O2: float16 cells, norms
    float32, loss scaling; MindSpore 2.10 runs it on CPU, ~3 s more compile per recipe). What cannot run
    here is overridden: the data (the digits folders), a tiny width of the same model family at 32 px, one
    step of one epoch, and no published weights (a fine-tuning recipe's ``pretrained: timm`` cannot be
    fetched here, nor fit a tiny width; starting from published weights is tested in
    tests/models/test_hub.py). (The quickstart config is trained end to end elsewhere.)"""
    import json

    from src.data import prepare_digits
    from src.engine.trainer import train
    from tests.tiny import tiny_kwargs

    recipe, _ = parse_config(["--config", path])
    name = resolve_name(recipe.arch)
    kwargs = {k: v for k, v in tiny_kwargs(name).items() if k != "img_size"}
    cfg, _ = parse_config(["--config", path, "--data_url", prepare_digits(digits_cache), "--num_classes", "10",
                           "--model_kwargs", json.dumps(kwargs), "--image_size", "32", "--batch_size", "4",
                           "--epochs", "1", "--steps_per_epoch", "1", "--warmup_length", "0",
                           "--cooldown_epochs", "0", "--val_num_samples", "8",
                           "--num_parallel_workers", "1", "--output_dir", str(tmp_path), "--run_name", "dry",
                           "--progress", "false", "--pretrained", "none"])
    assert cfg.amp_level == recipe.amp_level and cfg.keep_bn_fp32 == recipe.keep_bn_fp32
    assert train(cfg) == 0
    run_dir = tmp_path / "dry"
    log = (run_dir / "train.log").read_text()
    assert f"amp {recipe.amp_level}," in log
    if recipe.amp_level != "O0":  # the step line shows the loss scale under mixed precision
        assert ", scale:[" in log
    assert {"config.yaml", "metrics.csv", "last.ckpt"} <= set(os.listdir(run_dir))
    with open(run_dir / "metrics.csv") as f:
        rows = f.read().splitlines()
    assert len(rows) == 2  # header + epoch 1 with its validation
