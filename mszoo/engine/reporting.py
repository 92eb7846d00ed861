"""Console and file outputs of a training run: progress bar, log lines, metrics.csv and curves.png."""
import csv
import math
import os
import sys
import time

from mszoo.extras import MissingExtra, require
from mszoo.fileio import atomic_open, written_as

METRICS_FIELDS = ("epoch", "step", "lr", "train_loss", "val_top1", "val_top5", "val_loss", "img_s", "time")


# --------------------------------------------------------------------------------------------- log line

def format_lr(lr):
    return f"{lr:.6g}"


def format_step_line(epoch, epochs, step, steps, loss, avg_loss, step_ms, lr, grad_norm=None, scale=None,
                     overflows=None):
    """The model-zoo readmes' log line, e.g. ``epoch: [ 3/300], step:[ 100/1251], loss:[6.812/6.901], time:[412.3ms],
    lr:[0.00051]``, plus ``grad_norm`` and the loss scale / skipped-step count when given.

    ``epoch`` and ``step`` are 1-based; ``loss`` is the last step's loss, ``avg_loss`` the epoch mean so far.
    """
    ew, sw = len(str(epochs)), len(str(steps))
    line = (f"epoch: [{epoch:>{ew}}/{epochs}], step:[{step:>{sw}}/{steps}], loss:[{loss:.3f}/{avg_loss:.3f}], "
            f"time:[{step_ms:.1f}ms], lr:[{format_lr(lr)}]")
    if grad_norm is not None:
        line += f", grad_norm:[{grad_norm:.3f}]"
    if scale is not None:
        line += f", scale:[{scale:g}]"
    if overflows:
        line += f", overflow_skipped:[{overflows}]"
    return line


# ------------------------------------------------------------------------------------------ progress bar

def progress_enabled(requested, stream=None):
    """The bar is shown when asked for and the stream is a terminal (not in logs, CI or pipes)."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(requested) and stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """A tqdm bar per epoch (loss, lr, img/s; tqdm adds the ETA), or nothing when disabled."""

    def __init__(self, enabled, total, epoch, epochs, initial=0):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch}/{epochs}", unit="step",
                            dynamic_ncols=True, leave=True, file=sys.stderr)

    def update(self, loss, lr, img_s):
        if self.bar is None:
            return
        self.bar.set_postfix_str(f"loss={loss:.4f} lr={format_lr(lr)} img/s={img_s:.1f}", refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def redirect_logging(logger, enabled):
    """Context manager: while a bar is shown, log lines go through ``tqdm.write`` (no broken bars)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(loggers=[logger])


# ------------------------------------------------------------------------------------------ meters

class StepTimer:
    """Step time (a window between log lines) and the epoch's throughput; the first step of a process
    (graph compilation) counts in the window but not in the throughput."""

    def __init__(self):
        self.images = 0
        self.seconds = 0.0
        self.window_steps = 0
        self.window_seconds = 0.0
        self.last = time.perf_counter()

    def start_epoch(self):
        """Zero the epoch's totals and start the clock (the window runs on across epochs)."""
        self.images = 0
        self.seconds = 0.0
        self.last = time.perf_counter()

    def tick(self, images, exclude=False):
        now = time.perf_counter()
        dt = now - self.last
        self.last = now
        if not exclude:
            self.images += images
            self.seconds += dt
        self.window_steps += 1
        self.window_seconds += dt
        return dt

    def pop_window_ms(self):
        ms = 1000.0 * self.window_seconds / max(1, self.window_steps)
        self.window_steps = 0
        self.window_seconds = 0.0
        return ms

    @property
    def img_s(self):
        """Images per second of the epoch so far."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------ metrics

def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


class MetricsCSV:
    """``metrics.csv`` with one row per epoch (empty val fields on epochs without validation)."""

    def __init__(self, path):
        self.path = path

    def truncate_after(self, epoch):
        """Drop rows of epochs after ``epoch`` (a resumed run re-does them)."""
        if not os.path.isfile(self.path):
            return
        rows = self.read()
        kept = [r for r in rows if r["epoch"] is not None and r["epoch"] <= epoch]
        if len(kept) != len(rows):
            self._write_all(kept)

    def append(self, row):
        new = not os.path.isfile(self.path)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(METRICS_FIELDS)
            writer.writerow([_fmt(row.get(k)) for k in METRICS_FIELDS])

    def _write_all(self, rows):
        with atomic_open(self.path, newline="") as f:
            writer = csv.writer(f)
            writer.writerow(METRICS_FIELDS)
            for row in rows:
                writer.writerow([_fmt(row.get(k)) for k in METRICS_FIELDS])

    def read(self):
        """Rows as dicts of numbers (None for empty fields)."""
        if not os.path.isfile(self.path):
            return []
        out = []
        with open(self.path, newline="", encoding="utf-8") as f:
            for raw in csv.DictReader(f):
                row = {}
                for k in METRICS_FIELDS:
                    v = raw.get(k, "")
                    if v in ("", None):
                        row[k] = None
                    elif k in ("epoch", "step"):
                        row[k] = int(float(v))
                    else:
                        row[k] = float(v)
                out.append(row)
        return out


# A drawing of curves.png takes ~0.35 s: a tenth of a quickstart epoch (~3 s), nothing against an ImageNet one.
CURVES_EVERY_SECONDS = 30.0


class MetricsLogger:
    """A run's metric files: ``metrics.csv`` (one row per epoch) and ``curves.png``, redrawn after the first row,
    the final one, and any row that comes CURVES_EVERY_SECONDS or more after the last drawing (so short epochs do
    not spend a tenth of their time drawing; a stopped run's curves may lag its csv by that long, and its resume
    redraws them at its first epoch).

    Only the main rank writes (``enabled``); a plotting problem is logged and never stops training.
    """

    def __init__(self, run_dir, logger, enabled=True, clock=time.monotonic):
        self.csv = MetricsCSV(os.path.join(run_dir, "metrics.csv"))
        self.curves_path = os.path.join(run_dir, "curves.png")
        self.logger = logger
        self.enabled = enabled
        self.plot = True  # False once matplotlib turned out to be missing (said once, not every epoch)
        self.clock = clock
        self.drawn_at = None

    def start(self, epochs_done):
        """A (resumed) run starts after ``epochs_done`` epochs: rows of later epochs are dropped."""
        if self.enabled:
            self.csv.truncate_after(epochs_done)

    def log_epoch(self, row, final=False):
        """Append ``row`` to metrics.csv and redraw curves.png when due (class docstring); ``final``: the run's last
        epoch, always drawn."""
        if not self.enabled:
            return
        self.csv.append(row)
        now = self.clock()
        if not self.plot or not (final or self.drawn_at is None or now - self.drawn_at >= CURVES_EVERY_SECONDS):
            return
        self.drawn_at = now
        try:
            plot_curves(self.csv.read(), self.curves_path)
        except MissingExtra as exc:
            self.plot = False
            self.logger.warning(f"no curves.png: {exc}")
        except Exception as exc:  # a plotting problem never stops training
            self.logger.warning(f"could not draw curves.png: {exc}")


def format_epoch_line(epoch, epochs, train_loss, val, best, img_s, seconds, saved):
    """The end-of-epoch log line: train loss, val metrics (with the best so far), img/s, time, file saved."""
    text = f"epoch {epoch}/{epochs} done: train loss {train_loss:.4f}"
    if val:
        text += f", val top-1 {val['top1']:.2f}, top-5 {val['top5']:.2f}, loss {val['loss']:.4f}"
        if best:
            text += f" (best top-1 {best[0][0]:.2f} at epoch {best[0][1]})"
    return text + f", {img_s:.1f} img/s, {seconds:.1f}s; saved {os.path.basename(saved)}"


def plot_curves(rows, path):
    """``curves.png``: train/val loss and val top-1/top-5 against epoch (matplotlib, Agg backend)."""
    matplotlib = require("matplotlib", "curves.png")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o", markersize=3, label="train loss")
    val = [(r["epoch"], r["val_loss"], r["val_top1"], r["val_top5"]) for r in rows if r["val_top1"] is not None]
    if val:
        ax_loss.plot([v[0] for v in val], [v[1] for v in val], marker="o", markersize=3, label="val loss")
        ax_acc.plot([v[0] for v in val], [v[2] for v in val], marker="o", markersize=3, label="val top-1")
        ax_acc.plot([v[0] for v in val], [v[3] for v in val], marker="o", markersize=3, label="val top-5")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend()
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("validation accuracy")
    ax_acc.grid(True, alpha=0.3)
    if val:
        ax_acc.legend()
    fig.tight_layout()
    with written_as(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
