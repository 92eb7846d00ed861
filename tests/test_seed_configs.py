"""The model-zoo readmes' YAML files and command lines, as their users have them.

The three readme YAML files are kept verbatim in tests/fixtures/seeds/readme_*.yaml (comments, Chinese
comments, the Twins readme's tab-aligned comments, ``-1`` for "all", ``pretrained: ''``); every key in them
either sets one of ours or is noted as having no effect, and each trains one step. Every Python command line
of the five readmes parses with its script's own parser.
"""
import importlib
import os
import shlex

import pytest
import yaml

from mszoo.config import ALIASES, IGNORED, KEY_MAP, VALUE_MAPS, ConfigError, parse_config, validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "tests", "fixtures", "seeds")
# readme YAML -> the config flag its readme uses
READMES = {"readme_t2t_vit_19.yaml": "--config_path", "readme_tnt_s_patch16_224.yaml": "--tnt_config",
           "readme_twin_s.yaml": "--config"}


def _keys(path):
    from mszoo.config.compat import _safe_load_tolerating_tabs

    with open(path, encoding="utf-8") as f:
        return _safe_load_tolerating_tabs(f.read())


@pytest.mark.parametrize("name", sorted(READMES))
def test_every_key_of_a_seed_yaml_is_used_or_noted(name):
    path = os.path.join(SEEDS, name)
    cfg, _ = parse_config([READMES[name], path])
    noted = {n.split("'")[1] for n in cfg._notes}
    for key, _ in _keys(path).items():
        if key in IGNORED:
            assert key in noted, key
            continue
        target = VALUE_MAPS[key][0] if key in VALUE_MAPS else ALIASES.get(key, key)
        assert target in KEY_MAP, key
        assert cfg._sources[target] == path, key


def test_t2t_seed_yaml_means_what_its_readme_says():
    cfg, _ = parse_config(["--config_path", os.path.join(SEEDS, "readme_t2t_vit_19.yaml")])
    assert cfg.train_num_samples is None and cfg.val_num_samples is None  # -1: all
    assert cfg.pretrained is None  # pretrained: ''
    assert (cfg.drop_rate, cfg.drop_path_rate) == (0.0, 0.1)  # drop, drop_path
    assert cfg.mode == "graph"  # pynative_mode: False
    assert cfg.output_dir == "/experiments/checkpoints/"  # ckpt_root_dir
    assert (cfg.train_dir, cfg.val_dir, cfg.data_url) == ("train", "validation_preprocess",
                                                          "/data/imagenet/ILSVRC/Data/CLS-LOC/")
    assert (cfg.mixup_off_epoch, cfg.clip_grad_norm, cfg.ckpt_save_every_seconds) == (0, 1.0, 1800)
    gelu = next(n for n in cfg._notes if "disable_approximate_gelu" in n)
    assert "not the tanh approximation the model-zoo code used by default" in gelu


def test_tnt_and_twins_seed_yamls_mean_what_their_readmes_say():
    tnt, _ = parse_config(["--tnt_config", os.path.join(SEEDS, "readme_tnt_s_patch16_224.yaml")])
    assert (tnt.arch, tnt.amp_level, tnt.mixup, tnt.clip_grad_norm, tnt.warmup_lr) == (
        "tnt_s_patch16_224", "O2", 0.8, 5.0, 7e-8)
    twins, _ = parse_config(["--config", os.path.join(SEEDS, "readme_twin_s.yaml")])  # tab-aligned comments
    assert (twins.arch, twins.dataset, twins.crop_pct, twins.num_parallel_workers) == (
        "pcpvt_small_v0", "imagefolder", 0.875, 16)


@pytest.mark.parametrize("name", sorted(READMES))
def test_seed_yaml_trains_one_step(name, digits_cache, tmp_path, graph_mode):
    from tests.recipes import train_one_step_of

    log = train_one_step_of([READMES[name], os.path.join(SEEDS, name)], digits_cache, tmp_path)
    assert "note: ignoring model-zoo readme key" in log or name == "readme_twin_s.yaml"


# ------------------------------------------------------------------------------ keys and flags

def test_relative_split_folders_are_under_data_url(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "validation_preprocess" / "a").mkdir(parents=True)
    cfg, _ = parse_config(["--data_url", str(tmp_path), "--val_dir", "validation_preprocess"])
    validate(cfg, need_data=True, need_train_data=True)
    from mszoo.data import dataset_dirs

    _, train, val = dataset_dirs(cfg.dataset, cfg.data_url, cfg.train_dir, cfg.val_dir)
    assert (train, val) == (str(tmp_path / "train"), str(tmp_path / "validation_preprocess"))
    cfg, _ = parse_config(["--data_url", str(tmp_path), "--val_dir", "missing"])
    with pytest.raises(ConfigError, match=f"val_dir: directory not found: {tmp_path / 'missing'}"):
        validate(cfg, need_data=True)


def test_minus_one_samples_means_all_and_other_negatives_are_errors():
    cfg, _ = parse_config(["--train_num_samples", "-1", "--val_num_samples", "-1"])
    assert cfg.train_num_samples is None and cfg.val_num_samples is None
    with pytest.raises(ConfigError, match=r"val_num_samples: must be > 0, got -2"):
        parse_config(["--val_num_samples", "-2"])


def test_seed_keys_with_no_effect_work_as_flags_too():
    # the Twins GPU readme's training command and the T2T readme's --extra flags
    cfg, _ = parse_config(["--dir-ckpt", "/tmp/ck", "--dir-best-ckpt", "/tmp/best", "--dir-summary", "/tmp/s",
                           "--start_epoch", "0", "--dump_graph"])
    assert cfg.output_dir == "/tmp/ck"
    assert [n.split("'")[1] for n in cfg._notes] == ["dir_best_ckpt", "dir_summary", "start_epoch", "dump_graph"]
    assert "(the value 'true' is not used)" in cfg._notes[-1]


@pytest.mark.parametrize("flag", ["--tnt_config", "--config_path", "--config-path", "-c"])
def test_seed_config_flags_name_the_config_file(flag, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\n")
    cfg, _ = parse_config([flag, str(path)])
    assert cfg.epochs == 7 and cfg.config_file == str(path)


def test_two_different_config_files_are_an_error(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("epochs: 1\n")
    b.write_text("epochs: 2\n")
    with pytest.raises(ConfigError, match="two config files given"):
        parse_config(["--config", str(a), "--tnt_config", str(b)])
    cfg, _ = parse_config(["--config", str(a), "--config_path", str(a)])
    assert cfg.epochs == 1


@pytest.mark.parametrize("key,value,mode", [("pynative_mode", True, "pynative"), ("pynative_mode", False, "graph"),
                                            ("graph_mode", False, "pynative")])
def test_seed_mode_switches_set_mode(key, value, mode, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({key: value}))
    cfg, _ = parse_config(["--config", str(path)])
    assert cfg.mode == mode


def test_a_seed_value_we_cannot_honour_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("nonlinearity: ReLU\n")
    with pytest.raises(ConfigError, match=r"^nonlinearity: 'ReLU': only 'GELU' is supported: the models' "
                                          r"activation is GELU \(from .*c\.yaml\)$"):
        parse_config(["--config", str(path)])


# ------------------------------------------------------------------------------ the readmes' command lines

def _commands():
    with open(os.path.join(SEEDS, "commands.txt"), encoding="utf-8") as f:
        return [line.split(" | ", 1) for line in f.read().splitlines() if line and not line.startswith("#")]


def _fill(argv):
    """The readmes' placeholders and config paths -> files of this test (the readme YAML of that family)."""
    family = {"svt": "readme_twin_s.yaml", "twin": "readme_twin_s.yaml", "tnt": "readme_tnt_s_patch16_224.yaml",
              "t2t": "readme_t2t_vit_19.yaml"}
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--config_path", "--tnt_config"):
            given = argv[i + 1]
            name = next((f for k, f in family.items() if k in given.lower()), "readme_t2t_vit_19.yaml")
            out += [arg, os.path.join(SEEDS, name)]
            i += 2
            continue
        arg = {"[FILE_FORMAT]": "MINDIR", "FILE_FORMAT": "ONNX", "[DEVICE_TARGET]": "GPU",
               "ARCHITECTURE_NAME": "t2t_vit_19"}.get(arg, arg)
        out.append(arg.strip("[]") if arg.startswith("[CKPT") else arg)
        i += 1
    return out


@pytest.mark.parametrize("seed,command", _commands(), ids=[f"{s}:{c[:60]}" for s, c in _commands()])
def test_seed_command_line_parses(seed, command):
    argv = shlex.split(command.replace("<config path>", "path/to/config.yaml").replace(" [OTHER OPTIONS]", ""))
    assert argv[0] == "python"
    script = importlib.import_module(argv[1][:-3])
    cfg, args = parse_config(_fill(argv[2:]), prog=argv[1], extra=getattr(script, "EXTRA", ()))
    assert cfg.config_file is not None
    if "--device_target" in argv or "--device-target" in argv:
        assert cfg.device_target in ("GPU", "Ascend")
    if "--arch" in argv:
        assert cfg.arch == "t2t_vit_19"


# ------------------------------------------------------------------------------ the model-zoo readmes' recipe paths

SEED_PATHS = [("configs/svt_s.yaml", "twins/svt_small.yaml"), ("configs/pcpvt_l.yaml", "twins/pcpvt_large.yaml"),
              ("./src/configs/tnt_s_patch16_224.yaml", "tnt/tnt_s_patch16_224.yaml"),
              ("src/configs/t2t_vit_19.yaml", "t2t_vit/t2t_vit_19.yaml"),
              ("../src/configs/t2t_vit_t_14.yaml", "t2t_vit/t2t_vit_t_14.yaml"),
              ("./src/configs/twin_s.yaml.yaml", "twins/pcpvt_small.yaml")]


@pytest.mark.parametrize("given,ours", SEED_PATHS)
def test_a_seed_recipe_path_uses_our_recipe_of_that_model_with_a_note_naming_both(given, ours):
    cfg, _ = parse_config(["--config", given])
    ours = os.path.join(ROOT, "configs", *ours.split("/"))
    assert cfg.config_file == ours
    note = next(n for n in cfg._notes if n.startswith(given))
    assert f"{given} names a recipe of the " in note and f"using ours, {ours} (the official recipe" in note


def test_the_seed_recipe_note_lists_the_hyper_parameters_where_ours_differs():
    cfg, _ = parse_config(["--config", "./src/configs/twin_s.yaml.yaml"])
    note = cfg._notes[0]
    assert note.endswith("ours differs in: drop_path_rate 0.2 (seed 0.1), base_lr 0.0005 x global batch / 512 "
                         "(seed 0.001), warmup_length 5 (seed 20), cooldown_epochs 0 (seed 10), amp_level 'O2' "
                         "(seed 'O1')")
    # what the seed does not state, or states as ours, is not listed; nor are data, device and run keys
    assert "weight_decay" not in note and "device_target" not in note and "num_parallel_workers" not in note
    svt, _ = parse_config(["--config", "configs/svt_s.yaml"])
    assert svt._notes[0].endswith("that readme states none of its hyper-parameters to compare")


@pytest.mark.parametrize("shipped,fixture", [("twin_s.yaml", "twin_s.yaml"), ("t2t_vit_t_14.yaml", "t2t_vit_t_14.yaml"),
                                             ("t2t_vit_19.yaml", "readme_t2t_vit_19.yaml"),
                                             ("tnt_s_patch16_224.yaml", "readme_tnt_s_patch16_224.yaml")])
def test_the_seed_recipes_compared_with_are_the_seeds_keys_and_values(shipped, fixture):
    assert _keys(os.path.join(ROOT, "mszoo", "seed_recipes", shipped)) == _keys(os.path.join(SEEDS, fixture))


def test_each_seed_recipe_maps_to_our_recipe_of_the_same_model():
    from mszoo.models.registry import resolve_name
    from mszoo.recipes import SEED_RECIPES, seed_recipe

    for name in SEED_RECIPES:
        _, ours, stated = seed_recipe(f"configs/{name}")
        if stated:
            assert resolve_name(_keys(stated)["arch"]) == _keys(ours)["arch"], name


def test_a_seed_recipe_name_outside_a_configs_folder_is_one_error_naming_ours():
    with pytest.raises(ConfigError, match=r"^config: file not found: mine/svt_s.yaml \(a model-zoo readme "
                                          r"recipe's name: ours of that model is .*configs/twins/svt_small.yaml\)$"):
        parse_config(["--config", "mine/svt_s.yaml"])
    with pytest.raises(ConfigError, match=r"^config: file not found: configs/optimize.yaml"):
        parse_config(["--config", "configs/optimize.yaml"])


def test_eval_prints_the_seed_recipe_note_at_start():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--config", "configs/svt_s.yaml"],
                         capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"), timeout=300, cwd=SEEDS)
    assert "note: configs/svt_s.yaml names a recipe of the Twins GPU readme (000)" in out.stdout, out.stdout
