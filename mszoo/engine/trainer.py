"""The training loop behind ``train.py``: ``train(cfg) -> exit code``.

One run directory per run (``output_dir/run_name``, default ``<arch>-<YYYYmmdd-HHMMSS>``) holding
``config.yaml`` (resolved), ``train.log``, ``metrics.csv``, ``curves.png`` and the checkpoints that
``CheckpointManager`` keeps (``last.ckpt``, the last ``ckpt_keep_num`` epochs, the best ``best_ckpt_num``
by val top-1). Every checkpoint holds the whole training state (see ``mszoo.engine.checkpoint``), so
``--resume RUN_DIR_or_CKPT`` continues exactly: same epoch and step, lr, loss scale, optimizer moments,
EMA and best list; the data order of the interrupted epoch is replayed from its seed.

SIGINT / SIGTERM finish the current step, save ``last.ckpt`` and exit with 130 / 143 (``SignalStop``).
A non-finite loss stops the run with a clear message; the last good checkpoint is left untouched. Only
rank 0 writes files.

Reading order: ``setup`` (config -> run directory -> data -> model -> resumed state), then ``fit`` ->
``run_epoch`` (train the epoch's steps -> validate -> save -> log).
"""
import math
import os
import threading
import time

import mindspore as ms
import numpy as np

from mszoo.config import ConfigError, config_text, copy_config, format_config, save_config, source_of, validate
from mszoo.cpu.kernels import use_fused_kernels
from mszoo.logger import add_log_file, get_logger, get_rank, remove_log_files
from mszoo.models.loading import TRAINING_STATE_PREFIXES, CheckpointFile, load_weights
from mszoo.resolve import (
    build_model,
    fill_preprocessing,
    load_pretrained_into,
    pretrained_file,
    record_of,
    resolve_from_checkpoint,
)

from .checkpoint import (
    assign_parameters,
    load_training_checkpoint,
    remove_stale_tmp,
    resolve_resume_path,
    save_checkpoint_atomic,
)
from .checkpoint_manager import CheckpointManager
from .criterion import create_criterion
from .datasets import (
    KeptLoader,
    build_eval_dataset,
    build_train_dataset,
    merge_saved_config,
    seed_everything,
    stop_iterator,
)
from .distributed import distributed_group_size, rescale_position, run_stamp
from .ema import EMA
from .evaluator import EvalNet, evaluate
from .interrupt import SignalStop
from .optim import create_optimizer
from .reporting import (
    MetricsLogger,
    ProgressBar,
    StepTimer,
    format_epoch_line,
    format_lr,
    format_step_line,
    progress_enabled,
    redirect_logging,
)
from .schedulers import create_schedule
from .train_step import apply_amp, build_train_step


class TrainingDiverged(ValueError):
    """The loss became NaN/inf (message says where and which checkpoint is the last good one)."""


def _count_params(cell):
    return sum(int(np.prod(p.shape)) for p in cell.get_parameters())


class Trainer:
    """Set-up and loop of one training run; works on a copy of ``cfg`` (the caller's is left as it was).

    Hooks: ``after_step(trainer)`` after every optimizer step (tests); ``after_epoch(trainer, epoch, val)``
    after every epoch with its validation metrics or None (tune_params.py reports them to Optuna; an
    exception raised there ends the run after the epoch's checkpoint was saved); ``before_compile(cfg,
    group_size)`` once the config is resolved and the model built, before any graph compiles (train.py's
    compile cache, ``mszoo.cli.use_compile_cache``).

    The train step's graphs always compile first, even when a resumed run validates before its first step:
    MindSpore's compile cache numbers graphs in compile order and does not check their inputs.
    """

    def __init__(self, cfg, after_step=None, after_epoch=None, before_compile=None):
        self.cfg = copy_config(cfg)
        self.after_step = after_step
        self.after_epoch = after_epoch
        self.before_compile = before_compile
        self.logger = get_logger()
        self.rank = get_rank()
        self.is_main = self.rank == 0
        self.state_lock = threading.RLock()  # held while the training state changes (steps, epoch end)
        self.stop = SignalStop(self.save_last, self._where_stopped, self.state_lock, self.logger)
        self.timer = StepTimer()
        # built by setup()
        self.run_dir = None
        self.group_size = 1
        self.train_data = self.val_data = None
        self.val_loader = None  # KeptLoader over val_data
        self.class_names = []
        self.steps_per_epoch = 0
        self.base_lr = None  # cfg.base_lr, scaled by lr_scale_batch
        self.model = self.network = self.optimizer = self.ema = self.train_step = self.schedule = None
        self.eval_model = self.eval_net = None
        self.checkpoints = None  # CheckpointManager
        self.metrics = None  # MetricsLogger
        # training progress (saved in every checkpoint)
        self.epochs_done = 0
        self.epoch_step = 0  # optimizer steps done in the epoch in progress
        self.global_step = 0
        self.epoch_loss_sum = 0.0
        self.epoch_loss_count = 0
        self.last_val = None
        self.overflows = 0
        # this process
        self.steps_run = 0  # optimizer steps run by this process (the first one compiles)
        self.lr = 0.0  # the lr of the last step

    # ------------------------------------------------------------------------------------ set-up
    def setup(self):
        resume_ckpt, taken, pretrained = self._resolve_config()
        self._open_run_dir(resume_ckpt, taken)
        self._build_data(resume_ckpt)
        self._build_model(pretrained)
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        if self.before_compile is not None:
            self.before_compile(self.cfg, self.group_size)
        self._log_setup()
        return self

    def _resolve_config(self):
        """Resume checkpoint (its saved config fills keys left at default) or fine-tuning checkpoint (its
        model and preprocessing), then validation and seeding. Returns ``(resume_ckpt, keys taken from its saved
        config, pretrained)``."""
        cfg = self.cfg
        resume_ckpt = pretrained = None
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
        if cfg.pretrained and resume_ckpt is None:
            pretrained = CheckpointFile(pretrained_file(cfg))
            # its model and preprocessing, not its classes (the train folder decides those)
            resolve_from_checkpoint(cfg, pretrained, take_num_classes=False)
        else:
            fill_preprocessing(cfg)
        validate(cfg, need_data=True, need_train_data=True)
        seed_everything(cfg.seed)
        self.group_size = distributed_group_size()
        return resume_ckpt, taken, pretrained

    def _open_run_dir(self, resume_ckpt, taken):
        """The run directory (new, or the resumed run's), its log file and the printed config."""
        cfg, log = self.cfg, self.logger
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
        log.info(f"run directory: {self.run_dir}")
        log.info("config:\n" + format_config(cfg))
        for note in cfg.notes:
            log.info(f"note: {note}")
        best = []
        if resume_ckpt is not None:
            log.info(f"resuming from {resume_ckpt.path}" + (f" (keys from its saved config: {', '.join(taken)})"
                                                             if taken else ""))
            state = resume_ckpt.train_state
            self.epochs_done = int(state["epochs_done"])
            self.epoch_step = int(state.get("epoch_step", 0))
            best = state.get("best", [])
        self.checkpoints = CheckpointManager(self.run_dir, cfg.epochs, cfg.ckpt_keep_num, cfg.best_ckpt_num,
                                             cfg.ckpt_save_every_seconds, self.is_main, best,
                                             save_every_steps=cfg.ckpt_save_every_step)
        self.metrics = MetricsLogger(self.run_dir, self.logger, enabled=self.is_main)

    def _build_data(self, resume_ckpt):
        """A probe of the training pipeline for the classes and the epoch length (every epoch builds its own
        pipeline right before iterating it, seeded by (seed, epoch), so a resumed epoch sees the same data),
        the validation pipeline, and the saved config.yaml."""
        cfg = self.cfg
        ckpt_classes = resume_ckpt.class_names if resume_ckpt is not None else None
        self.train_data = build_train_dataset(cfg, epoch=self.epochs_done, class_names=ckpt_classes)
        self.class_names = list(self.train_data.class_names)
        n_classes = len(self.class_names)
        if cfg.num_classes != n_classes:
            if source_of(cfg, "num_classes") != "default":
                raise ConfigError(f"num_classes: {cfg.num_classes}, but {self.train_data.directory} has "
                                  f"{n_classes} class folders (from {source_of(cfg, 'num_classes')})")
            cfg.num_classes = n_classes
            cfg.set_source("num_classes", "train folder")
        self.val_data = build_eval_dataset(cfg, class_names=self.class_names)
        batches = self.train_data.get_dataset_size()
        steps = batches // cfg.accumulation_steps
        if steps < 1:
            raise ConfigError(f"accumulation_steps: {batches} batches per epoch cannot make one step of "
                              f"{cfg.accumulation_steps} micro-batches (from {source_of(cfg, 'accumulation_steps')})")
        self.steps_per_epoch = min(steps, cfg.steps_per_epoch) if cfg.steps_per_epoch else steps
        if self.is_main:
            save_config(cfg, os.path.join(self.run_dir, "config.yaml"))

    def _build_model(self, pretrained):
        """Model (fine-tuning weights loaded), AMP network, optimizer, EMA, train step, eval copy, lr schedule."""
        cfg = self.cfg
        self.model = build_model(cfg)
        if pretrained is not None:
            self._load_pretrained(pretrained)
        no_wd = self.model.no_weight_decay() if hasattr(self.model, "no_weight_decay") else set()
        self.network = apply_amp(self.model, cfg.amp_level, cfg.keep_bn_fp32)
        self.optimizer = create_optimizer(cfg, self.network.trainable_params(), no_wd)
        self.ema = EMA(self.network.get_parameters(), cfg.ema_decay) if cfg.with_ema else None
        self.train_step = build_train_step(self.network, create_criterion(cfg), self.optimizer, cfg, self.ema)
        self.eval_model = build_model(cfg, training=False)
        use_fused_kernels(self.eval_model)  # the cells whose kernels also run in evaluation (PEG, unfolds)
        self.eval_net = EvalNet(self.eval_model)
        self.base_lr = cfg.base_lr * self._global_batch() / cfg.lr_scale_batch if cfg.lr_scale_batch else cfg.base_lr
        self.schedule = create_schedule(cfg, self.steps_per_epoch, base_lr=self.base_lr)

    def _global_batch(self):
        return self.cfg.batch_size * self.cfg.accumulation_steps * self.group_size

    def _load_pretrained(self, ckpt):
        """Fine-tuning start: the checkpoint's weights by the one load; only the head may be replaced (logged)."""
        replaced, which = load_pretrained_into(self.model, self.cfg, ckpt, fine_tune=True)
        text = f"starting from the {which} of {ckpt.path}"
        if replaced:
            old = ckpt.head_classes()
            text += (f"; new {self.cfg.num_classes}-class head for fine-tuning (the checkpoint's has "
                     f"{old if old is not None else 'no'} classes), re-initialised: {', '.join(replaced)}")
        self.logger.info(text)

    def _restore(self, ckpt):
        """The resumed run's weights, optimizer, loss scale, EMA and progress counters."""
        state = ckpt.train_state
        where = f"resume from {ckpt.path}"
        # the weights by the one rule (missing, unexpected, mis-shaped named); the training state as it was saved
        load_weights(self.network, ckpt.tensors, source=where, ignore_prefixes=TRAINING_STATE_PREFIXES)
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
        self.last_val = state.get("last_val")
        self.overflows = int(self.train_step.overflow_count.asnumpy())
        scale = float(self.train_step.loss_scale.asnumpy())
        self.logger.info(f"resumed at epoch {self.epochs_done + 1}, step {self.epoch_step}/{self.steps_per_epoch} "
                         f"(global step {self.global_step}), loss scale {scale:g}")

    def _log_setup(self):
        cfg, log = self.cfg, self.logger
        global_batch = self._global_batch()
        log.info(f"model {cfg.arch}: {_count_params(self.model) / 1e6:.3f}M parameters, {len(self.class_names)} "
                 f"classes, amp {cfg.amp_level}, optimizer {cfg.optimizer}, lr {format_lr(self.base_lr)} "
                 f"({cfg.lr_scheduler})")
        log.info(f"data: {self.train_data.num_files} train images in {self.train_data.directory}, "
                 f"{self.val_data.num_files} val images in {self.val_data.directory}; "
                 f"{self.steps_per_epoch} steps/epoch of {cfg.batch_size} x {cfg.accumulation_steps} "
                 f"x {self.group_size} device(s) = global batch {global_batch}")
        if cfg.lr_scale_batch:
            log.info(f"lr scaling rule: base_lr {format_lr(cfg.base_lr)} x global batch {global_batch} / "
                     f"lr_scale_batch {cfg.lr_scale_batch} = {format_lr(self.base_lr)}")

    # ----------------------------------------------------------------------------- checkpoints
    def _state_tensors(self):
        """The Parameters a checkpoint holds, as they are: every save runs under the state lock, so no step changes
        them meanwhile, and the save makes no second copy of the weights, moments and EMA."""
        params = list(self.network.get_parameters()) + self.optimizer.state_parameters() + \
            self.train_step.state_parameters() + (self.ema.state_parameters() if self.ema is not None else [])
        return {p.name: p for p in params}

    def _train_state(self):
        return {"epochs_done": self.epochs_done, "epoch_step": self.epoch_step, "global_step": self.global_step,
                "steps_per_epoch": self.steps_per_epoch, "epoch_loss_sum": self.epoch_loss_sum,
                "epoch_loss_count": self.epoch_loss_count, "best": self.checkpoints.best,
                "last_val": self.last_val, "arch": self.cfg.arch, "global_batch": self._global_batch(),
                "group_size": self.group_size}

    def save_last(self):
        """Write ``last.ckpt`` with the current state (rank 0); returns its path."""
        path = os.path.join(self.run_dir, "last.ckpt")
        if not self.is_main:
            return path
        save_checkpoint_atomic(path, self._state_tensors(), self._train_state(), config_text(self.cfg),
                               self.class_names, record=record_of(self.cfg, self.class_names))
        return path

    def _where_stopped(self):
        return (f"(epoch {self.epochs_done + 1}, step {self.epoch_step}/{self.steps_per_epoch}); continue with: "
                f"python train.py --resume {self.run_dir}")

    # -------------------------------------------------------------------------------------- loop
    def fit(self):
        cfg = self.cfg
        self.stop.install()
        try:
            if self.epochs_done >= cfg.epochs:
                self.logger.info(f"nothing to do: {self.epochs_done} of {cfg.epochs} epochs are done")
                return 0
            self.metrics.start(self.epochs_done)
            self.checkpoints.mark_saved()
            self.val_loader = KeptLoader(self.val_data, passes=sum(map(self._validates_after, range(
                self.epochs_done + 1, cfg.epochs + 1))))
            for epoch in range(self.epochs_done, cfg.epochs):
                code = self.run_epoch(epoch)
                if code is not None:
                    return code
            best = self.checkpoints.best
            best = f"; best val top-1 {best[0][0]:.2f} (epoch {best[0][1]})" if best else ""
            self.logger.info(f"training done: {cfg.epochs} epochs, {self.global_step} steps{best}; "
                             f"outputs in {self.run_dir}")
            return 0
        finally:
            if self.val_loader is not None and not self.stop.requested:  # after a signal workers may be dead
                self.val_loader.close()
            self.stop.restore()

    def run_epoch(self, epoch):
        """One epoch (0-based): its steps, validation, checkpoints, metrics. Returns an exit code to stop
        the run (signal), else None."""
        start = time.time()
        code = self.train_epoch(epoch)
        if code is not None:
            return code
        train_loss = self._end_epoch_training(epoch)
        val = None
        if self._validates_after(self.epochs_done):
            val = self.validate()
            if val is None:  # interrupted during validation: the epoch's training is done and saved
                self._reset_epoch_loss()
                return self.stop.exit()
            self.last_val = val
        with self.state_lock:
            self._reset_epoch_loss()
            last = self.checkpoints.end_epoch(self.epochs_done, val["top1"] if val else None, self.save_last)
        self._log_epoch(train_loss, val, last, time.time() - start)
        if self.stop.requested:
            return self.stop.exit()
        if self.after_epoch is not None:
            self.after_epoch(self, self.epochs_done, val)
        return None

    def _validates_after(self, epochs_done):
        """Whether the run validates once ``epochs_done`` epochs are trained: every ``eval_every`` and the last."""
        return epochs_done % self.cfg.eval_every == 0 or epochs_done == self.cfg.epochs

    def train_epoch(self, epoch):
        """The optimizer steps of epoch ``epoch`` from ``epoch_step`` on (a resumed epoch replays its data
        order up to there). Returns an exit code when a signal stopped it, else None."""
        cfg, log = self.cfg, self.logger
        if self.stop.requested:  # asked between two epochs: stop before starting the next one's pipeline
            return self.stop.exit()
        if self.epoch_step == 0:
            self._reset_epoch_loss()
        data = build_train_dataset(cfg, epoch=epoch, class_names=self.class_names)
        iterator = data.create_tuple_iterator(num_epochs=1)
        show_bar = self.is_main and progress_enabled(cfg.progress)
        bar = ProgressBar(show_bar, self.steps_per_epoch, epoch + 1, cfg.epochs, initial=self.epoch_step)
        self.lr = self.schedule(self.global_step)
        try:
            with redirect_logging(log, show_bar):
                for _ in range(self.epoch_step * cfg.accumulation_steps):
                    next(iterator)
                if self.steps_run == 0:
                    log.info("compiling the train step (the first step takes longer)")
                self.timer.start_epoch()
                for step in range(self.epoch_step, self.steps_per_epoch):
                    micro = self._next_micro_batches(iterator, step)
                    if micro is None:
                        break
                    loss, scale, grad_norm = self._train_step(micro, epoch, step)
                    bar.update(loss, self.lr, self.timer.img_s)
                    self._log_step(epoch, step, loss, scale, grad_norm)
                    if self.after_step is not None:
                        self.after_step(self)
                    if self.stop.requested:
                        bar.close()
                        return self.stop.exit()
                    self._timed_save()
        finally:
            bar.close()
            if not self.stop.requested:  # after a signal the workers may be dead: stop() could wait forever
                stop_iterator(iterator)
        return None

    def _next_micro_batches(self, iterator, step):
        """The ``accumulation_steps`` batches of one optimizer step, or None when the data ended early."""
        try:
            return [next(iterator) for _ in range(self.cfg.accumulation_steps)]
        except StopIteration:
            self.logger.warning(f"the training data ended after {step} of {self.steps_per_epoch} steps")
            return None

    def _train_step(self, micro, epoch, step):
        """One optimizer step and the progress counters, atomically for a signal-time save."""
        with self.state_lock:
            self.lr = self.schedule(self.global_step)
            loss, overflow, scale, grad_norm = self.train_step.run(micro, self.lr)
            self.timer.tick(self._global_batch(), exclude=self.steps_run == 0)
            self.steps_run += 1
            if not math.isfinite(loss):
                self._diverged(epoch, step, loss)
            self.global_step += 1
            self.epoch_step = step + 1
            self.overflows += int(overflow)
            self.epoch_loss_sum += loss
            self.epoch_loss_count += 1
        return loss, scale, grad_norm

    def _log_step(self, epoch, step, loss, scale, grad_norm):
        """The model-zoo readmes' step line every ``print_loss_every`` steps and at the epoch's last step."""
        cfg = self.cfg
        if (step + 1) % cfg.print_loss_every != 0 and step + 1 != self.steps_per_epoch:
            return
        show_scale = cfg.amp_level != "O0" or self.overflows > 0
        self.logger.info(format_step_line(epoch + 1, cfg.epochs, step + 1, self.steps_per_epoch, loss,
                                          self.epoch_loss_sum / self.epoch_loss_count, self.timer.pop_window_ms(),
                                          self.lr, grad_norm=grad_norm, scale=scale if show_scale else None,
                                          overflows=self.overflows))

    def _timed_save(self):
        """``last.ckpt`` mid-epoch every ``ckpt_save_every_seconds`` / ``ckpt_save_every_step`` steps (the
        epoch's end saves anyway)."""
        if self.epoch_step < self.steps_per_epoch and self.checkpoints.save_due(self.global_step):
            with self.state_lock:
                self.save_last()
            self.checkpoints.mark_saved()

    def _end_epoch_training(self, epoch):
        """Mark epoch ``epoch`` trained; returns its mean train loss."""
        train_loss = self.epoch_loss_sum / max(1, self.epoch_loss_count)
        with self.state_lock:
            self.epochs_done = epoch + 1
            self.epoch_step = 0
        return train_loss

    def _reset_epoch_loss(self):
        self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0

    def _log_epoch(self, train_loss, val, last, seconds):
        img_s = self.timer.img_s
        self.metrics.log_epoch({
            "epoch": self.epochs_done, "step": self.global_step, "lr": self.lr, "train_loss": train_loss,
            "val_top1": val["top1"] if val else None, "val_top5": val["top5"] if val else None,
            "val_loss": val["loss"] if val else None, "img_s": round(img_s, 2), "time": round(seconds, 2)},
            final=self.epochs_done >= self.cfg.epochs)
        self.logger.info(format_epoch_line(self.epochs_done, self.cfg.epochs, train_loss, val, self.checkpoints.best,
                                           img_s, seconds, last))

    def _compile_train_step(self):
        """Compile the train step's graphs on the first batch of this epoch's order, when a resumed run
        validates before its first step (see the class docstring)."""
        data = build_train_dataset(self.cfg, epoch=self.epochs_done, class_names=self.class_names)
        iterator = data.create_tuple_iterator(num_epochs=1)
        try:
            micro = [next(iterator) for _ in range(self.cfg.accumulation_steps)]
        finally:
            stop_iterator(iterator)
        self.train_step.compile_graphs(micro, self.schedule(self.global_step))

    def validate(self):
        """Validation with the EMA weights (``with_ema``) or the current weights; None if interrupted."""
        if not self.train_step.graphs_compiled and ms.get_context("mode") == ms.GRAPH_MODE:
            self._compile_train_step()
        if self.ema is not None:
            self.ema.copy_to(self.eval_model)
        else:
            weights = {p.name: p for p in self.network.get_parameters()}
            for p in self.eval_model.get_parameters():
                p.set_data(ms.Tensor(weights[p.name].asnumpy().astype(ms.dtype_to_nptype(p.dtype))))
        return evaluate(self.eval_net, self.val_loader, self.group_size, should_stop=lambda: self.stop.requested)

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


def train(cfg, after_step=None, after_epoch=None, before_compile=None):
    """Train with the resolved config ``cfg`` (left unchanged); returns the process exit code."""
    trainer = Trainer(cfg, after_step=after_step, after_epoch=after_epoch, before_compile=before_compile)
    try:
        trainer.setup()
        return trainer.fit()
    finally:
        remove_log_files()
