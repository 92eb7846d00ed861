"""Shared fixtures for the engine tests: a tiny Twins on the embedded digits dataset."""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One PCPVT stage of width 16 on 16x16 digits: compiles in seconds, learns within a few steps.
TINY_TRAIN = {
    "dataset": "digits",
    "arch": "twins_pcpvt_small",
    "model_kwargs": {"embed_dims": [16], "depths": [1], "num_heads": [1], "mlp_ratios": [2], "sr_ratios": [1],
                     "patch_size": 2},
    "image_size": 16,
    "drop_path_rate": 0.0,
    "crop_pct": 1.0,
    "hflip": 0.0,
    "color_jitter": 0.0,
    "auto_augment": "none",
    "re_prob": 0.0,
    "mixup": 0.0,
    "cutmix": 0.0,
    "num_parallel_workers": 1,
    "batch_size": 16,
    "epochs": 2,
    "steps_per_epoch": 3,
    "warmup_length": 1,
    "cooldown_epochs": 0,
    "base_lr": 0.003,
    "print_loss_every": 1,
    "val_num_samples": 100,
    "progress": False,
    "run_name": "run",
}


@pytest.fixture
def tiny_config(tmp_path, digits_cache):
    """``make(**overrides) -> path`` of a YAML config for a tiny run writing under ``tmp_path/out``."""

    def make(name="tiny.yaml", **overrides):
        data = dict(TINY_TRAIN, data_url=digits_cache, output_dir=str(tmp_path / "out"))
        data.update(overrides)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return make
