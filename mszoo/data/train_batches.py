"""The training pipeline's source: whole batches assembled in the worker processes.

A per-image source hands every image on its own from a worker to the main process (a shared-memory copy, a
pickled descriptor, a Python ``get`` in the main process, a tensor copy and a copy into the batch), and MindSpore's
main process, which takes results in worker order, sleeps 100 ms whenever the next worker's queue (16 rows, so
16 images) is empty: the workers stood idle once their queues were full, and a second worker added little
(docs/benchmarks.md, "Data pipeline"). Here index ``k`` of the source is a whole batch: the worker decodes and
augments its images straight into one float32 NCHW array (the normalisation writes each image into its slot),
applies mixup/cutmix, and the main process receives one array per batch.

The order is drawn here, not by MindSpore's sampler: epoch ``e`` of an iterator is a permutation seeded by
``(seed, e)``, padded by repetition to equal shards and dealt out like PyTorch's DistributedSampler; the last
partial batch is dropped. :func:`epoch_batch_sampler` numbers the batches ``e * batches_per_epoch + b`` so a worker
knows the epoch of every batch it builds (for the order and for mixup's off epoch).

The augmentation is drawn here too: before building batch ``k``, the worker seeds Python's and NumPy's global
generators (which the transforms draw from, as timm's do) from ``(seed, shard, k)``. So a batch is the same
whichever worker builds it, in a thread or a process, with any number of workers, and in a resumed run. (Not
with several worker threads, ``DataConfig(python_multiprocessing=False)``: they share the two generators.)
"""
import logging
import os
import random

import numpy as np

__all__ = ["epoch_order", "epoch_batch_sampler", "TrainBatchSource"]

logger = logging.getLogger(__name__)


def epoch_order(num_items, seed, epoch, num_shards=None, shard_id=None, shuffle=True):
    """This shard's sample indices for ``epoch``: a permutation seeded by ``(seed, epoch)`` (identity without
    ``shuffle``), padded by repeating its start to a multiple of ``num_shards``, every ``num_shards``-th from
    ``shard_id``."""
    order = np.arange(num_items)
    if shuffle:
        order = np.random.default_rng([int(seed), int(epoch)]).permutation(num_items)
    if num_shards is None:
        return order
    per_shard = -(-num_items // num_shards)
    padded = np.resize(order, per_shard * num_shards)  # repeats from the start, as DistributedSampler pads
    return padded[shard_id::num_shards]


def epoch_batch_sampler(num_batches):
    """A ``mindspore.dataset`` sampler of batch numbers ``e * num_batches + b`` for ``b`` in
    ``range(num_batches)``, ``e`` counting the epochs of one iterator (MindSpore iterates the sampler once per
    epoch, on the iterator's own copy)."""
    import mindspore.dataset as ds

    class EpochBatchSampler(ds.Sampler):
        def __init__(self):
            super().__init__(num_samples=num_batches)
            self.epoch = 0

        def __iter__(self):
            start = self.epoch * num_batches
            self.epoch += 1
            return iter(range(start, start + num_batches))

    return EpochBatchSampler()


def _copied_at_put():
    """Whether a worker's result is copied into shared memory when it is queued (MindSpore's default), rather
    than pickled later by a queue thread."""
    from mindspore.dataset import config as ds_config

    return ds_config.get_enable_shared_mem()


class TrainBatchSource:
    """Random-access source: batch number -> ``(images float32 (N, 3, H, W), labels)`` for GeneratorDataset.

    ``images`` come from ``source`` (an :class:`~mszoo.data.dataset.ImageFolderSource` with replacement of
    undecodable files: its ``load`` gives one transformed image and its label), labels are int32 ``(N,)``, or
    float32 soft targets ``(N, num_classes)`` when ``mixup_fn`` is set.
    """

    def __init__(self, source, batch_size, seed, num_shards=None, shard_id=None, shuffle=True, mixup_fn=None):
        self.source = source
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_shards, self.shard_id, self.shuffle = num_shards, shard_id, shuffle
        self.mixup_fn = mixup_fn
        self.per_shard = len(epoch_order(len(source), 0, 0, num_shards, shard_id, shuffle=False))
        self.num_batches = self.per_shard // self.batch_size
        self._order_epoch, self._order = None, None
        self._pid, self._buffer = os.getpid(), None

    def __len__(self):
        return self.num_batches

    def order(self, epoch):
        """The shard's sample order of ``epoch`` (cached: a worker builds many batches of one epoch)."""
        if self._order_epoch != epoch:
            self._order = epoch_order(len(self.source), self.seed, epoch, self.num_shards, self.shard_id,
                                      self.shuffle)
            self._order_epoch = epoch
        return self._order

    def _batch_array(self, shape):
        """The array a batch is built in. A worker process reuses one (MindSpore copies each batch into shared
        memory before asking for the next): a fresh 38 MB array per batch of 64 is page faults, every time.
        In the main process (one worker is a thread there) the array is handed on, so each batch gets its own."""
        if os.getpid() == self._pid or not _copied_at_put():
            return np.empty(shape, np.float32)
        if self._buffer is None or self._buffer.shape != shape:
            self._buffer = np.empty(shape, np.float32)
        return self._buffer

    def seed_batch(self, index):
        """Seed the generators the transforms and mixup draw from for batch ``index`` alone."""
        python_seed, numpy_seed = np.random.SeedSequence([self.seed, self.shard_id or 0, index]).generate_state(2)
        random.seed(int(python_seed))
        np.random.seed(int(numpy_seed))

    def __getitem__(self, index):
        self.source.after_fork()
        self.seed_batch(int(index))
        epoch, batch = divmod(int(index), self.num_batches)
        ids = self.order(epoch)[batch * self.batch_size:(batch + 1) * self.batch_size]
        images, labels = self._batch_array((len(ids),) + self.source.output_shape), np.empty(len(ids), np.int32)
        for i, j in enumerate(ids):
            slot = images[i]
            image, labels[i] = self.source.load(int(j), out=slot)
            if image is not slot:  # a transform that cannot write into the batch
                slot[...] = image
        if self.mixup_fn is not None:
            mix_epoch = max(self.mixup_fn.epoch, self.mixup_fn.start_epoch + epoch)
            images, labels = self.mixup_fn.mix(images, labels, epoch=mix_epoch)
        return images, labels
