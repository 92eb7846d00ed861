"""tune_params.py: a real Optuna search through the trainer, stored in SQLite, resumable."""
import os

import pytest
import yaml

from src.config import ConfigError, parse_config
from src.engine.tuning import load_search_space, tune_main

optuna = pytest.importorskip("optuna")


def _space(tmp_path, data):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


SPACE = {"base_lr": {"low": 0.0005, "high": 0.005, "log": True}, "weight_decay": {"choices": [0.0, 0.05]}}


def _trials(study_dir):
    storage = f"sqlite:///{os.path.join(study_dir, 'study.db')}"
    return optuna.load_study(study_name="t", storage=storage).trials


def test_three_trial_search_writes_a_loadable_best_config_and_resumes(tiny_config, tmp_path):
    config = tiny_config(epochs=2, steps_per_epoch=2)
    space = _space(tmp_path, SPACE)
    study_dir = tmp_path / "out" / "t"
    assert tune_main(["--config", config, "--search", space, "--trials", "2", "--study", "t"]) == 0
    first = _trials(study_dir)
    assert len(first) == 2 and all(t.state.name in ("COMPLETE", "PRUNED") for t in first)
    # Each completed trial reported top-1 per validated epoch (what the pruner uses).
    assert any(len(t.intermediate_values) == 2 for t in first)

    # "Interrupted" after two trials: asking for 3 runs only the missing one.
    assert tune_main(["--config", config, "--search", space, "--trials", "3", "--study", "t"]) == 0
    trials = _trials(study_dir)
    assert len(trials) == 3
    assert [t.params for t in trials[:2]] == [t.params for t in first]  # finished trials not repeated

    best_yaml = study_dir / "best_config.yaml"
    cfg, _ = parse_config(["--config", str(best_yaml)])
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert cfg.base_lr == pytest.approx(best.params["base_lr"])
    assert cfg.weight_decay == best.params["weight_decay"]
    assert (study_dir / "optimization_history.png").stat().st_size > 0


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tiny_config, tmp_path):
    # warmup_length 5 > epochs 2 is an impossible combination for the trainer's validation.
    config = tiny_config(epochs=2, steps_per_epoch=1)
    space = _space(tmp_path, {"warmup_length": {"choices": [1, 5]}})
    study_dir = tmp_path / "out" / "t"
    code = tune_main(["--config", config, "--search", space, "--trials", "4", "--study", "t", "--seed", "0",
                      "--no-prune"])
    assert code == 0
    states = {t.params["warmup_length"]: t.state.name for t in _trials(study_dir)}
    assert states.get(5) == "FAIL" and states.get(1) == "COMPLETE"


@pytest.mark.parametrize("space,message", [
    ({"base_lrr": {"low": 0.1, "high": 1}}, "unknown key 'base_lrr'"),
    ({"base_lr": {"low": 0.1}}, "needs low and high"),
    ({"base_lr": {"low": 1.0, "high": 0.1}}, "low \\(1.0\\) must be below high \\(0.1\\)"),
    ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, "log scale needs low > 0"),
    ({"optimizer": {"low": 1, "high": 2}}, "optimizer is str; use choices"),
    ({"optimizer": {"choices": ["adamw", "rmsprop"]}}, "'rmsprop' is not one of"),
    ({"beta": {"choices": [[0.9, 0.99]]}}, "cannot be searched"),
])
def test_bad_search_spaces_are_one_clear_error(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        load_search_space(_space(tmp_path, space))
