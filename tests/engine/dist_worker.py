"""Worker for the data-parallel test (run by msrun, or alone for the reference run).

python tests/engine/dist_worker.py CONFIG OUT_DIR [--key value ...]

Trains with a deterministic, unshuffled pipeline (eval transform) so that two shards of batch B see
exactly the samples of one batch of 2B, and dumps each rank's weights before the first step to
OUT_DIR/init_rank{R}.npz, its final weights to OUT_DIR/weights_rank{R}.npz and its last validation results
to OUT_DIR/val_rank{R}.json.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

import mszoo.engine.trainer as trainer_module  # noqa: E402
from mszoo.cli import start  # noqa: E402
from mszoo.config import parse_config  # noqa: E402
from mszoo.data import create_dataset, transforms_imagenet_eval  # noqa: E402
from mszoo.engine.datasets import _shard  # noqa: E402
from mszoo.resolve import dataset_root  # noqa: E402


def deterministic_train_dataset(cfg, epoch=0, class_names=None, seed_offset=0):
    _, train_dir, _ = dataset_root(cfg)
    num_shards, shard_id = _shard()
    transform = transforms_imagenet_eval(cfg.image_size, crop_pct=1.0, interpolation="bicubic",
                                         mean=tuple(cfg.mean), std=tuple(cfg.std))
    return create_dataset(split="train", split_dir=train_dir, is_training=True, shuffle=False, transform=transform,
                          batch_size=cfg.batch_size, image_size=cfg.image_size, class_names=class_names,
                          num_parallel_workers=1, num_shards=num_shards, shard_id=shard_id,
                          label_smoothing=cfg.label_smoothing)


def main():
    config, out_dir = sys.argv[1], sys.argv[2]
    cfg, _ = parse_config(["--config", config] + sys.argv[3:])
    start(cfg)
    trainer_module.build_train_dataset = deterministic_train_dataset

    def weights(trainer):
        return {p.name: p.asnumpy() for p in trainer.network.get_parameters()}

    setup = trainer_module.Trainer.setup

    def setup_and_dump(trainer):
        result = setup(trainer)
        if trainer.rank >= 0:  # not msrun's scheduler process
            np.savez(os.path.join(out_dir, f"init_rank{max(trainer.rank, 0)}.npz"), **weights(trainer))
        return result

    trainer_module.Trainer.setup = setup_and_dump

    def dump(trainer, epoch, val):
        rank = trainer.rank
        if rank < 0:
            return
        np.savez(os.path.join(out_dir, f"weights_rank{rank}.npz"), **weights(trainer))
        with open(os.path.join(out_dir, f"val_rank{rank}.json"), "w") as f:
            json.dump(val, f)

    return trainer_module.train(cfg, after_epoch=dump)


if __name__ == "__main__":
    sys.exit(main())
