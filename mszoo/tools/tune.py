"""tune_params.py: hyper-parameter search with Optuna through the same trainer as train.py.

A search-space YAML maps config keys to ``{low, high[, log][, step]}`` or ``{choices: [...]}``. Each
trial is a short training run (its own run directory under the study folder); val top-1 is reported
after every validation so Optuna's pruner stops bad trials early. The study lives in SQLite, so an
interrupted search resumes without repeating finished trials (a trial cut short by the interruption is
marked failed, not counted, and its parameters run again). At the end the best configuration is
written as a YAML that ``train.py --config`` accepts, plus a PNG of the optimisation history.
"""
import argparse
import math
import os

from mszoo.cli import console
from mszoo.config import (
    KEY_MAP,
    ConfigError,
    canonical_key,
    check_value,
    coerce,
    load_yaml,
    parse_config,
    parse_script_args,
    save_config,
)
from mszoo.extras import require
from mszoo.logger import get_logger

TUNABLE_TYPES = ("int", "float", "str", "bool")


class SearchSpaceError(ConfigError):
    pass


def load_search_space(path):
    """``{key: spec}`` with canonical keys, each spec validated (types, bounds, choices)."""
    raw = load_yaml(path)
    if not raw:
        raise SearchSpaceError(f"search space {path} is empty")
    space = {}
    for raw_key, spec in raw.items():
        key, meta = _tunable_key(raw_key, spec, path)
        space[key] = _choices_spec(key, meta, spec, path) if "choices" in spec else _range_spec(key, meta, spec, path)
    return space


def _tunable_key(raw_key, spec, path):
    """The canonical key and its metadata, checking that the key can be searched and ``spec`` is a mapping."""
    key = canonical_key(str(raw_key), path)
    if key is None:
        raise SearchSpaceError(f"search space: '{raw_key}' is not a tunable key (from {path})")
    meta = KEY_MAP[key]
    if meta.type not in TUNABLE_TYPES:
        raise SearchSpaceError(f"search space: {key} has type {meta.type} and cannot be searched (from {path})")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"search space: {key} needs {{low, high}} or {{choices}} (from {path})")
    return key, meta


def _choices_spec(key, meta, spec, path):
    """``{"choices": values}`` from a ``{choices: [...]}`` spec, each value coerced and checked."""
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise SearchSpaceError(f"search space: {key}.choices must be a non-empty list (from {path})")
    values = [coerce(key, meta.type, c, path, meta.nullable) for c in choices]
    for v in values:
        check_value(meta, v, path)
    return {"choices": values}


def _range_spec(key, meta, spec, path):
    """``{low, high, log, type[, step]}`` from a ``{low, high[, log][, step]}`` spec of a numeric key."""
    unknown = set(spec) - {"low", "high", "log", "step"}
    if unknown or "low" not in spec or "high" not in spec:
        raise SearchSpaceError(f"search space: {key} needs low and high (and optional log, step); "
                               f"got {sorted(spec)} (from {path})")
    if meta.type not in ("int", "float"):
        raise SearchSpaceError(f"search space: {key} is {meta.type}; use choices (from {path})")
    low = coerce(key, meta.type, spec["low"], path)
    high = coerce(key, meta.type, spec["high"], path)
    if not low < high:
        raise SearchSpaceError(f"search space: {key}: low ({low}) must be below high ({high}) (from {path})")
    check_value(meta, low, path)
    check_value(meta, high, path)
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SearchSpaceError(f"search space: {key}: log scale needs low > 0 (from {path})")
    entry = {"low": low, "high": high, "log": log, "type": meta.type}
    if spec.get("step") is not None:
        if log:
            raise SearchSpaceError(f"search space: {key}: step and log cannot be combined (from {path})")
        entry["step"] = coerce(key, meta.type, spec["step"], path)
    return entry


def suggest(trial, space):
    """Sample one configuration from ``space`` with an Optuna trial."""
    values = {}
    for key, spec in space.items():
        if "choices" in spec:
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["type"] == "int":
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec["log"])
        else:
            values[key] = trial.suggest_float(key, spec["low"], spec["high"], step=spec.get("step"), log=spec["log"])
    return values


def build_parser():
    p = argparse.ArgumentParser(prog="tune_params.py", allow_abbrev=False,
                                description="Hyper-parameter search with Optuna over a YAML search space.",
                                usage="tune_params.py --config FILE --search SPACE.yaml --trials N "
                                      "[--storage URL] [--study NAME] [--KEY VALUE ...]")
    p.add_argument("--config", required=True, help="base recipe (YAML)")
    p.add_argument("--search", required=True, help="search space YAML: key -> {low, high, log} or {choices}")
    p.add_argument("--trials", type=int, required=True, help="total finished trials wanted in the study")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<study dir>/study.db)")
    p.add_argument("--study", default="tune", help="study name (also the folder under output_dir)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--no-prune", "--no_prune", dest="prune", action="store_false", help="disable the pruner")
    return p


def _finished(study):
    """Trials that count towards ``--trials``: completed, pruned or failed, but not interrupted ones."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False) if t.state in done and not t.user_attrs.get("interrupted")]


def _fail_stale_running(study):
    """Trials left RUNNING by an interrupted search are marked FAILED with ``interrupted`` set; they do not
    count as finished, and each interrupted trial's parameters are queued once to run again."""
    import optuna

    storage = study._storage  # the public storage API has no study-level accessor
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.user_attrs.get("interrupted") and t.number not in retried and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def make_objective(base_argv, space, study_dir):
    """The Optuna objective: one short training run, best val top-1 returned, per-epoch top-1 reported."""
    import optuna

    from mszoo.engine.trainer import train

    def objective(trial):
        values = suggest(trial, space)
        cfg, _ = parse_config(base_argv)
        for key, value in values.items():
            cfg[key] = value
            cfg.set_source(key, f"trial {trial.number}")
        cfg.output_dir = os.path.join(study_dir, "trials")
        cfg.run_name = f"trial_{trial.number:04d}"
        cfg.progress = False
        cfg.resume = None
        best = {"top1": float("nan")}

        def after_epoch(trainer, epoch, metrics):
            top1 = metrics.get("top1") if metrics else None
            if top1 is None:
                return
            best["top1"] = top1 if math.isnan(best["top1"]) else max(best["top1"], top1)
            trial.report(top1, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (top1 {top1:.4f})")

        code = train(cfg, after_epoch=after_epoch)
        if code in (130, 143):  # the trainer saved and stopped on SIGINT/SIGTERM: stop the search too
            trial.set_user_attr("interrupted", True)  # run again, not counted, when the search is resumed
            raise KeyboardInterrupt
        if code != 0:
            raise RuntimeError(f"training exited with code {code}")
        if math.isnan(best["top1"]):
            raise RuntimeError("no validation result (set eval_every <= epochs)")
        trial.set_user_attr("run_dir", os.path.join(cfg.output_dir, cfg.run_name))
        return best["top1"]

    return objective


def write_best(study, base_argv, study_dir):
    """Best trial's config as ``best_config.yaml`` (train.py --config accepts it) and the history PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = study.best_trial
    cfg, _ = parse_config(base_argv)
    for key, value in best.params.items():
        cfg[key] = value
    path = os.path.join(study_dir, "best_config.yaml")
    save_config(cfg, path)
    values = [(t.number, t.value) for t in study.trials if t.value is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    if values:
        xs, ys = zip(*values)
        running = [max(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, "o", label="trial top-1")
        ax.plot(xs, running, "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val top-1")
    ax.set_title(f"study {study.study_name}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    png = os.path.join(study_dir, "optimization_history.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return path, png


def main(argv=None):
    """tune_params.py / mszoo-tune: the search, with the device set as every entry point sets it."""
    from mszoo.cli import start

    return tune_main(argv, start=lambda cfg: start(cfg, fused_kernels=True))


def tune_main(argv=None, start=None):
    """tune_params.py; ``start(cfg)`` (the script's device set-up) is called once with the base config."""
    optuna = require("optuna", "tune_params.py")
    args, rest = parse_script_args(build_parser(), argv, known=True)
    if args.trials < 1:
        raise ConfigError(f"trials: must be >= 1, got {args.trials} (from command line)")
    base_argv = ["--config", args.config] + rest
    base_cfg, _ = parse_config(base_argv, prog="tune_params.py")  # validates the recipe and overrides early
    if start is not None:
        start(base_cfg)
    space = load_search_space(args.search)
    study_dir = os.path.join(base_cfg.output_dir, args.study)
    os.makedirs(study_dir, exist_ok=True)
    storage = args.storage or f"sqlite:///{os.path.abspath(os.path.join(study_dir, 'study.db'))}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if args.prune \
        else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=args.study, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=args.seed), pruner=pruner)
    _fail_stale_running(study)
    log = get_logger()
    finished = len(_finished(study))
    remaining = args.trials - finished
    log.info(f"study '{args.study}' in {storage}: {finished} finished trial(s), running {max(remaining, 0)}")
    if remaining > 0:
        study.optimize(make_objective(base_argv, space, study_dir), n_trials=remaining, catch=(Exception,),
                       gc_after_trial=True)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ConfigError("no trial completed; see the trial logs under " + os.path.join(study_dir, "trials"))
    path, png = write_best(study, base_argv, study_dir)
    best = study.best_trial
    log.info(f"best trial {best.number}: top1 {best.value:.4f} with {best.params}")
    log.info(f"best config: {path}  (python train.py --config {path})")
    log.info(f"history plot: {png}")
    return 0


cli = console(main)
