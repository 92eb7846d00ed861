"""Learning-rate schedules as pure per-step functions.

``lr_at(step)`` is the learning rate used by optimizer update number ``step`` (0-based, counted over the
whole run, in optimizer steps: accumulation micro-batches are not steps). The semantics are timm's
``create_scheduler_v2(..., step_on_epochs=False, updates_per_epoch=steps_per_epoch)`` with its default
``warmup_prefix=False`` (per-update schedule, ``t_in_epochs=False``), i.e. timm's ``_get_lr(t)``:

- warmup: ``warmup_lr + t * (base_lr - warmup_lr) / warmup_t`` for ``t < warmup_t``
  (``warmup_t = warmup_length * steps_per_epoch``); the decay below counts ``t`` from 0, not from the
  end of warmup, exactly like timm without ``warmup_prefix``;
- decay over ``t_initial = (epochs - cooldown_epochs) * steps_per_epoch`` steps:

  - ``cosine_lr``: ``min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi t / t_initial))`` (timm CosineLRScheduler);
  - ``polynomial_lr``: ``min_lr + (base_lr - min_lr) (1 - t / t_initial) ** lr_power`` (timm PolyLRScheduler);
  - ``step_lr``: ``base_lr * lr_gamma ** (t // (lr_adjust * steps_per_epoch))`` (timm StepLRScheduler);
  - ``multistep_lr``: ``base_lr * lr_gamma ** #{m : m * steps_per_epoch <= t + 1}`` (timm
    MultiStepLRScheduler, including its ``t + 1`` milestone convention);
  - ``exponential_lr``: ``base_lr * lr_gamma ** (t // steps_per_epoch)`` (per epoch; timm StepLRScheduler
    with ``decay_t`` = 1 epoch);
  - ``constant_lr``: ``base_lr``;

  the step-like schedules never go below ``min_lr`` (timm's step schedulers have no floor; with
  ``min_lr`` below the decayed values the numbers are the same);
- cooldown: ``min_lr`` for ``t >= t_initial`` (the last ``cooldown_epochs`` epochs), as timm's cosine and
  polynomial schedules give after ``t_initial``.
"""
import bisect
import math
from dataclasses import dataclass, field

from mszoo.constants import LR_SCHEDULERS


@dataclass(frozen=True)
class LRSchedule:
    """A learning-rate schedule; call it (or ``lr_at``) with the global optimizer step."""
    name: str
    base_lr: float
    steps_per_epoch: int
    epochs: int
    warmup_length: int = 0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    cooldown_epochs: int = 0
    lr_adjust: int = 30
    lr_gamma: float = 0.1
    lr_milestones: list[int] = field(default_factory=list)
    lr_power: float = 1.0

    def __post_init__(self):
        if self.name not in LR_SCHEDULERS:
            raise ValueError(f"lr_scheduler: unknown {self.name!r}; choose one of {', '.join(LR_SCHEDULERS)}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")

    @property
    def warmup_t(self):
        return self.warmup_length * self.steps_per_epoch

    @property
    def t_initial(self):
        return max(1, self.epochs - self.cooldown_epochs) * self.steps_per_epoch

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch

    def lr_at(self, step):
        t = int(step)
        if t < self.warmup_t:
            return self.warmup_lr + t * (self.base_lr - self.warmup_lr) / self.warmup_t
        if t >= self.t_initial and self.cooldown_epochs > 0:
            return self.min_lr
        return self._decay(t)

    __call__ = lr_at

    def _decay(self, t):
        spe = self.steps_per_epoch
        if self.name == "cosine_lr":
            if t >= self.t_initial:
                return self.min_lr
            return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * t / self.t_initial))
        if self.name == "polynomial_lr":
            if t >= self.t_initial:
                return self.min_lr
            return self.min_lr + (self.base_lr - self.min_lr) * (1.0 - t / self.t_initial) ** self.lr_power
        if self.name == "constant_lr":
            return self.base_lr
        if self.name == "step_lr":
            lr = self.base_lr * self.lr_gamma ** (t // (self.lr_adjust * spe))
        elif self.name == "multistep_lr":
            milestones = sorted(m * spe for m in self.lr_milestones)
            lr = self.base_lr * self.lr_gamma ** bisect.bisect_right(milestones, t + 1)
        else:  # exponential_lr
            lr = self.base_lr * self.lr_gamma ** (t // spe)
        return max(lr, self.min_lr)

    def values(self, start=0, stop=None):
        """The lr of every step in ``[start, stop)`` (default: the whole run)."""
        stop = self.total_steps if stop is None else stop
        return [self.lr_at(t) for t in range(start, stop)]


def create_schedule(cfg, steps_per_epoch, base_lr=None):
    """The schedule of ``cfg`` (``lr_scheduler`` and its keys) for ``steps_per_epoch`` optimizer steps."""
    return LRSchedule(name=cfg.lr_scheduler, base_lr=cfg.base_lr if base_lr is None else base_lr,
                      steps_per_epoch=steps_per_epoch, epochs=cfg.epochs, warmup_length=cfg.warmup_length,
                      warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr, cooldown_epochs=cfg.cooldown_epochs,
                      lr_adjust=cfg.lr_adjust, lr_gamma=cfg.lr_gamma, lr_milestones=list(cfg.lr_milestones),
                      lr_power=cfg.lr_power)
