"""The README is executable documentation: every Python block runs, every shell command parses with the
flags it shows (the script's own parser and config checks), so a README that drifts from the code fails."""
import importlib
import os
import re
import shlex
import subprocess
import sys

import pytest

from mszoo.config import parse_config, parse_script_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _f:
    README = _f.read()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, re.S | re.M)


def shell_commands():
    """Every command of the README's bash blocks (continuations joined, comments dropped, && split)."""
    commands = []
    for lang, body in BLOCKS:
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:cut])
                words = words[cut + 1:]
    return commands


def _parse_script(script, args):
    name = script[:-3]
    if name in ("train", "eval", "export", "infer"):
        module = importlib.import_module(f"mszoo.tools.{name}")
        parse_config(args, prog=script, extra=getattr(module, "EXTRA", ()))
    elif name == "convert_from_pt":
        from mszoo.tools.convert import build_parser

        parse_script_args(build_parser(), args)
    elif name == "benchmark":
        from mszoo.tools.benchmark import build_parser, plan_cases

        assert plan_cases(parse_script_args(build_parser(), args))
    elif name == "tune_params":
        from mszoo.tools.tune import build_parser

        ns, rest = parse_script_args(build_parser(), args, known=True)
        parse_config(["--config", ns.config] + rest, prog=script)
    else:
        raise AssertionError(f"README runs {script}, which this test does not know how to parse")


COMMANDS = shell_commands()
TOOL_SCRIPTS = {"train": "train.py", "eval": "eval.py", "export": "export.py", "infer": "infer.py",
                "convert": "convert_from_pt.py", "benchmark": "benchmark.py", "tune": "tune_params.py"}


def _extras():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w)[:70])
def test_every_shell_command_in_the_readme_parses(words):
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # NNODES=2 bash scripts/...
        key, value = words[0].split("=", 1)
        env[key] = value
        words = words[1:]
    program, args = words[0], words[1:]
    if program == "pip" and args[:2] == ["install", "-r"]:
        assert os.path.isfile(os.path.join(ROOT, args[2]))
    elif program == "pip":  # the package itself, with extras that pyproject.toml declares
        assert args[0] in ("install", "wheel") and re.fullmatch(r"\.(\[[a-z,]+\])?", args[1]), args
        declared = _extras()
        assert set(re.findall(r"[a-z]+", args[1])) <= declared, args[1]
    elif program.startswith("mszoo-"):
        _parse_script(TOOL_SCRIPTS[program[len("mszoo-"):]], args)
    elif program == "python" and args[:2] == ["-m", "pytest"]:
        assert not args[2:]
    elif program == "python":
        assert os.path.isfile(os.path.join(ROOT, args[0])), args[0]
        _parse_script(args[0], args[1:])
    elif program == "bash":
        assert os.path.isfile(os.path.join(ROOT, args[0])), args[0]
        check = subprocess.run(["bash", "-n", os.path.join(ROOT, args[0])], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # The command it would run (MSZOO_DRY_RUN): its arguments are accepted, unless one names a file of the
        # reader's (RANK_TABLE_FILE), which must then be the only complaint.
        dry = subprocess.run(["bash", *args], capture_output=True, text=True, cwd=ROOT,
                             env=dict(os.environ, **env, MSZOO_DRY_RUN="1", LOG_ROOT="/tmp/mszoo-dry-logs"))
        placeholder = next((a for a in args if re.fullmatch(r"[A-Z_]+", a) and not os.path.exists(a)), None)
        if placeholder is None:
            assert dry.returncode == 0, dry.stderr
        else:
            assert dry.returncode == 2 and f"not found: {placeholder}" in dry.stderr, dry.stderr
    else:
        raise AssertionError(f"the README runs {program!r}; teach this test how to check it")


def test_the_readme_has_the_commands_users_copy():
    scripts = {w[1] for w in COMMANDS if w[0] == "python" and w[1].endswith(".py")}
    assert {"train.py", "eval.py", "export.py", "infer.py", "convert_from_pt.py", "benchmark.py",
            "tune_params.py"} <= scripts


PYTHON_BLOCKS = [body for lang, body in BLOCKS if lang == "python"]


def _hub_cache_for(root, names):
    """A Hugging Face cache with timm's models ``names`` (seed 0) as their ``.in1k`` repositories."""
    import timm
    import torch
    from safetensors.torch import save_file

    from tests.models.test_hub import hub_cache

    for name in names:
        torch.manual_seed(0)
        state = {k: v.contiguous() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}
        hub_cache(root, f"timm/{name}.in1k", {"model.safetensors": lambda p, s=state: save_file(s, p)})


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_every_python_block_in_the_readme_runs(index, tmp_path):
    code = PYTHON_BLOCKS[index]
    published = sorted(set(re.findall(r'create_model\("(\w+)", pretrained=True', code)))
    if published:  # no network in tests: the published weights come from a Hub cache made here
        _hub_cache_for(tmp_path / "hf", published)
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=ROOT, HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
               MSZOO_CACHE=str(tmp_path / "mszoo"))
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, f"README block {index}:\n{code}\n{run.stdout}\n{run.stderr}"


def test_the_readme_model_table_names_every_registered_model_with_its_parameter_count():
    """Names equal ``list_models()``; counts equal the reference counts that tests/models check the code against
    (timm's for Twins and TNT in tests/models/test_models.py, the official code's for T2T-ViT in
    tests/models/test_t2t_vit.py), so a README count that drifts from the code fails here or there."""
    from mszoo.models import SEED_CODE_VARIANTS, create_model, list_models
    from tests.models.test_t2t_vit import OFFICIAL_PARAM_COUNTS
    from tests.parity import TIMM_PARAM_COUNTS, count_params

    table = README[README.index("| model | params |"):]
    table = table[:table.index("\n\n")]
    rows = dict(re.findall(r"^\| `([\w.]+)` \| ([\d,]+) \|", table, re.M))
    assert sorted(rows) == list_models(exclude_filters=SEED_CODE_VARIANTS)
    seed_table = README[README.index("| seed-code variant | params |"):]
    seed_table = seed_table[:seed_table.index("\n\n")]
    assert all(f"`{name}`" in seed_table for name in list_models(SEED_CODE_VARIANTS))
    for name, count in re.findall(r"^\| `([\w.]+)` \| ([\d,]+) \|", seed_table, re.M):
        assert count_params(create_model(name)) == int(count.replace(",", "")), name
    counts = {**TIMM_PARAM_COUNTS, **OFFICIAL_PARAM_COUNTS}
    assert {name: int(count.replace(",", "")) for name, count in rows.items()} == counts
