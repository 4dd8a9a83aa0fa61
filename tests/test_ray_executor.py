"""The Ray executor on a real local Ray: concurrency, shared data, recycling, failures, killed
workers, resume; and a tiny real digits search with two workers, one of them killed mid-run.

One local Ray (2 CPUs) is started for the whole module; its start-up is the main cost.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

ray = pytest.importorskip("ray")

from search_spaces.base import Architecture, SearchSpace  # noqa: E402
from unas.config import ObjectiveBounds, PruningConfig, SearchConfig, load_config  # noqa: E402
from unas.search.evolution import AgingEvolution  # noqa: E402
from unas.evaluation import EvalResult, EvalTask  # noqa: E402
from unas.search.executor import WorkerStartError  # noqa: E402
from unas.files import JsonLines  # noqa: E402
from unas.search.ray_executor import RayExecutor  # noqa: E402
from unas.search.ray_runtime import (AF_UNIX_PATH_MAX, connect_ray,  # noqa: E402
                                     default_cpus_per_worker, default_num_workers,
                                     socket_safe_temp_dir)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- pure helpers
@given(st.integers(min_value=1, max_value=4096))
def test_default_workers_use_every_core_once(cores):
    workers = default_num_workers(cores)
    per_worker = default_cpus_per_worker(cores, workers)
    assert workers >= 1 and per_worker >= 1
    assert workers * per_worker <= max(cores, 1)
    assert cores - workers * per_worker < workers  # at most a remainder is left idle
    assert (workers == 1) == (cores < 8)  # fewer than 8 cores: one worker with all of them


def test_long_output_folder_falls_back_to_a_short_socket_folder(tmp_path):
    long_root = tmp_path / ("x" * 60)
    path, fell_back = socket_safe_temp_dir(long_root)
    assert fell_back and str(path).startswith("/tmp/unas-ray-") and not long_root.exists()
    path.rmdir()
    short = Path(tempfile.mkdtemp(prefix="u", dir="/tmp"))
    try:
        path, fell_back = socket_safe_temp_dir(short / "ray")
        assert not fell_back and path == short / "ray" and path.is_dir()
        assert len(str(path / "session_2026-11-21_06-49-23_677843_4194304/sockets/"
                            "plasma_store.1")) <= AF_UNIX_PATH_MAX
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_starting_a_local_ray_prints_nothing_and_keeps_logs_in_the_output_folder():
    """Run in a fresh interpreter: the quiet settings are about what a user's terminal shows."""
    root = Path(tempfile.mkdtemp(prefix="u", dir="/tmp"))
    script = ("from unas.search.ray_executor import RayExecutor\n"
              "import ray\n"
              "ex = RayExecutor(lambda: print, num_workers=1, cpus_per_worker=1, temp_root=%r)\n"
              "addr = ray.get_runtime_context().gcs_address\n"
              "ex.close()\n"
              "print(addr)\n" % str(root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        # Ray's one warning left is about a too small /dev/shm (containers); nothing else
        assert [line for line in done.stderr.splitlines() if "/dev/shm" not in line] == []
        assert done.stdout.strip().startswith("127.0.0.1:")  # loopback, not all interfaces
        assert list((root / "ray").glob("session_*/logs/raylet.out"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------- test doubles
def _action(task: EvalTask) -> str:
    return str(task.arch.get("action", "ok"))


def _fake_evaluate(task: EvalTask, offset: float = 0.0) -> EvalResult:
    action = _action(task)
    if action == "raise":
        raise ValueError("bad layer")
    if action == "nan":
        raise FloatingPointError("training diverged (NaN or infinite loss)")
    if action == "die":
        os._exit(3)
    if action.startswith("sleep"):
        time.sleep(float(action[5:]))
    return EvalResult(id=task.id, status="ok", val_error=0.5 + offset,
                      curve={"pid": [float(os.getpid())]})


def fake_factory() -> Any:
    return _fake_evaluate


def broken_factory() -> Any:
    raise FileNotFoundError("no dataset here")


@dataclass(frozen=True)
class SharingFactory:
    """Loads its "dataset" once in the search process; workers read it from the object store."""

    def __call__(self) -> Any:  # pragma: no cover - the Ray executor uses from_shared
        raise AssertionError("workers should build from the shared data")

    def load_shared(self) -> Any:
        return {"driver_pid": os.getpid(), "x": np.arange(1000.0)}

    def from_shared(self, shared: Any) -> Any:
        assert shared["driver_pid"] != os.getpid()
        return lambda task: _fake_evaluate(task, offset=float(shared["x"].sum()))


@pytest.fixture(scope="module")
def local_ray():
    root = tempfile.mkdtemp(prefix="u", dir="/tmp")
    session = connect_ray(None, temp_root=root, num_cpus=2)
    yield session
    session.close()
    shutil.rmtree(root, ignore_errors=True)


def collect(executor: RayExecutor, count: int, timeout: float = 120.0) -> list[EvalResult]:
    results: list[EvalResult] = []
    deadline = time.monotonic() + timeout
    while len(results) < count and time.monotonic() < deadline:
        result = executor.next_result(timeout=5)
        if result is not None:
            results.append(result)
    return results


def make_executor(factory: Any, **kwargs: Any) -> RayExecutor:
    return RayExecutor(factory, **{**dict(num_workers=2, cpus_per_worker=1,
                                          poll_interval_s=0.05), **kwargs})


# ------------------------------------------------------------------------------- the executor
def test_two_candidates_run_at_once_and_failures_stay_with_their_candidate(local_ray):
    with make_executor(fake_factory, recycle_after=2) as executor:
        assert executor.capacity == 2
        executor.submit(EvalTask(id=0, arch={"action": "sleep1.5"}, seed=0))
        executor.submit(EvalTask(id=1, arch={"action": "sleep1.5"}, seed=1))
        with pytest.raises(RuntimeError, match="capacity 2"):
            executor.submit(EvalTask(id=2, arch={}, seed=2))
        both = collect(executor, 2)
        assert executor.next_result(timeout=0.1) is None  # nothing in flight
        assert sorted(r.id for r in both) == [0, 1] and {r.status for r in both} == {"ok"}
        first_pids = {r.curve["pid"][0] for r in both}
        assert len(first_pids) == 2 and os.getpid() not in first_pids  # two actors at once

        executor.submit(EvalTask(id=3, arch={"action": "raise"}, seed=3))
        executor.submit(EvalTask(id=4, arch={"action": "nan"}, seed=4))
        failures = {r.id: r.status for r in collect(executor, 2)}
        assert failures[3].startswith("failed: ValueError: bad layer (at test_ray_executor.py:")
        assert failures[4].startswith("failed: FloatingPointError: training diverged")

        executor.submit(EvalTask(id=5, arch={}, seed=5))
        later = collect(executor, 1)
        assert later[0].status == "ok" and later[0].curve["pid"][0] not in first_pids  # recycled
        assert executor.workers_started == 3 and executor.workers_lost == 0


def test_shared_data_is_loaded_once_by_the_search_and_read_by_every_worker(local_ray):
    with make_executor(SharingFactory()) as executor:
        for i in range(2):
            executor.submit(EvalTask(id=i, arch={"action": "sleep0.5"}, seed=i))
        results = collect(executor, 2)
    assert [r.val_error for r in results] == [0.5 + 499500.0] * 2
    assert len({r.curve["pid"][0] for r in results}) == 2


def test_a_killed_worker_s_candidate_is_resubmitted_once_then_recorded_failed(local_ray):
    with make_executor(fake_factory) as executor:
        executor.submit(EvalTask(id=0, arch={"action": "sleep5"}, seed=0))
        executor.submit(EvalTask(id=1, arch={"action": "die"}, seed=1))
        early: list[EvalResult] = []
        deadline = time.monotonic() + 60
        while 0 not in executor.worker_pids() and time.monotonic() < deadline:
            result = executor.next_result(timeout=0.05)
            early += [result] if result is not None else []
        victim = executor.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)  # the worker evaluating candidate 0 dies mid-run
        results = {r.id: r for r in early + collect(executor, 2 - len(early))}
    # candidate 1 kills its worker every time: tried twice, then recorded failed
    assert results[1].status.startswith("failed: worker process died (2 workers in a row)")
    # candidate 0 was resubmitted once, to a fresh worker, and finished there
    assert results[0].status == "ok" and results[0].curve["pid"][0] != victim
    assert executor.workers_lost == 3 and executor.workers_started == 4


def test_a_candidate_past_its_time_limit_fails_and_its_worker_is_replaced(local_ray):
    with make_executor(fake_factory, num_workers=1, candidate_timeout_s=1.0) as executor:
        executor.submit(EvalTask(id=0, arch={"action": "sleep60"}, seed=0))
        (result,) = collect(executor, 1)
        assert result.status == "failed: timed out after 1 s"
        executor.submit(EvalTask(id=1, arch={}, seed=1))
        assert collect(executor, 1)[0].status == "ok"


def test_config_and_cli_select_the_ray_backend_with_defaults_from_the_cluster(local_ray):
    from unas.config import ExecutionConfig
    from unas.errors import ConfigError
    from unas.run import with_execution
    from unas.search.backends import make_executor as backend_executor

    cfg = load_config(REPO / "experiments" / "digits.yaml")
    cli = with_execution(cfg, 3, "auto")
    assert (cli.execution.backend, cli.execution.num_workers, cli.execution.address) == \
        ("ray", 3, "auto")
    assert cli.raw == cfg.raw and with_execution(cfg, None, None) is cfg
    with pytest.raises(ConfigError, match="--workers: expected an integer >= 1, got 0"):
        with_execution(cfg, 0, None)
    with pytest.raises(ConfigError, match="execution.num_workers: expected 1 with backend serial"):
        backend_executor(ExecutionConfig(num_workers=2), fake_factory)

    executor = backend_executor(ExecutionConfig(backend="ray"), fake_factory)
    try:  # the module's Ray has 2 CPUs: one worker with both
        assert isinstance(executor, RayExecutor)
        assert (executor.capacity, executor.cpus_per_worker) == (1, 2.0)
        executor.submit(EvalTask(id=0, arch={}, seed=0))
        assert collect(executor, 1)[0].status == "ok"
    finally:
        executor.close()
    assert ray.is_initialized()  # a Ray this executor did not start is left running


def test_a_worker_that_cannot_start_stops_the_search(local_ray):
    executor = make_executor(broken_factory, num_workers=1)
    executor.submit(EvalTask(id=0, arch={}, seed=0))
    with pytest.raises(WorkerStartError, match="FileNotFoundError: no dataset here"):
        collect(executor, 1)
    executor.close()


# ------------------------------------------------------------------------------- search + resume
@dataclass(frozen=True)
class ToyRayArch(Architecture):
    space: ClassVar[str] = "toy_for_ray_tests"
    width: int
    depth: int

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "depth": self.depth}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ToyRayArch":
        return cls(width=int(data["width"]), depth=int(data["depth"]))

    def build(self, input_shape, num_classes):  # pragma: no cover - never trained here
        raise NotImplementedError

    def resource_graph(self, input_shape, num_classes):  # pragma: no cover
        raise NotImplementedError


class ToyRaySpace(SearchSpace):
    name: ClassVar[str] = "toy_for_ray_tests"

    def random_architecture(self, rng: np.random.Generator) -> ToyRayArch:
        return ToyRayArch(int(rng.integers(1, 30)), int(rng.integers(1, 30)))

    def mutate(self, arch: ToyRayArch, rng: np.random.Generator) -> ToyRayArch:
        step = rng.choice([-1, 1])
        if rng.random() < 0.5:
            return ToyRayArch(int(np.clip(arch.width + step, 1, 29)), arch.depth)
        return ToyRayArch(arch.width, int(np.clip(arch.depth + step, 1, 29)))


def _toy_evaluate(task: EvalTask) -> EvalResult:
    time.sleep(0.05 * (task.id % 3))  # finish out of submission order
    error = 1.0 / (1.0 + 0.01 * task.arch["width"] * task.arch["depth"])
    return EvalResult(id=task.id, status="ok", val_error=error, test_error=error)


def toy_factory() -> Any:
    return _toy_evaluate


class Killed(Exception):
    """Stands in for the search process being killed."""


def test_killed_search_resumes_with_fewer_workers_losing_and_repeating_nothing(local_ray, tmp_path):
    def make_search() -> AgingEvolution:
        settings = SearchConfig(population_size=6, sample_size=3, initial_population=6,
                                rounds=14, seed=3)
        bounds = ObjectiveBounds(error=0.5, peak_memory_bytes=10**6, model_size_bytes=10**6,
                                 macs=10**9)
        return AgingEvolution(ToyRaySpace(), settings, bounds, PruningConfig(),
                              lambda a: (a.width, a.depth, a.width * a.depth), tmp_path)

    def die_after_eight(search: AgingEvolution) -> None:
        if search.finished >= 8:
            raise Killed

    first = make_search()
    with make_executor(toy_factory) as executor, pytest.raises(Killed):
        first.run(executor, on_progress=die_after_eight, poll_s=0.1)
    before = JsonLines(tmp_path / "evaluations.jsonl").read()
    in_flight = set(first.pending)
    assert len(before) >= 8 and in_flight  # candidates were in flight when it died

    resumed = make_search()
    assert resumed.load()
    with make_executor(toy_factory, num_workers=1) as executor:  # resumed with fewer workers
        records = resumed.run(executor, poll_s=0.1)
    lines = JsonLines(tmp_path / "evaluations.jsonl").read()
    assert sorted(line["id"] for line in lines) == list(range(20))  # none lost, none repeated
    assert lines[:len(before)] == before
    assert all(records[i].status == "ok" for i in in_flight)  # abandoned ones were redone


# ------------------------------------------------------------------------------- a real search
@dataclass(frozen=True)
class KillableTrainer:
    """The real training evaluator, writing ``<pid_dir>/<task id>-<pid>`` when a candidate
    starts so the test can kill that worker while it trains."""

    inner: Any
    pid_dir: str

    @property
    def out_dir(self) -> str:
        return self.inner.out_dir

    def __call__(self) -> Any:  # pragma: no cover - the Ray executor uses from_shared
        return self._marking(self.inner())

    def load_shared(self) -> Any:
        return self.inner.load_shared()

    def from_shared(self, shared: Any) -> Any:
        return self._marking(self.inner.from_shared(shared))

    def _marking(self, evaluate: Any) -> Any:
        def run(task: EvalTask) -> EvalResult:
            Path(self.pid_dir, f"{task.id}-{os.getpid()}").touch()
            return evaluate(task)
        return run


def test_digits_search_with_two_workers_survives_a_killed_worker(local_ray, tmp_path):
    from unas.experiment import run_experiment
    from unas.train.worker import TrainingEvaluator

    cfg = load_config(REPO / "experiments" / "digits.yaml")
    cfg = replace(cfg, search=replace(cfg.search, initial_population=3, rounds=1),
                  objectives=ObjectiveBounds(error=0.5, peak_memory_bytes=10**6,
                                             model_size_bytes=10**6, macs=10**8),  # train all
                  search_space=replace(cfg.search_space, bounds={
                      **cfg.search_space.bounds, "max_channels": 8, "max_units": 16}),
                  training=replace(cfg.training, epochs=1),
                  execution=replace(cfg.execution, backend="ray", num_workers=2,
                                    cpus_per_worker=1))
    out = tmp_path / "run"
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    trainer = KillableTrainer((TrainingEvaluator(
        dataset=cfg.dataset, data_seed=cfg.search.seed, training=cfg.training,
        pruning=cfg.pruning, out_dir=str(out))), str(pid_dir))
    killed: list[str] = []

    def kill_the_first_worker_that_trains() -> None:
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            marks = sorted(pid_dir.iterdir())
            if marks:
                task_id, pid = marks[0].name.split("-")
                os.kill(int(pid), signal.SIGKILL)
                killed.append(task_id)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_worker_that_trains, daemon=True)
    killer.start()
    search = run_experiment(cfg, out_dir=out, evaluator=trainer, progress=False)
    killer.join(timeout=1)
    assert killed, "no worker was killed"
    records = {r.id: r for r in search.records.values()}
    assert sorted(records) == list(range(4))
    victim = records[int(killed[0])]
    attempts = sorted(p.name for p in pid_dir.iterdir() if p.name.startswith(f"{killed[0]}-"))
    assert len(attempts) == 2  # resubmitted once, to another worker process
    assert victim.status == "ok" and (out / victim.model_path).exists()
    trained = [r for r in records.values() if r.status == "ok" and r.reused_from is None]
    assert trained and all(0.0 <= r.objectives.error <= 1.0 for r in trained)
