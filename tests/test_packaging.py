"""mszoo as an installed package: the wheel carries what the code reads, the console commands run from any folder,
optional parts are extras that a missing one names, and nothing imports the old ``src`` package."""
import ast
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

import mszoo
from mszoo.cli import run
from mszoo.extras import EXTRA_OF, MissingExtra, require
from mszoo.recipes import list_recipes, recipe_path
from tests.conftest import ROOT

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _f:
    PYPROJECT = tomllib.load(_f)


def _python_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("output", "build", "__pycache__")]
        yield from (os.path.join(folder, f) for f in files if f.endswith(".py"))


def test_nothing_imports_the_old_src_package():
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{os.path.relpath(path, ROOT)}: {n}" for n in names if n == "src" or n.startswith("src.")]
    assert not offenders


def test_pyproject_lists_every_package_and_the_recipes():
    packages = {os.path.relpath(folder, ROOT).replace(os.sep, ".")
                for folder, _, files in os.walk(os.path.join(ROOT, "mszoo")) if "__init__.py" in files}
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == packages | {"mszoo.configs"}


def test_every_console_command_runs_the_program_of_its_root_script():
    scripts = PYPROJECT["project"]["scripts"]
    root_of = {"train": "train.py", "eval": "eval.py", "export": "export.py", "infer": "infer.py",
               "convert": "convert_from_pt.py", "benchmark": "benchmark.py", "tune": "tune_params.py"}
    assert set(scripts) == {f"mszoo-{name}" for name in root_of}
    for name, script in root_of.items():
        assert scripts[f"mszoo-{name}"] == f"mszoo.tools.{name}:cli"
        with open(os.path.join(ROOT, script), encoding="utf-8") as f:
            assert f"from mszoo.tools.{name} import main" in f.read(), script


def test_every_extra_hint_names_an_extra_that_brings_its_package():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for module, (package, extra) in EXTRA_OF.items():
        assert any(re.match(rf"{re.escape(package)}\b", req, re.I) for req in extras[extra]), (module, extra)
        assert extras["all"][0].startswith("mszoo[") and extra in extras["all"][0]
    core = " ".join(PYPROJECT["project"]["dependencies"])
    assert not any(package in core for package, _ in EXTRA_OF.values())


def test_a_missing_extra_is_one_line_naming_the_pip_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed

    def main(argv):
        require("onnxruntime", "the onnx backend")

    assert run(main) == 1
    err = capsys.readouterr().err
    assert err == 'error: the onnx backend needs onnxruntime: pip install "mszoo[onnx]"\n'
    with pytest.raises(MissingExtra):
        require("onnxruntime", "x")


def test_shipped_recipes_are_found_by_name():
    assert {"quickstart", "twins/svt_small", "tnt/tnt_s_patch16_224", "finetune/twins_svt_small"} <= set(list_recipes())
    assert recipe_path("twins/svt_small") == os.path.join(ROOT, "configs", "twins", "svt_small.yaml")
    assert recipe_path("configs/tnt/tnt_s_patch16_224.yaml") == recipe_path("tnt/tnt_s_patch16_224")
    assert recipe_path("twins/svt_smal") is None


def test_import_mszoo_loads_no_mindspore_and_exports_a_typed_api():
    code = "import sys, mszoo; print('mindspore' in sys.modules, mszoo.__version__, sorted(mszoo.__all__))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded, version, _ = out.stdout.split(" ", 2)
    assert loaded == "False" and version == mszoo.__version__
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mszoo.__version__"}
    assert os.path.isfile(os.path.join(ROOT, "mszoo", "py.typed"))
    for name in mszoo.__all__[1:]:
        assert getattr(mszoo, name) is not None
    assert mszoo.create_model.__annotations__["return"] == "nn.Cell"


def _installed_venv(tmp_path):
    """A venv that sees this environment's packages (no download) and has only the built wheel of mszoo."""
    tree = tmp_path / "tree"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if os.path.isfile(os.path.join(ROOT, rel)):  # a file deleted in the work tree is not packaged
            os.makedirs(tree / os.path.dirname(rel), exist_ok=True)
            with open(os.path.join(ROOT, rel), "rb") as src_file, open(tree / rel, "wb") as out:
                out.write(src_file.read())
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(tree)], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(venv / "bin" / "python"), "-c", purelib], capture_output=True, text=True,
                          check=True).stdout.strip()
    with open(os.path.join(site, "test_deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("mszoo-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, capture_output=True)
    return venv / "bin"


def test_the_built_wheel_trains_evaluates_exports_and_infers_from_any_folder(tmp_path):
    bin_dir = _installed_venv(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GLOG_v="3", MSZOO_CACHE=str(tmp_path / "cache"))

    def command(*args):
        out = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=work, env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, f"{args}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        return out.stdout + out.stderr

    where = command("python", "-c", "import mszoo; print(mszoo.__file__); "
                                    "print(mszoo.create_model('twins_svt_small', num_classes=10))")
    assert where.startswith(str(tmp_path / "venv")) and "Twins" in where
    command("mszoo-train", "--config", "quickstart", "--epochs", "1", "--steps_per_epoch", "20",
            "--output_dir", "OUT", "--run_name", "r", "--progress", "false")
    report = command("mszoo-eval", "--pretrained", "OUT/r/best.ckpt")
    top1 = float(re.search(r"'top1': ([\d.]+)", report).group(1))
    assert top1 > 20.0, report  # 10 classes: above chance after 20 steps
    command("mszoo-export", "--pretrained", "OUT/r/best.ckpt", "--file_format", "ONNX", "--file_name", "OUT/q")
    photos = work / "OUT" / "datasets" / "digits" / "val" / "3"
    preds = command("mszoo-infer", "--backend", "onnx", "--model", "OUT/q.onnx", "--input", str(photos),
                    "--output", "preds.json")
    assert "wrote" in preds and (work / "preds.json").is_file()
