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
