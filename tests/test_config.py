"""Config system: precedence, aliases, validation messages, model-zoo readme recipes, --help."""
import os
import subprocess
import sys

import pytest
import yaml

from mszoo.config import KEYS, ConfigError, load_yaml, parse_config, save_config, validate
from scripts.gen_config_reference import reference_markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "tests", "fixtures", "seeds")


def write_yaml(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_defaults_apply_without_yaml_or_flags():
    cfg, _ = parse_config([])
    for key in KEYS:
        assert cfg[key.name] == key.default, key.name


def test_yaml_overrides_defaults_and_cli_overrides_yaml(tmp_path):
    path = write_yaml(tmp_path, {"base_lr": 0.002, "epochs": 7, "arch": "twins_svt_small"})
    cfg, _ = parse_config(["--config", path, "--epochs", "3"])
    assert cfg.base_lr == 0.002  # from YAML
    assert cfg.epochs == 3  # CLI wins
    assert cfg.arch == "twins_svt_small"
    assert cfg.batch_size == 128  # default


def test_snake_and_dash_flags_are_equivalent():
    a, _ = parse_config(["--base_lr", "0.001", "--drop_path_rate", "0.2"])
    b, _ = parse_config(["--base-lr", "0.001", "--drop-path-rate", "0.2"])
    assert a.base_lr == b.base_lr == 0.001
    assert a.drop_path_rate == b.drop_path_rate == 0.2


@pytest.mark.parametrize("text,expected", [("true", True), ("false", False), ("True", True), ("0", False)])
def test_booleans_take_true_false(text, expected):
    cfg, _ = parse_config(["--with_ema", text])
    assert cfg.with_ema is expected


def test_list_values_parse_from_cli():
    cfg, _ = parse_config(["--beta", "0.8,0.99", "--lr_milestones", "[10, 20]"])
    assert cfg.beta == [0.8, 0.99]
    assert cfg.lr_milestones == [10, 20]


def test_seed_aliases_map_to_canonical_keys(tmp_path):
    path = write_yaml(tmp_path, {"mix_up": 0.3, "clip_global_norm_value": 2.0, "warmup_epochs": 4,
                                 "drop_path": 0.2, "dir_ckpt": "/tmp/x", "set": "ImageNet"})
    cfg, _ = parse_config(["--config", path])
    assert cfg.mixup == 0.3
    assert cfg.clip_grad_norm == 2.0
    assert cfg.warmup_length == 4
    assert cfg.drop_path_rate == 0.2
    assert cfg.output_dir == "/tmp/x"
    assert cfg.dataset == "imagefolder"


def test_alias_on_command_line():
    cfg, _ = parse_config(["--mix_up", "0.5", "--clip-global-norm-value", "3"])
    assert cfg.mixup == 0.5 and cfg.clip_grad_norm == 3.0


def test_alias_and_canonical_with_different_values_is_an_error(tmp_path):
    path = write_yaml(tmp_path, {"mix_up": 0.3, "mixup": 0.5})
    with pytest.raises(ConfigError, match=r"mixup: set twice with different values .* \(from .*c\.yaml\)"):
        parse_config(["--config", path])


def test_ignored_seed_keys_are_accepted_with_a_note(tmp_path):
    path = write_yaml(tmp_path, {"dir_best_ckpt": "best", "dir_summary": "summary"})
    cfg, _ = parse_config(["--config", path])
    assert any("dir_best_ckpt" in n for n in cfg._notes)


def test_twins_seed_recipe_loads_to_canonical_keys():
    cfg, _ = parse_config(["--config", os.path.join(SEEDS, "twin_s.yaml")])
    expected = dict(arch="pcpvt_small_v0", dataset="imagefolder", mixup=0.8, cutmix=1.0,
                    auto_augment="rand-m9-mstd0.5-inc1", interpolation="bicubic", re_prob=0.25, re_mode="pixel",
                    re_count=1, mixup_prob=1.0, switch_prob=0.5, mixup_mode="batch", image_size=224,
                    crop_pct=0.875, optimizer="adamw", base_lr=0.001, warmup_lr=1e-6, min_lr=1e-5,
                    lr_scheduler="cosine_lr", warmup_length=20, amp_level="O1", keep_bn_fp32=True,
                    beta=[0.9, 0.999], clip_grad_norm=5.0, is_dynamic_loss_scale=True, epochs=300,
                    cooldown_epochs=10, label_smoothing=0.1, weight_decay=0.05, momentum=0.9, batch_size=128,
                    drop_path_rate=0.1, num_parallel_workers=16, device_target="Ascend")
    for key, value in expected.items():
        assert cfg[key] == value, key


def test_t2t_seed_recipe_loads_to_canonical_keys():
    cfg, _ = parse_config(["--config", os.path.join(SEEDS, "t2t_vit_t_14.yaml")])
    expected = dict(arch="T2t_vit_t_14", use_clip_grad_norm=True, clip_grad_norm=1.0, with_ema=True,
                    ema_decay=0.9999, loss_scale=1024.0, mixup_off_epoch=300, lr_adjust=30, lr_gamma=0.1,
                    ckpt_keep_num=10, best_ckpt_num=5, ckpt_save_every_seconds=1800, print_loss_every=100,
                    warmup_length=5, output_dir="ckpt", mixup=0.8)
    for key, value in expected.items():
        assert cfg[key] == value, key


def test_seed_model_names_resolve_to_registered_models():
    from mszoo.models import resolve_name

    for fixture, name in (("twin_s.yaml", "twins_pcpvt_small"), ("t2t_vit_t_14.yaml", "t2t_vit_t_14")):
        cfg, _ = parse_config(["--config", os.path.join(SEEDS, fixture)])
        assert resolve_name(cfg.arch) == name


# ------------------------------------------------------------------------------------ validation errors

def test_unknown_yaml_key_names_key_file_and_suggestion(tmp_path):
    path = write_yaml(tmp_path, {"base_lrr": 0.1})
    with pytest.raises(ConfigError) as err:
        parse_config(["--config", path])
    assert str(err.value) == f"unknown key 'base_lrr'; did you mean 'base_lr'? (from {path})"


def test_unknown_cli_flag_names_it():
    with pytest.raises(ConfigError, match=r"^unknown key 'epoch'; did you mean 'epochs'\? \(from command line\)$"):
        parse_config(["--epoch", "3"])


def test_wrong_type_names_key_and_source(tmp_path):
    path = write_yaml(tmp_path, {"batch_size": "big"})
    with pytest.raises(ConfigError) as err:
        parse_config(["--config", path])
    assert str(err.value) == f"batch_size: expected an integer, got 'big' (from {path})"


def test_bool_given_a_word_is_a_type_error():
    with pytest.raises(ConfigError, match=r"^with_ema: expected true or false, got 'maybe' \(from command line\)$"):
        parse_config(["--with_ema", "maybe"])


@pytest.mark.parametrize("flag,value,message", [
    ("--base_lr", "-0.1", "base_lr: must be > 0, got -0.1 (from command line)"),
    ("--batch_size", "0", "batch_size: must be > 0, got 0 (from command line)"),
    ("--re_prob", "1.5", "re_prob: must be <= 1.0, got 1.5 (from command line)"),
    ("--weight_decay", "-1", "weight_decay: must be >= 0.0, got -1.0 (from command line)"),
])
def test_impossible_values_are_rejected(flag, value, message):
    with pytest.raises(ConfigError) as err:
        parse_config([flag, value])
    assert str(err.value) == message


def test_choice_error_suggests_close_value():
    with pytest.raises(ConfigError) as err:
        parse_config(["--optimizer", "lamd"])
    assert str(err.value) == ("optimizer: 'lamd' is not one of adamw, adam, momentum, sgd, lamb; "
                              "did you mean 'lamb'? (from command line)")


def test_choices_are_case_insensitive():
    cfg, _ = parse_config(["--optimizer", "AdamW", "--amp_level", "o2"])
    assert cfg.optimizer == "adamw" and cfg.amp_level == "O2"


def test_missing_config_file():
    with pytest.raises(ConfigError, match=r"^config: file not found: /nonexistent/x\.yaml$"):
        parse_config(["--config", "/nonexistent/x.yaml"])


def test_bad_yaml_reports_line(tmp_path):
    path = write_yaml(tmp_path, "base_lr: 0.1\n  bad: [1, 2\n")
    with pytest.raises(ConfigError, match=r"^config: invalid YAML in .*c\.yaml at line \d+"):
        load_yaml(path)


def test_yaml_top_level_must_be_mapping(tmp_path):
    path = write_yaml(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of key: value, not list"):
        load_yaml(path)


def test_yaml_with_python_tags_is_refused(tmp_path):
    path = write_yaml(tmp_path, "arch: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(path)


def test_missing_data_dir_names_key(tmp_path):
    cfg, _ = parse_config(["--data_url", str(tmp_path / "nope")])
    with pytest.raises(ConfigError) as err:
        validate(cfg, need_data=True, need_train_data=True)
    assert str(err.value) == f"data_url: directory not found: {tmp_path / 'nope'} (from command line)"


def test_no_dataset_at_all_is_explained():
    cfg, _ = parse_config([])
    with pytest.raises(ConfigError, match=r"^data_url: no dataset given"):
        validate(cfg, need_data=True, need_train_data=True)


def test_missing_val_split_names_it(tmp_path):
    (tmp_path / "train").mkdir()
    cfg, _ = parse_config(["--data_url", str(tmp_path)])
    with pytest.raises(ConfigError, match=r"^data_url: directory not found: .*val \(from command line\)$"):
        validate(cfg, need_data=True, need_train_data=True)


def test_missing_pretrained_file_names_key(tmp_path):
    path = write_yaml(tmp_path, {"pretrained": "/nonexistent/w.ckpt"})
    cfg, _ = parse_config(["--config", path])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value) == f"pretrained: not found: /nonexistent/w.ckpt (from {path})"


def test_odd_batch_with_mixup_is_rejected():
    cfg, _ = parse_config(["--batch_size", "7"])
    with pytest.raises(ConfigError, match=r"^batch_size: mixup/cutmix need an even batch size, got 7"):
        validate(cfg)


def test_min_lr_above_base_lr_is_rejected():
    cfg, _ = parse_config(["--min_lr", "0.1", "--base_lr", "0.01"])
    with pytest.raises(ConfigError, match=r"^min_lr: 0.1 is larger than base_lr 0.01"):
        validate(cfg)


def test_saved_config_round_trips(tmp_path):
    cfg, _ = parse_config(["--epochs", "9", "--beta", "0.8,0.9", "--model_kwargs", "{depths: [1, 1]}"])
    path = str(tmp_path / "config.yaml")
    save_config(cfg, path)
    again, _ = parse_config(["--config", path])
    assert {k.name: again[k.name] for k in KEYS} == {k.name: cfg[k.name] for k in KEYS}


# ------------------------------------------------------------------------------------ scripts

def run_script(*args):
    env = dict(os.environ, GLOG_v="3")
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def _help_entries(text):
    """``{flag: its help text on one line}`` for every option of an argparse ``--help`` output."""
    entries, current = {}, None
    for line in text.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            current = entries.setdefault(flag, [])
            current.append(line)
        elif line.startswith("   ") and current is not None:
            current.append(line)
        else:
            current = None
    return {flag: " ".join(" ".join(lines).split()) for flag, lines in entries.items()}


def test_train_help_lists_every_key_with_default():
    out = run_script("train.py", "--help")
    assert out.returncode == 0
    entries = _help_entries(out.stdout)
    for key in KEYS:
        entry = entries.get(f"--{key.name}")
        assert entry is not None, f"--{key.name} missing from train.py --help"
        default = " ".join(repr(key.default).split())
        assert entry.endswith(f"(default: {default})"), (key.name, entry)
    assert entries["--auto_augment"].endswith("(default: 'rand-m9-mstd0.5-inc1')")


def test_config_error_is_one_line_with_exit_code_2():
    out = run_script("train.py", "--batch_size", "0")
    assert out.returncode == 2
    assert out.stderr.strip() == "config error: batch_size: must be > 0, got 0 (from command line)"
    assert "Traceback" not in out.stderr


def test_readme_config_reference_is_generated_from_keys():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert reference_markdown() in readme, "run: python scripts/gen_config_reference.py"


@pytest.mark.parametrize("argv,level", [(["--amp_level", "O1", "--keep_bn_fp32", "true"], "O1"),
                                        (["--amp_level", "O1", "--keep_bn_fp32", "false"], "O1"),
                                        (["--keep_bn_fp32", "false"], "O0")])
def test_keep_bn_fp32_says_when_it_has_no_effect(argv, level):
    cfg, _ = parse_config(argv)
    note = next(n for n in cfg._notes if n.startswith("keep_bn_fp32"))
    assert f"has no effect at amp_level {level}: " in note and note.endswith("(from command line)")


@pytest.mark.parametrize("argv", [["--amp_level", "O2", "--keep_bn_fp32", "false"],
                                  ["--amp_level", "O3", "--keep_bn_fp32", "true"], ["--amp_level", "O1"]])
def test_keep_bn_fp32_is_quiet_where_it_matters_or_is_not_set(argv):
    cfg, _ = parse_config(argv)
    assert not any(n.startswith("keep_bn_fp32") for n in cfg._notes)
