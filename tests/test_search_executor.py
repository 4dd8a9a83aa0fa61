"""The serial executor: child process, recycling, crash/exception/timeout isolation."""
from __future__ import annotations

import errno
import os
import signal
import time
from functools import partial

import pytest

from unas.search.backends import make_executor
from unas.evaluation import EvalResult, EvalTask
from unas.search.executor import (SerialExecutor, WorkerStartError, infrastructure_reason,
                                  is_infrastructure_failure)
from unas.config import ExecutionConfig


def _evaluate(task: EvalTask) -> EvalResult:
    action = task.arch.get("action", "ok")
    if action == "crash":
        os._exit(3)
    if action == "raise":
        raise ValueError("bad layer")
    if action == "hang":
        time.sleep(60)
    if action == "disk_full":
        raise OSError(errno.ENOSPC, "No space left on device", "models/3.keras")
    if action == "out_of_memory":
        raise MemoryError()
    if action == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    return EvalResult(id=task.id, status="ok", val_error=0.5, curve={"pid": [float(os.getpid())]})


def good_factory() -> object:
    return _evaluate


def broken_factory() -> object:
    raise FileNotFoundError("no dataset here")


def run(executor: SerialExecutor, actions: list[str]) -> list[EvalResult]:
    results = []
    for i, action in enumerate(actions):
        executor.submit(EvalTask(id=i, arch={"action": action}, seed=i))
        result = None
        while result is None:
            result = executor.next_result(timeout=30)
        results.append(result)
    return results


def test_failures_stay_with_their_candidate_and_the_worker_is_recycled():
    with SerialExecutor(good_factory, recycle_after=2, candidate_timeout_s=2,
                        poll_interval_s=0.05) as executor:
        results = run(executor, ["ok", "raise", "ok", "crash", "ok", "hang", "ok"])
    assert [r.id for r in results] == list(range(7))
    statuses = [r.status for r in results]
    assert statuses[0] == statuses[2] == statuses[4] == statuses[6] == "ok"
    assert statuses[1].startswith("failed: ValueError: bad layer")
    assert statuses[3] == "failed: worker process died (exit code 3; 2 workers in a row)"
    assert statuses[5] == "failed: timed out after 2 s"
    pids = [r.curve["pid"][0] for r in results if r.status == "ok"]
    assert len(set(pids)) == 4 and os.getpid() not in pids  # new worker after 2 tasks or a death


def test_next_result_times_out_and_capacity_is_one():
    with SerialExecutor(good_factory, poll_interval_s=0.05) as executor:
        assert executor.next_result(timeout=0.1) is None  # nothing in flight
        executor.submit(EvalTask(id=0, arch={"action": "hang"}, seed=0))
        with pytest.raises(RuntimeError, match="capacity 1"):
            executor.submit(EvalTask(id=1, arch={}, seed=0))
        assert executor.next_result(timeout=0.2) is None


def test_a_worker_that_cannot_start_stops_the_search():
    with SerialExecutor(broken_factory, poll_interval_s=0.05) as executor:
        executor.submit(EvalTask(id=0, arch={}, seed=0))
        with pytest.raises(WorkerStartError, match="FileNotFoundError: no dataset here"):
            executor.next_result(timeout=30)


def test_backend_registry_builds_the_serial_executor():
    executor = make_executor(ExecutionConfig(recycle_after=3), partial(good_factory))
    assert isinstance(executor, SerialExecutor) and executor.capacity == 1
    executor.close()


def chatty_factory() -> object:
    print("hello from the worker", flush=True)
    return _evaluate


def test_worker_output_goes_to_the_log_file(tmp_path):
    log = tmp_path / "worker.log"
    with SerialExecutor(chatty_factory, poll_interval_s=0.05, log_path=str(log)) as executor:
        assert run(executor, ["ok"])[0].status == "ok"
    assert "hello from the worker" in log.read_text()


def test_failures_of_the_machine_are_not_the_candidate_s_result():
    """A full disk, exhausted memory or a worker stopped by SIGTERM: an ``infrastructure:``
    result the search stops on (never a ``failed:`` record); the worker goes on afterwards."""
    with SerialExecutor(good_factory, poll_interval_s=0.05) as executor:
        results = run(executor, ["disk_full", "out_of_memory", "sigterm", "ok"])
    assert [is_infrastructure_failure(r) for r in results] == [True, True, True, False]
    assert "No space left on device" in results[0].status
    assert "MemoryError" in results[1].status
    assert results[2].status == "infrastructure: worker process was stopped by SIGTERM"


def test_infrastructure_reason_looks_through_wrapping_exceptions():
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise ValueError("could not save the model") from inner
    except ValueError as err:
        assert "Disk quota exceeded" in infrastructure_reason(err)
    assert infrastructure_reason(ValueError("NaN loss")) is None
    assert infrastructure_reason(OSError(errno.ENOENT, "missing")) is None


def slow_factory() -> object:
    time.sleep(30)  # like importing TensorFlow and loading a dataset
    return _evaluate


def test_close_does_not_wait_for_a_worker_still_setting_up():
    """Interrupted (Ctrl-C, SIGTERM) in the first seconds: the worker is killed, not awaited."""
    executor = SerialExecutor(slow_factory, poll_interval_s=0.05)
    executor.submit(EvalTask(id=0, arch={}, seed=0))
    assert executor.next_result(timeout=0.5) is None
    proc = executor._proc
    start = time.monotonic()
    executor.close()
    assert time.monotonic() - start < 5 and not proc.is_alive()


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    """The search died before the worker could ask to die with it: it must not live on."""
    import multiprocessing

    from unas.search.executor import _worker_main

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_worker_main, args=(child, slow_factory, None, os.getpid() + 10**6))
    proc.start()
    proc.join(timeout=20)
    assert proc.exitcode == 1
