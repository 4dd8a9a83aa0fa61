"""Fuzzed ``.tflite`` files (#23): mutants of two small valid models (bit flips, byte insertions
and overwrites, int32 overwrites, cuts; seeded) into the reader, TFLM and the code generator.

The harness (:func:`tflm_runtime.fuzz.fuzz`) runs every TFLM attempt in a forked child and the
generator in a spawned worker, so a segfault is a reported crash, not a dead test process.
``benchmarks/bench_fuzz.py`` runs the same harness on thousands of mutants.
"""
import numpy as np
import pytest

from tiny_models import int8_tflite
from tflm_runtime.fuzz import FuzzReport, fuzz, mutate
from tflm_runtime.tflm import TflmRunner
from unas.errors import DataError

MUTANTS = 200


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> FuzzReport:
    from unas.export.demo import small_int8_tflite
    from unas.tfenv import keras

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                            keras.layers.Dense(4), keras.layers.Softmax()])
    models = {"cnn": small_int8_tflite(), "mlp": int8_tflite(mlp, np.random.default_rng(0))}
    return fuzz(models, MUTANTS, np.random.default_rng(23), tmp_path_factory.mktemp("fuzz"))


def test_mutate_is_seeded_and_mutates():
    blob = bytes(range(256)) * 4
    a = [mutate(blob, np.random.default_rng(1)) for _ in range(2)]
    assert a[0] == a[1] != blob


def test_no_tracebacks_and_no_crashes(report):
    """Malformed input is a refusal (UnasError) everywhere; nothing of ours dies."""
    assert report.mutants == MUTANTS
    assert report.tracebacks == []
    assert report.crashes == []
    assert report.reader_refused > 0  # the mutants do reach the checks


def test_tflm_crashes_are_data_errors_in_the_runner(report):
    """The host TFLM crashes on some mutants the reader accepts; TflmRunner checks every model in
    a child process first, so these are a DataError naming the file, not this process dying."""
    for name, blob in list(report.tflm_crashed_models.items())[:3]:
        with pytest.raises(DataError, match=f"^{name}: TFLM crashed"):
            TflmRunner(blob, path=name)


def test_accepted_mutants_run(report):
    assert report.accepted > 0 and report.bit_exact > 0


def test_accepted_mutants_are_bit_exact_with_tflm(report):
    assert report.mismatched == []


def test_generator_refuses_what_tflm_refuses(report):
    assert report.generator_accepts_tflm_refuses == []
