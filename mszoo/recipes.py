"""The shipped recipes (``configs/`` of the clone, ``mszoo/configs`` of an installed wheel), found by name.

``--config twins/svt_small`` (or ``twins/svt_small.yaml``, ``quickstart``) names a shipped recipe when no file
of that name exists. A leaf module: it imports nothing from the rest of mszoo.
"""
import difflib
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


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
