"""Learning-rate schedules: per-step values equal timm's schedulers (per update, t_in_epochs=False)."""
import math

import pytest

from mszoo.config import parse_config
from mszoo.engine.schedulers import LRSchedule, create_schedule


def timm_values(sched, epochs, spe, total_epochs=None, **kw):
    """lr of every update from timm's create_scheduler_v2(step_on_epochs=False)."""
    import torch
    from timm.scheduler import create_scheduler_v2

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=kw.pop("lr"))
    scheduler, _ = create_scheduler_v2(opt, sched=sched, num_epochs=epochs, step_on_epochs=False,
                                       updates_per_epoch=spe, **kw)
    values = []
    for t in range((total_epochs or epochs) * spe):
        scheduler.step_update(num_updates=t)
        values.append(opt.param_groups[0]["lr"])
    return values


def assert_close(ours, theirs):
    assert len(ours) == len(theirs)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15), (t, a, b)


def test_cosine_with_warmup_and_cooldown_equals_timm():
    spe, epochs, cooldown = 7, 12, 2
    ours = LRSchedule("cosine_lr", base_lr=5e-4, steps_per_epoch=spe, epochs=epochs, warmup_length=3,
                      warmup_lr=1e-6, min_lr=1e-5, cooldown_epochs=cooldown).values()
    theirs = timm_values("cosine", epochs - cooldown, spe, total_epochs=epochs, lr=5e-4, min_lr=1e-5,
                         warmup_lr=1e-6, warmup_epochs=3, cooldown_epochs=cooldown)
    assert_close(ours, theirs)
    assert ours[0] == 1e-6 and ours[-cooldown * spe:] == [1e-5] * (cooldown * spe)


def test_step_schedule_equals_timm():
    ours = LRSchedule("step_lr", base_lr=0.1, steps_per_epoch=5, epochs=10, warmup_length=2, warmup_lr=1e-3,
                      min_lr=0.0, lr_adjust=3, lr_gamma=0.5).values()
    theirs = timm_values("step", 10, 5, lr=0.1, warmup_lr=1e-3, warmup_epochs=2, decay_epochs=3, decay_rate=0.5)
    assert_close(ours, theirs)


def test_multistep_schedule_equals_timm_including_its_milestone_convention():
    ours = LRSchedule("multistep_lr", base_lr=0.1, steps_per_epoch=4, epochs=9, warmup_length=1, warmup_lr=0.0,
                      min_lr=0.0, lr_milestones=[3, 6], lr_gamma=0.1).values()
    theirs = timm_values("multistep", 9, 4, lr=0.1, warmup_lr=0.0, warmup_epochs=1, decay_milestones=[3, 6],
                         decay_rate=0.1)
    assert_close(ours, theirs)


def test_polynomial_schedule_equals_timm():
    ours = LRSchedule("polynomial_lr", base_lr=0.01, steps_per_epoch=3, epochs=8, warmup_length=1,
                      warmup_lr=1e-4, min_lr=1e-4, lr_power=2.0).values()
    theirs = timm_values("poly", 8, 3, lr=0.01, warmup_lr=1e-4, warmup_epochs=1, min_lr=1e-4, decay_rate=2.0)
    assert_close(ours, theirs)


def test_exponential_is_per_epoch_decay_and_constant_holds_base_lr():
    exp = LRSchedule("exponential_lr", base_lr=1.0, steps_per_epoch=2, epochs=4, lr_gamma=0.5).values()
    assert exp == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    theirs = timm_values("step", 4, 2, lr=1.0, warmup_lr=0.0, warmup_epochs=0, decay_epochs=1, decay_rate=0.5)
    assert_close(exp, theirs)
    const = LRSchedule("constant_lr", base_lr=0.3, steps_per_epoch=2, epochs=3, warmup_length=1,
                       warmup_lr=0.1).values()
    assert_close(const, timm_values("constant", 3, 2, lr=0.3, warmup_lr=0.1, warmup_epochs=1))


def test_step_like_schedules_stop_at_min_lr_and_cooldown_is_min_lr():
    values = LRSchedule("step_lr", base_lr=1.0, steps_per_epoch=1, epochs=6, min_lr=0.05, lr_adjust=1,
                        lr_gamma=0.1, cooldown_epochs=1).values()
    assert values == [1.0, 0.1, 0.05, 0.05, 0.05, 0.05]


def test_create_schedule_reads_the_config_keys():
    cfg, _ = parse_config(["--lr_scheduler", "cosine_lr", "--base_lr", "0.01", "--warmup_length", "1",
                           "--warmup_lr", "0.001", "--epochs", "4", "--cooldown_epochs", "1", "--min_lr", "0.0001"])
    schedule = create_schedule(cfg, steps_per_epoch=10)
    assert schedule.lr_at(0) == pytest.approx(0.001)
    assert schedule.lr_at(5) == pytest.approx(0.001 + 5 * (0.01 - 0.001) / 10)
    assert schedule.lr_at(39) == pytest.approx(0.0001)
    assert schedule.total_steps == 40


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="lr_scheduler"):
        LRSchedule("linear", base_lr=0.1, steps_per_epoch=1, epochs=1)
