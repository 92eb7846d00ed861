"""Every shipped recipe loads, validates and names a registered model (no download needed)."""
import glob
import os

import pytest

from src.config import parse_config, validate
from src.models import get_default_cfg, resolve_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))


def test_every_family_has_recipes():
    names = {os.path.relpath(p, ROOT) for p in CONFIGS}
    assert "configs/quickstart.yaml" in names
    assert sum(n.startswith("configs/twins/") for n in names) == 6
    assert sum(n.startswith("configs/tnt/") for n in names) == 2
    assert sum(n.startswith("configs/t2t_vit/") for n in names) == 9


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_config_loads_validates_and_names_a_model(path):
    cfg, _ = parse_config(["--config", path])
    validate(cfg)
    name = resolve_name(cfg.arch)
    if cfg.dataset == "imagefolder":
        # Eval preprocessing of the recipe equals the model's published default cfg.
        default = get_default_cfg(name)
        assert tuple(cfg.mean) == pytest.approx(default["mean"])
        assert tuple(cfg.std) == pytest.approx(default["std"])
        assert cfg.image_size == default["input_size"][-1]
