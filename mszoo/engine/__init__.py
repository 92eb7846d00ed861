"""Training engine: train step, optimizers, schedulers, losses, EMA, checkpoints, trainer, evaluator."""
