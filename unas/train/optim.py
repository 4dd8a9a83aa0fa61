"""Optimisers with decoupled weight decay (SGDW / AdamW) and a step learning-rate schedule."""
from __future__ import annotations

from typing import Any

from unas.config import TrainingConfig


def learning_rate_values(cfg: TrainingConfig) -> tuple[list[int], list[float]]:
    """Epoch boundaries and the learning rate before, between and after them.

    >>> from unas.config import LearningRateStep, TrainingConfig
    >>> learning_rate_values(TrainingConfig(learning_rate=0.01,
    ...     lr_steps=(LearningRateStep(35, 0.005), LearningRateStep(65, 0.001))))
    ([35, 65], [0.01, 0.005, 0.001])
    """
    return [s.epoch for s in cfg.lr_steps], [cfg.learning_rate] + [s.learning_rate for s in cfg.lr_steps]


def make_optimizer(cfg: TrainingConfig, steps_per_epoch: int) -> Any:
    """A fresh ``tf_keras`` optimiser: ``sgdw`` = SGD with momentum and decoupled weight decay,
    ``adamw`` = AdamW; the learning rate steps at the configured epochs."""
    from unas.tfenv import keras

    epochs, values = learning_rate_values(cfg)
    if epochs:
        rate: Any = keras.optimizers.schedules.PiecewiseConstantDecay(
            # the schedule holds values[i] while step <= boundaries[i]; epoch e starts at step
            # e * steps_per_epoch (steps counted from 0)
            boundaries=[e * steps_per_epoch - 1 for e in epochs], values=values)
    else:
        rate = cfg.learning_rate
    decay = cfg.weight_decay or None
    if cfg.optimizer == "sgdw":
        return keras.optimizers.SGD(learning_rate=rate, momentum=cfg.momentum, weight_decay=decay,
                                    jit_compile=False)
    return keras.optimizers.AdamW(learning_rate=rate, weight_decay=cfg.weight_decay,
                                  jit_compile=False)
