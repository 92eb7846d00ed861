"""The README's main command runs: the quickstart trains (shortened to 2 of its 15 epochs) and learns."""
import csv
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_main_command():
    """The training command of the README's main-command block (what follows ``pip install ... &&``)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        block = re.search(r"<!-- main-command -->\n```bash\n(.*?)\n```", f.read(), re.S).group(1)
    return shlex.split(block.split("&&")[-1])


def test_the_readme_main_command_trains_the_quickstart_to_a_top1_well_above_chance(tmp_path):
    words = readme_main_command()
    assert words[:2] == ["python", "train.py"], words
    shortened = ["--epochs", "2", "--output_dir", str(tmp_path), "--run_name", "quickstart", "--progress", "false"]
    proc = subprocess.run([sys.executable, *words[1:], *shortened], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, GLOG_v="3"), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(tmp_path / "quickstart" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # 10 digit classes: chance is 10%. Two epochs of the quickstart reach about 76% here (48% after one).
    assert float(rows[-1]["val_top1"]) >= 50.0, rows
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]), rows
