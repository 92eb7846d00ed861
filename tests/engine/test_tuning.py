"""tune_params.py: a real Optuna search through the trainer, stored in SQLite, resumable."""
import os

import pytest
import yaml

from mszoo.config import ConfigError, parse_config
from mszoo.tools.tune import load_search_space, tune_main

optuna = pytest.importorskip("optuna")


@pytest.fixture(autouse=True)
def _pynative_afterwards(pynative):
    """Trials train with the config's mode (GRAPH); later tests in the session expect PyNative back."""
    yield


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


def _storage(study_dir):
    os.makedirs(study_dir, exist_ok=True)
    return f"sqlite:///{os.path.join(study_dir, 'study.db')}"


def test_a_trial_below_the_median_is_pruned_after_its_first_validation(tiny_config, tmp_path, monkeypatch):
    """Two good trials complete, then a trial whose epoch-1 top-1 is below their median is PRUNED and trains
    no further epoch. Validation is replaced by a top-1 that depends on base_lr only, so the outcome does
    not hang on how much a tiny model learns in a few steps."""
    import mszoo.engine.trainer as trainer_module

    def fake_validate(trainer):
        top1 = 80.0 if trainer.cfg.base_lr > 0.001 else 5.0
        return {"top1": top1 + trainer.epochs_done, "top5": 100.0, "loss": 1.0, "num_samples": 10}

    monkeypatch.setattr(trainer_module.Trainer, "validate", fake_validate)
    config = tiny_config(epochs=3, steps_per_epoch=1)
    space = _space(tmp_path, {"base_lr": {"choices": [0.003, 0.0001]}})
    study_dir = tmp_path / "out" / "t"
    study = optuna.create_study(study_name="t", storage=_storage(study_dir), direction="maximize")
    for lr in (0.003, 0.003, 0.0001):
        study.enqueue_trial({"base_lr": lr})
    assert tune_main(["--config", config, "--search", space, "--trials", "3", "--study", "t"]) == 0
    trials = _trials(study_dir)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert trials[0].intermediate_values == {1: 81.0, 2: 82.0, 3: 83.0}
    assert trials[2].intermediate_values == {1: 6.0}
    from mszoo.engine.checkpoint import load_training_checkpoint

    pruned = load_training_checkpoint(str(study_dir / "trials" / "trial_0002" / "last.ckpt"))
    assert pruned.train_state["epochs_done"] == 1  # stopped after the epoch that was pruned
    cfg, _ = parse_config(["--config", str(study_dir / "best_config.yaml")])
    assert cfg.base_lr == 0.003


def test_step_ranges_sample_only_grid_values(tmp_path):
    space = load_search_space(_space(tmp_path, {"drop_path_rate": {"low": 0.0, "high": 0.3, "step": 0.1},
                                                "warmup_length": {"low": 1, "high": 7, "step": 3},
                                                "base_lr": {"low": 0.001, "high": 0.01, "log": True}}))
    from mszoo.tools.tune import suggest

    assert space["drop_path_rate"]["step"] == 0.1 and space["warmup_length"]["step"] == 3
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_dpr, seen_warmup = set(), set()
    for _ in range(60):
        values = suggest(study.ask(), space)
        seen_dpr.add(round(values["drop_path_rate"], 9))
        seen_warmup.add(values["warmup_length"])
        assert isinstance(values["warmup_length"], int)
        assert 0.001 <= values["base_lr"] <= 0.01
    assert seen_dpr == {0.0, 0.1, 0.2, 0.3}
    assert seen_warmup == {1, 4, 7}


@pytest.mark.parametrize("spec,message", [
    ({"base_lr": {"low": 0.001, "high": 0.01, "log": True, "step": 0.001}}, "step and log cannot be combined"),
    ({"warmup_length": {"low": 0, "high": 4, "step": 0.5}}, "warmup_length"),
])
def test_bad_step_ranges_are_refused(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message):
        load_search_space(_space(tmp_path, spec))


def test_a_trial_whose_loss_becomes_nan_is_recorded_as_failed_and_the_study_goes_on(tiny_config, tmp_path):
    # From epoch 2 the step schedule multiplies the lr by lr_gamma: 1e30 makes the loss NaN.
    config = tiny_config(optimizer="sgd", lr_scheduler="step_lr", lr_adjust=1, warmup_length=0, min_lr=0.0,
                         use_clip_grad_norm=False, epochs=2, steps_per_epoch=2)
    space = _space(tmp_path, {"lr_gamma": {"choices": [1e30, 0.1]}})
    study_dir = tmp_path / "out" / "t"
    study = optuna.create_study(study_name="t", storage=_storage(study_dir), direction="maximize")
    study.enqueue_trial({"lr_gamma": 1e30})
    study.enqueue_trial({"lr_gamma": 0.1})
    assert tune_main(["--config", config, "--search", space, "--trials", "2", "--study", "t", "--no-prune"]) == 0
    trials = _trials(study_dir)
    assert [(t.params["lr_gamma"], t.state.name) for t in trials] == [(1e30, "FAIL"), (0.1, "COMPLETE")]
    assert trials[0].value is None
    log = (study_dir / "trials" / "trial_0000" / "train.log").read_text()
    assert "training diverged" in log
    cfg, _ = parse_config(["--config", str(study_dir / "best_config.yaml")])
    assert cfg.lr_gamma == 0.1


def test_a_trial_left_running_by_an_interruption_is_failed_and_run_again(tiny_config, tmp_path):
    """A search killed mid-trial leaves that trial RUNNING in the database. Re-running the command marks it
    failed (interrupted), does not count it as one of the --trials, and runs its parameters again."""
    from mszoo.tools.tune import suggest

    config = tiny_config(epochs=1, steps_per_epoch=1)
    space_file = _space(tmp_path, SPACE)
    study_dir = tmp_path / "out" / "t"
    study = optuna.create_study(study_name="t", storage=_storage(study_dir), direction="maximize")
    stale = study.ask()
    params = suggest(stale, load_search_space(space_file))  # the killed process had sampled these
    assert tune_main(["--config", config, "--search", space_file, "--trials", "1", "--study", "t"]) == 0
    trials = _trials(study_dir)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs.get("interrupted") is True
    assert trials[1].params == params
    # Running the same command once more has nothing left to do.
    assert tune_main(["--config", config, "--search", space_file, "--trials", "1", "--study", "t"]) == 0
    assert len(_trials(study_dir)) == 2


def test_a_trial_stopped_by_a_signal_stops_the_search_and_runs_again_on_resume(tiny_config, tmp_path, monkeypatch):
    """SIGINT/SIGTERM during a trial (the trainer saved and returned 130/143) stops the whole search; the
    stopped trial does not count, and re-running the command runs its parameters again."""
    import mszoo.engine.trainer as trainer_module

    real_train = trainer_module.train
    monkeypatch.setattr(trainer_module, "train", lambda cfg, after_epoch=None: 130)
    config = tiny_config(epochs=1, steps_per_epoch=1)
    space_file = _space(tmp_path, SPACE)
    argv = ["--config", config, "--search", space_file, "--trials", "1", "--study", "t"]
    with pytest.raises(KeyboardInterrupt):
        tune_main(argv)
    study_dir = tmp_path / "out" / "t"
    (stopped,) = _trials(study_dir)
    assert stopped.state.name == "FAIL" and stopped.user_attrs.get("interrupted") is True

    monkeypatch.setattr(trainer_module, "train", real_train)
    assert tune_main(argv) == 0
    trials = _trials(study_dir)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].params == stopped.params
