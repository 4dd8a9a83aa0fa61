"""The report of a search folder, built from a synthetic log (no training needed)."""
from __future__ import annotations

import csv
import json

import pytest

from unas.errors import UnasError
from unas.report import REPORT_STEPS, load_context, main, write_report
from unas.files import JsonLines, atomic_write_json
from unas.search.objectives import Objectives
from unas.search.records import EvaluationRecord

CONFIG = {"dataset": {"name": "digits"},
          "objectives": {"error": 0.3, "peak_memory_bytes": 500, "model_size_bytes": 2000, "macs": 10_000}}
ARCH = {"space": "cnn", "blocks": [], "dense_units": [], "pool_size": 2, "pool_type": "avg"}


def make_folder(tmp_path):
    log = JsonLines(tmp_path / "evaluations.jsonl")
    rows = [  # id, status, objectives, reused_from
        (0, "ok", Objectives(0.20, 400, 1500, 9000), None),     # front, within bounds
        (1, "ok", Objectives(0.25, 450, 1800, 9500), None),     # dominated by 0
        (2, "ok", Objectives(0.10, 900, 5000, 40_000), None),   # front, outside bounds
        (3, "skipped: peak_memory_bytes 2000 > bound 500", Objectives(1.0, 2000, 100, 100), None),
        (4, "failed: NaN loss", None, None),
        (5, "ok", Objectives(0.20, 400, 1500, 9000), 0),         # reuse of 0: not a new point
    ]
    for rid, status, objectives, reused in rows:
        ok = status == "ok"
        log.append(EvaluationRecord(
            id=rid, round=rid, arch=ARCH, status=status, seed=rid, objectives=objectives,
            test_error=objectives.error + 0.01 if ok else None, reused_from=reused,
            model_path=f"models/{rid}.keras" if ok else None).to_dict())
    atomic_write_json(tmp_path / "config.json", {"config": CONFIG, "source": "x.yaml"})
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "0.keras").write_bytes(b"stand-in")
    return tmp_path


def test_front_csv_json_and_plots(tmp_path):
    out = make_folder(tmp_path)
    written = write_report(out)
    with open(out / "pareto.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == [2, 0]  # lowest validation error first
    assert [r["within_bounds"] for r in rows] == ["False", "True"]
    assert float(rows[1]["test_accuracy"]) == pytest.approx(0.79)
    info = json.loads((out / "pareto" / "0.json").read_text())
    assert info["architecture"] == ARCH and info["model_exists"] is True
    assert json.loads((out / "pareto" / "2.json").read_text())["model_exists"] is False
    for name in ("progress", "error_vs_peak_memory_bytes", "error_vs_model_size_bytes", "error_vs_macs"):
        path = out / "plots" / f"{name}.png"
        assert path in written and path.read_bytes()[:4] == b"\x89PNG"


def test_the_pipeline_is_a_list_of_steps(tmp_path):
    out = make_folder(tmp_path)

    def tflm_column(ctx):
        for r in ctx.front:
            ctx.extra_columns[r.id] = {"tflm_arena_bytes": 1000 + r.id}
        return []

    from unas.report import write_pareto_csv
    write_report(out, steps=[tflm_column, write_pareto_csv])
    with open(out / "pareto.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["tflm_arena_bytes"] for r in rows] == ["1002", "1000"]
    assert write_pareto_csv in REPORT_STEPS


def test_context_reads_the_bounds_from_the_snapshot(tmp_path):
    ctx = load_context(make_folder(tmp_path))
    assert ctx.bounds.as_tuple() == (0.3, 500, 2000, 10_000)
    assert len(ctx.records) == 6 and {r.id for r in ctx.front} == {0, 2}


def test_cli(tmp_path, capsys):
    assert main([str(make_folder(tmp_path))]) == 0
    text = capsys.readouterr().out
    assert "6 candidates: 1 failed, 3 ok, 1 reused, 1 skipped" in text
    assert main([str(tmp_path / "nothing")]) == 2
    assert "not a search output folder" in capsys.readouterr().err
    with pytest.raises(UnasError):
        load_context(tmp_path / "nothing")


def test_cli_a_full_disk_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import errno

    import unas.report.pareto as pareto

    out = make_folder(tmp_path)
    (out / "models" / "0.keras").unlink()  # a front model's file is missing: skipped, not fatal

    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pareto, "atomic_write_text", disk_full)
    assert main([str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {out / 'pareto.csv'}: No space left on device"
    assert "Traceback" not in "\n".join(err)
