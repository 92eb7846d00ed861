"""Where a run's model and preprocessing come from (mszoo/resolve.py): flags/YAML > the checkpoint's record >
the variant's default cfg > defaults; a setting that contradicts the weights is one error naming both."""
import pytest
import yaml

from mszoo.config import ConfigError, parse_config
from mszoo.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_INCEPTION_MEAN
from mszoo.models.record import make_record
from mszoo.resolve import apply_head_classes, apply_record, fill_preprocessing, record_of

RECORD = make_record("twins_svt_small", 37, 64, 0.95, "bilinear", [0.1, 0.2, 0.3], [0.4, 0.5, 0.6],
                     model_kwargs={"embed_dims": [16, 32, 48, 64], "depths": [1, 1, 1, 1]},
                     class_names=[f"c{i}" for i in range(37)])


def cfg_of(*argv, yaml_text=None, tmp_path=None):
    if yaml_text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(yaml_text)
        argv = ("--config", str(path)) + argv
    return parse_config(list(argv))[0]


def test_the_record_completes_everything_nobody_set():
    cfg = cfg_of()
    names = apply_record(cfg, RECORD, "m.ckpt")
    assert names == RECORD["class_names"]
    assert (cfg.arch, cfg.num_classes, cfg.image_size) == ("twins_svt_small", 37, 64)
    assert cfg.model_kwargs == {"embed_dims": [16, 32, 48, 64], "depths": [1, 1, 1, 1]}
    assert (cfg.crop_pct, cfg.interpolation, cfg.mean, cfg.std) == (0.95, "bilinear", [0.1, 0.2, 0.3],
                                                                   [0.4, 0.5, 0.6])


@pytest.mark.parametrize("argv, words", [
    (("--num_classes", "5"), ["num_classes: 5 (from command line)", "num_classes 37", "m.ckpt"]),
    (("--arch", "tnt_s_patch16_224"), ["arch: 'tnt_s_patch16_224'", "a twins_svt_small model"]),
    (("--model_kwargs", "{embed_dims: [8, 16, 24, 32]}"), ["embed_dims=[8, 16, 24, 32]", "[16, 32, 48, 64]"]),
    (("--in_chans", "1"), ["in_chans: 1", "in_chans 3"]),
])
def test_a_setting_that_contradicts_the_weights_is_one_error_naming_both_values(argv, words):
    cfg = cfg_of(*argv)
    with pytest.raises(ConfigError) as err:
        apply_record(cfg, RECORD, "m.ckpt")
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_agreeing_settings_and_seed_aliases_are_accepted():
    cfg = cfg_of("--arch", "alt_gvt_small", "--num_classes", "37", "--model_kwargs", "{depths: [1, 1, 1, 1]}")
    apply_record(cfg, RECORD, "m.ckpt")
    assert cfg.arch == "twins_svt_small" and cfg.num_classes == 37


def test_fine_tuning_leaves_num_classes_to_the_data():
    cfg = cfg_of("--num_classes", "5")
    apply_record(cfg, RECORD, "m.ckpt", take_num_classes=False)
    assert cfg.num_classes == 5 and cfg.model_kwargs["embed_dims"] == [16, 32, 48, 64]


def test_yaml_and_flags_win_over_the_record_for_preprocessing(tmp_path):
    cfg = cfg_of("--mean", "0.5,0.5,0.5", yaml_text="crop_pct: 0.875\n", tmp_path=tmp_path)
    apply_record(cfg, RECORD, "m.ckpt")
    assert cfg.crop_pct == 0.875 and cfg.mean == [0.5, 0.5, 0.5]
    assert cfg.interpolation == "bilinear" and cfg.std == [0.4, 0.5, 0.6]  # the rest from the record


@pytest.mark.parametrize("arch, mean, crop", [("tnt_s_patch16_224", IMAGENET_INCEPTION_MEAN, 0.9),
                                              ("twins_pcpvt_small", IMAGENET_DEFAULT_MEAN, 0.9),
                                              ("t2t_vit_14", IMAGENET_DEFAULT_MEAN, 0.9)])
def test_without_yaml_or_record_the_variant_cfg_gives_the_preprocessing(arch, mean, crop):
    cfg = fill_preprocessing(cfg_of("--arch", arch))
    assert cfg.mean == list(mean) and cfg.crop_pct == crop and cfg.interpolation == "bicubic"
    assert cfg.image_size == 224


def test_the_shipped_twins_yaml_crop_wins_over_the_variant_cfg():
    cfg = fill_preprocessing(cfg_of("--config", "configs/twins/svt_small.yaml"))
    with open("configs/twins/svt_small.yaml") as f:
        assert cfg.crop_pct == yaml.safe_load(f)["crop_pct"] == 0.875  # the variant cfg says 0.9


def test_a_checkpoint_without_record_gives_num_classes_through_its_head():
    cfg = cfg_of()
    apply_head_classes(cfg, 37, "old.ckpt")
    assert cfg.num_classes == 37
    with pytest.raises(ConfigError, match=r"num_classes: 5 \(from command line\) contradicts old\.ckpt, which "
                                          r"holds a 37-class classifier"):
        apply_head_classes(cfg_of("--num_classes", "5"), 37, "old.ckpt")


def test_the_record_of_a_config_round_trips_through_apply_record():
    cfg = cfg_of("--arch", "tnt_s_patch16_224", "--num_classes", "3", "--model_kwargs", "{depth: 2}")
    record = record_of(cfg, ["a", "b", "c"])
    assert record["mean"] == list(IMAGENET_INCEPTION_MEAN) and record["crop_pct"] == 0.9
    again = cfg_of()
    assert apply_record(again, record, "x") == ["a", "b", "c"]
    assert (again.arch, again.num_classes, again.model_kwargs) == ("tnt_s_patch16_224", 3, {"depth": 2})
