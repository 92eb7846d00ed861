"""Which checkpoint files a run directory keeps (timm's ``CheckpointSaver``, MindCV's ``CheckpointManager``).

``last.ckpt`` always; the last ``keep_last`` epoch checkpoints ``epoch_NNN.ckpt``; the best ``keep_best``
by val top-1: ``best.ckpt`` alone when ``keep_best == 1``, else ``best_epoch_NNN_top1_XX.XX.ckpt`` files
with ``best.ckpt`` a copy of the best. Every kept file is a copy of ``last.ckpt`` as written at that
epoch's end. Mid-epoch saves (every ``save_every_seconds``, every ``save_every_steps`` optimizer steps)
rewrite ``last.ckpt``.
"""
import os
import time

from .checkpoint import copy_atomic


class CheckpointManager:
    """Rotation of a run's checkpoint files; ``best`` is ``[[top1, epoch, file name], ...]``, best first
    (saved in every checkpoint's training state, so a resumed run keeps rotating the same files)."""

    def __init__(self, run_dir, epochs, keep_last=1, keep_best=1, save_every_seconds=0, is_main=True, best=(),
                 save_every_steps=0):
        self.run_dir = run_dir
        self.epochs = epochs
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.save_every_seconds = save_every_seconds
        self.save_every_steps = save_every_steps
        self.is_main = is_main
        self.best = [list(b) for b in best]
        self.last_save_time = time.time()

    def epoch_name(self, epoch):
        return f"epoch_{epoch:0{max(3, len(str(self.epochs)))}d}.ckpt"

    def end_epoch(self, epoch, top1, write_last):
        """After epoch ``epoch`` (1-based) with val top-1 ``top1`` (None: not validated): update the best
        list, call ``write_last()`` (it writes ``last.ckpt``, best list included, and returns its path),
        then copy and rotate the kept files (rank 0). Returns the path of ``last.ckpt``."""
        new_best, dropped = self._rank(epoch, top1)
        last = write_last()
        self.mark_saved()
        if not self.is_main:
            return last
        if self.keep_last > 0:
            copy_atomic(last, self._path(self.epoch_name(epoch)))
            if epoch - self.keep_last >= 1:
                self._remove(self.epoch_name(epoch - self.keep_last))
        if new_best is not None:
            copy_atomic(last, self._path(new_best[2]))
            if self.keep_best > 1 and self.best[0][2] == new_best[2]:
                copy_atomic(last, self._path("best.ckpt"))
            for name in dropped:
                if name != "best.ckpt":
                    self._remove(name)
        return last

    def _rank(self, epoch, top1):
        """The new best entry (or None) and the file names that fell off the best list."""
        if top1 is None or self.keep_best <= 0:
            return None, []
        top1 = float(top1)
        if len(self.best) >= self.keep_best and top1 <= self.best[-1][0]:
            return None, []
        name = "best.ckpt" if self.keep_best == 1 else f"best_{self.epoch_name(epoch)[:-5]}_top1_{top1:.2f}.ckpt"
        new_best = [top1, epoch, name]
        entries = sorted(self.best + [new_best], key=lambda b: (-b[0], b[1]))
        self.best = entries[:self.keep_best]
        return new_best, [b[2] for b in entries[self.keep_best:] if b[2] != name]

    def save_due(self, global_step):
        """True when ``save_every_seconds`` have passed since the last save, or ``global_step`` (steps done)
        is a multiple of ``save_every_steps``."""
        if self.save_every_steps and global_step % self.save_every_steps == 0:
            return True
        return bool(self.save_every_seconds) and time.time() - self.last_save_time > self.save_every_seconds

    def mark_saved(self):
        self.last_save_time = time.time()

    def _path(self, name):
        return os.path.join(self.run_dir, name)

    def _remove(self, name):
        path = self._path(name)
        if os.path.isfile(path):
            os.remove(path)
