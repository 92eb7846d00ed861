"""Optional parts of mszoo: each third-party package that only one feature needs, and the extra that brings it.

``require(module, feature)`` imports the module or stops with one line naming the ``pip install`` that brings
it, e.g. ``ONNX export needs onnx: pip install "mszoo[onnx]"``. The extras' names and packages are
declared in ``pyproject.toml``; ``tests/test_packaging.py`` checks that the two agree. A leaf module: it imports
nothing from the rest of mszoo.
"""
import importlib

# top-level module -> (pip package, extra)
EXTRA_OF = {
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "openvino"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "safetensors": ("safetensors", "hub"),
    "optuna": ("optuna", "tune"),
    "matplotlib": ("matplotlib", "plot"),
    "sklearn": ("scikit-learn", "quickstart"),
}


class MissingExtra(ValueError):
    """An optional package is not installed (one line, exit code 1 through ``mszoo.cli.run``)."""


def install_hint(module):
    return f'pip install "mszoo[{EXTRA_OF[module.partition(".")[0]][1]}]"'


def require(module, feature):
    """``importlib.import_module(module)``, or ``MissingExtra`` naming ``feature`` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.partition(".")[0]
        raise MissingExtra(f"{feature} needs {EXTRA_OF[top][0]}: {install_hint(top)}") from None


def installed(module):
    """True when ``module`` imports (a feature that has a fallback asks this instead of ``require``)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
