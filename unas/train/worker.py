"""The evaluator the search's executors run in their worker processes.

``TrainingEvaluator(...)`` is picklable; calling it (once per worker process) loads the dataset
and returns ``evaluate(task) -> EvalResult``, which trains the candidate and saves the trained
model to ``<out_dir>/models/<id>.keras``. It is a :class:`unas.evaluation.SharedDataFactory`:
on Ray the search loads the dataset once and every worker reads it from the object store.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.registry import architecture_from_json
from unas.config import PruningConfig, TrainingConfig
from unas.evaluation import EvalResult, EvalTask
from unas.files import atomic_write


@dataclass(frozen=True)
class TrainingEvaluator:
    """Evaluator factory: ``dataset`` is the :class:`unas.data.DatasetSpec`, loaded with
    ``np.random.default_rng(data_seed)`` (the search uses the same seed, so every process sees
    the same validation split)."""

    dataset: Any
    data_seed: int
    training: TrainingConfig
    pruning: PruningConfig
    out_dir: str
    save_models: bool = True

    def __call__(self) -> Callable[[EvalTask], EvalResult]:
        return self.from_shared(self.load_shared())

    def load_shared(self) -> Any:
        """The dataset splits (loaded once by the search and shared with every Ray worker, see
        :class:`unas.evaluation.SharedDataFactory`)."""
        from unas.data import load_dataset

        return load_dataset(self.dataset, np.random.default_rng(self.data_seed))

    def from_shared(self, shared: Any) -> Callable[[EvalTask], EvalResult]:
        """``evaluate`` over the splits :meth:`load_shared` returned (only the ``tf.data``
        pipeline is built here)."""
        from unas.train.trainer import DataPipeline

        data = DataPipeline(shared, self.dataset, self.training.batch_size)
        return partial(self.evaluate, data=data)

    def evaluate(self, task: EvalTask, data: Any) -> EvalResult:
        """Train ``task``'s architecture and report its errors (exceptions propagate: the
        executor turns them into a ``failed: ...`` result)."""
        from unas.train.trainer import train_candidate

        start = time.monotonic()
        arch = architecture_from_json(task.arch)
        outcome = train_candidate(arch, data, self.training, self.pruning, task.pruning_target,
                                  task.seed)
        model_path = None
        if self.save_models:
            model_path = f"models/{task.id}.keras"
            atomic_write(Path(self.out_dir) / model_path, outcome.model.save)
        final_arch = None if outcome.arch == arch else json.loads(outcome.arch.to_json())
        return EvalResult(id=task.id, status="ok", val_error=outcome.val_error,
                          test_error=outcome.test_error, curve=outcome.curve,
                          wall_time_s=time.monotonic() - start, final_arch=final_arch,
                          model_path=model_path)

