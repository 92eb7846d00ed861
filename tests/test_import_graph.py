"""No import circle inside mszoo/: every module's imports (top-level and inside functions) form a DAG."""
import ast
import os
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _imports(path, name, known):
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from pkg import name` names a module or a value in pkg
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph():
    paths = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "mszoo")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                paths[_module_name(path)] = path
    return {name: set(_imports(path, name, paths)) for name, path in paths.items()}


def _cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            # a package's __init__ re-exporting its own submodules is not a circle through the package
            if nxt == node.rpartition(".")[0] and node.startswith(nxt + "."):
                continue
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_src_has_no_import_circle():
    graph = import_graph()
    assert "mszoo.models.layers.linear" in graph and "mszoo.engine.trainer" in graph
    assert "mszoo.models.layers.linear" in graph["mszoo.models.layers.weight_init"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_check_sees_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_library_imports_no_tool():
    graph = import_graph()
    assert "mszoo.tools.benchmark" in graph and "mszoo.tools.tune" in graph
    offenders = {name: sorted(t for t in targets if t.startswith("mszoo.tools"))
                 for name, targets in graph.items() if not name.startswith("mszoo.tools")}
    assert not {k: v for k, v in offenders.items() if v}


def test_models_import_only_models_and_the_leaf_modules():
    leaves = ("mszoo.constants", "mszoo.extras", "mszoo.fileio")
    graph = import_graph()
    offenders = {name: sorted(t for t in targets if t.startswith("mszoo") and t != "mszoo"
                              and not t.startswith(("mszoo.models", "mszoo.cpu")) and t not in leaves)
                 for name, targets in graph.items() if name.startswith("mszoo.models")}
    assert not {k: v for k, v in offenders.items() if v}


def test_models_reach_the_cpu_backend_only_through_the_hook():
    graph = import_graph()
    hook = "mszoo.models.layers.backend"
    assert any(t.startswith("mszoo.cpu") for t in graph[hook])
    users = sorted(name for name, targets in graph.items()
                   if name.startswith("mszoo.models") and any(t.startswith("mszoo.cpu") for t in targets))
    assert users == [hook]
    backend_imports = {t for name, targets in graph.items() if name.startswith("mszoo.cpu") for t in targets}
    assert {t for t in backend_imports if t.startswith("mszoo") and not t.startswith("mszoo.cpu")} <= \
        {"mszoo", "mszoo.constants", "mszoo.fileio"}
