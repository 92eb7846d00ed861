"""The shipped recipes (``configs/`` of the clone, ``mszoo/configs`` of an installed wheel), found by name.

``--config twins/svt_small`` (or ``twins/svt_small.yaml``, ``quickstart``) names a shipped recipe when no file
of that name exists, and so does a model-zoo readme's recipe path (``configs/svt_s.yaml``,
``./src/configs/twin_s.yaml.yaml``: ``SEED_RECIPES``). A leaf module: it imports nothing from the rest of mszoo.
``python -m mszoo.recipes NAME`` exits 0 when NAME is a file or names a recipe (the launch scripts ask it before
handing NAME to a program).
"""
import difflib
import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


SEED_RECIPES_DIR = os.path.join(PACKAGE_DIR, "seed_recipes")

# The model-zoo readmes' own recipe files (their file lists and commands), by file name -> (the readme, our recipe of
# the same model, the readme's YAML as it states it in mszoo/seed_recipes/, or None when it states none).
SEED_RECIPES = {
    "svt_s.yaml": ("the Twins GPU readme (000)", "twins/svt_small", None),
    "pcpvt_l.yaml": ("the Twins GPU readme (000)", "twins/pcpvt_large", None),
    "twin_s.yaml": ("the Twins Ascend readme (001)", "twins/pcpvt_small", "twin_s.yaml"),
    "twin_s.yaml.yaml": ("the Twins Ascend readme (001)", "twins/pcpvt_small", "twin_s.yaml"),
    "t2t_vit_19.yaml": ("the T2T-ViT GPU readme (003)", "t2t_vit/t2t_vit_19", "t2t_vit_19.yaml"),
    "t2t_vit_t_14.yaml": ("the T2T-ViT GPU readme (003)", "t2t_vit/t2t_vit_t_14", "t2t_vit_t_14.yaml"),
    "tnt_s_patch16_224.yaml": ("the TNT Ascend readme (004)", "tnt/tnt_s_patch16_224", "tnt_s_patch16_224.yaml"),
}


def seed_recipe(given):
    """``(readme, our recipe file, the readme's YAML file or None)`` when ``given`` is a model-zoo readme's recipe path
    (its file name in SEED_RECIPES, in a ``configs`` folder as the model-zoo readmes keep them, or bare), else None."""
    path = given.replace("\\", "/")
    folder, name = os.path.split(path)
    if name not in SEED_RECIPES or (folder and os.path.basename(folder.rstrip("/")) != "configs"):
        return None
    seed, ours, stated = SEED_RECIPES[name]
    return seed, recipe_path(ours), os.path.join(SEED_RECIPES_DIR, stated) if stated else None


def recipes_dir():
    """Where the recipes are: inside the installed package, else the clone's ``configs/`` beside it."""
    packaged = os.path.join(PACKAGE_DIR, "configs")
    return packaged if os.path.isdir(packaged) else os.path.join(os.path.dirname(PACKAGE_DIR), "configs")


def list_recipes():
    """Every shipped recipe's name (``family/variant`` without ``.yaml``), sorted."""
    root = recipes_dir()
    names = []
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(".yaml"):
                rel = os.path.relpath(os.path.join(folder, f), root)
                names.append(rel[:-len(".yaml")].replace(os.sep, "/"))
    return sorted(names)


def recipe_path(name):
    """The file of the shipped recipe ``name`` (``twins/svt_small``, ``configs/twins/svt_small.yaml``), or None."""
    key = name.replace("\\", "/").strip("/")
    key = key[len("configs/"):] if key.startswith("configs/") else key
    key = key[:-len(".yaml")] if key.endswith(".yaml") else key
    return os.path.join(recipes_dir(), *key.split("/")) + ".yaml" if key in list_recipes() else None


def close_recipes(name, n=4):
    """Shipped recipe names close to ``name`` (for the error line of a name that matches nothing)."""
    names = list_recipes()
    base = os.path.basename(name.replace("\\", "/"))
    base = base[:-len(".yaml")] if base.endswith(".yaml") else base
    by_base = {os.path.basename(r): r for r in names}
    near = difflib.get_close_matches(name.replace(".yaml", ""), names, n=n, cutoff=0.5)
    near += [by_base[b] for b in difflib.get_close_matches(base, list(by_base), n=n, cutoff=0.5)]
    return list(dict.fromkeys(near))[:n]


def main(argv=None):
    """Exit 0 when the argument is a file, a shipped recipe name or a model-zoo readme's recipe path; else 1."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mszoo.recipes CONFIG", file=sys.stderr)
        return 2
    given = args[0]
    return 0 if os.path.isfile(given) or recipe_path(given) or seed_recipe(given) else 1


if __name__ == "__main__":
    sys.exit(main())
