"""Tiny ``create_model`` overrides per family: the same code as the published variants, small widths."""
import fnmatch

TINY_BY_FAMILY = {
    "twins_*": dict(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), img_size=32),
    "tnt_*": dict(embed_dim=32, inner_dim=8, depth=2, num_heads_outer=2, num_heads_inner=2, img_size=32),
    "t2t_vit_*": dict(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, token_dim=8, img_size=32),
}


def tiny_kwargs(name):
    """Overrides that make ``name`` tiny (``img_size`` included)."""
    for pattern, kwargs in TINY_BY_FAMILY.items():
        if fnmatch.fnmatch(name, pattern):
            return dict(kwargs)
    raise KeyError(f"no tiny overrides for {name}; add its family to tests/tiny.py")


def tiny_graph_groups(kwargs_of=tiny_kwargs, names=None):
    """``{representative: [names]}``: the registered models grouped by their tiny graph (cells and parameter
    shapes). The tiny overrides replace every width, depth and head count, so e.g. all tiny T2T-ViT performer
    variants are one graph; a test of one member of a group stands for all of them (compiles cost seconds)."""
    from mszoo.models import create_model, list_models

    groups = {}
    for name in names or list_models():
        model = create_model(name, num_classes=4, **kwargs_of(name))
        key = tuple((n, type(cell).__name__) for n, cell in model.cells_and_names()) + \
            tuple((p.name, tuple(p.shape)) for p in model.get_parameters())
        groups.setdefault(key, []).append(name)
    return {members[0]: members for members in groups.values()}
