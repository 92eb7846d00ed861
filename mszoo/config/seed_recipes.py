"""A model-zoo readme's recipe path (``configs/svt_s.yaml``) runs our recipe of the same model: the note that names
both files and the hyper-parameters in which ours (the official recipe) differs where the readme's YAML states them."""
from .files import load_yaml
from .keys import KEYS, Config
from .merge import apply_mapping

# Keys of a recipe that are not training hyper-parameters (where the data is, the machine, the run's files).
_NOT_HYPER = {"arch", "pretrained", "dataset", "data_url", "train_dir", "val_dir", "train_num_samples",
              "val_num_samples", "num_parallel_workers", "steps_per_epoch", "eval_every"}


_HYPER_GROUPS = ("model", "data", "mixup", "optim", "train")


def _recipe_values(path):
    cfg = Config.defaults()
    apply_mapping(cfg, load_yaml(path), path, [])
    return cfg


def recipe_differences(ours_path, seed_path):
    """``[(key, ours, seed's)]`` for each hyper-parameter the readme's YAML states and our recipe sets otherwise."""
    ours, seed = _recipe_values(ours_path), _recipe_values(seed_path)
    diffs = []
    for key in KEYS:
        if key.group not in _HYPER_GROUPS or key.name in _NOT_HYPER or seed.source_of(key.name) != seed_path:
            continue
        a, b = ours[key.name], seed[key.name]
        same = a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-12 * max(abs(a), 1))
        if not same:
            diffs.append((key.name, a, b))
    return diffs, ours


def seed_recipe_note(given, seed, ours_path, seed_path):
    """The note of a model-zoo readme recipe name: both files, and the hyper-parameters in which ours differs where
    the readme states them."""
    text = (f"{given} names a recipe of {seed}, which is not here: using ours, {ours_path} (the official recipe of "
            "the same model)")
    if seed_path is None:
        return text + "; that readme states none of its hyper-parameters to compare"
    diffs, ours = recipe_differences(ours_path, seed_path)
    if not diffs:
        return text + f"; it has every hyper-parameter the readme states ({seed_path})"
    items = []
    for name, mine, theirs in diffs:
        scaled = f" x global batch / {ours.lr_scale_batch}" if name == "base_lr" and ours.lr_scale_batch else ""
        items.append(f"{name} {mine!r}{scaled} (seed {theirs!r})")
    return text + f"; where the readme states them ({seed_path}), ours differs in: " + ", ".join(items)
