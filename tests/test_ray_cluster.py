"""Joining an existing multi-node Ray cluster, for real, on this one machine.

The module starts a cluster the way a user does on several machines: ``ray start --head`` and
``ray start --address=HEAD`` (a second node with its own temporary folder), each in ``--block``
mode so terminating the two ``ray start`` processes stops everything they started. The nodes run
without this checkout on ``PYTHONPATH`` and from ``/tmp``, so the workers can only get the
project's code the way a remote machine would: shipped with the job. The cluster keeps Ray's
token authentication (a random token in the environment of the nodes and of the searches):
a multi-node Ray on Linux always binds to the machine's address, never to loopback only.

Each search runs in its own process (like ``python -m unas.run ... --ray-address ADDR``), once
with the GCS address and once through the Ray Client (``ray://``), training tiny digits CNNs on
two 1-CPU workers; every candidate leaves a marker naming the node and the ``unas`` copy it ran.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from unas.evaluation import EvalResult, EvalTask  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]  # `ray`, of this interpreter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text() if log.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise RuntimeError(f"ray start did not come up: {log.read_text()[-2000:]}")


@dataclass
class LocalCluster:
    """A head and a worker node started by ``ray start --block`` (see module docstring)."""

    address: str
    client_address: str
    env: dict[str, str]
    processes: list[subprocess.Popen]
    root: Path

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def client_server_errors(self) -> str:
        """The Ray Client servers' error logs (for a failing test's message)."""
        logs = sorted(self.root.glob("head/session_*/logs/ray_client_server*.err"))
        return "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in logs)


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="urc", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONPATH"}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(16), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="",
               # the head's client proxier gives the per-client server it starts 30 s to come
               # up; on a loaded 2-core machine importing Ray there took longer (grpc
               # FutureTimeoutError, "cannot join the Ray cluster at ray://...")
               RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180")
    gcs_port, client_port = _free_port(), _free_port()
    common = ["--block", "--disable-usage-stats", "--num-cpus=1"]
    processes: list[subprocess.Popen] = []
    try:
        head_log = root / "head.log"
        processes.append(subprocess.Popen(
            [*RAY_CLI, "start", "--head", f"--port={gcs_port}",
             f"--ray-client-server-port={client_port}", "--include-dashboard=false",
             f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={root / 'head'}",
             *common], env=env, cwd="/tmp", stdout=head_log.open("w"), stderr=subprocess.STDOUT))
        text = _wait_for(head_log, "Ray runtime started", processes[0], START_TIMEOUT_S)
        host = re.search(r"--address='?([0-9.]+):", text).group(1)  # the head's own address
        worker_log = root / "worker.log"
        processes.append(subprocess.Popen(
            [*RAY_CLI, "start", f"--address={host}:{gcs_port}",
             f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={root / 'worker'}",
             *common], env=env, cwd="/tmp", stdout=worker_log.open("w"),
            stderr=subprocess.STDOUT))
        _wait_for(worker_log, "Ray runtime started", processes[1], START_TIMEOUT_S)
        yield LocalCluster(f"{host}:{gcs_port}", f"ray://{host}:{client_port}", env, processes,
                           root)
    finally:
        for process in reversed(processes):  # ray start --block stops what it started
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class NodeMarkingTrainer:
    """The real (shared-data) trainer, leaving ``<marks>/<task id>.json`` with the worker's Ray
    node, process and the ``unas`` package it imported."""

    inner: Any
    marks: str

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
            import unas

            result = evaluate(task)
            Path(self.marks, f"{task.id}.json").write_text(json.dumps({
                "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "unas": unas.__file__}))
            return result
        return run


def run_search(address: str, out: str, marks: str) -> dict[str, Any]:
    """What the search process runs: a tiny digits search on the cluster at ``address``."""
    from unas.config import ObjectiveBounds, load_config
    from unas.experiment import run_experiment
    from unas.train.worker import TrainingEvaluator

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tests/ is not shipped
    cfg = load_config(REPO / "experiments" / "digits.yaml")
    cfg = replace(cfg, search=replace(cfg.search, initial_population=4, rounds=0),
                  objectives=ObjectiveBounds(error=0.5, peak_memory_bytes=10**6,
                                             model_size_bytes=10**6, macs=10**8),  # train all
                  search_space=replace(cfg.search_space, bounds={
                      **cfg.search_space.bounds, "max_channels": 8, "max_units": 16}),
                  training=replace(cfg.training, epochs=1),
                  execution=replace(cfg.execution, backend="ray", num_workers=2,
                                    cpus_per_worker=1, address=address))
    trainer = NodeMarkingTrainer((TrainingEvaluator(
        dataset=cfg.dataset, data_seed=cfg.search.seed, training=cfg.training,
        pruning=cfg.pruning, out_dir=out)), marks)
    search = run_experiment(cfg, out_dir=out, evaluator=trainer, progress=False)
    return {"records": [r.to_dict() for r in search.records.values()],
            "connected_after_close": ray.is_initialized()}


def search_on(cluster: LocalCluster, address: str, tmp_path: Path, cwd: Path,
              out: str) -> tuple[list[dict], dict]:
    """Run :func:`run_search` in a fresh process started in ``cwd`` (the search's own
    environment: this checkout importable, the cluster's token); its records and the workers'
    markers. ``out`` may be relative to ``cwd``, as an ``output_dir`` in a config is."""
    marks = tmp_path / "marks"
    marks.mkdir()
    script = ("import json, sys; sys.path.insert(0, %r)\n"
              "from test_ray_cluster import run_search\n"
              "print('RESULT ' + json.dumps(run_search(%r, %r, %r)))\n"
              % (str(REPO / "tests"), address, out, str(marks)))
    env = {**cluster.env, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + cluster.client_server_errors()
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["connected_after_close"] is False  # the search disconnected
    records = result["records"]
    folder = cwd / out
    for record in records:
        assert record["status"] == "ok", record["status"]
        assert (folder / record["model_path"]).stat().st_size > 0  # where the search runs
    assert sorted(r["id"] for r in records) == [0, 1, 2, 3]
    lines = (folder / "evaluations.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [0, 1, 2, 3]
    return records, {int(p.stem): json.loads(p.read_text()) for p in marks.iterdir()}


def _check_workers(marks: dict[int, dict]) -> None:
    assert sorted(marks) == [0, 1, 2, 3]
    assert len({m["node"] for m in marks.values()}) == 2, "candidates ran on one node only"
    for mark in marks.values():  # the code came with the job, not from this checkout
        assert not mark["unas"].startswith(str(REPO)) and "/runtime_resources/" in mark["unas"]


@pytest.mark.slow
def test_a_search_joins_a_two_node_cluster_by_its_address_and_leaves_it_running(cluster, tmp_path):
    # Started in this checkout (as `python -m unas.run` is): Ray puts the search's folder on
    # the workers' sys.path, yet they must run the shipped code (another machine's checkout
    # at the same path may be older).
    records, marks = search_on(cluster, cluster.address, tmp_path, REPO, str(tmp_path / "run"))
    _check_workers(marks)
    assert cluster.alive()  # the executor did not stop a cluster it did not start


@pytest.mark.slow
def test_a_search_through_the_ray_client_trains_on_both_nodes(cluster, tmp_path):
    records, marks = search_on(cluster, cluster.client_address, tmp_path, tmp_path, "run")
    _check_workers(marks)
    assert cluster.alive()
    probe = ("import ray; ray.init(address=%r, log_to_driver=False)\n"
             "print('ALIVE', sum(n['Alive'] for n in ray.nodes()))" % cluster.address)
    done = subprocess.run([sys.executable, "-c", probe], env=cluster.env, cwd="/tmp",
                          capture_output=True, text=True, timeout=120)
    assert "ALIVE 2" in done.stdout, done.stderr[-2000:]  # both nodes still serve
