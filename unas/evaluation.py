"""What the search asks and what it gets back: the messages between the search and whoever trains.

The search (:mod:`unas.search`) sends an :class:`EvalTask` per candidate to an executor and
reads an :class:`EvalResult` back; the work itself is an *evaluator factory*: a picklable
callable run once per worker process (load the dataset there) that returns
``evaluate(task) -> EvalResult``. The trainer (:class:`unas.train.worker.TrainingEvaluator`)
is one; the search never imports it, so it never imports TensorFlow.

A factory may also split its set-up in two (:class:`SharedDataFactory`): ``load_shared()`` runs
once in the search process, its value goes into Ray's object store once, and every worker builds
its evaluator with ``from_shared(value)``.

>>> task = EvalTask(id=3, arch={"space": "mlp"}, seed=7)
>>> EvalResult(id=task.id, status="ok", val_error=0.1).status
'ok'
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class EvalTask:
    """Train and measure one architecture (``arch`` is its JSON dict)."""

    id: int
    arch: dict[str, Any]
    seed: int
    pruning_target: float | None = None


@dataclass(frozen=True)
class EvalResult:
    """The outcome of one :class:`EvalTask`. ``status`` is ``ok`` or ``failed: <reason>``;
    ``final_arch`` is the architecture after pruning (``None``: unchanged); ``model_path`` is
    where the trained ``.keras`` model was saved, relative to the output folder."""

    id: int
    status: str
    val_error: float | None = None
    test_error: float | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    final_arch: dict[str, Any] | None = None
    model_path: str | None = None


EvaluatorFactory = Callable[[], Callable[[EvalTask], EvalResult]]


@runtime_checkable
class SharedDataFactory(Protocol):
    """An evaluator factory whose expensive set-up can be done once and shared."""

    def __call__(self) -> Callable[[EvalTask], EvalResult]:
        """Set up everything in this process (what the serial executor calls)."""

    def load_shared(self) -> Any:
        """The picklable data every worker needs (loaded once, in the search process)."""

    def from_shared(self, shared: Any) -> Callable[[EvalTask], EvalResult]:
        """The evaluator, built in a worker from :meth:`load_shared`'s value."""
