"""The training loop behind ``train.py``: ``train(cfg) -> exit code``.

One run directory per run (``output_dir/run_name``, default ``<arch>-<YYYYmmdd-HHMMSS>``) holding
``config.yaml`` (resolved), ``train.log``, ``metrics.csv``, ``curves.png``, ``last.ckpt``, the last
``ckpt_keep_num`` epoch checkpoints ``epoch_NNN.ckpt`` and the best ``best_ckpt_num`` by val top-1
(``best.ckpt`` is a copy of the best; with ``best_ckpt_num > 1`` the others are
``best_epoch_NNN_top1_XX.XX.ckpt``). Every checkpoint holds the whole training state (see
``src.engine.checkpoint``), so ``--resume RUN_DIR_or_CKPT`` continues exactly: same epoch and step,
lr, loss scale, optimizer moments, EMA and best list; the data order of the interrupted epoch is
replayed from its seed.

SIGINT / SIGTERM finish the current step, save ``last.ckpt`` and exit with 130 / 143 (a second signal
stops at once). A non-finite loss stops the run with a clear message; the last good checkpoint is
left untouched. Only rank 0 writes files.
"""
import math
import os
import signal
import sys
import time

import numpy as np
import mindspore as ms

from src.config import ConfigError, format_config, save_config, source_of, validate
from src.logger import add_log_file, get_logger, get_rank, remove_log_files
from src.models.loading import CheckpointFile, load_pretrained
from src.resolve import build_model, pretrained_file, record_of, resolve_data_config, resolve_from_checkpoint

from .build import build_eval_dataset, build_train_dataset, merge_saved_config, seed_everything
from .callbacks import (MetricsCSV, ProgressBar, StepTimer, format_lr, format_step_line, plot_curves,
                        progress_enabled, redirect_logging)
from .checkpoint import (assign_parameters, copy_atomic, load_training_checkpoint, remove_stale_tmp,
                         resolve_resume_path, save_checkpoint_atomic)
from .criterion import create_criterion
from .distributed import rescale_position, run_stamp
from .ema import EMA
from .evaluator import EvalNet, evaluate
from .optim import create_optimizer
from .schedulers import create_schedule
from .train_step import apply_amp, build_train_step, distributed_group_size

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingDiverged(ValueError):
    """The loss became NaN/inf (message says where and which checkpoint is the last good one)."""


def _count_params(cell):
    return sum(int(np.prod(p.shape)) for p in cell.get_parameters())


def _stop_iterator(iterator):
    stop = getattr(iterator, "stop", None)
    if stop is not None:
        try:
            stop()
        except Exception:  # tearing down anyway
            pass


class Trainer:
    """Set-up and loop of one training run.

    Hooks: ``after_step(trainer)`` after every optimizer step (tests); ``after_epoch(trainer, epoch, val)``
    after every epoch with its validation metrics or None (tune_params.py reports them to Optuna; an
    exception raised there ends the run after the epoch's checkpoint was saved).
    """

    def __init__(self, cfg, after_step=None, after_epoch=None):
        import threading

        self.cfg = cfg
        self.state_lock = threading.RLock()  # held while the training state changes (steps, epoch end)
        self.after_step = after_step
        self.after_epoch = after_epoch
        self.logger = get_logger()
        self.rank = get_rank()
        self.is_main = self.rank == 0
        self.stop_signal = None
        self.run_dir = None
        self.global_step = 0
        self.epochs_done = 0
        self.epoch_step = 0
        self.epoch_loss_sum = 0.0
        self.epoch_loss_count = 0
        self.best = []  # [[top1, epochs_done, file name], ...] best first
        self.last_val = None
        self.steps_run = 0  # optimizer steps run by this process (the first one compiles)
        self.overflows = 0

    # ------------------------------------------------------------------------------------ set-up
    def setup(self):
        cfg = self.cfg
        resume_ckpt = None
        taken = []
        if cfg.resume:
            path = resolve_resume_path(cfg.resume)
            resume_ckpt = load_training_checkpoint(path)
            if resume_ckpt.train_state is None:
                raise ValueError(f"resume: {path} holds no training state (weights only?); "
                                 "use --pretrained to start from its weights")
            if resume_ckpt.config_text:
                taken = merge_saved_config(cfg, resume_ckpt.config_text, f"{path} (saved config)")
            self.run_dir = os.path.dirname(os.path.abspath(path))
        pretrained = None
        if cfg.pretrained and resume_ckpt is None:
            pretrained = CheckpointFile(pretrained_file(cfg))
            # its model and preprocessing, not its classes (the train folder decides those)
            resolve_from_checkpoint(cfg, pretrained, take_num_classes=False)
        else:
            resolve_data_config(cfg)
        validate(cfg, need_data=True, need_train_data=True)
        seed_everything(cfg.seed)
        self.group_size = distributed_group_size()

        if self.run_dir is None:
            name = cfg.run_name or f"{cfg.arch}-{run_stamp(self.group_size)}"
            self.run_dir = os.path.abspath(os.path.join(cfg.output_dir, name))
            if os.path.isfile(os.path.join(self.run_dir, "last.ckpt")):
                raise ConfigError(f"run_name: {self.run_dir} already holds a run (last.ckpt); continue it with "
                                  f"--resume {self.run_dir} or choose another run_name "
                                  f"(from {source_of(cfg, 'run_name')})")
        if self.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            remove_stale_tmp(self.run_dir)
        add_log_file(self.run_dir)
        log = self.logger
        log.info(f"run directory: {self.run_dir}")
        log.info("config:\n" + format_config(cfg))
        for note in getattr(cfg, "_notes", []):
            log.info(f"note: {note}")
        if resume_ckpt is not None:
            log.info(f"resuming from {resume_ckpt.path}" + (f" (keys from its saved config: {', '.join(taken)})"
                                                             if taken else ""))
            state = resume_ckpt.train_state
            self.epochs_done = int(state["epochs_done"])
            self.epoch_step = int(state.get("epoch_step", 0))

        # data
        ckpt_classes = resume_ckpt.class_names if resume_ckpt is not None else None
        # A probe of the training pipeline for the classes and the epoch length; every epoch builds its own
        # pipeline right before iterating it, seeded by (seed, epoch), so a resumed epoch sees the same data.
        self.train_data = build_train_dataset(cfg, epoch=self.epochs_done, class_names=ckpt_classes)
        self.class_names = list(self.train_data.class_names)
        n_classes = len(self.class_names)
        if cfg.num_classes != n_classes:
            if source_of(cfg, "num_classes") == "default":
                cfg.num_classes = n_classes
                cfg._sources["num_classes"] = "train folder"
            else:
                raise ConfigError(f"num_classes: {cfg.num_classes}, but {self.train_data.directory} has "
                                  f"{n_classes} class folders (from {source_of(cfg, 'num_classes')})")
        self.val_data = build_eval_dataset(cfg, class_names=self.class_names)
        batches = self.train_data.get_dataset_size()
        steps = batches // cfg.accumulation_steps
        if steps < 1:
            raise ConfigError(f"accumulation_steps: {batches} batches per epoch cannot make one step of "
                              f"{cfg.accumulation_steps} micro-batches (from {source_of(cfg, 'accumulation_steps')})")
        if cfg.steps_per_epoch:
            steps = min(steps, cfg.steps_per_epoch)
        self.steps_per_epoch = steps
        if self.is_main:
            save_config(cfg, os.path.join(self.run_dir, "config.yaml"))

        # model, optimizer, step
        self.model = build_model(cfg)
        if pretrained is not None:
            self._load_pretrained(pretrained)
        no_wd = self.model.no_weight_decay() if hasattr(self.model, "no_weight_decay") else set()
        self.network = apply_amp(self.model, cfg.amp_level, cfg.keep_bn_fp32)
        self.optimizer = create_optimizer(cfg, self.network.trainable_params(), no_wd)
        self.ema = EMA(self.network.get_parameters(), cfg.ema_decay) if cfg.with_ema else None
        self.train_step = build_train_step(self.network, create_criterion(cfg), self.optimizer, cfg, self.ema)
        self.eval_model = build_model(cfg, training=False)
        self.eval_net = EvalNet(self.eval_model)
        global_batch = self._global_batch()
        base_lr = cfg.base_lr * global_batch / cfg.lr_scale_batch if cfg.lr_scale_batch else cfg.base_lr
        self.schedule = create_schedule(cfg, self.steps_per_epoch, base_lr=base_lr)
        if resume_ckpt is not None:
            self._restore(resume_ckpt)

        log.info(f"model {cfg.arch}: {_count_params(self.model) / 1e6:.3f}M parameters, {n_classes} classes, "
                 f"amp {cfg.amp_level}, optimizer {cfg.optimizer}, lr {format_lr(base_lr)} ({cfg.lr_scheduler})")
        log.info(f"data: {self.train_data.num_files} train images in {self.train_data.directory}, "
                 f"{self.val_data.num_files} val images in {self.val_data.directory}; "
                 f"{self.steps_per_epoch} steps/epoch of {cfg.batch_size} x {cfg.accumulation_steps} "
                 f"x {self.group_size} device(s) = global batch {global_batch}")
        if cfg.lr_scale_batch:
            log.info(f"lr scaling rule: base_lr {format_lr(cfg.base_lr)} x global batch {global_batch} / "
                     f"lr_scale_batch {cfg.lr_scale_batch} = {format_lr(base_lr)}")
        return self

    def _load_pretrained(self, ckpt):
        """Fine-tuning start: the checkpoint's weights by the one rule; only the head may be replaced (logged)."""
        replaced, which = load_pretrained(self.model, ckpt, allow_rehead=True)
        text = f"starting from the {which} of {ckpt.path}"
        if replaced:
            old = ckpt.head_classes()
            text += (f"; new {self.cfg.num_classes}-class head for fine-tuning (the checkpoint's has "
                     f"{old if old is not None else 'no'} classes), re-initialised: {', '.join(replaced)}")
        self.logger.info(text)

    def _restore(self, ckpt):
        state = ckpt.train_state
        where = f"resume from {ckpt.path}"
        assign_parameters(self.network.get_parameters(), ckpt.tensors, where)
        assign_parameters(self.optimizer.state_parameters(), ckpt.tensors, f"{where} (optimizer state; "
                          f"was it trained with optimizer {self.cfg.optimizer}?)")
        assign_parameters(self.train_step.state_parameters(), ckpt.tensors, f"{where} (loss scale)")
        if self.ema is not None:
            if ckpt.group("ema"):
                assign_parameters(self.ema.state_parameters(), ckpt.tensors, f"{where} (EMA)")
            else:
                self.logger.info("the checkpoint has no EMA weights: the EMA starts from the current weights")
        self.epoch_step, self.global_step, changed = rescale_position(
            state, self.steps_per_epoch, self._global_batch(), self.group_size)
        if changed:
            self.logger.info(f"note: {changed}")
        self.epoch_loss_sum = float(state.get("epoch_loss_sum", 0.0))
        self.epoch_loss_count = int(state.get("epoch_loss_count", 0))
        self.best = [list(b) for b in state.get("best", [])]
        self.last_val = state.get("last_val")
        self.overflows = int(self.train_step.overflow_count.asnumpy())
        scale = float(self.train_step.loss_scale.asnumpy())
        self.logger.info(f"resumed at epoch {self.epochs_done + 1}, step {self.epoch_step}/{self.steps_per_epoch} "
                         f"(global step {self.global_step}), loss scale {scale:g}")

    # ----------------------------------------------------------------------------- checkpoints
    def _state_tensors(self):
        tensors = {}
        params = list(self.network.get_parameters()) + self.optimizer.state_parameters() + \
            self.train_step.state_parameters() + (self.ema.state_parameters() if self.ema is not None else [])
        for p in params:
            tensors[p.name] = p.asnumpy().copy()
        return tensors

    def _train_state(self):
        return {"epochs_done": self.epochs_done, "epoch_step": self.epoch_step, "global_step": self.global_step,
                "steps_per_epoch": self.steps_per_epoch, "epoch_loss_sum": self.epoch_loss_sum,
                "epoch_loss_count": self.epoch_loss_count, "best": self.best, "last_val": self.last_val,
                "arch": self.cfg.arch, "global_batch": self._global_batch(), "group_size": self.group_size}

    def _global_batch(self):
        return self.cfg.batch_size * self.cfg.accumulation_steps * self.group_size

    def save_last(self):
        """Write ``last.ckpt`` with the current state (rank 0); returns its path."""
        path = os.path.join(self.run_dir, "last.ckpt")
        if not self.is_main:
            return path
        import yaml

        from src.config import KEYS

        config_text = yaml.safe_dump({k.name: self.cfg[k.name] for k in KEYS}, sort_keys=False)
        save_checkpoint_atomic(path, self._state_tensors(), self._train_state(), config_text, self.class_names,
                               record=record_of(self.cfg, self.class_names))
        return path

    def _epoch_name(self, epoch):
        return f"epoch_{epoch:0{max(3, len(str(self.cfg.epochs)))}d}.ckpt"

    def _save_epoch_end(self, val):
        """last.ckpt, the keep-N epoch checkpoints and the best-N (by val top-1)."""
        cfg = self.cfg
        removed = []
        new_best = None
        if val is not None and cfg.best_ckpt_num > 0:
            top1 = float(val["top1"])
            if len(self.best) < cfg.best_ckpt_num or top1 > self.best[-1][0]:
                name = ("best.ckpt" if cfg.best_ckpt_num == 1 else
                        f"best_{self._epoch_name(self.epochs_done)[:-5]}_top1_{top1:.2f}.ckpt")
                new_best = [top1, self.epochs_done, name]
                entries = sorted(self.best + [new_best], key=lambda b: (-b[0], b[1]))
                removed = [b[2] for b in entries[cfg.best_ckpt_num:] if b[2] != name]
                self.best = entries[:cfg.best_ckpt_num]
        last = self.save_last()
        if not self.is_main:
            return last
        if cfg.ckpt_keep_num > 0:
            copy_atomic(last, os.path.join(self.run_dir, self._epoch_name(self.epochs_done)))
            old = self.epochs_done - cfg.ckpt_keep_num
            if old >= 1:
                path = os.path.join(self.run_dir, self._epoch_name(old))
                if os.path.isfile(path):
                    os.remove(path)
        if new_best is not None:
            copy_atomic(last, os.path.join(self.run_dir, new_best[2]))
            if cfg.best_ckpt_num > 1 and self.best[0][2] == new_best[2]:
                copy_atomic(last, os.path.join(self.run_dir, "best.ckpt"))
            for name in removed:
                path = os.path.join(self.run_dir, name)
                if name != "best.ckpt" and os.path.isfile(path):
                    os.remove(path)
        return last

    # ----------------------------------------------------------------------------------- signals
    # The Python handler only runs when the main thread executes Python code. If it is blocked in the
    # data pipeline (e.g. SIGTERM sent to the whole process group killed the dataset workers) it would
    # never run, so a watcher thread also hears the signal (``signal.set_wakeup_fd``). The main thread
    # normally saves after the current step; if it does not take over within ``SIGNAL_GRACE`` seconds,
    # the watcher saves the state of the last completed step (under the state lock, so never in the
    # middle of a step) and ends the process.
    SIGNAL_GRACE = 10.0

    # A second signal within this many seconds of the first is not a user asking to stop at once: MindSpore's
    # dataset signals the main process itself when its workers die (SIGTERM sent to the whole group).
    REPEAT_WINDOW = 3.0

    def _on_signal(self, signum, frame):
        # Runs in the main thread between two bytecodes, possibly while it holds a logging lock: only set
        # flags here (no logging, no locks). The watcher thread reports the signal.
        now = time.monotonic()
        if self.stop_signal is not None and self._first_signal_time is not None:
            if now - self._first_signal_time > self.REPEAT_WINDOW:
                raise KeyboardInterrupt
            return
        self._first_signal_time = now
        self._os_signal = True
        if self.stop_signal is None:
            self.stop_signal = signum

    def _watch_signals(self, read_fd):
        while True:
            try:
                data = os.read(read_fd, 1)
            except OSError:
                return
            if not data or self._watch_stop.is_set():
                return
            signum = data[0]
            if signum not in EXIT_SIGNAL:
                continue
            self._os_signal = True
            if self.stop_signal is None:
                self.stop_signal = signum
            self.logger.info(f"received {signal.Signals(signum).name}: finishing the current step, then saving a "
                             "checkpoint (send it again to stop at once)")
            if self._main_took_over.wait(self.SIGNAL_GRACE):
                return
            if self._watch_stop.is_set():
                return
            # The main thread is stuck (most likely waiting for dead data workers).
            with self.state_lock:
                if not self._saved_on_signal:
                    self.logger.info("the main loop is not responding (data pipeline stopped?); saving the "
                                     "last completed step from the signal watcher")
                    code = self._exit_on_signal()
                else:
                    code = EXIT_SIGNAL.get(self.stop_signal, 1)
                for handler in self.logger.handlers:
                    handler.flush()
                os._exit(code)

    def _install_signals(self):
        import threading

        self._old_handlers = {}
        self._first_signal_time = None
        self._os_signal = False
        self._main_took_over = threading.Event()
        self._watch_stop = threading.Event()
        self._saved_on_signal = False
        self._wakeup = None
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._wakeup = (read_fd, write_fd, old_fd)
        self._watcher = threading.Thread(target=self._watch_signals, args=(read_fd,), name="signal-watcher",
                                         daemon=True)
        self._watcher.start()

    def _restore_signals(self):
        for sig, handler in getattr(self, "_old_handlers", {}).items():
            signal.signal(sig, handler)
        if getattr(self, "_wakeup", None) is not None:
            read_fd, write_fd, old_fd = self._wakeup
            signal.set_wakeup_fd(old_fd)
            self._watch_stop.set()
            self._main_took_over.set()
            os.write(write_fd, b"\0")  # wake the watcher so it returns
            self._watcher.join(timeout=5)
            os.close(write_fd)
            os.close(read_fd)
            self._wakeup = None

    # SIGTERM (sent by schedulers, `kill`, or to the whole process group, which also kills the dataset
    # workers) ends the process right after the checkpoint is written: MindSpore's clean-up of a pipeline
    # whose workers were killed can block forever while holding the GIL (seen in ``iterator.stop()`` and at
    # interpreter exit), so no Python-level clean-up runs after the save. As a last resort, a C-level timer
    # (faulthandler) ends the process after ``EXIT_GRACE`` seconds if the save itself hangs; the previous
    # ``last.ckpt`` is then intact. SIGINT (Ctrl-C, which the workers ignore) returns normally, so an
    # interactive ``train()`` call is never killed.
    EXIT_GRACE = 120.0

    def _exit_on_signal(self):
        self._main_took_over.set()
        code = EXIT_SIGNAL.get(self.stop_signal, 1)
        hard_exit = self._os_signal and self.stop_signal == signal.SIGTERM
        if hard_exit:
            import faulthandler

            faulthandler.dump_traceback_later(self.EXIT_GRACE, exit=True)
        with self.state_lock:
            path = os.path.join(self.run_dir, "last.ckpt")
            if not self._saved_on_signal:
                path = self.save_last()
                self._saved_on_signal = True
        name = signal.Signals(self.stop_signal).name
        self.logger.info(f"stopped by {name}: saved {path} (epoch {self.epochs_done + 1}, step {self.epoch_step}/"
                         f"{self.steps_per_epoch}); continue with: python train.py --resume {self.run_dir}")
        if hard_exit:
            for handler in self.logger.handlers:
                handler.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code

    # -------------------------------------------------------------------------------------- loop
    def fit(self):
        cfg = self.cfg
        self._install_signals()
        try:
            if self.epochs_done >= cfg.epochs:
                self.logger.info(f"nothing to do: {self.epochs_done} of {cfg.epochs} epochs are done")
                return 0
            self.metrics = MetricsCSV(os.path.join(self.run_dir, "metrics.csv"))
            if self.is_main:
                self.metrics.truncate_after(self.epochs_done)
            self.timer = StepTimer()
            for epoch in range(self.epochs_done, cfg.epochs):
                code = self._run_epoch(epoch)
                if code is not None:
                    return code
            best = f"; best val top-1 {self.best[0][0]:.2f} (epoch {self.best[0][1]})" if self.best else ""
            self.logger.info(f"training done: {cfg.epochs} epochs, {self.global_step} steps{best}; "
                             f"outputs in {self.run_dir}")
            return 0
        finally:
            self._restore_signals()

    def _run_epoch(self, epoch):
        cfg, log = self.cfg, self.logger
        start = time.time()
        data = build_train_dataset(cfg, epoch=epoch, class_names=self.class_names)
        iterator = data.create_tuple_iterator(num_epochs=1)
        accum = cfg.accumulation_steps
        first_step = self.epoch_step
        if first_step == 0:
            self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0
        show_bar = self.is_main and progress_enabled(cfg.progress)
        bar = ProgressBar(show_bar, self.steps_per_epoch, epoch + 1, cfg.epochs, initial=first_step)
        images_per_step = cfg.batch_size * accum * self.group_size
        epoch_images, epoch_seconds = 0, 0.0
        lr = self.schedule(self.global_step)
        try:
            with redirect_logging(log, show_bar):
                for _ in range(first_step * accum):  # replay the interrupted epoch's order up to where it stopped
                    next(iterator)
                if self.steps_run == 0:
                    log.info("compiling the train step (the first step takes longer)")
                self.timer.restart()
                for step in range(first_step, self.steps_per_epoch):
                    try:
                        micro = [next(iterator) for _ in range(accum)]
                    except StopIteration:
                        log.warning(f"the training data ended after {step} of {self.steps_per_epoch} steps")
                        break
                    with self.state_lock:
                        lr = self.schedule(self.global_step)
                        loss, overflow, scale, grad_norm = self.train_step.run(micro, lr)
                        dt = self.timer.tick(images_per_step, exclude=self.steps_run == 0)
                        if self.steps_run > 0:
                            epoch_images += images_per_step
                            epoch_seconds += dt
                        self.steps_run += 1
                        if not math.isfinite(loss):
                            self._diverged(epoch, step, loss)
                        self.global_step += 1
                        self.epoch_step = step + 1
                        self.overflows += int(overflow)
                        self.epoch_loss_sum += loss
                        self.epoch_loss_count += 1
                    img_s = epoch_images / epoch_seconds if epoch_seconds > 0 else 0.0
                    bar.update(loss, lr, img_s)
                    if (step + 1) % cfg.print_loss_every == 0 or step + 1 == self.steps_per_epoch:
                        show_scale = cfg.amp_level != "O0" or self.overflows > 0
                        log.info(format_step_line(epoch + 1, cfg.epochs, step + 1, self.steps_per_epoch, loss,
                                                  self.epoch_loss_sum / self.epoch_loss_count,
                                                  self.timer.pop_window_ms(), lr, grad_norm=grad_norm,
                                                  scale=scale if show_scale else None, overflows=self.overflows))
                    if self.after_step is not None:
                        self.after_step(self)
                    if self.stop_signal is not None:
                        bar.close()
                        return self._exit_on_signal()
                    if cfg.ckpt_save_every_seconds and time.time() - getattr(self, "_last_save", start) > \
                            cfg.ckpt_save_every_seconds and self.epoch_step < self.steps_per_epoch:
                        with self.state_lock:
                            self.save_last()
                        self._last_save = time.time()
        finally:
            bar.close()
            if self.stop_signal is None:  # after a signal the workers may be dead: stop() could wait forever
                _stop_iterator(iterator)

        # end of epoch: validation, checkpoints, metrics
        train_loss = self.epoch_loss_sum / max(1, self.epoch_loss_count)
        with self.state_lock:
            self.epochs_done = epoch + 1
            self.epoch_step = 0
        val = None
        if self.epochs_done % cfg.eval_every == 0 or self.epochs_done == cfg.epochs:
            val = self.validate()
            if val is None:  # interrupted during validation: the epoch's training is done and saved
                self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0
                return self._exit_on_signal()
            self.last_val = val
        with self.state_lock:
            self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0
            last = self._save_epoch_end(val)
        self._last_save = time.time()
        elapsed = time.time() - start
        img_s = epoch_images / epoch_seconds if epoch_seconds > 0 else 0.0
        row = {"epoch": self.epochs_done, "step": self.global_step, "lr": lr, "train_loss": train_loss,
               "val_top1": val["top1"] if val else None, "val_top5": val["top5"] if val else None,
               "val_loss": val["loss"] if val else None, "img_s": round(img_s, 2), "time": round(elapsed, 2)}
        if self.is_main:
            self.metrics.append(row)
            try:
                plot_curves(self.metrics.read(), os.path.join(self.run_dir, "curves.png"))
            except Exception as exc:  # a plotting problem never stops training
                log.warning(f"could not draw curves.png: {exc}")
        text = f"epoch {self.epochs_done}/{cfg.epochs} done: train loss {train_loss:.4f}"
        if val:
            text += f", val top-1 {val['top1']:.2f}, top-5 {val['top5']:.2f}, loss {val['loss']:.4f}"
            if self.best:
                text += f" (best top-1 {self.best[0][0]:.2f} at epoch {self.best[0][1]})"
        text += f", {img_s:.1f} img/s, {elapsed:.1f}s; saved {os.path.basename(last)}"
        log.info(text)
        if self.stop_signal is not None:
            return self._exit_on_signal()
        if self.after_epoch is not None:
            self.after_epoch(self, self.epochs_done, val)
        return None

    def validate(self):
        """Validation with the EMA weights (``with_ema``) or the current weights; None if interrupted."""
        source = self.ema.state_dict() if self.ema is not None else \
            {p.name: p.asnumpy() for p in self.network.get_parameters()}
        for p in self.eval_model.get_parameters():
            p.set_data(ms.Tensor(source[p.name].astype(ms.dtype_to_nptype(p.dtype))))
        return evaluate(self.eval_net, self.val_data, self.group_size,
                        should_stop=lambda: self.stop_signal is not None)

    def _diverged(self, epoch, step, loss):
        last = os.path.join(self.run_dir, "last.ckpt")
        if os.path.isfile(last):
            keep = f"the last good checkpoint is {last} (epoch {self.epochs_done}) and was left untouched"
        else:
            keep = "no checkpoint was written before it"
        msg = (f"loss is {loss} at epoch {epoch + 1}, step {step + 1} (global step {self.global_step + 1}): "
               f"training diverged and was stopped; {keep}. Try a lower base_lr, clip_grad_norm > 0, "
               "more warmup, or check the data")
        self.logger.error(msg)
        raise TrainingDiverged(msg)


def train(cfg, after_step=None, after_epoch=None):
    """Train with the resolved config ``cfg``; returns the process exit code."""
    trainer = Trainer(cfg, after_step=after_step, after_epoch=after_epoch)
    try:
        trainer.setup()
        return trainer.fit()
    finally:
        remove_log_files()
