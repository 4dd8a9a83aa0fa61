"""Export of trained Keras models: the CLI and the Pareto-front step (digits, no download)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from unas.export.__main__ import main
from unas.report.tflm import TFLM_COLUMNS, export_and_measure
from unas.files import JsonLines, atomic_write_json
from unas.search.objectives import Objectives
from unas.search.records import EvaluationRecord
from tflm_runtime.tflm import TflmRunner
from tiny_models import train_digits_cnn

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"dataset": {"name": "digits", "validation_split": 0.2, "augment": False},
          "objectives": {"error": 0.3, "peak_memory_bytes": 5000, "model_size_bytes": 20000,
                         "macs": 100_000}}


@pytest.fixture(scope="module")
def trained_keras(tmp_path_factory) -> Path:
    """A small CNN (8 channels) trained two epochs on the digits training split, saved as .keras."""
    return train_digits_cnn(tmp_path_factory.mktemp("keras") / "model.keras", channels=8,
                            epochs=2)


def _search_folder(root: Path, keras_path: Path) -> Path:
    log = JsonLines(root / "evaluations.jsonl")
    for rid, objectives in ((0, Objectives(0.20, 400, 1500, 9000)),
                            (1, Objectives(0.10, 900, 5000, 40_000))):
        log.append(EvaluationRecord(
            id=rid, round=rid, arch={"space": "cnn", "blocks": [], "dense_units": [],
                                     "pool_size": 2, "pool_type": "avg"},
            status="ok", seed=rid, objectives=objectives, test_error=objectives.error,
            model_path=f"models/{rid}.keras").to_dict())
    atomic_write_json(root / "config.json", {"config": CONFIG, "source": "x.yaml"})
    (root / "models").mkdir()
    shutil.copy(keras_path, root / "models" / "0.keras")  # model 1 has no file: skipped
    return root


def test_pareto_step_adds_tflm_columns(tmp_path, trained_keras):
    out = _search_folder(tmp_path, trained_keras)
    written = export_and_measure(out)
    assert out / "tflite" / "0.tflite" in written
    with open(out / "pareto.csv") as handle:
        rows = {int(r["id"]): r for r in csv.DictReader(handle)}
    assert set(TFLM_COLUMNS) <= set(rows[0])
    row = rows[0]
    assert float(row["float_test_accuracy"]) > 0.5
    assert abs(float(row["int8_accuracy_drop"])) < 0.05
    assert int(row["tflm_arena_head_bytes"]) == int(row["predicted_head_bytes"])
    assert row["tflite_path"] == "tflite/0.tflite" and rows[1]["tflite_path"] == ""
    runner = TflmRunner((out / "tflite" / "0.tflite").read_bytes())
    assert runner.arena_usage().nonpersistent_bytes == int(row["tflm_arena_head_bytes"])


def test_cli_exports_a_keras_file_with_the_data_config(tmp_path, trained_keras, capsys):
    out = tmp_path / "m.tflite"
    assert main([str(trained_keras), "-o", str(out), "--data",
                 str(REPO / "experiments" / "digits.yaml"), "--num-samples", "50"]) == 0
    printed = capsys.readouterr().out
    assert "int8 test accuracy" in printed and "float test accuracy" in printed
    assert out.read_bytes()[4:8] == b"TFL3"


def test_cli_picks_a_model_of_a_search_folder(tmp_path, trained_keras, capsys):
    (tmp_path / "run").mkdir()
    out = _search_folder(tmp_path / "run", trained_keras)
    assert main([str(out), "--model", "0", "-o", str(tmp_path / "0.tflite")]) == 0
    assert (tmp_path / "0.tflite").exists()
    capsys.readouterr()
    assert main([str(out), "--model", "1", "-o", str(tmp_path / "1.tflite")]) == 2
    assert "trained model file not found" in capsys.readouterr().err
    assert main([str(out), "--model", "7", "-o", str(tmp_path / "7.tflite")]) == 2
    assert "--model 7: no trained model" in capsys.readouterr().err


def test_cli_needs_data_for_a_keras_file(trained_keras, tmp_path, capsys):
    assert main([str(trained_keras), "-o", str(tmp_path / "x.tflite")]) == 2
    assert "--data CONFIG is required" in capsys.readouterr().err


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("content", ["empty", "garbage", "truncated"])
def test_cli_a_broken_keras_file_is_one_line(tmp_path, trained_keras, capsys, content):
    broken = tmp_path / "broken.keras"
    whole = trained_keras.read_bytes()
    broken.write_bytes({"empty": b"", "garbage": b"not a model\n" * 40,
                        "truncated": whole[:len(whole) // 2]}[content])
    assert main([str(broken), "-o", str(tmp_path / "x.tflite"), "--data",
                 str(REPO / "experiments" / "digits.yaml")]) == 2
    assert _one_line(capsys).startswith(f"error: {broken}: cannot load the Keras model")
    assert not (tmp_path / "x.tflite").exists()


def test_cli_an_unwritable_output_or_bad_sample_count_fails_first(tmp_path, trained_keras, capsys):
    data = ["--data", str(REPO / "experiments" / "digits.yaml")]
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    for output, expected in (
            (tmp_path / "nowhere" / "x.tflite", f"the folder {tmp_path / 'nowhere'} does not exist"),
            (a_file / "x.tflite", f"{a_file} is a file, expected a folder"),
            (tmp_path, "is a folder, expected a file name")):
        assert main([str(trained_keras), "-o", str(output), *data]) == 2
        assert _one_line(capsys) == f"error: {output}: -o: {expected}"
    assert not (tmp_path / "nowhere").exists() and a_file.read_text() == "keep"
    for count in ("0", "-5"):
        assert main([str(trained_keras), "-o", str(tmp_path / "x.tflite"), *data,
                     "--num-samples", count]) == 2
        assert _one_line(capsys) == f"error: --num-samples: expected an integer >= 1, got {count}"
