"""Every shipped ImageNet recipe (configs/twins, configs/t2t_vit, configs/tnt) against the official training
code's values, kept with their sources (file:line) in tests/fixtures/recipes/official_recipes.json."""
import glob
import json
import os
from pathlib import Path

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "tests", "fixtures", "recipes", "official_recipes.json")) as _f:
    OFFICIAL = json.load(_f)
RECIPES = sorted(glob.glob(os.path.join(ROOT, "configs", family, "*.yaml")) for family in OFFICIAL["families"])
RECIPES = [path for paths in RECIPES for path in paths]


def official_values(family, arch):
    """``{key: (value, source)}`` for one model: the family's values, then the model's own; None values
    (not stated by the official repository) are left out."""
    values = {**OFFICIAL["families"][family], **OFFICIAL["models"][arch]}
    return {k: tuple(v) for k, v in values.items() if not k.startswith("_") and v[0] is not None}


def lr_at(recipe, global_batch):
    """The learning rate our recipe trains with at ``global_batch`` (lr_scale_batch scales it linearly)."""
    scale = recipe.get("lr_scale_batch") or 0
    return recipe["base_lr"] * (global_batch / scale if scale else 1.0)


def test_the_table_covers_every_shipped_recipe_and_names_a_source_for_every_value():
    arches = {yaml.safe_load(Path(path).read_text())["arch"] for path in RECIPES}
    assert arches == set(OFFICIAL["models"]) and len(RECIPES) == len(arches) == 17
    for table in [*OFFICIAL["families"].values(), *OFFICIAL["models"].values()]:
        assert all(isinstance(source, str) and source for _, source in table.values())


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, "configs")))
def test_recipe_equals_the_official_training_values(path):
    family = os.path.basename(os.path.dirname(path))
    with open(path) as f:
        recipe = yaml.safe_load(f)
    official = official_values(family, recipe["arch"])
    batch, _ = official.pop("lr_global_batch")
    wrong = {}
    if "lr" in official:
        lr, source = official.pop("lr")
        if abs(lr_at(recipe, batch) - lr) > 1e-12:
            wrong["lr"] = (lr_at(recipe, batch), lr, source)
    for key, (value, source) in official.items():
        if recipe[key] != value:
            wrong[key] = (recipe[key], value, source)
    assert not wrong, f"{path}: ours, official, source: {wrong}"
