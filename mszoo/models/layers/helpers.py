"""Small helpers shared by the model files."""
import collections.abc
from itertools import repeat


def to_2tuple(x):
    """Return ``x`` as a pair: an iterable is kept as a tuple, a scalar is repeated."""
    if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
        return tuple(x)
    return tuple(repeat(x, 2))
