"""Every shipped recipe loads, validates and names a registered model (no download needed)."""
import glob
import os

import pytest

from mszoo.config import parse_config, source_of, validate
from mszoo.models import get_default_cfg, resolve_name

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


# Keys whose values differ between recipes of one family without changing which code runs (sizes, rates, decay
# factors, preprocessing numbers, how many checkpoints to keep), or that the one-step test overrides anyway (the
# data, the schedule's warm-up and cool-down). A switch whose zero turns a part off (clip_grad_norm, mixup,
# with_ema, ...) is not here: a recipe that turns it on runs other code than one that leaves it off.
VALUE_ONLY_KEYS = {"arch", "drop_path_rate", "model_kwargs", "base_lr", "batch_size", "epochs", "warmup_length",
                   "image_size", "mean", "std", "crop_pct", "interpolation", "num_classes", "pretrained",
                   "weight_decay", "min_lr", "ema_decay", "ckpt_keep_num", "data_url", "cooldown_epochs"}


def _graph_kind(name):
    """The block type a tiny width of ``name`` builds (PCPVT, SVT, T2T with performer or transformer, TNT)."""
    for prefix in ("twins_pcpvt", "twins_svt", "t2t_vit_t_", "t2t_vit_", "tnt_"):
        if name.startswith(prefix):
            return prefix
    raise KeyError(name)


def _recipe_kind(config_args):
    cfg, _ = parse_config(config_args)
    return _graph_kind(resolve_name(cfg.arch))


def seed_kinds():
    """The block types the model-zoo readmes' YAML files train one step of (tests/test_seed_configs.py)."""
    from tests.test_seed_configs import READMES, SEEDS

    return {_recipe_kind([flag, os.path.join(SEEDS, name)]) for name, flag in READMES.items()}


def _settings(cfg):
    """What a recipe sets beyond values: the keys that choose which code runs."""
    return tuple((k, repr(v)) for k, v in sorted(cfg.items()) if k not in VALUE_ONLY_KEYS)


def distinct_recipes():
    """One recipe per set of settings (every key but VALUE_ONLY_KEYS): recipes that differ only in values run the
    same code for one tiny step, so one of them stands for the rest. Within a set, a recipe of a block type that
    neither an earlier set nor a readme's YAML trains is chosen, so that together the one-step runs train every
    block type (tests below)."""
    groups = {}
    for path in CONFIGS:
        if os.sep + "configs" + os.sep + "quickstart" in path:
            continue
        cfg, _ = parse_config(["--config", path])
        groups.setdefault(_settings(cfg), []).append((_graph_kind(resolve_name(cfg.arch)), path))
    trained, chosen = seed_kinds(), []
    for members in groups.values():
        kind, path = next(((k, p) for k, p in members if k not in trained), members[0])
        trained.add(kind)
        chosen.append(path)
    return sorted(chosen)


def test_recipe_groups_cover_every_setting_and_with_the_readmes_every_block_type():
    chosen = {os.path.relpath(p, ROOT) for p in distinct_recipes()}
    settings = {_settings(parse_config(["--config", p])[0]) for p in CONFIGS if "quickstart" not in p}
    assert len(chosen) == len(settings) == 4  # fine-tuning, T2T-ViT, TNT and Twins recipes
    assert sum(n.startswith("configs/finetune/") for n in chosen) == 1
    kinds = {_recipe_kind(["--config", os.path.join(ROOT, n)]) for n in chosen}
    assert kinds | seed_kinds() == {"twins_pcpvt", "twins_svt", "t2t_vit_t_", "t2t_vit_", "tnt_"}


@pytest.mark.parametrize("path", distinct_recipes(), ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_recipe_trains_one_step_and_validates(path, digits_cache, tmp_path, graph_mode):
    """One optimizer step of the recipe as written (see tests/recipes.py), for each distinct recipe
    (distinct_recipes). (The quickstart config is trained end to end elsewhere.)"""
    from tests.recipes import train_one_step_of

    train_one_step_of(["--config", path], digits_cache, tmp_path)
