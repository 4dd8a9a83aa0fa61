"""Generated C (tflm_runtime.codegen) on the emulated board: outputs equal TFLM's and the host
build's on Cortex-M4 and M7, deterministic instruction counts, per-kernel timing of the
generated kernel calls, and a generated model too large for the board refused at link time."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from tiny_models import int8_tflite

from tflm_runtime.board import (ModelDoesNotFitError, generate_model_sources, measure_c_model,
                                measure_tflite)
from tflm_runtime.board.sources import read_model_sources

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="board toolchain missing: run `bash scripts/setup.sh`")


def _inverted_residual(keras):
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inputs)
    y = layers.Conv2D(16, 1, activation="relu6")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = layers.Conv2D(8, 1)(y)
    x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Softmax()(layers.Dense(5)(x)))


def _space_model(rng):
    from search_spaces import get_space

    space = get_space("cnn", max_blocks=2, max_layers=2, max_channels=8, max_dense_layers=1,
                      max_units=12)
    return space.random_architecture(rng).build((10, 10, 1), 4)


def _wide_input(keras):
    inputs = keras.Input((160, 160, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> .tflite path of small int8 models (random weights, exported once)."""
    from unas.tfenv import keras

    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("tflite")
    built = {"inverted_residual": _inverted_residual(keras), "cnn_space": _space_model(rng),
             "wide_input": _wide_input(keras)}
    paths = {}
    for name, model in built.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(int8_tflite(model, rng, num_samples=16))
    return paths


@pytest.mark.parametrize("name", ["inverted_residual", "cnn_space"])
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_generated_model_matches_tflm_and_counts_deterministically(models, tmp_path, rng, name,
                                                                   cpu):
    from tflm_runtime.codegen.verify import run_tflm

    sources = generate_model_sources(models[name], tmp_path / "c")
    header = read_model_sources(sources)
    x = rng.integers(-128, 128, size=(3, header.input_bytes), dtype=np.int8)
    first = measure_c_model(sources, cpu=cpu, inputs=x)
    second = measure_c_model(sources, cpu=cpu, inputs=x)
    assert first.instructions == second.instructions
    np.testing.assert_array_equal(first.outputs, first.host_outputs)
    expected = run_tflm(models[name].read_bytes(), x.reshape(3, *_input_shape(models[name])))
    np.testing.assert_array_equal(first.outputs, expected.reshape(3, -1))
    assert first.memory.model_code_bytes > 0 and first.memory.model_const_bytes > 0
    assert first.memory.model_bss_bytes >= header.arena_bytes


def test_per_layer_timing_of_generated_kernels(models, tmp_path, rng):
    sources = generate_model_sources(models["inverted_residual"], tmp_path / "c")
    plain = measure_c_model(sources, cpu="cortex-m4", rng=np.random.default_rng(3), samples=1)
    timed = measure_c_model(sources, cpu="cortex-m4", rng=np.random.default_rng(3), samples=1,
                            per_layer=True)
    np.testing.assert_array_equal(plain.outputs, timed.outputs)
    names = timed.layer_names
    assert names is not None and len(names) == len(timed.layer_instructions[0])
    assert names[0].endswith("#0") and "CONV_2D" in names[0]
    assert any("DEPTHWISE_CONV_2D" in n for n in names)
    assert all(count > 0 for count in timed.layer_instructions[0])
    assert abs(sum(timed.layer_instructions[0]) - plain.instructions[0]) <= 8 * len(names)


def test_generated_model_too_big_for_the_board_fails_to_link(models, tmp_path, rng):
    sources = generate_model_sources(models["wide_input"], tmp_path / "c")
    with pytest.raises(ModelDoesNotFitError,
                       match=r"^the model does not fit stm32f446: RAM overflowed by \d+ bytes$"):
        measure_c_model(sources, board="stm32f446", rng=rng)
    # The same code fits the larger board.
    assert measure_c_model(sources, board="stm32f746", rng=rng, samples=1).instructions[0] > 0


def _input_shape(path):
    from tflm_runtime.tflite_model import read_tflite

    model = read_tflite(path)
    return model.tensors[model.inputs[0]].shape[1:]



def test_float_inputs_are_quantised_with_the_model_input_parameters(models, rng):
    from tflm_runtime.tflite_model import read_tflite
    from tflm_runtime.tflite_model import quantize_input

    path = models["cnn_space"]
    tensor = read_tflite(path).tensors[read_tflite(path).inputs[0]]
    x = rng.normal(size=(2, *_input_shape(path))).astype(np.float32)
    result = measure_tflite(path, cpu="cortex-m4", inputs=x)
    expected = measure_c_model(generate_model_sources(path, path.parent / "c_float"),
                               cpu="cortex-m4",
                               inputs=quantize_input(x, tensor.scale, tensor.zero_point))
    np.testing.assert_array_equal(result.outputs, expected.outputs)
    assert result.instructions == expected.instructions
