"""Evaluate several candidates at once on Ray actors (``execution.backend: ray``).

>>> executor = RayExecutor(factory, num_workers=2)         # doctest: +SKIP
>>> executor.submit(task_a); executor.submit(task_b)       # doctest: +SKIP
>>> executor.next_result(5.0)                              # doctest: +SKIP
EvalResult(id=..., status='ok', ...)
>>> executor.close()                                       # doctest: +SKIP

Same :class:`unas.search.executor.Executor` protocol as the serial executor, with
``capacity = num_workers`` candidates in flight (one per actor):

- each actor sets up its evaluator once; a factory that shares its data
  (:class:`unas.evaluation.SharedDataFactory`) has the dataset ``ray.put`` once by the search and read from
  the object store by every actor;
- an actor is replaced by a fresh one after ``recycle_after`` candidates (TensorFlow leaks memory
  per model even with ``clear_session()``);
- a candidate that raises (NaN loss included) becomes ``failed: <reason>``; a candidate whose
  actor dies is resubmitted once to a fresh actor and is ``failed: worker process died ...`` if
  that one dies too; a full disk or exhausted memory is the machine's failure, not the
  candidate's (:func:`~unas.search.executor.infrastructure_reason`: the search stops); a candidate running past ``candidate_timeout_s`` fails and its actor is
  replaced; an evaluator that cannot even be set up raises
  :class:`~unas.search.executor.WorkerStartError` (the search stops: nothing could be trained);
- on a joined cluster, a model saved on another machine is sent back and written to the same
  path under the output folder.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unas.errors import UnasError
from unas.files import atomic_write_bytes
from unas.evaluation import EvalResult, EvalTask, EvaluatorFactory, SharedDataFactory
from unas.search.executor import MAX_ATTEMPTS, WorkerStartError, failed, failure_of
from unas.search.ray_runtime import (RaySession, connect_ray, default_cpus_per_worker,
                                     default_num_workers, local_cpu_count)

def describe_error(err: BaseException) -> str:
    """``Type: message (at file.py:line)`` of an exception, for a ``failed:`` status."""
    text = str(err) if isinstance(err, UnasError) else f"{type(err).__name__}: {err}"
    tail = traceback.extract_tb(err.__traceback__)[-1:]
    return text + (f" (at {tail[0].filename.rsplit('/', 1)[-1]}:{tail[0].lineno})" if tail else "")


class EvaluationActor:
    """What runs in one Ray worker process (wrapped with ``ray.remote`` by the executor)."""

    def __init__(self, factory: EvaluatorFactory, shared: Any, driver_node: str,
                 hide_gpus: bool = False) -> None:
        self._factory = factory
        self._shared = shared
        self._driver_node = driver_node
        self._hide_gpus = hide_gpus
        self._evaluate: Callable[[EvalTask], EvalResult] | None = None

    def setup(self) -> tuple[str, Any]:
        """Build the evaluator: ``("ready", pid)`` or ``("fatal", reason)``."""
        if self._hide_gpus:  # before TensorFlow is imported: a CPU worker grabs no GPU memory
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        try:
            if isinstance(self._factory, SharedDataFactory) and self._shared is not None:
                self._evaluate = self._factory.from_shared(self._shared)
            else:
                self._evaluate = self._factory()
        except Exception as err:  # noqa: BLE001 - reported to the search, which stops
            return "fatal", " ".join(describe_error(err).split())
        finally:
            self._shared = None  # the evaluator holds what it needs
        return "ready", os.getpid()

    def evaluate(self, task: EvalTask) -> tuple[EvalResult, bytes | None]:
        """Evaluate ``task``; the saved model's bytes come along if the search runs elsewhere."""
        start = time.monotonic()
        if self._evaluate is None:
            return failed(task.id, "the worker's evaluator was not set up"), None
        try:
            result = self._evaluate(task)
        except Exception as err:  # noqa: BLE001 - one candidate's failure, not the search's
            return failure_of(task.id, err, describe_error(err), time.monotonic() - start), None
        return result, self._model_bytes(result)

    def _model_bytes(self, result: EvalResult) -> bytes | None:
        import ray

        out_dir = getattr(self._factory, "out_dir", None)
        if (result.model_path is None or out_dir is None
                or ray.get_runtime_context().get_node_id() == self._driver_node):
            return None
        path = Path(out_dir) / result.model_path
        data = path.read_bytes()
        path.unlink()
        return data


@dataclass
class _Slot:
    """One worker place: its actor (started lazily) and the candidate it is evaluating."""

    actor: Any = None
    setup_ref: Any = None
    ready: bool = False
    pid: int | None = None
    done: int = 0
    task: EvalTask | None = None
    ref: Any = None
    started: float = 0.0


class RayExecutor:
    """``num_workers`` Ray actors evaluating candidates concurrently (see module docstring).

    ``address``: ``None`` starts a quiet local Ray (temporary files under ``temp_root``), else
    the cluster to join. ``num_workers`` / ``cpus_per_worker`` default to
    :func:`~unas.search.ray_runtime.default_num_workers` and an even share of the cluster's CPUs.
    """

    def __init__(self, factory: EvaluatorFactory, num_workers: int | None = None,
                 address: str | None = None, cpus_per_worker: float | None = None,
                 gpus_per_worker: float = 0.0, recycle_after: int = 8,
                 candidate_timeout_s: float | None = None, temp_root: str | Path | None = None,
                 poll_interval_s: float = 0.5) -> None:
        import ray

        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self._factory = factory
        # A local Ray gets at least the CPUs the workers ask for (oversubscribing the cores if
        # the config says so) rather than leaving some workers waiting for CPUs forever.
        asked = math.ceil((num_workers or 0) * (cpus_per_worker or 1.0))
        self._session: RaySession = connect_ray(
            address, temp_root, num_cpus=max(local_cpu_count(), asked) if address is None else None)
        cpus = self._session.total_cpus
        self.capacity = num_workers or default_num_workers(cpus)
        self.cpus_per_worker = cpus_per_worker or default_cpus_per_worker(cpus, self.capacity)
        self.gpus_per_worker = gpus_per_worker
        self._recycle_after = recycle_after
        self._timeout = candidate_timeout_s
        self._poll = poll_interval_s
        self._out_dir = getattr(self._factory, "out_dir", None)
        self._actor_class = ray.remote(EvaluationActor)
        self._shared_ref: Any = None
        if isinstance(self._factory, SharedDataFactory):
            try:
                self._shared_ref = ray.put(self._factory.load_shared())
            except BaseException:
                self._session.close()  # e.g. the dataset is missing: no Ray left behind
                raise
        self._slots = [_Slot() for _ in range(self.capacity)]
        self._attempts: dict[int, int] = {}
        self.workers_started = 0
        self.workers_lost = 0

    @property
    def temp_dir(self) -> Path | None:
        """The local Ray's temporary folder (sockets, ``session_*/logs``), if started here."""
        return self._session.temp_dir

    def worker_pids(self) -> dict[int, int]:
        """Task id → process id of the worker evaluating it (workers that are set up)."""
        return {s.task.id: s.pid for s in self._slots if s.task is not None and s.pid is not None}

    # -- actors --------------------------------------------------------------------------------
    def _start_actor(self, slot: _Slot) -> None:
        options: dict[str, Any] = dict(num_cpus=self.cpus_per_worker, max_restarts=0,
                                       max_task_retries=0)
        if self.gpus_per_worker:
            options["num_gpus"] = self.gpus_per_worker
        slot.actor = self._actor_class.options(**options).remote(
            self._factory, self._shared_ref, self._session.node_id, not self.gpus_per_worker)
        slot.setup_ref = slot.actor.setup.remote()
        slot.ready, slot.pid, slot.done = False, None, 0
        self.workers_started += 1

    def _stop_actor(self, slot: _Slot) -> None:
        import ray

        if slot.actor is not None:
            ray.kill(slot.actor, no_restart=True)
        slot.actor = slot.setup_ref = slot.pid = None
        slot.ready = False

    def _run_on(self, slot: _Slot, task: EvalTask) -> None:
        if slot.actor is None:
            self._start_actor(slot)
        slot.task = task
        slot.ref = slot.actor.evaluate.remote(task)
        slot.started = time.monotonic()
        self._attempts[task.id] = self._attempts.get(task.id, 0) + 1

    # -- Executor protocol ---------------------------------------------------------------------
    def submit(self, task: EvalTask) -> None:
        """Start evaluating ``task`` on a free worker (at most ``capacity`` in flight)."""
        free = [s for s in self._slots if s.task is None]
        if not free:
            raise RuntimeError(f"RayExecutor already has {self.capacity} tasks in flight "
                               f"(capacity {self.capacity})")
        self._run_on(free[0], task)

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        """The next finished result, or None if none finished within ``timeout`` seconds."""
        import ray

        deadline = None if timeout is None else time.monotonic() + timeout
        while any(s.task is not None for s in self._slots):
            waiting: dict[Any, tuple[str, _Slot]] = {}
            for slot in self._slots:
                if slot.setup_ref is not None and not slot.ready:
                    waiting[slot.setup_ref] = ("setup", slot)
                if slot.task is not None:
                    waiting[slot.ref] = ("task", slot)
            wait = self._poll if deadline is None else max(
                0.0, min(self._poll, deadline - time.monotonic()))
            done, _ = ray.wait(list(waiting), num_returns=1, timeout=wait)
            for ref in done:
                kind, slot = waiting[ref]
                result = self._on_setup(slot) if kind == "setup" else self._on_task(slot)
                if result is not None:
                    return result
            result = self._check_timeouts()
            if result is not None:
                return result
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def _on_setup(self, slot: _Slot) -> EvalResult | None:
        import ray

        try:
            kind, payload = ray.get(slot.setup_ref)
        except ray.exceptions.RayError as err:
            return self._lost(slot, err)
        if kind == "fatal":
            self.close()
            raise WorkerStartError(f"evaluation worker could not start: {payload}")
        slot.ready, slot.pid = True, int(payload)
        slot.started = time.monotonic()  # a candidate's time starts after the worker's set-up
        return None

    def _on_task(self, slot: _Slot) -> EvalResult | None:
        import ray

        task = slot.task
        assert task is not None
        try:
            result, model = ray.get(slot.ref)
        except ray.exceptions.RayActorError as err:
            return self._lost(slot, err)
        except ray.exceptions.RayError as err:  # e.g. a result that cannot be unpickled
            elapsed = time.monotonic() - slot.started
            result, model = failed(task.id, describe_error(err), elapsed), None
        if model is not None and result.model_path and self._out_dir is not None:
            atomic_write_bytes(Path(self._out_dir) / result.model_path, model)
        slot.task = slot.ref = None
        self._attempts.pop(task.id, None)
        slot.done += 1
        if slot.done >= self._recycle_after:
            self._stop_actor(slot)
        return result

    def _lost(self, slot: _Slot, err: BaseException) -> EvalResult | None:
        """``slot``'s worker died: resubmit its candidate once, then record it failed."""
        task = slot.task
        elapsed = time.monotonic() - slot.started
        self.workers_lost += 1
        self._stop_actor(slot)
        slot.task = slot.ref = None
        if task is None:
            return None
        if self._attempts.get(task.id, 0) < MAX_ATTEMPTS:
            self._run_on(slot, task)
            return None
        self._attempts.pop(task.id, None)
        reason = _death_reason(err)
        return failed(task.id, f"worker process died ({MAX_ATTEMPTS} workers in a row): {reason}",
                      elapsed)

    def _check_timeouts(self) -> EvalResult | None:
        if self._timeout is None:
            return None
        now = time.monotonic()
        for slot in self._slots:
            if slot.task is not None and slot.ready and now - slot.started > self._timeout:
                task, elapsed = slot.task, now - slot.started
                self._stop_actor(slot)
                slot.task = slot.ref = None
                self._attempts.pop(task.id, None)
                return failed(task.id, f"timed out after {self._timeout:g} s", elapsed)
        return None

    def close(self) -> None:
        """Stop every worker (abandoning candidates in flight) and the local Ray, if ours."""
        for slot in self._slots:
            try:
                self._stop_actor(slot)
            except Exception:  # noqa: BLE001 - Ray may already be gone
                pass
            slot.task = slot.ref = None
        self._session.close()

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _death_reason(err: BaseException) -> str:
    """The most telling line of a Ray actor-death error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "exit detail" in line.lower() or "killed" in line.lower():
            return line[:200]
    return (lines[0] if lines else type(err).__name__)[:200]
