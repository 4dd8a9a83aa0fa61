"""End to end: `python -m unas.run` on a tiny digits search, killed with SIGKILL and resumed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "dataset": {"name": "digits", "validation_split": 0.2, "max_train": 160, "augment": False},
    "search_space": {"name": "cnn", "bounds": {"max_blocks": 2, "max_layers": 1, "max_channels": 8,
                                               "kernel_sizes": [1, 3], "max_dense_layers": 1,
                                               "max_units": 16}},
    "objectives": {"error": 0.5, "peak_memory_bytes": 600, "model_size_bytes": 3000, "macs": 40000},
    "search": {"population_size": 3, "sample_size": 2, "initial_population": 2, "rounds": 2, "seed": 5},
    "training": {"learning_rate": 0.05, "batch_size": 32, "epochs": 1},
    "execution": {"recycle_after": 4},
}


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unas.run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, **kwargs)


def log_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]


def essentials(records: list[dict]) -> list[tuple]:
    return [(r["id"], json.dumps(r["arch"], sort_keys=True), r["status"], r["parent"],
             json.dumps(r["objectives"], sort_keys=True), r["reused_from"]) for r in records]


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    done = run_cli(str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
def test_search_writes_log_report_and_models(uninterrupted):
    records = log_of(uninterrupted)
    assert [r["id"] for r in records] == list(range(4))
    assert all(r["status"] == "ok" or r["status"].startswith(("skipped", "failed")) for r in records)
    trained = [r for r in records if r["status"] == "ok" and r["reused_from"] is None]
    assert trained, "the tiny search must train something"
    for r in trained:
        assert 0.0 <= r["objectives"]["error"] <= 1.0 and r["test_error"] is not None
        assert (uninterrupted / r["model_path"]).exists()
        assert r["wall_time_s"] > 0 and len(r["curve"]["loss"]) == 1
    rows = (uninterrupted / "pareto.csv").read_text().splitlines()
    assert rows[0].startswith("id,error,peak_memory_bytes,model_size_bytes,macs,test_error")
    for row in rows[1:]:
        rid = int(row.split(",")[0])
        info = json.loads((uninterrupted / "pareto" / f"{rid}.json").read_text())
        assert info["model_exists"] and info["test_accuracy"] == pytest.approx(1 - info["test_error"])
    for name in ("progress", "error_vs_peak_memory_bytes", "error_vs_model_size_bytes", "error_vs_macs"):
        assert (uninterrupted / "plots" / f"{name}.png").stat().st_size > 1000
    checkpoint = json.loads((uninterrupted / "checkpoint.json").read_text())
    assert checkpoint["applied_lines"] == 4 and checkpoint["pending"] == []


@pytest.mark.slow
def test_sigkill_then_resume_equals_the_uninterrupted_search(config, uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "unas.run", str(config), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    log = out / "evaluations.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the search and its worker, mid-search
    proc.wait()
    before = log_of(out)
    assert 2 <= len(before) < 4

    resumed = run_cli(str(config), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = log_of(out)
    assert after[:len(before)] == before            # nothing finished was lost or redone
    assert sorted(r["id"] for r in after) == list(range(4))
    assert essentials(sorted(after, key=lambda r: r["id"])) == essentials(log_of(uninterrupted))


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "search": {**TINY["search"], "population_size": "ten"}}))
    done = run_cli(str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {bad}: search.population_size: expected an integer >= 1, "
                                   "got 'ten'")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY))
    done = run_cli(str(good), "--out", str(tmp_path / "empty"), "--resume")
    assert done.returncode == 2 and "there is no search to resume" in done.stderr


def test_a_different_config_cannot_continue_a_search(tmp_path):
    from unas.config import parse_config
    from unas.errors import ConfigError
    from unas.experiment import prepare_output
    from unas.files import atomic_write_json

    out = tmp_path / "out"
    first = parse_config(TINY, "tiny.yaml")
    prepare_output(first, out, resume=False)
    atomic_write_json(out / "config.json", {"config": first.raw})
    more_rounds = parse_config({**TINY, "search": {**TINY["search"], "rounds": 9}}, "tiny.yaml")
    prepare_output(more_rounds, out, resume=False)  # extending a search is allowed
    other = parse_config({**TINY, "training": {**TINY["training"], "epochs": 2}}, "tiny.yaml")
    with pytest.raises(ConfigError, match="training.epochs: differs from the search already in"):
        prepare_output(other, out, resume=False)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.strip()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(yaml.safe_dump(TINY).encode() + "# café\n".encode("latin-1"))
    assert one_error_line(run_cli(str(bad))).startswith(f"error: {bad}: not UTF-8 text")


def test_an_output_folder_that_is_a_file_fails_before_any_work(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY))
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    done = run_cli(str(good), "--out", str(a_file))
    assert one_error_line(done) == (f"error: {a_file}: output folder (output_dir / --out): "
                                    f"{a_file} is a file, expected a folder")
    under = good.with_name("under.yaml")  # the config's output_dir, under a file
    under.write_text(yaml.safe_dump({**TINY, "output_dir": str(a_file / "out")}))
    assert f"{a_file} is a file, expected a folder" in one_error_line(run_cli(str(under)))
    assert a_file.read_text() == "keep me"


def test_an_unwritable_output_folder_fails_before_any_work(tmp_path, monkeypatch):
    from unas.config import parse_config
    from unas.errors import ConfigError
    from unas.experiment import prepare_output

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    cfg = parse_config(TINY, "tiny.yaml")
    if os.geteuid() != 0:  # root writes through permissions: simulate what a user would hit
        with pytest.raises(ConfigError, match="locked/out: output folder .*cannot write to"):
            prepare_output(cfg, locked / "out", resume=False)
    monkeypatch.setattr("unas.paths.os.access", lambda path, mode: False)
    with pytest.raises(ConfigError, match=f"{locked}/out: output folder .*: cannot write to {locked} "
                                          r"\(no write permission or a read-only file system\)"):
        prepare_output(cfg, locked / "out", resume=False)
    assert not (locked / "out").exists()


def test_a_missing_dataset_names_the_key_and_leaves_no_folder(tmp_path):
    config = tmp_path / "mnist.yaml"
    config.write_text(yaml.safe_dump({**TINY, "dataset": {"name": "mnist", "download": False,
                                                          "data_dir": str(tmp_path / "nowhere")}}))
    out = tmp_path / "results" / "run"
    line = one_error_line(run_cli(str(config), "--out", str(out)))
    assert line.startswith(f"error: {config}: dataset.data_dir ({tmp_path / 'nowhere'}): mnist: ")
    assert not (tmp_path / "results").exists()


def test_bounds_no_candidate_meets_are_reported_at_the_end(tmp_path, monkeypatch, capsys):
    """The search ran (exit 0: its log and report are written and can be extended), but a line on
    stderr says that no trained candidate fits the resource bounds."""
    import unas.experiment
    import unas.report
    from unas.run import main

    class Search:  # what run_experiment returns, reduced to what main reads
        records: dict = {}
        fits = None

        def best_within_resource_bounds(self):
            return self.fits

        def trained_records(self):
            return ["a", "b"]

    search = Search()
    monkeypatch.setattr(unas.experiment, "run_experiment",
                        lambda cfg, out_dir, resume, splits: search)
    for name, stub in (("load_context", lambda *a, **k: None), ("write_report", lambda ctx: None),
                       ("summary", lambda ctx: "summary"), ("summary_table", lambda out: "table")):
        monkeypatch.setattr(unas.report, name, stub)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main([str(config), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err == (f"warning: {config}: none of the 2 trained candidates fits the resource bounds "
                   "(objectives.peak_memory_bytes 600, objectives.model_size_bytes 3000, "
                   "objectives.macs 40000); loosen them or narrow search_space.bounds\n")
    search.fits = "a"
    assert main([str(config), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""


def test_a_failure_of_the_machine_stops_with_the_resume_hint(tmp_path, monkeypatch, capsys):
    """Disk full / out of memory (InfrastructureError) or an OSError of the search's own files:
    one line with the --resume hint, exit 2 (nothing was recorded for the candidate)."""
    import errno

    import unas.experiment
    from unas.run import main
    from unas.search.executor import InfrastructureError

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    hint = f"continue with: python -m unas.run {cfg} --out {out} --resume"
    for err in (InfrastructureError("candidate 3 could not be evaluated: OSError: [Errno 28] No "
                                    "space left on device"),
                OSError(errno.ENOSPC, "No space left on device", str(out / "checkpoint.json"))):
        def stop(*args, err=err, **kwargs):
            raise err
        monkeypatch.setattr(unas.experiment, "run_experiment", stop)
        assert main([str(cfg), "--out", str(out)]) == 2
        said = capsys.readouterr().err.strip()
        assert len(said.splitlines()) == 1 and said.startswith("error: ") and said.endswith(hint)
        assert "No space left on device" in said


def test_a_second_search_in_the_same_folder_is_refused(tmp_path):
    """The folder's lock is checked first: the refusal names the folder and the owner's pid,
    not a config difference, and the running search's files are not touched."""
    from test_files import _hold_lock
    from unas.config import parse_config
    from unas.errors import UnasError
    from unas.experiment import OutputInUseError, run_experiment
    from unas.files import atomic_write_json

    out = tmp_path / "out"
    out.mkdir()
    atomic_write_json(out / "config.json", {"config": {**TINY, "search": {**TINY["search"],
                                                                          "seed": 99}}})
    before = (out / "config.json").read_bytes()
    proc = _hold_lock(out)
    try:
        with pytest.raises(OutputInUseError, match=f"^{out}: another search is running in this "
                                                    f"folder \\(pid {proc.pid} on "):
            run_experiment(parse_config(TINY, "tiny.yaml"), out_dir=out)
    finally:
        proc.kill()
        proc.wait()
    assert (out / "config.json").read_bytes() == before
    assert issubclass(OutputInUseError, UnasError)  # the CLI says it in one line, exit 2


def _spawned_children(pid: int) -> list[int]:
    """The multiprocessing workers whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c_and_leaves_no_worker_behind(config, tmp_path):
    from unas.files import FolderLock

    out = tmp_path / "terminated"
    proc = subprocess.Popen([sys.executable, "-m", "unas.run", str(config), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and not workers:
        workers = _spawned_children(proc.pid)
        time.sleep(0.02)
    assert workers, "no worker was started"
    proc.send_signal(signal.SIGTERM)  # the search only, while its worker is still starting
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert stderr.strip().splitlines()[-1] == (
        f"terminated (SIGTERM); continue with: python -m unas.run {config} --out {out} --resume")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_running(pid) for pid in workers), "the worker outlived the search"
    FolderLock(out).acquire().release()  # the lock went with the search
