"""Executor back-ends by name (``execution.backend`` in the config).

To add one (e.g. Ray), write a class implementing :class:`unas.search.executor.Executor` and
register a constructor here: ``EXECUTORS["ray"] = make_ray_executor``.
"""
from __future__ import annotations

from collections.abc import Callable

from unas.config import ExecutionConfig
from unas.errors import ConfigError
from unas.search.executor import EvaluatorFactory, Executor, SerialExecutor


def _serial(execution: ExecutionConfig, factory: EvaluatorFactory) -> Executor:
    return SerialExecutor(factory, recycle_after=execution.recycle_after,
                          candidate_timeout_s=execution.candidate_timeout_s)


EXECUTORS: dict[str, Callable[[ExecutionConfig, EvaluatorFactory], Executor]] = {"serial": _serial}


def make_executor(execution: ExecutionConfig, factory: EvaluatorFactory) -> Executor:
    """The executor ``execution.backend`` names, running ``factory``'s evaluator."""
    if execution.backend not in EXECUTORS:
        raise ConfigError(f"execution.backend: expected one of {', '.join(EXECUTORS)}, "
                          f"got {execution.backend!r}")
    return EXECUTORS[execution.backend](execution, factory)
