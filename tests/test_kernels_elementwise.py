"""The depthwise, ADD, pooling and MEAN kernels (and their generation-time precomputation) against
TFLite Micro byte for byte on awkward shapes: odd channel counts (four-channel groups plus a tail),
one-channel planes, strides 1/2, SAME/VALID padding, kernels 1-7, in place and not, depth
multiplier 2, per-input ADD tables (shared and separate), global MEAN over more than 256
pixels, saturating outputs, and the fallback when an accumulator is too large for the fast
requantisation. Host build with ASan/UBSan (portable lane arithmetic, same weight layouts as the
DSP path); the Cortex-M4 DSP path on the emulated board when its toolchain is installed.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tiny_models import int8_tflite

from tflm_runtime.codegen import fixed_point as fp

KERNELS = Path(__file__).resolve().parents[1] / "tflm_runtime" / "codegen" / "c"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _models() -> dict[str, tuple[object, tuple[int, ...]]]:
    """name -> (keras model, input shape)."""
    from unas.tfenv import keras, tf
    layers = keras.layers
    models: dict[str, tuple[object, tuple[int, ...]]] = {}

    def add(name, shape, body):
        inputs = keras.Input(shape)
        models[name] = (keras.Model(inputs, body(inputs)), shape)

    def dw(k, stride=1, padding="same", **kw):
        return layers.DepthwiseConv2D(k, strides=stride, padding=padding, **kw)

    # four-channel groups (not in place: the concatenation keeps the depthwise input live)
    def groups(k, stride, padding, channels, activation=None):
        def body(x):
            y = layers.Conv2D(channels, 1)(x)
            z = dw(k, stride, padding, activation=activation)(y)
            return layers.Concatenate()([layers.Flatten()(y), layers.Flatten()(z)])
        return body
    add("groups_k3_s1_same_c8_relu6", (9, 7, 3), groups(3, 1, "same", 8, "relu6"))
    add("groups_k5_s2_same_c13", (11, 10, 2), groups(5, 2, "same", 13))
    add("groups_k7_s1_valid_c6", (9, 11, 3), groups(7, 1, "valid", 6))
    add("groups_k2_s1_same_c9", (6, 5, 2), groups(2, 1, "same", 9))
    add("groups_k3_s2_valid_c4_tiny", (3, 4, 2), groups(3, 2, "valid", 4))
    # one channel: copied into a padded plane in place or not (it needs the scratch either way,
    # so the engine runs it in place once the concatenation's flatten has copied the input)
    def plane(k, stride=1, padding="same", activation=None):
        return lambda x: layers.Concatenate()([layers.Flatten()(x), layers.Flatten()(
            dw(k, stride, padding, activation=activation)(x))])
    add("plane_k5_s1_same", (9, 11, 1), plane(5, activation="relu"))
    add("plane_k3_s2_same", (10, 7, 1), plane(3, 2))
    add("plane_k4_s1_same", (8, 9, 1), plane(4))
    add("plane_k7_s2_same_small", (5, 6, 1), plane(7, 2))

    # general kernels (no precomputation)
    add("dw_c3_then_mult2", (7, 6, 3), lambda x: dw(3, depth_multiplier=2)(dw(3, 2)(x)))

    # ADD: separate tables, a shared table (both inputs the same tensor), fused ReLU, saturation
    def residual(x):
        y = layers.Conv2D(5, 3, padding="same", activation="relu")(x)
        return layers.Add()([y, layers.Conv2D(5, 1)(y)])
    add("add_tables", (7, 5, 3), residual)
    add("add_shared_table", (5, 6, 3), lambda x: layers.Add()([layers.Conv2D(7, 1)(x)] * 2))
    add("add_relu_saturating", (6, 6, 2), lambda x: layers.ReLU()(layers.Add()([
        layers.Conv2D(6, 1)(x), layers.Conv2D(6, 1, kernel_initializer="ones")(x) * 40.0])))
    # pooling and MEAN (channel counts: groups of four plus a tail)
    add("pools_c5", (9, 8, 5), lambda x: layers.GlobalAveragePooling2D()(
        layers.AveragePooling2D(3, 1, "same")(layers.MaxPooling2D(3, 2, "same")(x))))
    add("pools_c9", (8, 8, 9), lambda x: layers.AveragePooling2D(2)(layers.MaxPooling2D(2)(x)))
    add("mean_hw_300_pixels", (20, 15, 6), lambda x: layers.GlobalAveragePooling2D()(x))
    add("mean_axis1", (4, 6, 5), lambda x: layers.Lambda(lambda t: tf.reduce_mean(t, axis=1))(x))
    # in place: 1x1 expand -> depthwise -> 3x3 conv (the depthwise input is the peak; a 1x1
    # projection would make the codegen engine fuse the three into a row-streamed block).
    # Last, so that the models above draw the same weights from the shared generator.
    def in_place(k, stride, channels):
        return lambda x: layers.Conv2D(3, 3, padding="same")(dw(k, stride, activation="relu6")(
            layers.Conv2D(channels, 1)(x)))
    add("inplace_k3_s1_c7", (9, 9, 2), in_place(3, 1, 7))
    add("inplace_k5_s2_c15", (11, 9, 1), in_place(5, 2, 15))
    add("inplace_k7_s2_c16", (14, 13, 1), in_place(7, 2, 16))
    # the padded plane: valid padding whose last input row and column no output reads, an even
    # kernel (more padding after than before), 1x1 stride 2 (three bytes of word overrun past the
    # plane). Dilation (which the converter turns into SPACE_TO_BATCH_ND) is checked on the
    # kernel alone in test_codegen_kernels.py.
    def in_place_dw(layer, channels):
        return lambda x: layers.Conv2D(3, 3, padding="same")(layer(layers.Conv2D(channels, 1)(x)))
    add("inplace_k3_s2_valid_c24", (10, 10, 1), in_place_dw(dw(3, 2, "valid"), 24))
    add("inplace_k4_s1_same_c5", (8, 7, 2), in_place_dw(dw(4), 5))
    add("inplace_k1_s2_c11", (9, 9, 1), in_place_dw(dw(1, 2), 11))
    # 1x1 stride 1: per element (no plane), in place and not (the ADD keeps its input live)
    add("dw1x1_inplace_c6", (7, 5, 2), in_place_dw(dw(1, activation="relu"), 6))

    def residual_1x1(x):
        y = layers.Conv2D(5, 1)(x)
        return layers.Add()([y, dw(1)(y)])
    add("dw1x1_c5", (6, 6, 3), residual_1x1)
    # stride 1, odd kernels: outputs in pairs sharing each plane word, odd widths end on a single
    add("inplace_k5_s1_c12", (9, 11, 1), in_place(5, 1, 12))
    add("inplace_k7_s1_c12", (10, 9, 2), in_place(7, 1, 12))
    # four outputs per step (3x3, 5x5, 7x7, stride 1 or 2): rows of exactly four, of 4k + 2 (the
    # last step moved back over two outputs), a vertical stride other than the horizontal one;
    # rows narrower than four fall back to the pair / single-output kernels
    add("inplace_k3_s1_c10_w6", (5, 6, 1), in_place(3, 1, 10))
    add("inplace_k5_s1_c12_w4", (6, 4, 1), in_place(5, 1, 12))
    add("plane_k7_s2_same_w8", (9, 16, 1), plane(7, 2))
    add("plane_k3_s21_same_w7", (8, 7, 1), lambda x: layers.Concatenate()([
        layers.Flatten()(x), layers.Flatten()(dw((3, 3), (2, 1), activation="relu")(x))]))
    add("plane_k3_s1_same_w2", (5, 2, 1), plane(3))
    add("plane_k5_s1_same_w3", (4, 3, 1), plane(5))
    return models


def _huge_bias_model(rng: np.random.Generator) -> bytes:
    """Depthwise with tiny weights and large biases: an int32 bias above 2^30."""
    from unas.export.quantize import keras_to_int8_tflite
    from unas.tfenv import keras
    inputs = keras.Input((6, 6, 4))
    layer = keras.layers.DepthwiseConv2D(3, padding="same")
    flat = keras.layers.Flatten()
    model = keras.Model(inputs, keras.layers.Concatenate()([flat(inputs), flat(layer(inputs))]))
    kernel = rng.normal(scale=8e-6, size=(3, 3, 4, 1)).astype("float32")
    layer.set_weights([kernel, np.array([3.0, -2.0, 1.0, -4.0], dtype="float32")])
    return keras_to_int8_tflite(model, rng.normal(size=(16, 6, 6, 4)).astype("float32"))


#: (seed, samples) of the random inputs conftest's ``comparisons`` runs ``blobs`` on
COMPARISON_INPUTS = (9, 6)


@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    rng = np.random.default_rng(88)
    blobs = {name: int8_tflite(m, rng, randomise=True) for name, (m, _) in _models().items()}
    blobs["dw_huge_bias"] = _huge_bias_model(rng)
    return blobs


def _source(comparisons, name: str) -> str:
    return (comparisons[name].generated.out_dir / "model.c").read_text()


def _dw_source(comparisons, name: str) -> str:
    """The depthwise parameter blocks and calls of a generated model.c (other kernels' blocks,
    e.g. the dense convolutions' ``.weights = 0`` and ``.rq``, would blur the checks)."""
    text = _source(comparisons, name)
    blocks = re.findall(r"static const unas_dwconv_params \w+ = \{.*?\};", text, flags=re.S)
    calls = re.findall(r"unas_dwconv\w*\(", text)
    return "\n".join(blocks + calls)


@needs_gcc
def test_kernels_are_bit_exact_with_tflm(comparisons):
    failures = {n: c.first_difference for n, c in comparisons.items() if not c.bit_exact}
    assert not failures


def _plane_suffix(dw_source: str) -> str:
    """The plane kernel a depthwise block should call: four outputs per step for square 3/5/7
    filters with stride_w 1 or 2 and at least four outputs per row, else pairs (3, 5, 7) or
    ``_rows``."""
    field = {name: int(value) for name, value in re.findall(r"\.(\w+) = (-?\d+),", dw_source)}
    k, s_w = field["k_w"], field["stride_w"]
    if field["k_h"] == k and k in (3, 5, 7) and s_w in (1, 2) and field["out_w"] >= 4:
        return f"{k}s{s_w}"
    return str(k) if k in (3, 5, 7) else "_rows"


@needs_gcc
def test_each_depthwise_case_runs_the_kernel_it_is_meant_to(comparisons):
    for name in comparisons:
        source = _dw_source(comparisons, name)
        if name.startswith("groups_"):
            assert ".wide_layout = UNAS_DW_WIDE_GROUPS" in source, name
            k = int(name.split("_k")[1][0])
            assert f"unas_dwconv_groups{'3' if k == 3 else '_any'}_s8(" in source, name
            # channels a multiple of four: no int8 copy of the weights (all taps widened)
            assert (".weights = 0," in source) == name.endswith(("c8_relu6", "c4_tiny")), name
        elif name.startswith(("plane_", "inplace_")):
            assert ".wide_layout = UNAS_DW_WIDE_ROWS" in source, name
            assert f"unas_dwconv_planes{_plane_suffix(source)}_s8(" in source, name
            if name.startswith("inplace_"):
                assert re.search(r"unas_dwconv_planes\w+_s8\(.*/\* in place \*/",
                                 _source(comparisons, name)), name
        elif name.startswith("dw1x1_"):
            assert "unas_dwconv_1x1_s8(" in source and "wide_layout" not in source, name
            in_place = re.search(r"unas_dwconv_1x1_s8\(.*/\* in place \*/",
                                 _source(comparisons, name))
            assert bool(in_place) == ("inplace" in name), name
        elif name.startswith("dw_") and name != "dw_huge_bias":
            assert "wide_layout" not in source and "unas_dwconv_ref_s8(" in source, name
    huge = _dw_source(comparisons, "dw_huge_bias")
    assert ".wide_layout = UNAS_DW_WIDE_GROUPS" in huge and ".rq = " not in huge
    assert ".rq = " in _dw_source(comparisons, "groups_k3_s1_same_c8_relu6")


@needs_gcc
def test_add_tables_are_shared_when_the_inputs_are_quantised_alike(comparisons):
    shared = _source(comparisons, "add_shared_table")
    assert re.search(r"\.table1 = (\w+),\s*\.table2 = \1,", shared)
    separate = _source(comparisons, "add_tables")
    assert "_t1[256]" in separate and "_t2[256]" in separate


@needs_gcc
def test_saturating_add_reaches_the_activation_bounds(comparisons, blobs):
    from tflm_runtime.codegen.verify import run_tflm
    x = np.random.default_rng(4).integers(-128, 128, size=(16, 6, 6, 2), dtype=np.int8)
    out = run_tflm(blobs["add_relu_saturating"], x)
    assert out.max() == 127 and comparisons["add_relu_saturating"].bit_exact


@needs_gcc
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None
                    or shutil.which("qemu-system-arm") is None, reason="board toolchain missing")
@pytest.mark.parametrize("name", ["groups_k5_s2_same_c13", "groups_k3_s1_same_c8_relu6",
                                  "plane_k7_s2_same_small",
                                  "inplace_k7_s2_c16", "inplace_k1_s2_c11", "dw1x1_inplace_c6",
                                  "inplace_k3_s1_c7", "inplace_k5_s1_c12", "inplace_k7_s1_c12",
                                  "inplace_k3_s1_c10_w6", "inplace_k5_s1_c12_w4",
                                  "plane_k7_s2_same_w8", "plane_k3_s21_same_w7",
                                  "plane_k3_s1_same_w2", "plane_k5_s1_same_w3",
                                  "inplace_k5_s2_c15", "inplace_k3_s2_valid_c24",
                                  "plane_k5_s1_same",
                                  "groups_k2_s1_same_c9", "add_tables",
                                  "pools_c5", "pools_c9", "mean_hw_300_pixels"])
def test_dsp_path_on_the_board_matches_tflm(blobs, tmp_path, name):
    """SXTB16/SMLAD/SMMULR/SSUB8 code on the emulated Cortex-M4 gives TFLM's bytes."""
    from tflm_runtime.board import generate_model_sources, measure_c_model
    from tflm_runtime.codegen.verify import run_tflm
    from tflm_runtime.tflite_model import parse_tflite

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(blobs[name])
    model = parse_tflite(blobs[name], str(path))
    shape = model.tensors[model.inputs[0]].shape[1:]
    x = np.random.default_rng(3).integers(-128, 128, size=(2, *shape), dtype=np.int8)
    sources = generate_model_sources(path, tmp_path / "c")
    measured = measure_c_model(sources, cpu="cortex-m4", inputs=x.reshape(2, -1))
    expected = run_tflm(blobs[name], x).reshape(2, -1)
    np.testing.assert_array_equal(measured.outputs, expected)


def _smmulr(a: int, b: int) -> int:
    return (a * b + (1 << 31)) >> 32


def _fast(acc: int, block: tuple[int, int, int, int]) -> int:
    """Python transcription of the C helper unas_dw_rq."""
    mult, lsh, nudge, rsh = block
    a = fp._wrap32(acc << lsh)
    hi = _smmulr(a, mult)
    return (hi + nudge + (-1 if hi < 0 else 0)) >> rsh


@settings(max_examples=300, deadline=None)
@given(mult=st.integers(1 << 30, (1 << 31) - 1), shift=st.integers(-31, 6),
       bound=st.integers(0, 1 << 29), zp=st.integers(-128, 127), data=st.data())
def test_fast_requantization_equals_tflm_whenever_it_is_offered(mult, shift, bound, zp, data):
    block = fp.fast_requantization(mult, shift, bound, zp)
    assume(block is not None)
    for acc in (bound, -bound, data.draw(st.integers(-bound, bound))):
        assert _fast(acc, block) == fp.multiply_by_quantized_multiplier(acc, mult, shift) + zp


def test_fast_requantization_refuses_what_it_cannot_promise():
    assert fp.fast_requantization(1 << 30, 0, 100) is None         # no right shift
    assert fp.fast_requantization(1 << 30, 2, 1 << 28) is None     # acc << 3 overflows
    assert fp.fast_requantization(1 << 30, -31, 10, 127) is None   # zero point << 31 overflows
    assert fp.fast_requantization(1 << 30, -8, 1 << 20, 5) is not None


@needs_gcc
def test_c_requantization_helper_equals_the_python_one(tmp_path):
    """unas_dw_rq4 compiled for the host on the extremes its preconditions allow."""
    cases = []
    for mult, shift, zp in [((1 << 31) - 1, -1, 127), (1 << 30, -20, -128), (1518500250, -5, 3),
                            (1073741824, -1, 0), (2**31 - 7, -22, -1)]:
        bound = (1 << (29 - max(shift, 0)))
        block = fp.fast_requantization(mult, shift, bound, zp)
        assert block is not None
        for acc in (bound, -bound, 0, -1, 1, bound // 3, -(bound // 7)):
            cases.append((acc, block, fp.multiply_by_quantized_multiplier(acc, mult, shift) + zp))
    lines = [f"  printf(\"%d\\n\", (int)unas_dw_rq4({acc}, {b[0]}, {b[1]}, {b[2]}, {b[3]}));"
             for acc, b, _ in cases]
    source = tmp_path / "rq.c"
    source.write_text("\n".join(['#include <stdio.h>', '#include "unas_kernels.h"',
                                 "int main(void) {", *lines, "  return 0;", "}"]))
    binary = tmp_path / "rq"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I",
                    str(KERNELS), str(source), "-o", str(binary)], check=True, capture_output=True)
    got = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()
    assert [int(v) for v in got] == [expected for _, _, expected in cases]
