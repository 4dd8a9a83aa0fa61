"""Executor back-ends by name (``execution.backend`` in the config).

To add one, write a class implementing :class:`unas.search.executor.Executor` and register a
constructor here: ``EXECUTORS["name"] = make_name_executor``. ``ray`` is
:class:`unas.search.ray_executor.RayExecutor` (imported only when used).
"""
from __future__ import annotations

import os
from collections.abc import Callable

from unas.config import ExecutionConfig
from unas.errors import ConfigError
from unas.evaluation import EvaluatorFactory
from unas.search.executor import Executor, SerialExecutor


def _serial(execution: ExecutionConfig, factory: EvaluatorFactory) -> Executor:
    if execution.num_workers not in (None, 1):
        raise ConfigError(f"execution.num_workers: expected 1 with backend serial (backend: ray "
                          f"evaluates several at once), got {execution.num_workers}")
    out_dir = getattr(factory, "out_dir", None)  # the worker's TF chatter goes to a log file
    return SerialExecutor(factory, recycle_after=execution.recycle_after,
                          candidate_timeout_s=execution.candidate_timeout_s,
                          log_path=None if out_dir is None else os.path.join(out_dir, "worker.log"))


def _ray(execution: ExecutionConfig, factory: EvaluatorFactory) -> Executor:
    from unas.search.ray_executor import RayExecutor

    return RayExecutor(factory, num_workers=execution.num_workers, address=execution.address,
                       cpus_per_worker=execution.cpus_per_worker,
                       gpus_per_worker=execution.gpus_per_worker,
                       recycle_after=execution.recycle_after,
                       candidate_timeout_s=execution.candidate_timeout_s,
                       temp_root=getattr(factory, "out_dir", None))


EXECUTORS: dict[str, Callable[[ExecutionConfig, EvaluatorFactory], Executor]] = {
    "serial": _serial, "ray": _ray}


def make_executor(execution: ExecutionConfig, factory: EvaluatorFactory) -> Executor:
    """The executor ``execution.backend`` names, running ``factory``'s evaluator."""
    if execution.backend not in EXECUTORS:
        raise ConfigError(f"execution.backend: expected one of {', '.join(EXECUTORS)}, "
                          f"got {execution.backend!r}")
    return EXECUTORS[execution.backend](execution, factory)
