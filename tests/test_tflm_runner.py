"""The TFLM runner: outputs, arena figures captured from C stderr, bisection of the arena size."""
import numpy as np
import pytest

from unas.errors import DataError
from unas.export.quantize import keras_to_int8_tflite
from tflm_runtime.tflm import (TflmRunner, capture_c_stderr, loads_and_runs, parse_allocations,
                               smallest_arena)


@pytest.fixture(scope="module")
def conv_tflite() -> bytes:
    from unas.tfenv import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((10, 10, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),       # 8x8x8 = 512 bytes
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    rep = np.random.default_rng(0).normal(size=(16, 10, 10, 1)).astype(np.float32)
    return keras_to_int8_tflite(model, rep)


def test_outputs_match_tflite_reference_kernels_within_one_lsb(conv_tflite, rng):
    from unas.tfenv import tf

    x = rng.integers(-128, 128, size=(6, 10, 10, 1), dtype=np.int8)
    got = TflmRunner(conv_tflite).run(x)
    ref = tf.lite.Interpreter(
        model_content=conv_tflite,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    want = []
    for sample in x:
        ref.set_tensor(ref.get_input_details()[0]["index"], sample[None])
        ref.invoke()
        want.append(ref.get_tensor(ref.get_output_details()[0]["index"])[0])
    assert got.shape == (6, 3) and got.dtype == np.int8
    assert np.max(np.abs(got.astype(int) - np.stack(want).astype(int))) <= 1


def test_arena_figures_add_up_and_head_covers_the_activations(conv_tflite):
    usage = TflmRunner(conv_tflite).arena_usage()
    assert usage.total_bytes == usage.nonpersistent_bytes + usage.persistent_bytes
    # input 100 -> 112 aligned, conv output 512: both live while the conv runs
    assert usage.nonpersistent_bytes >= 112 + 512
    assert usage.records["TfLiteEvalTensor data"][2] > 0


def test_smallest_arena_is_tight(conv_tflite):
    size = smallest_arena(conv_tflite)
    assert loads_and_runs(conv_tflite, size)
    assert not loads_and_runs(conv_tflite, size - 1)
    assert size >= TflmRunner(conv_tflite).arena_usage().total_bytes


def test_too_small_arena_and_wrong_input_are_one_line_errors(conv_tflite):
    with pytest.raises(DataError, match="arena_size: expected at least"):
        TflmRunner(conv_tflite, arena_size=64)
    tail = TflmRunner(conv_tflite).arena_usage().persistent_bytes
    with pytest.raises(DataError, match="cannot load"):
        TflmRunner(conv_tflite, arena_size=tail)
    with pytest.raises(DataError, match="expected 100 values of int8"):
        TflmRunner(conv_tflite).invoke_one(np.zeros(5, np.int8))


def test_capture_c_stderr_sees_writes_to_fd2():
    import os

    with capture_c_stderr() as log:
        os.write(2, b"[RecordingMicroAllocator] Arena allocation total 10 bytes\n")
    assert "total 10 bytes" in log[0]


def test_parse_allocations_rejects_missing_lines():
    with pytest.raises(DataError, match="print_allocations"):
        parse_allocations("nothing here")
    usage = parse_allocations(
        "[RecordingMicroAllocator] Arena allocation total 30 bytes\n"
        "[RecordingMicroAllocator] Arena allocation head 10 bytes\n"
        "[RecordingMicroAllocator] Arena allocation tail 20 bytes\n"
        "[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 48 bytes with alignment "
        "overhead (requested 48 bytes for 2 allocations)\n")
    assert (usage.total_bytes, usage.nonpersistent_bytes, usage.persistent_bytes) == (30, 10, 20)
    assert usage.records == {"TfLiteEvalTensor data": (48, 48, 2)}


@pytest.fixture(scope="module")
def mlp_softmax_tflite() -> bytes:
    """A small Dense MLP with SOFTMAX: the host TFLM crashes (SIGSEGV / SIGABRT) instead of
    failing at some arena sizes just below the smallest that runs (1,680 and 1,696 B with
    tflite-micro 2024/25)."""
    from tiny_models import int8_tflite
    from unas.tfenv import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4), keras.layers.Softmax()])
    return int8_tflite(model, np.random.default_rng(0))


def test_arena_probes_that_crash_tflm_are_failed_probes(mlp_softmax_tflite):
    """Regression (#23): ``python -m unas.measure`` died with exit 139 when the bisection tried an
    arena size at which the host TFLM crashes; every probe now runs in a child process."""
    from tflm_runtime.isolated import run_isolated

    sizes = list(range(1024, 2400, 16))
    outcomes = run_isolated([(mlp_softmax_tflite, s, None) for s in sizes])
    crashing = [s for s, (status, _) in zip(sizes, outcomes) if status == "crashed"]
    smallest = smallest_arena(mlp_softmax_tflite)
    assert loads_and_runs(mlp_softmax_tflite, smallest)
    assert not loads_and_runs(mlp_softmax_tflite, smallest - 1)
    if not crashing:
        pytest.skip("this TFLM build no longer crashes on small arenas")
    crash = crashing[0]
    assert crash < smallest
    assert not loads_and_runs(mlp_softmax_tflite, crash)  # in-process, this was a SIGSEGV
    with pytest.raises(DataError, match=r"^mlp\.tflite: TFLM crashed loading"):
        TflmRunner(mlp_softmax_tflite, arena_size=crash, path="mlp.tflite")
    # an upper bound whose first bisection probe is the crashing size
    assert smallest_arena(mlp_softmax_tflite, upper=2 * crash - 1024) == smallest


def test_garbage_bytes_are_a_data_error_naming_the_file():
    with pytest.raises(DataError, match=r"^junk\.tflite: "):
        TflmRunner(b"TFL3" * 10, path="junk.tflite")
    with pytest.raises(DataError, match=r"junk\.tflite: TFLM"):
        smallest_arena(b"TFL3" * 10, path="junk.tflite")


def test_smallest_arena_of_the_autoencoder_that_crashed_the_bisection():
    """Regression (#23): the dense autoencoder 640-128x4-8-128x4-640 of the issue; the in-process
    bisection died here with SIGSEGV (exit 139), now the crashing probes are failed probes."""
    from tiny_models import int8_tflite
    from unas.tfenv import keras

    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense
    model = keras.Sequential([keras.Input((640,))]
                             + [dense(128, activation="relu") for _ in range(4)] + [dense(8)]
                             + [dense(128, activation="relu") for _ in range(4)] + [dense(640)])
    blob = int8_tflite(model, np.random.default_rng(0))
    size = smallest_arena(blob)
    assert loads_and_runs(blob, size) and not loads_and_runs(blob, size - 1)
    assert size >= TflmRunner(blob).arena_usage().total_bytes
