"""The deploy report step end to end on a tiny search folder: export, generated C bit-exact with
TFLM, emulated Cortex-M4 board, summary table/CSV/Markdown/plot (digits, no download)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from unas.report.deploy import deploy_report_step, select_models
from unas.report.deploy_model import deploy_tflite
from unas.report.summary import SUMMARY_COLUMNS, format_table, summary_table, write_summary
from unas.report import REPORT_STEPS, load_context, write_pareto_csv, write_report
from unas.files import JsonLines, atomic_write_json
from unas.search.objectives import Objectives
from unas.search.records import EvaluationRecord
from tiny_models import train_digits_cnn

CONFIG = {"dataset": {"name": "digits", "validation_split": 0.2, "augment": False},
          "objectives": {"error": 0.5, "peak_memory_bytes": 5000, "model_size_bytes": 20000,
                         "macs": 100_000},
          "target": {"engine": "codegen"}}
ARCH = {"space": "cnn", "blocks": [], "dense_units": [], "pool_size": 2, "pool_type": "avg"}


@pytest.fixture(scope="module")
def trained_keras(tmp_path_factory) -> Path:
    """A small CNN (4 channels) trained one epoch on the digits training split, saved as .keras."""
    return train_digits_cnn(tmp_path_factory.mktemp("keras") / "model.keras", channels=4,
                            epochs=1)


def _search_folder(root: Path, keras_path: Path) -> Path:
    """Three front models: #0 with its trained model file, #1 (outside bounds) without one,
    #2 (outside bounds) with a broken one. MACs of #0 are the model's: 8*8*4*9 + 64*10."""
    log = JsonLines(root / "evaluations.jsonl")
    for rid, objectives in ((0, Objectives(0.20, 400, 1500, 8 * 8 * 4 * 9 + 64 * 10)),
                            (1, Objectives(0.10, 9000, 5000, 40_000)),
                            (2, Objectives(0.05, 20_000, 30_000, 90_000))):
        log.append(EvaluationRecord(
            id=rid, round=rid, arch=ARCH, status="ok", seed=rid, objectives=objectives,
            test_error=objectives.error, model_path=f"models/{rid}.keras").to_dict())
    atomic_write_json(root / "config.json", {"config": CONFIG, "source": "x.yaml"})
    (root / "models").mkdir()
    shutil.copy(keras_path, root / "models" / "0.keras")
    (root / "models" / "2.keras").write_bytes(b"not a keras file")
    return root


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, trained_keras) -> Path:
    out = _search_folder(tmp_path_factory.mktemp("search"), trained_keras)
    write_report(out, steps=[deploy_report_step, write_pareto_csv, write_summary])
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_steps_are_registered_around_pareto_csv():
    position = REPORT_STEPS.index
    assert position(deploy_report_step) < position(write_pareto_csv) < position(write_summary)


def test_summary_has_every_column_and_a_bit_exact_board_run(deployed):
    rows = {row["id"]: row for row in _rows(deployed / "summary.csv")}
    assert set(rows) == {"0", "1", "2"}
    assert {key for key, _ in SUMMARY_COLUMNS} <= set(rows["0"])
    good = rows["0"]
    assert good["deploy_status"] == "ok"
    assert good["bit_exact"] == "True" and good["board_equals_host"] == "True"
    for key in ("tflm_arena_bytes", "codegen_sram_bytes", "flash_bytes", "board_instructions",
                "predicted_peak_bytes", "macs"):
        assert int(good[key]) > 0, key
    assert float(good["instructions_per_mac"]) == pytest.approx(
        int(good["board_instructions"]) / int(good["macs"]), rel=1e-3)
    assert int(good["flash_bytes"]) > int(good["weights_bytes"])  # code + weights
    assert 0.0 < float(good["int8_test_accuracy"]) <= 1.0
    assert rows["1"]["deploy_status"] == "skipped: no saved model file (models/1.keras)"
    assert rows["2"]["deploy_status"].startswith("failed: ")  # the report went on


def test_pareto_csv_gets_the_deploy_columns(deployed):
    rows = {row["id"]: row for row in _rows(deployed / "pareto.csv")}
    assert rows["0"]["codegen_sram_bytes"] == next(
        r for r in _rows(deployed / "summary.csv") if r["id"] == "0")["codegen_sram_bytes"]
    assert rows["0"]["tflite_path"] == "tflite/0.tflite"
    assert (deployed / "deploy" / "0" / "model.c").is_file()


def test_table_markdown_and_plot(deployed):
    table = summary_table(deployed)
    header = table.splitlines()[1]
    for _, title in SUMMARY_COLUMNS:
        assert title in header
    assert "#1: skipped: no saved model file (models/1.keras)" in table
    assert "| id |" in (deployed / "summary.md").read_text()
    assert (deployed / "plots" / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_board_toolchain_is_reported_not_raised(deployed, tmp_path, monkeypatch):
    import unas.report.deploy_model as model_module

    real_which = shutil.which
    monkeypatch.setattr(model_module.shutil, "which",
                        lambda tool: None if tool == "qemu-system-arm" else real_which(tool))
    x = np.random.default_rng(1).integers(-128, 128, size=(4, 8, 8, 1), dtype=np.int8)
    figures = deploy_tflite(deployed / "tflite" / "0.tflite", tmp_path / "c", x)
    assert figures.bit_exact is True
    assert str(figures.board_instructions).startswith("unavailable: qemu-system-arm not found")
    rows = [{"id": 3, "board_instructions": figures.board_instructions, "bit_exact": True}]
    assert "n/a" in format_table(rows) and "#3: unavailable: qemu-system-arm" in format_table(rows)


def test_selection_prefers_models_within_bounds_and_is_capped():
    front = [SimpleNamespace(id=i, inside=i % 2 == 1) for i in range(8)]
    ctx = SimpleNamespace(front=front, within_bounds=lambda r: r.inside)
    assert [r.id for r in select_models(ctx, limit=5)] == [1, 3, 5, 7, 0]
    assert select_models(ctx, limit=0) == []


def test_report_survives_a_folder_without_usable_data(tmp_path, trained_keras):
    out = _search_folder(tmp_path, trained_keras)
    snapshot = {"config": {**CONFIG, "dataset": {"name": "no_such_dataset"}}, "source": "x.yaml"}
    atomic_write_json(out / "config.json", snapshot)
    ctx = load_context(out)  # the snapshot is read without checking the dataset
    assert deploy_report_step(ctx) == []
    assert all(ctx.extra_columns[r.id]["deploy_status"].startswith("unavailable:")
               for r in select_models(ctx))
