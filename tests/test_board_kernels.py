"""The dense convolution kernels' Cortex-M paths (SMLAD blocks, the inline-assembly int16 loop,
the folded requantisation) on the emulated board against TFLM, on layers that reach every kernel
variant the generator picks: a Cin = 1 5x5 stem and a Cin = 3 strided stem (patch kernel), 1x1
convs with odd depths and channel counts and one over 128 input channels (int8 packed path), a
k x k convs over 128 taps with borders and strides, 'same' 7x7 / 5x5 / 3x3 filters on 7x7,
4x4 and 3x3 images (direct kernel, border pixel pairs)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from tiny_models import int8_tflite

from tflm_runtime.board import generate_model_sources, measure_c_model
from tflm_runtime.board.sources import read_model_sources

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="board toolchain missing: run `bash scripts/setup.sh`")


def _gray_stem(keras):
    layers = keras.layers
    inputs = keras.Input((10, 9, 1))
    x = layers.Conv2D(9, 5, padding="same", activation="relu")(inputs)      # patch, K = 25
    x = layers.Conv2D(7, 1, activation="relu6")(x)                          # 1x1, depth 9
    x = layers.Conv2D(6, 5, strides=2, padding="same")(x)                   # direct, K = 175
    x = layers.Conv2D(22, 1, activation="relu")(x)                          # 1x1, even
    x = layers.Conv2D(5, 3, padding="same")(x)                              # direct, K = 198
    return keras.Model(inputs, layers.Dense(4)(layers.Flatten()(x)))


def _rgb_stem(keras):
    layers = keras.layers
    inputs = keras.Input((9, 11, 3))
    x = layers.Conv2D(5, 3, strides=2, padding="same", activation="relu")(inputs)  # patch, Cin 3
    x = layers.Conv2D(131, 1, activation="relu")(x)                        # 1x1 to 131 channels
    x = layers.Conv2D(3, 1)(x)                                              # 1x1, in_c 131 > 128
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x))


def _border_convs(keras):
    """'same' convolutions where (nearly) every output pixel is a border pixel."""
    layers = keras.layers
    inputs = keras.Input((7, 7, 24))
    x = layers.Conv2D(20, 3, padding="same")(inputs)                     # in place inside, K = 216
    x = layers.Conv2D(9, 7, padding="same", activation="relu")(x)        # 7x7 on 7x7, K = 980
    x = layers.Conv2D(17, 5, strides=2, padding="same")(x)               # to 4x4, K = 225
    x = layers.Conv2D(11, 3, padding="same")(x)                          # 3x3 on 4x4, K = 153
    return keras.Model(inputs, layers.Dense(4)(layers.Flatten()(x)))


def _wide_rows(keras):
    """7x7 filter on a 3x3 image with 300 input channels: filter columns left out of a pixel pair
    and sums of over 512 weights (the int16-lane sum's pieces)."""
    inputs = keras.Input((3, 3, 300))
    return keras.Model(inputs, keras.layers.Conv2D(5, 7, padding="same")(inputs))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from unas.tfenv import keras

    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("tflite")
    paths = {}
    for name, build in (("gray_stem", _gray_stem), ("rgb_stem", _rgb_stem),
                        ("border_convs", _border_convs), ("wide_rows", _wide_rows)):
        model = build(keras)
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(int8_tflite(model, rng, num_samples=16))
    return paths


STEMS = [("gray_stem", {"unas_conv2d_patch_s8", "unas_conv2d_1x1_expanded_s8", "unas_conv2d_s8"}),
         ("rgb_stem", {"unas_conv2d_patch_s8", "unas_conv2d_1x1_expanded_s8",
                       "unas_conv2d_1x1_packed_s8"})]
#: the direct kernel's border paths: the same Thumb-2 DSP code on both cores, so one core
BORDERS = [("border_convs", {"unas_conv2d_s8"}), ("wide_rows", {"unas_conv2d_s8"})]


@pytest.mark.parametrize("name, kernels, cpu", [
    *((name, kernels, cpu) for name, kernels in STEMS for cpu in ("cortex-m4", "cortex-m7")),
    *((name, kernels, "cortex-m4") for name, kernels in BORDERS)])
def test_conv_kernel_paths_match_tflm_on_the_board(models, tmp_path, rng, name, kernels, cpu):
    from tflm_runtime.codegen.verify import run_tflm
    from tflm_runtime.tflite_model import read_tflite

    sources = generate_model_sources(models[name], tmp_path / "c")
    source = (sources / "model.c").read_text()
    assert all(f"{kernel}(&" in source for kernel in kernels)
    header = read_model_sources(sources)
    x = rng.integers(-128, 128, size=(3, header.input_bytes), dtype=np.int8)
    result = measure_c_model(sources, cpu=cpu, inputs=x)
    np.testing.assert_array_equal(result.outputs, result.host_outputs)
    model = read_tflite(models[name])
    shape = model.tensors[model.inputs[0]].shape[1:]
    expected = run_tflm(models[name].read_bytes(), x.reshape(3, *shape))
    np.testing.assert_array_equal(result.outputs, expected.reshape(3, -1))
