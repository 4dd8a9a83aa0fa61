"""``python -m unas.measure`` (over :mod:`tflm_runtime.bench`): the table of one model measured in TFLM."""
from pathlib import Path

import numpy as np
import pytest

from tflm_runtime.bench import bench_tflite
from unas.measure import main
from unas.export.quantize import keras_to_int8_tflite

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory) -> Path:
    """An (untrained) 8x8x1 → 10 classes CNN, the shape of the bundled digits dataset."""
    from unas.tfenv import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    rep = np.random.default_rng(0).uniform(0, 1, size=(16, 8, 8, 1)).astype(np.float32)
    path = tmp_path_factory.mktemp("bench") / "digits.tflite"
    path.write_bytes(keras_to_int8_tflite(model, rep))
    return path


def test_bench_row_is_consistent(digits_tflite):
    row = bench_tflite(digits_tflite.read_bytes(), repeats=3)
    assert row.int8_accuracy is None
    assert row.head_bytes == row.predicted_head_bytes >= row.predicted_peak_bytes
    assert row.total_bytes == row.head_bytes + row.tail_bytes <= row.smallest_arena_bytes
    assert row.macs == 6 * 6 * 4 * 9 + 4 * 10
    # conv: 36 int8 weights + 4 int32 biases; FC: 40 weights, its all-zero bias (untrained) is
    # dropped by the converter; MEAN's int32 axes are no weights
    assert row.weight_bytes == 36 + 16 + 40
    assert row.latency_s > 0


def test_cli_with_data_reports_accuracy(digits_tflite, capsys):
    assert main([str(digits_tflite), "--data", str(REPO / "experiments" / "digits.yaml"),
                 "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("| int8 test accuracy"))
    assert 0.0 <= float(line.split("|")[2]) <= 1.0


def test_cli_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_measures_models_the_generator_refuses(tmp_path, capsys):
    """#23: TFLM runs a Conv1D (EXPAND_DIMS) + GlobalMaxPooling1D model; the measurement must not
    depend on the code generator's operator coverage, only the predictions do."""
    from unas.tfenv import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((16, 2)), keras.layers.Conv1D(4, 3, activation="relu"),
                              keras.layers.GlobalMaxPooling1D(), keras.layers.Dense(3)])
    rep = np.random.default_rng(0).normal(size=(16, 16, 2)).astype(np.float32)
    path = tmp_path / "conv1d.tflite"
    path.write_bytes(keras_to_int8_tflite(model, rep))
    row = bench_tflite(path.read_bytes(), repeats=2, path=str(path))
    assert row.predicted_head_bytes is None and row.predicted_peak_bytes is None
    assert "conv1d.tflite" in row.unsupported and "is not supported" in row.unsupported
    assert row.head_bytes > 0 and row.smallest_arena_bytes >= row.total_bytes
    assert row.macs == 14 * 4 * 3 * 2 + 4 * 3  # the Conv1D runs as a 1x3 CONV_2D
    assert main([str(path), "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "| predicted head (replay of TFLM's planner) | n/a" in out
    assert "| code generator (python -m tflm_runtime.codegen) | would refuse:" in out


def test_supported_model_says_so(digits_tflite, capsys):
    assert main([str(digits_tflite), "--repeats", "2"]) == 0
    assert "| code generator (python -m tflm_runtime.codegen) | supports every operator |" in \
        capsys.readouterr().out


def test_corrupt_file_names_the_file(digits_tflite, tmp_path, capsys):
    blob = bytearray(digits_tflite.read_bytes())
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(bytes(blob[:len(blob) // 2]))
    assert main([str(bad), "--repeats", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "cut.tflite" in err
