"""Load the dataset once for all Ray workers.

An evaluator factory may split its set-up in two: ``load_shared()`` runs once in the search
process (e.g. read the dataset), its value is ``ray.put`` into the object store once, and every
worker builds its evaluator with ``from_shared(value)`` (reading the arrays from shared memory
instead of loading the dataset again). :func:`sharing_factory` gives the search's
:class:`unas.train.worker.TrainingEvaluator` that shape; other factories are used as they are
(``factory()`` once per worker).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np

from unas.search.executor import EvalResult, EvalTask, EvaluatorFactory


@runtime_checkable
class SharedDataFactory(Protocol):
    """An evaluator factory whose expensive set-up can be done once and shared."""

    def __call__(self) -> Callable[[EvalTask], EvalResult]:
        """Set up everything in this process (what the serial executor calls)."""

    def load_shared(self) -> Any:
        """The picklable data every worker needs (loaded once, in the search process)."""

    def from_shared(self, shared: Any) -> Callable[[EvalTask], EvalResult]:
        """The evaluator, built in a worker from :meth:`load_shared`'s value."""


@dataclass(frozen=True)
class SharedSplitsTrainer:
    """A :class:`~unas.train.worker.TrainingEvaluator` whose dataset splits are loaded once
    (:meth:`load_shared`) and handed to each worker, which only builds its ``tf.data`` pipeline."""

    evaluator: Any

    @property
    def out_dir(self) -> str:
        """Where the wrapped evaluator saves models."""
        return str(self.evaluator.out_dir)

    def __call__(self) -> Callable[[EvalTask], EvalResult]:
        return self.evaluator()

    def load_shared(self) -> Any:
        from unas.data import load_dataset

        return load_dataset(self.evaluator.dataset, np.random.default_rng(self.evaluator.data_seed))

    def from_shared(self, shared: Any) -> Callable[[EvalTask], EvalResult]:
        from unas.train.trainer import DataPipeline

        data = DataPipeline(shared, self.evaluator.dataset, self.evaluator.training.batch_size)
        return partial(self.evaluator.evaluate, data=data)


def sharing_factory(factory: EvaluatorFactory) -> EvaluatorFactory:
    """``factory`` itself if it shares its data already or cannot; a :class:`SharedSplitsTrainer`
    around a :class:`~unas.train.worker.TrainingEvaluator`."""
    if isinstance(factory, SharedDataFactory):
        return factory
    from unas.train.worker import TrainingEvaluator

    if isinstance(factory, TrainingEvaluator):
        return SharedSplitsTrainer(factory)
    return factory
