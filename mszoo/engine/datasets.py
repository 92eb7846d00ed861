"""Glue between the config and the models / data packages, shared by the trainer and the evaluator."""
import contextlib
import random

import numpy as np
import yaml

from mszoo.config import ConfigError, apply_mapping, source_of
from mszoo.resolve import data_config, dataset_root

# Keys that describe where/how a run is executed rather than what was trained: never taken from a
# checkpoint's saved config.
RUN_KEYS = ("resume", "pretrained", "device_target", "device_id", "mode", "progress")


def merge_saved_config(cfg, config_text, source, keep=RUN_KEYS):
    """Take every key still at its default from a checkpoint's saved config (YAML text).

    Keys given on the command line or in ``--config`` win; ``keep`` keys are never taken. Returns the
    names of the keys taken from the saved config.
    """
    try:
        saved = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: unreadable config saved in {source}: {str(exc).splitlines()[0]}") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"config: the config saved in {source} is not a mapping")
    taken = {k: v for k, v in saved.items() if k in cfg and k not in keep and source_of(cfg, k) == "default"
             and v != cfg[k]}
    apply_mapping(cfg, taken, source, cfg.notes)
    return sorted(taken)


def take_saved_config(cfg, ckpt):
    """eval.py from a training checkpoint (``TrainingCheckpoint``): the data location, batch size and every other
    key still at its default, from the config saved in it (``merge_saved_config``); nothing if none was saved."""
    if ckpt.config_text:
        merge_saved_config(cfg, ckpt.config_text, f"{ckpt.path} (saved config)", keep=RUN_KEYS)


def seed_everything(seed):
    import mindspore as ms

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    ms.set_seed(seed)


def _shard():
    from mszoo.engine.distributed import distributed_group_size

    size = distributed_group_size()
    if size <= 1:
        return None, None
    from mindspore.communication import get_rank

    return size, get_rank()


def build_train_dataset(cfg, epoch=0, class_names=None, seed_offset=0):
    """The training pipeline for one epoch, seeded by ``(seed, epoch)`` so the order and the random
    augmentation of an epoch are the same when a run is resumed, with any number of workers."""
    import mindspore.dataset as ds

    from mszoo.data import create_dataset

    root, train_dir, _ = dataset_root(cfg)
    epoch_seed = (cfg.seed * 1000 + epoch + seed_offset) % (2 ** 31)
    ds.config.set_seed(epoch_seed)
    np.random.seed(epoch_seed)
    random.seed(epoch_seed)
    data = create_dataset(root, "train", data_config(cfg, True, epoch, shard=_shard()), split_dir=train_dir,
                          class_names=class_names)
    if data.mixup_fn is not None:
        data.mixup_fn.set_epoch(epoch)
    return data


def stop_iterator(iterator):
    """Stop a dataset iterator's workers (best effort: the pipeline is being torn down anyway)."""
    stop = getattr(iterator, "stop", None)
    if stop is not None:
        with contextlib.suppress(Exception):  # tearing down anyway
            stop()


# A split whose images take at most this much decoded keeps its loader's workers from one pass to the next.
KEEP_LOADER_BYTES = 256 * 2 ** 20


class KeptLoader:
    """``passes`` passes over a small evaluation split from one iterator, so its workers start once per run.

    Starting a loader's workers costs ~0.5 s, most of a small split's pass: the quickstart validates its 360
    images in 0.2 s of model time and 0.75 s in all. A kept iterator goes on to prefetch the next pass while the
    model trains, and holds what it prefetched (up to the whole split) until then; so a split whose decoded
    images take more than ``max_bytes`` gets a new iterator per pass instead (against such a pass, 0.5 s is
    little). The iterator is made for exactly the passes left, so after the last one its workers are idle and
    stop at once. A pass left unfinished (a stop, an error) is not counted and its iterator is set aside, not
    stopped: a worker blocked on a full queue takes MindSpore up to 5 s to stop, and an unfinished pass most
    often means the process is about to end. :meth:`close` stops it; the next pass starts a new iterator.
    """

    def __init__(self, data, passes=1, max_bytes=KEEP_LOADER_BYTES):
        self.data = data
        self.batch_size = getattr(data, "batch_size", None)
        size = getattr(data, "decoded_bytes", None)
        self.keep = size is not None and size <= max_bytes
        self.passes = passes  # passes still planned (a kept iterator is made for all of them)
        self._iterator = None
        self._set_aside = []  # iterators of unfinished passes, stopped by close()

    @contextlib.contextmanager
    def one_pass(self):
        """The batches of one pass over the split (a context: its exit stops the iterator when it has no
        planned pass left, and sets it aside when the pass was not finished)."""
        if self._iterator is None:
            self._iterator = self.data.create_tuple_iterator(num_epochs=max(1, self.passes) if self.keep else 1)
        finished = False

        def batches():
            nonlocal finished
            yield from self._iterator
            finished = True

        try:
            yield batches()
        finally:
            if not finished:
                self._set_aside.append(self._iterator)
                self._iterator = None
            else:
                self.passes = max(0, self.passes - 1)
                if not self.keep or self.passes == 0:
                    self.close()

    def close(self):
        """Stop the iterators' workers (a later pass starts new ones)."""
        for iterator in self._set_aside + [self._iterator]:
            if iterator is not None:
                stop_iterator(iterator)
        self._iterator, self._set_aside = None, []


def one_pass(data):
    """The batches of one pass over ``data``, a :class:`KeptLoader` or a dataset (a new iterator, then stopped)."""
    return (data if isinstance(data, KeptLoader) else KeptLoader(data)).one_pass()


def build_eval_dataset(cfg, class_names=None):
    """The validation pipeline (every sample once, last partial batch kept)."""
    from mszoo.data import create_dataset

    root, _, val_dir = dataset_root(cfg)
    return create_dataset(root, "val", data_config(cfg, False, shard=_shard()), split_dir=val_dir,
                          class_names=class_names)
