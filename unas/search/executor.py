"""Executors: where candidates are evaluated. The search keeps ``capacity`` tasks in flight::

    executor.submit(task)                 # at most `capacity` tasks in flight
    result = executor.next_result(5.0)    # the next finished one, or None after 5 s
    executor.close()

:class:`SerialExecutor` evaluates one task at a time in a child process (``spawn`` context) that
is recycled every few candidates (TensorFlow leaks memory per model) and replaced when it dies,
so a crash or hang of one candidate becomes that candidate's ``failed: ...`` result (a worker
that dies is replaced and the candidate tried once more first, as on Ray).

Failures of the machine rather than the candidate (:func:`infrastructure_reason`: a full disk or
quota, memory exhausted, a worker stopped by SIGTERM/SIGINT/SIGHUP) are not results: the worker
reports them as an ``infrastructure: <reason>`` result (:func:`infrastructure_failure`) and the
search stops with :class:`InfrastructureError` without recording the candidate, so a resumed
search trains it again once the machine is fixed.
A Ray executor implements the same :class:`Executor` protocol with more tasks in flight.

The work itself is an *evaluator factory* (:mod:`unas.evaluation`): a picklable callable run
once per worker process (load the dataset there) that returns ``evaluate(task) -> EvalResult``.
"""
from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import time
import traceback
from typing import Any, Protocol

from unas.errors import UnasError
from unas.evaluation import EvalResult, EvalTask, EvaluatorFactory


class Executor(Protocol):
    """What the search needs from an executor."""

    capacity: int

    def submit(self, task: EvalTask) -> None:
        """Start evaluating ``task``; never more than ``capacity`` in flight."""

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        """The next finished result (any order), or None if none finished within ``timeout``."""

    def close(self) -> None:
        """Stop all workers."""


def failed(task_id: int, reason: str, wall_time_s: float = 0.0) -> EvalResult:
    """A ``failed: <reason>`` result (reason squeezed onto one line)."""
    one_line = " ".join(str(reason).split())[:500]
    return EvalResult(id=task_id, status=f"failed: {one_line}", wall_time_s=wall_time_s)


MAX_ATTEMPTS = 2
"""A candidate whose worker dies is tried on a fresh worker once more, then recorded failed."""

INFRASTRUCTURE = "infrastructure: "
"""Status prefix of a result that says the machine failed, not the candidate (never recorded)."""

_INFRASTRUCTURE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_INFRASTRUCTURE_TEXT = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class InfrastructureError(UnasError):
    """A candidate could not be evaluated because of the machine (disk full, out of memory, a
    worker stopped by a signal): the search stops, records nothing for it and retrains it on
    ``--resume``."""


def infrastructure_reason(err: BaseException) -> str | None:
    """Why ``err`` is a failure of the machine rather than of the candidate, or None: an
    ``OSError`` ENOSPC/EDQUOT (disk or quota full), ``MemoryError`` or TensorFlow's
    ``ResourceExhaustedError`` (out of memory), also when wrapped in another exception."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{type(current).__name__}: {current}"
        if isinstance(current, OSError) and current.errno in _INFRASTRUCTURE_ERRNOS:
            return text
        if any(t in str(current) for t in _INFRASTRUCTURE_TEXT):
            return text
        if isinstance(current, MemoryError) or type(current).__name__ == "ResourceExhaustedError":
            return text
        current = current.__cause__ or current.__context__
    return None


def infrastructure_failure(task_id: int, reason: str, wall_time_s: float = 0.0) -> EvalResult:
    """An ``infrastructure: <reason>`` result: the search stops instead of recording it."""
    one_line = " ".join(str(reason).split())[:500]
    return EvalResult(id=task_id, status=f"{INFRASTRUCTURE}{one_line}", wall_time_s=wall_time_s)


def is_infrastructure_failure(result: EvalResult) -> bool:
    return result.status.startswith(INFRASTRUCTURE)


def failure_of(task_id: int, err: BaseException, described: str, wall_time_s: float) -> EvalResult:
    """The result of an evaluation that raised ``err``: the machine's failure or the candidate's."""
    if infrastructure_reason(err) is not None:
        return infrastructure_failure(task_id, described, wall_time_s)
    return failed(task_id, described, wall_time_s)


def _die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this worker when the search process dies (even by SIGKILL), and end
    now if it already has: it may die while this process is still starting, before the request
    is made (the worker would otherwise set up TensorFlow and the dataset for nobody)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def _redirect_output(log_path: str | None) -> None:
    """Send this process's stdout/stderr (TensorFlow's start-up chatter included) to a file."""
    if log_path is None:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _worker_main(conn: Any, factory: EvaluatorFactory, log_path: str | None = None,
                 parent_pid: int | None = None) -> None:
    """Child process: build the evaluator once, then evaluate tasks until told to stop."""
    _die_with_parent(parent_pid)
    _redirect_output(log_path)
    try:
        evaluate = factory()
    except Exception as err:  # noqa: BLE001 - reported to the parent, which stops the search
        conn.send(("fatal", f"{type(err).__name__}: {err}" if not isinstance(err, UnasError)
                   else str(err)))
        return
    conn.send(("ready", None))
    while True:
        task = conn.recv()
        if task is None:
            return
        start = time.monotonic()
        try:
            result = evaluate(task)
        except Exception as err:  # noqa: BLE001 - one candidate's failure, not the search's
            tail = traceback.extract_tb(err.__traceback__)[-1:]
            where = f" (at {tail[0].filename.rsplit('/', 1)[-1]}:{tail[0].lineno})" if tail else ""
            result = failure_of(task.id, err, f"{type(err).__name__}: {err}{where}",
                                time.monotonic() - start)
        conn.send(("result", result))


def kind_is_eof(message: tuple[str, Any] | None) -> bool:
    return message is not None and message[0] == "eof"


class WorkerStartError(UnasError):
    """The evaluator could not even be set up in a worker (e.g. the dataset is missing)."""


class SerialExecutor:
    """One task at a time in a recycled child process (see module docstring). With ``log_path``
    the worker's stdout and stderr are appended to that file."""

    capacity = 1

    def __init__(self, factory: EvaluatorFactory, recycle_after: int = 8,
                 candidate_timeout_s: float | None = None, poll_interval_s: float = 0.5,
                 log_path: str | None = None) -> None:
        self._factory = factory
        self._log_path = log_path
        self._recycle_after = recycle_after
        self._timeout = candidate_timeout_s
        self._poll = poll_interval_s
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._done_in_worker = 0
        self._task: EvalTask | None = None
        self._started = 0.0
        self._ready = False
        self._attempts = 0

    # -- worker lifecycle ------------------------------------------------------------------------
    def _start_worker(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_worker_main, args=(child, self._factory, self._log_path,
                                                                   os.getpid()),
                                       daemon=True, name="unas-eval-worker")
        self._proc.start()
        child.close()
        self._conn = parent
        self._done_in_worker = 0
        self._ready = False

    def _stop_worker(self, kill: bool = False) -> None:
        if self._proc is None:
            return
        if self._conn is None or self._proc.pid is None:  # the process never started
            self._proc = self._conn = None
            return
        if not kill:
            try:
                self._conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
        self._proc = self._conn = None

    # -- Executor protocol -------------------------------------------------------------------------
    def submit(self, task: EvalTask) -> None:
        if self._task is not None:
            raise RuntimeError("SerialExecutor already has a task in flight (capacity 1)")
        if self._proc is None:
            self._start_worker()
        self._conn.send(task)
        self._task = task
        self._attempts = 1
        self._started = time.monotonic()

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        task = self._task
        if task is None:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._poll if deadline is None else max(0.0, min(self._poll, deadline - time.monotonic()))
            message = self._receive(wait)
            if message is not None:
                kind, payload = message
                if kind == "fatal":
                    self._task = None
                    self._stop_worker(kill=True)
                    raise WorkerStartError(f"evaluation worker could not start: {payload}")
                if kind == "ready":
                    self._ready = True
                    self._started = time.monotonic()  # candidate time starts after set-up
                    continue
                if kind == "result":
                    return self._finish(payload)
            elapsed = time.monotonic() - self._started
            if kind_is_eof(message) or not self._proc.is_alive() and not self._conn.poll():
                self._proc.join(timeout=5)
                code = self._proc.exitcode
                self._stop_worker(kill=True)
                if code is not None and code < 0 and -code in _STOP_SIGNALS:
                    name = signal.Signals(-code).name
                    return self._finish(infrastructure_failure(
                        task.id, f"worker process was stopped by {name}", elapsed), worker_gone=True)
                if self._attempts < MAX_ATTEMPTS:  # e.g. killed by the OOM killer: once more
                    self._attempts += 1
                    self._start_worker()
                    self._conn.send(task)
                    self._started = time.monotonic()
                    continue
                return self._finish(failed(task.id, f"worker process died (exit code {code}; "
                                                    f"{MAX_ATTEMPTS} workers in a row)", elapsed),
                                    worker_gone=True)
            if self._timeout is not None and self._ready and elapsed > self._timeout:
                self._stop_worker(kill=True)
                return self._finish(failed(task.id, f"timed out after {self._timeout:g} s", elapsed),
                                    worker_gone=True)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _receive(self, wait: float) -> tuple[str, Any] | None:
        try:
            if self._conn.poll(wait):
                return self._conn.recv()
        except (EOFError, OSError):
            return ("eof", None)
        return None

    def _finish(self, result: EvalResult, worker_gone: bool = False) -> EvalResult:
        self._task = None
        if not worker_gone:
            self._done_in_worker += 1
            if self._done_in_worker >= self._recycle_after:
                self._stop_worker()
        return result

    def close(self) -> None:
        """Stop the worker: at once if it is busy (an abandoned candidate is not waited for) or
        still setting up (it would read the stop request only once set up, after many
        seconds); an idle one is asked to exit."""
        busy = self._task is not None or not self._ready
        self._task = None
        self._stop_worker(kill=busy)

    def __enter__(self) -> "SerialExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
