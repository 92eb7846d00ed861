"""mszoo/data stays independent: it imports none of mszoo.models, mszoo.engine, mszoo.deploy (or config)."""
import ast
import os

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "mszoo", "data")
FORBIDDEN = ("mszoo.models", "mszoo.engine", "mszoo.deploy", "mszoo.config")


def _imported_modules(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against mszoo.data
                base = ["mszoo", "data"][:3 - node.level] if node.level <= 2 else []
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module


def test_data_package_imports_no_other_src_package():
    files = [f for f in os.listdir(DATA_DIR) if f.endswith(".py")]
    assert "dataset.py" in files and "mixup.py" in files
    for name in files:
        for module in _imported_modules(os.path.join(DATA_DIR, name)):
            assert not module.startswith(FORBIDDEN), f"{name} imports {module}"
