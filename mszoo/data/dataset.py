"""ImageFolder datasets on ``mindspore.dataset``, robust Pillow decoding, and the embedded digits dataset.

Layout: ``root/<class_name>/<image>``; the class index is the position of the folder name in sorted order (the
train folder's order is the one saved with checkpoints, see :func:`save_class_names`).

Decoding goes through Pillow inside a guarded Python function: JPEG, PNG with alpha or a palette, grayscale, CMYK
and 16-bit images all become 8-bit RGB. A file that cannot be decoded is logged once (with its path and the
reason) and skipped; the epoch goes on:

* training replaces it with the next decodable file of the shard (as timm does), so every batch stays full and
  every rank of a distributed run keeps the same number of steps;
* evaluation drops it, so every decodable image is evaluated exactly once.

``dataset.skipped`` (a :class:`SkippedFiles`) counts the files skipped so far across all worker processes;
:func:`report_skipped` logs the summary.
"""
import json
import logging
import math
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import threading
import warnings
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from PIL import Image

from mszoo.extras import require

from .mixup import Mixup
from .train_batches import TrainBatchSource, epoch_batch_sampler
from .transforms import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform

__all__ = [
    "IMG_EXTENSIONS", "find_classes", "list_image_folder", "load_rgb_image", "to_rgb", "SkippedFiles",
    "ImageFolderSource", "resolve_split_dir", "DataConfig", "ImagePipeline", "create_dataset", "report_skipped",
    "save_class_names",
    "load_class_names", "prepare_digits", "DIGITS_MARKER", "stop_signals_blocked", "StopDeafIterator",
]

logger = logging.getLogger(__name__)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_MAX_CONSECUTIVE_FAILURES = 50
_MS_DEFAULT_SEED = 5489  # mindspore.dataset's seed when the user never set one
# Rows each training operator and worker queue hold: a row is a whole batch (MindSpore's default, 16, would keep
# 16 batches per worker in shared memory and 16 more in the pipeline: 1.2 GB at batch 64 with two workers)
TRAIN_PREFETCH = 2


# --------------------------------------------------------------------------------------------------------------
# listing
# --------------------------------------------------------------------------------------------------------------
def _visible(name):
    return not name.startswith(".")


def find_classes(directory):
    """Sorted class folder names of ``directory``; ValueError (naming the path) if there are none."""
    if not os.path.isdir(directory):
        raise ValueError(f"dataset folder not found: {directory}")
    names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and _visible(e.name))
    if not names:
        raise ValueError(f"no class folders in {directory} (expected {directory}/<class_name>/<images>)")
    return names


def list_image_folder(directory, class_names=None):
    """``(samples, class_names, ignored)`` for an ImageFolder.

    ``samples`` is a list of ``(path, label)`` sorted by class then file name, ``ignored`` lists files whose
    extension is not an image extension. With ``class_names`` (e.g. the train split's), labels follow that list
    and a folder not in it is an error. An empty class folder or split is a ValueError naming the path.
    """
    found = find_classes(directory)
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise ValueError(f"{directory} has class folders that are not in the class list: {unknown[:10]}")
        missing = sorted(set(class_names) - set(found))
        if missing:
            logger.warning("%s has no folder for %d classes (e.g. %s)", directory, len(missing), missing[:5])
    index = {name: i for i, name in enumerate(class_names)}
    samples, ignored = [], []
    for name in found:
        folder = os.path.join(directory, name)
        files = []
        for root, dirs, fnames in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if _visible(d))
            for fname in sorted(fnames):
                if not _visible(fname):
                    continue
                path = os.path.join(root, fname)
                (files if fname.lower().endswith(IMG_EXTENSIONS) else ignored).append(path)
        if not files:
            raise ValueError(f"empty class folder (no image files): {folder}")
        samples.extend((path, index[name]) for path in sorted(files))
    if ignored:
        logger.warning("ignored %d files without an image extension in %s, e.g. %s", len(ignored), directory,
                       ignored[0])
    return samples, class_names, ignored


def resolve_split_dir(root=None, split="train", split_dir=None):
    """``split_dir`` if given, else ``root/split``; ValueError naming the path when the folder is missing."""
    path = split_dir or (os.path.join(root, split) if root else None)
    if path is None:
        raise ValueError(f"no {split} folder: give the dataset root (with {split}/ inside) or the folder itself")
    if not os.path.isdir(path):
        raise ValueError(f"{split} folder not found: {path}")
    return path


def save_class_names(class_names, path):
    """Write the class list (index order) as JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(list(class_names), f, indent=1)


def load_class_names(path):
    """Class names from a JSON list, a JSON ``{index: name}`` dict, or a text file with one name per line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        return [str(data[k]) for k in sorted(data, key=int)]
    if isinstance(data, list):
        return [str(x) for x in data]
    raise ValueError(f"{path}: expected a JSON list of class names or an {{index: name}} object")


# --------------------------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------------------------
def to_rgb(img):
    """Any Pillow image -> 8-bit RGB. 16-bit and 32-bit grey are scaled (65535 -> 255), alpha is dropped
    (as ``convert('RGB')`` does, matching timm/torchvision), palette and CMYK go through Pillow's conversion."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr.astype(np.float64)
            arr = arr * 255.0 if arr.size and np.nanmax(arr) <= 1.0 else arr
            grey = np.clip(np.nan_to_num(arr), 0, 255)
        elif mode.startswith("I;16") or (arr.size and arr.max() > 255):
            grey = np.clip(arr.astype(np.float64), 0, 65535) / 257.0
        else:
            grey = np.clip(arr, 0, 255)
        return Image.fromarray(np.round(grey).astype(np.uint8)).convert("RGB")
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")  # palette (possibly with transparency) -> colours, then drop alpha below
    return img.convert("RGB")


def load_rgb_image(path):
    """Open, fully decode and convert to RGB; raises on an unreadable, truncated or non-image file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. 'palette images with transparency', EXIF warnings
        img = Image.open(path)
        try:
            img.load()  # decodes everything (a truncated file fails here) and closes the file
        except BaseException:
            img.close()
            raise
        return to_rgb(img)


def _failure_reason(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SkippedFiles:
    """Which files of a source failed to decode, shared by every worker process (one byte per file)."""

    def __init__(self, paths):
        self.all_paths = list(paths)
        self._flags = multiprocessing.Array("b", max(1, len(self.all_paths)), lock=True)

    def __deepcopy__(self, memo):
        # mindspore.dataset deep-copies the pipeline (and so the source) when it builds an iterator; every copy
        # must keep writing to the one shared record.
        return self

    def mark(self, index, reason=""):
        """Record a failure; logs the path the first time this file fails in any process."""
        with self._flags.get_lock():
            first = self._flags[index] == 0
            self._flags[index] = 1
        if first:
            logger.warning("skipping undecodable image %s (%s)", self.all_paths[index], reason)
        return first

    def is_marked(self, index):
        return bool(self._flags[index])

    def _snapshot(self):
        with self._flags.get_lock():
            return np.frombuffer(self._flags.get_obj(), dtype=np.int8)[:len(self.all_paths)].copy()

    @property
    def count(self):
        return int(np.count_nonzero(self._snapshot()))

    def paths(self):
        return [self.all_paths[i] for i in np.flatnonzero(self._snapshot())]

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"SkippedFiles(count={self.count} of {len(self.all_paths)})"


# --------------------------------------------------------------------------------------------------------------
# worker processes that a stop signal does not kill
# --------------------------------------------------------------------------------------------------------------
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class stop_signals_blocked:
    """Block SIGINT/SIGTERM in the calling (main) thread for the ``with`` body; pending ones arrive after it.

    A process forked meanwhile keeps them blocked for its whole life. MindSpore forks the ``python_multiprocessing``
    workers (and its clean-up process) from the main thread on the iterator's first ``next``, so blocked there
    they survive a stop signal sent to the whole process group (``kill -- -PGID``, a terminal's Ctrl-C, a
    scheduler): only the main process hears it, finishes its step and saves while the pipeline still runs.
    Killed workers would instead break the pipeline under the main process (a dataset thread holding the GIL,
    or ``ConnectionResetError`` in the dataset queue) and the stop could lose the epoch. The workers still
    leave on their own: MindSpore's workers poll every second whether the main process is alive, and end
    when the pipeline is stopped. Python handlers keep working while the main thread blocks the signals: the
    kernel hands the signal to another thread and Python runs the handler in the main thread as usual.
    """

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
        return False


def _end_with_parent(parent):
    """In a worker process: be killed when the process that forked it ends. The workers block stop signals,
    and MindSpore's own check (``kill(parent, 0)`` every second) takes a parent that has exited but is not yet
    reaped for alive: a caller that reads the output until it closes before reaping would wait forever."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # not Linux: MindSpore's own check remains
        return
    if os.getppid() != parent:  # the parent ended before the prctl
        os._exit(0)


class prefetch_size:
    """``mindspore.dataset``'s prefetch size (rows each operator and each worker's queue hold) set to ``rows``
    for the ``with`` body, then restored; ``None`` leaves it alone. MindSpore reads it when an iterator builds
    its operators and when the first ``next`` starts the workers."""

    def __init__(self, rows):
        self.rows = rows

    def __enter__(self):
        self._old = None
        if self.rows is not None:
            from mindspore.dataset import config as ds_config

            self._old = ds_config.get_prefetch_size()
            ds_config.set_prefetch_size(self.rows)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            from mindspore.dataset import config as ds_config

            ds_config.set_prefetch_size(self._old)
        return False


class StopDeafIterator:
    """A MindSpore dataset iterator whose first ``next`` (which forks the workers) runs under
    :class:`stop_signals_blocked` (and :class:`prefetch_size` ``prefetch``); every other attribute is the
    iterator's own."""

    def __init__(self, iterator, prefetch=None):
        self._iterator = iterator
        self._started = False
        self._prefetch = prefetch

    def __iter__(self):
        return self

    def __next__(self):
        if self._started:
            return next(self._iterator)
        self._started = True
        with stop_signals_blocked(), prefetch_size(self._prefetch):
            return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


# --------------------------------------------------------------------------------------------------------------
# source for GeneratorDataset
# --------------------------------------------------------------------------------------------------------------
class ImageFolderSource:
    """Random-access source: ``index -> (image CHW float32, label int32[, valid bool])``.

    ``replace_failures=True`` (training): an undecodable file is replaced by the next decodable one.
    ``replace_failures=False`` (evaluation): returns a zero image with ``valid=False`` to be filtered out.
    """

    def __init__(self, samples, transform, output_shape, replace_failures=True):
        if not samples:
            raise ValueError("no samples to load")
        self.paths = [p for p, _ in samples]
        self.labels = np.asarray([label for _, label in samples], dtype=np.int32)
        self.transform = transform
        self.output_shape = tuple(output_shape)
        self.replace_failures = replace_failures
        self.skipped = SkippedFiles(self.paths)
        self._pid = os.getpid()

    def __len__(self):
        return len(self.paths)

    def after_fork(self):
        """Once per worker process: end with the parent, and give numpy's global generator a seed of its own
        (Python's `random` is reseeded in forked children, numpy's is not, so every worker would draw the same
        RandAugment ops; MindSpore seeds both itself when the user set a seed). A caller that seeds each draw
        itself (``TrainBatchSource``) calls this first."""
        pid = os.getpid()
        if pid != self._pid:
            parent, self._pid = self._pid, pid
            _end_with_parent(parent)
            from mindspore.dataset import config as ds_config
            if ds_config.get_seed() == _MS_DEFAULT_SEED:
                np.random.seed(random.getrandbits(32))

    def _try_load(self, index):
        try:
            return load_rgb_image(self.paths[index])
        except Exception as exc:  # any decoding problem skips the file; the pipeline goes on
            self.skipped.mark(index, _failure_reason(exc))
            return None

    def __getitem__(self, index):
        self.after_fork()
        index = int(index)
        if not self.replace_failures:
            img = self._try_load(index)
            if img is None:
                return np.zeros(self.output_shape, np.float32), self.labels[index], np.bool_(False)
            return self.transform(img), self.labels[index], np.bool_(True)
        return self.load(index)

    def load(self, index, out=None):
        """``(transformed image, label)`` of file ``index``, or of the next decodable file after it. ``out``
        (a float32 array of ``output_shape``) is handed to a transform that can write into it."""
        self.after_fork()
        n = len(self.paths)
        into = {"out": out} if out is not None and getattr(self.transform, "writes_into", False) else {}
        for k in range(min(n, _MAX_CONSECUTIVE_FAILURES)):
            j = (index + k) % n
            img = self._try_load(j)
            if img is not None:
                return self.transform(img, **into), self.labels[j]
        raise RuntimeError(f"{min(n, _MAX_CONSECUTIVE_FAILURES)} consecutive undecodable images from "
                           f"{self.paths[index]}; is this an image dataset?")


def _keep_valid(valid):
    return bool(valid)


def _subset(samples, num_samples, seed):
    """A fixed subset of ``num_samples`` (same on every rank and every epoch), in the original order."""
    if num_samples is None or num_samples >= len(samples):
        return samples
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    keep = np.sort(np.random.RandomState(seed).permutation(len(samples))[:num_samples])
    return [samples[i] for i in keep]


def _worker_count(requested):
    cpus = os.cpu_count() or 1
    requested = int(requested or 1)
    if requested > cpus:
        logger.warning("num_parallel_workers=%d exceeds the %d CPUs; using %d", requested, cpus, cpus)
    return max(1, min(requested, cpus))


@dataclass(frozen=True)
class DataConfig:
    """How a pipeline turns an image folder into batches: the resolved data settings (what timm's
    ``resolve_data_config`` gives, plus augmentation, mixup and loader settings). ``mszoo/engine/datasets.py``
    makes one from the run config; ``is_training`` None means "the train split trains"."""

    is_training: Optional[bool] = None
    batch_size: int = 32
    image_size: int = 224
    # transform (see mszoo/data/transforms.py)
    interpolation: str = "bicubic"
    crop_pct: float = DEFAULT_CROP_PCT
    min_crop: float = 0.08
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    hflip: float = 0.5
    color_jitter: float = 0.4
    auto_augment: Optional[str] = None
    re_prob: float = 0.0
    re_mode: str = "const"
    re_count: int = 1
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    # mixup / cutmix (see mszoo/data/mixup.py); the label column becomes soft targets
    mixup: float = 0.0
    cutmix: float = 0.0
    cutmix_minmax: Optional[tuple[float, float]] = None
    mixup_prob: float = 1.0
    switch_prob: float = 0.5
    mixup_mode: str = "batch"
    label_smoothing: float = 0.1
    mixup_off_epoch: int = 0
    start_epoch: int = 0
    num_classes: Optional[int] = None  # default: the folder's class count
    # loading
    num_parallel_workers: int = 4
    python_multiprocessing: bool = True
    num_shards: Optional[int] = None
    shard_id: Optional[int] = None
    num_samples: Optional[int] = None  # a fixed subset, chosen with subset_seed (the same on every rank)
    subset_seed: int = 0
    shuffle: Optional[bool] = None  # default: shuffle when training

    def check(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if (self.num_shards is None) != (self.shard_id is None):
            raise ValueError("give both num_shards and shard_id, or neither")
        if self.num_shards is not None and not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"shard_id must be in [0, {self.num_shards}), got {self.shard_id}")
        if self.uses_mixup and self.batch_size % 2:
            raise ValueError(f"mixup/cutmix need an even batch size, got {self.batch_size}")

    @property
    def uses_mixup(self):
        return bool(self.is_training) and (self.mixup > 0 or self.cutmix > 0 or self.cutmix_minmax is not None) \
            and self.mixup_prob > 0

    def transform(self):
        return create_transform(self.image_size, is_training=bool(self.is_training), interpolation=self.interpolation,
                                crop_pct=self.crop_pct, min_crop=self.min_crop, ratio=self.ratio, hflip=self.hflip,
                                color_jitter=self.color_jitter, auto_augment=self.auto_augment, re_prob=self.re_prob,
                                re_mode=self.re_mode, re_count=self.re_count, mean=self.mean, std=self.std)

    def mixup_fn(self, num_classes):
        return Mixup(mixup_alpha=self.mixup, cutmix_alpha=self.cutmix, cutmix_minmax=self.cutmix_minmax,
                     prob=self.mixup_prob, switch_prob=self.switch_prob, mode=self.mixup_mode,
                     label_smoothing=self.label_smoothing, num_classes=num_classes,
                     mixup_off_epoch=self.mixup_off_epoch, start_epoch=self.start_epoch)


class ImagePipeline:
    """A batched ``mindspore.dataset`` pipeline and what the rest of the code needs to know about it.

    ``class_names``, ``num_classes``, ``num_files`` (files in this shard), ``skipped`` (:class:`SkippedFiles`),
    ``mixup_fn`` (the :class:`Mixup` or None; call ``set_epoch`` on it when you create a new iterator per epoch),
    ``directory``, ``batch_size``, ``image_shape`` (one image's CHW shape, float32); ``dataset`` is the MindSpore
    dataset itself; ``prefetch`` (None: MindSpore's setting) the prefetch size its iterators are built with.
    """

    def __init__(self, dataset, num_batches, class_names, num_classes, num_files, skipped, mixup_fn, directory,
                 prefetch=None, batch_size=None, image_shape=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.class_names = list(class_names)
        self.num_classes = num_classes
        self.num_files = num_files
        self.skipped = skipped
        self.mixup_fn = mixup_fn
        self.directory = directory
        self.prefetch = prefetch
        self.image_shape = image_shape

    @property
    def decoded_bytes(self):
        """What this shard's images take decoded (float32), or None if the image shape is not known."""
        return None if self.image_shape is None else self.num_files * 4 * math.prod(self.image_shape)

    def create_tuple_iterator(self, *args, **kwargs):
        """MindSpore's iterator, whose worker processes ignore SIGINT/SIGTERM (:class:`StopDeafIterator`)."""
        with stop_signals_blocked(), prefetch_size(self.prefetch):
            return StopDeafIterator(self.dataset.create_tuple_iterator(*args, **kwargs), self.prefetch)

    def get_dataset_size(self):
        """The nominal number of batches (evaluation: fewer if files are skipped), from the file count:
        MindSpore's own count would decode the whole split through the eval pipeline's filter."""
        return self.num_batches


def create_dataset(root=None, split="train", data_cfg=None, *, split_dir=None, class_names=None, transform=None,
                   **overrides):
    """An :class:`ImagePipeline` over an ImageFolder split, set up by ``data_cfg`` (a :class:`DataConfig`;
    ``overrides`` replace its fields, e.g. ``batch_size=8``).

    The folder is ``split_dir`` or ``root/split``. Training (``is_training``, default ``split == 'train'``) uses
    the timm train transform, shuffles, drops the last partial batch and, when ``mixup`` or ``cutmix`` > 0, mixes
    batches: the label column is then float32 soft targets ``(N, num_classes)`` with ``label_smoothing``,
    otherwise int32 class indices. Evaluation uses the eval transform and keeps every sample exactly once
    (no shuffle, last batch kept, undecodable files dropped).

    Distributed: ``num_shards``/``shard_id`` split the data; training shards are equal-sized (reshuffled every
    epoch, padded by repetition like PyTorch's DistributedSampler), evaluation shards partition the files.
    ``transform`` (PIL RGB image -> CHW float32 array of ``(3, image_size, image_size)``) replaces the
    train/eval transform built from the data config.
    """
    data_cfg = replace(data_cfg or DataConfig(), **overrides)
    if data_cfg.is_training is None:
        data_cfg = replace(data_cfg, is_training=split == "train")
    if data_cfg.shuffle is None:
        data_cfg = replace(data_cfg, shuffle=data_cfg.is_training)
    data_cfg.check()
    directory = resolve_split_dir(root, split, split_dir)
    samples, class_names, _ = list_image_folder(directory, class_names)
    samples = _subset(samples, data_cfg.num_samples, data_cfg.subset_seed)
    num_classes = data_cfg.num_classes or len(class_names)
    transform = transform if transform is not None else data_cfg.transform()
    mixup_fn = data_cfg.mixup_fn(num_classes) if data_cfg.uses_mixup else None
    if data_cfg.is_training:
        data, skipped, num_files, num_batches = _train_batches(samples, transform, directory, data_cfg, mixup_fn)
    else:
        data, skipped, num_files, num_batches = _eval_source(samples, transform, directory, data_cfg)
        data = data.batch(data_cfg.batch_size, drop_remainder=False)
    return ImagePipeline(data, num_batches, class_names, num_classes, num_files, skipped, mixup_fn, directory,
                         prefetch=TRAIN_PREFETCH if data_cfg.is_training else None, batch_size=data_cfg.batch_size,
                         image_shape=(3, data_cfg.image_size, data_cfg.image_size))


def _loader_args(data_cfg):
    workers = _worker_count(data_cfg.num_parallel_workers)
    return dict(shuffle=data_cfg.shuffle, num_parallel_workers=workers,
                python_multiprocessing=bool(data_cfg.python_multiprocessing) and workers > 1)


def _train_batches(samples, transform, directory, data_cfg, mixup_fn):
    """Training: whole batches built (and mixed) in the workers (:mod:`mszoo.data.train_batches`), failures
    replaced by the next decodable file, equal shards; ``(dataset, skipped, files, batches)``."""
    import mindspore.dataset as ds

    out_shape = (3, data_cfg.image_size, data_cfg.image_size)
    images = ImageFolderSource(samples, transform, out_shape, replace_failures=True)
    source = TrainBatchSource(images, data_cfg.batch_size, ds.config.get_seed(), data_cfg.num_shards,
                              data_cfg.shard_id, shuffle=data_cfg.shuffle, mixup_fn=mixup_fn)
    if source.num_batches < 1:
        raise ValueError(f"{directory}: {source.per_shard} training samples per shard, fewer than batch_size "
                         f"{data_cfg.batch_size}; the epoch would be empty")
    args = _loader_args(data_cfg)
    args["num_parallel_workers"] = min(args["num_parallel_workers"], source.num_batches)
    args["python_multiprocessing"] = args["python_multiprocessing"] and args["num_parallel_workers"] > 1
    del args["shuffle"]
    data = ds.GeneratorDataset(source, column_names=["image", "label"], sampler=epoch_batch_sampler(len(source)),
                               **args)
    return data, images.skipped, source.per_shard, source.num_batches


def _eval_source(samples, transform, directory, data_cfg):
    """Evaluation: this shard's files, undecodable ones dropped; ``(dataset, skipped, files, batches)``."""
    import mindspore.dataset as ds

    if data_cfg.num_shards is not None:
        total = len(samples)
        samples = samples[data_cfg.shard_id::data_cfg.num_shards]
        if not samples:
            raise ValueError(f"{directory}: shard {data_cfg.shard_id} of {data_cfg.num_shards} is empty "
                             f"({total} files for {data_cfg.num_shards} shards)")
    out_shape = (3, data_cfg.image_size, data_cfg.image_size)
    source = ImageFolderSource(samples, transform, out_shape, replace_failures=False)
    data = ds.GeneratorDataset(source, column_names=["image", "label", "valid"], **_loader_args(data_cfg))
    data = data.filter(_keep_valid, input_columns=["valid"]).project(["image", "label"])
    return data, source.skipped, len(source), math.ceil(len(source) / data_cfg.batch_size)


def report_skipped(dataset, log=None):
    """Log how many files were skipped (and the first few paths); returns the count."""
    log = log or logger
    skipped = getattr(dataset, "skipped", None)
    if skipped is None:
        return 0
    count = skipped.count
    if count:
        paths = skipped.paths()
        log.warning("%d undecodable image(s) skipped in %s: %s%s", count, getattr(dataset, "directory", "?"),
                    ", ".join(paths[:5]), " ..." if count > 5 else "")
    return count


# --------------------------------------------------------------------------------------------------------------
# embedded dataset: scikit-learn's 8x8 handwritten digits as an ImageFolder of PNGs
# --------------------------------------------------------------------------------------------------------------
DIGITS_MARKER = ".digits_complete"


def prepare_digits(cache_dir, val_fraction=0.2, seed=0):
    """Write scikit-learn's digits (1,797 real 8x8 scans, 10 classes) as ``cache_dir/digits/{train,val}/<0-9>/``
    8-bit grey PNGs, split stratified by ``seed``; written once (a marker file records completion and the
    split), later calls return the existing folder. Returns the dataset root (with ``train/`` and ``val/``).
    """
    root = os.path.join(cache_dir, "digits")
    marker = os.path.join(root, DIGITS_MARKER)
    expected = {"val_fraction": float(val_fraction), "seed": int(seed)}
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            written = json.load(f)
        if {k: written.get(k) for k in expected} != expected:
            raise ValueError(f"{root} holds a digits split with {written}, not {expected}; "
                             "use another cache folder or delete it")
        return root

    load_digits = require("sklearn.datasets", "the embedded digits dataset").load_digits
    train_test_split = require("sklearn.model_selection", "the embedded digits dataset").train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    indices = np.arange(len(images))
    train_idx, val_idx = train_test_split(indices, test_size=val_fraction, random_state=seed,
                                          stratify=digits.target)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".digits-", dir=cache_dir)
    try:
        for split, idx in (("train", train_idx), ("val", val_idx)):
            for label in range(10):
                os.makedirs(os.path.join(tmp, split, str(label)), exist_ok=True)
            for i in sorted(idx):
                Image.fromarray(images[i]).save(os.path.join(tmp, split, str(digits.target[i]), f"{i:04d}.png"))
        info = dict(expected, train=len(train_idx), val=len(val_idx), source="sklearn.datasets.load_digits")
        with open(os.path.join(tmp, DIGITS_MARKER), "w", encoding="utf-8") as f:
            json.dump(info, f)
        try:
            os.rename(tmp, root)
        except OSError:
            if not os.path.isfile(marker):  # not another process finishing first: a real problem
                raise ValueError(f"{root} exists but is not a complete digits dataset (no {DIGITS_MARKER}); "
                                 "delete it or use another cache folder") from None
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def dataset_dirs(dataset, data_url=None, train_dir=None, val_dir=None, output_dir="./output"):
    """``(root, train_dir, val_dir)`` of a configured dataset, shared by training, eval and export-eval.

    ``imagefolder``: ``data_url/train`` and ``data_url/val`` unless ``train_dir``/``val_dir`` name them;
    a relative ``train_dir``/``val_dir`` is a folder under ``data_url`` when that is set (the T2T readme's
    ``val_dir: validation_preprocess``). ``digits``: the embedded set, written once under a cache folder
    (``data_url`` when given, else ``output_dir/datasets``).
    """
    if dataset == "digits":
        root = prepare_digits(data_url or os.path.join(output_dir, "datasets"), seed=0)
        return root, os.path.join(root, "train"), os.path.join(root, "val")
    return data_url, split_path(data_url, train_dir, "train"), split_path(data_url, val_dir, "val")


def split_path(data_url, split_dir, default):
    """One split's folder: ``split_dir`` (relative: under ``data_url`` when set), else ``data_url/default``."""
    if split_dir:
        return os.path.join(data_url, split_dir) if data_url and not os.path.isabs(split_dir) else split_dir
    return os.path.join(data_url, default) if data_url else None
