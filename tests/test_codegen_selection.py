"""Model-adaptive kernel selection: the generator calls the one kernel path each operator takes
(1x1 expanded / packed / generic, ADD with or without the fast requantisation, MEAN over H and W
or any axes, full 2 x 2 pooling or the general loop), so a model linked with --gc-sections holds
only those paths and none of the run-time dispatchers; and every dispatcher computes what the
path it picks computes. Host gcc only (the Cortex-M build links the same way, see
tests/test_board_codegen.py)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kernel_reference import c_array, mbqm, run_c
from tiny_models import int8_tflite

from tflm_runtime.codegen import fixed_point as fp
from tflm_runtime.codegen.lowering import _add_table
from tflm_runtime.codegen.quantization import quantize_multiplier

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None,
                                reason="host gcc / nm missing")

#: Every path a generated model may call, by the family it belongs to, and the dispatchers.
PATHS = {
    "conv1x1": {"unas_conv2d_1x1_c1_s8", "unas_conv2d_1x1_expanded_s8",
                "unas_conv2d_1x1_packed_s8", "unas_conv2d_1x1_generic_s8"},
    "add": {"unas_add_rq_s8", "unas_add_generic_s8"},
    "mean": {"unas_mean_hw_s8", "unas_mean_box_s8"},
    "maxpool": {"unas_maxpool_s8", "unas_maxpool_2x2_s8"},
    "avgpool": {"unas_avgpool_s8", "unas_avgpool_2x2_s8"},
}
#: the fused blocks' own 1x1 path (lowering_fused.py swaps it in for the expanded one)
PATHS["conv1x1"].add("unas_conv2d_1x1_rows_s8")
DISPATCHERS = {"unas_conv2d_1x1_s8", "unas_add_s8", "unas_mean_s8"}


def _model(keras):
    """A fused inverted-residual block with its ADD (it holds the peak, so it is fused), a patch
    stem, a plain 1x1, full 2 x 2 max and average pools, a pool with borders, global average
    pooling and a dense head."""
    layers = keras.layers
    inputs = keras.Input((12, 12, 4))
    y = layers.Conv2D(48, 1, activation="relu6")(inputs)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    x = layers.Add()([inputs, layers.Conv2D(4, 1)(y)])
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(12, 1, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.AveragePooling2D(2, strides=1)(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return keras.Model(inputs, layers.Dense(5)(layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from tflm_runtime.codegen import generate
    from unas.tfenv import keras

    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("selection")
    model = _model(keras)
    tflite = folder / "model.tflite"
    tflite.write_bytes(int8_tflite(model, rng, samples=8, num_samples=8))
    return generate(tflite, folder / "c").out_dir


def _linked_functions(out_dir: Path, tmp_path: Path) -> set[str]:
    """Function symbols of model.c + the kernel library linked with --gc-sections."""
    main = tmp_path / "main.c"
    main.write_text('#include "model.h"\nint main(void) { model_invoke(); '
                    'return model_output()[0]; }\n')
    binary = tmp_path / "app"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
                    "-fdata-sections", "-Wl,--gc-sections", "-I", str(out_dir), str(main),
                    *(str(out_dir / f) for f in ("model.c", "unas_kernels.c", "unas_fused.c")),
                    "-lm", "-o", str(binary)], check=True, capture_output=True, text=True)
    listing = subprocess.run(["nm", "--defined-only", str(binary)], check=True,
                             capture_output=True, text=True).stdout
    return {line.split()[-1] for line in listing.splitlines() if line.split()[1] in "tT"}


def test_generated_model_links_only_the_paths_it_uses(generated, tmp_path):
    source = (generated / "model.c").read_text()
    referenced = set(re.findall(r"\bunas_\w+_s8\b", source))
    # what this model is built to reach: the fused block's three parts go through pointers
    # (its 1x1 convolutions through the fused rows path, the plain 1x1 through its own)
    assert {"unas_conv2d_1x1_expanded_s8", "unas_conv2d_1x1_rows_s8", "unas_add_rq_s8",
            "unas_mean_hw_s8", "unas_maxpool_2x2_s8", "unas_avgpool_2x2_s8", "unas_maxpool_s8",
            "unas_fused_block_s8"} <= referenced
    assert ".project_kernel = unas_conv2d_1x1_rows_s8" in source
    assert ".add_kernel = unas_add_rq_s8" in source
    linked = _linked_functions(generated, tmp_path)
    assert referenced <= linked
    assert not DISPATCHERS & linked
    for family, paths in PATHS.items():
        assert (paths - referenced).isdisjoint(linked), family


def _pool_case(rng, in_h, in_w, channels, stride, act):
    out_h, out_w = (in_h - 2) // stride + 1, (in_w - 2) // stride + 1
    x = rng.integers(-128, 128, size=(in_h, in_w, channels))
    fields = dict(in_h=in_h, in_w=in_w, channels=channels, out_h=out_h, out_w=out_w, f_h=2,
                  f_w=2, stride_h=stride, stride_w=stride, pad_t=0, pad_l=0, act_min=act[0],
                  act_max=act[1])
    block = ", ".join(f".{k} = {v}" for k, v in fields.items())
    decls = [c_array("x", "int8_t", x), f"static const unas_pool_params p = {{{block}}};"]
    windows = np.stack([x[dy:dy + stride * (out_h - 1) + 1:stride,
                          dx:dx + stride * (out_w - 1) + 1:stride]
                        for dy in (0, 1) for dx in (0, 1)])
    sums = windows.sum(axis=0)
    averages = np.where(sums > 0, (sums + 2) // 4, -((-sums + 2) // 4))
    return decls, out_h * out_w * channels, {
        "max": np.clip(windows.max(axis=0), *act).ravel(),
        "avg": np.clip(averages, *act).ravel()}


@pytest.mark.parametrize("in_h, in_w, channels, stride, act", [
    (6, 8, 9, 2, (-128, 127)),   # groups of four plus a tail, no clamp
    (5, 7, 6, 1, (-20, 90)),     # stride 1 (overlapping windows), odd sizes, clamped
    (3, 2, 3, 2, (0, 127)),      # one window, channels below four (ReLU)
])
def test_full_2x2_pools_equal_the_general_kernels(kernels_object, tmp_path, in_h, in_w, channels,
                                                  stride, act):
    rng = np.random.default_rng(in_h * 100 + channels)
    decls, size, expected = _pool_case(rng, in_h, in_w, channels, stride, act)
    for kind in ("max", "avg"):
        for kernel in (f"unas_{kind}pool_2x2_s8", f"unas_{kind}pool_s8"):
            got = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, x, out);", size)
            assert np.array_equal(got, expected[kind]), kernel


@pytest.mark.parametrize("same_tables", [False, True])
def test_add_paths_and_dispatcher_equal_tflm(kernels_object, tmp_path, same_tables):
    rng = np.random.default_rng(3 + same_tables)
    size = 37
    a, b = (rng.integers(-128, 128, size=size) for _ in range(2))
    m1, s1 = quantize_multiplier(0.5)
    m2, s2 = (m1, s1) if same_tables else quantize_multiplier(0.31)
    mo, so = quantize_multiplier(2 * 0.8 / ((1 << 20) * 0.7))
    params = dict(size=size, left_shift=20, in1_offset=3, in1_mult=m1, in1_shift=s1,
                  in2_offset=3 if same_tables else -7, in2_mult=m2, in2_shift=s2,
                  out_offset=-5, out_mult=mo, out_shift=so, act_min=-100, act_max=120)
    t1, t2 = _add_table(params, 1), _add_table(params, 2)
    rq = fp.fast_requantization(mo, so, max(map(abs, t1)) + max(map(abs, t2)), -5)
    assert rq is not None
    block = ", ".join(f".{k} = {v}" for k, v in params.items())
    decls = [c_array("a", "int8_t", a), c_array("b", "int8_t", b),
             c_array("t1", "int32_t", np.array(t1)), c_array("t2", "int32_t", np.array(t2)),
             c_array("rq", "int32_t", np.array(rq)),
             f"static const unas_add_params p = {{{block}, .table1 = t1, .table2 = t2, "
             ".out_rq = rq};"]
    expected = [min(max(mbqm(t1[x & 0xFF] + t2[y & 0xFF], mo, so) - 5, -100), 120)
                for x, y in zip(a.tolist(), b.tolist())]
    for kernel in ("unas_add_rq_s8", "unas_add_generic_s8", "unas_add_s8"):
        got = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, a, b, out);", size)
        assert got.tolist() == expected, kernel


def test_mean_paths_and_dispatcher_agree_on_global_pooling(kernels_object, tmp_path):
    rng = np.random.default_rng(8)
    h, w, c = 7, 5, 11
    x = rng.integers(-128, 128, size=(h, w, c))
    mult, shift = quantize_multiplier(0.9 / (h * w))
    block = (f".dims = {{1, {h}, {w}, {c}}}, .reduce = {{0, 1, 1, 0}}, .count = {h * w}, "
             f".in_zp = 4, .out_zp = -3, .mult = {mult}, .shift = {shift}")
    decls = [c_array("x", "int8_t", x), f"static const unas_mean_params p = {{{block}}};"]
    sums = x.reshape(-1, c).sum(axis=0) - 4 * h * w
    expected = [min(max(mbqm(int(s), mult, shift) - 3, -128), 127) for s in sums]
    for kernel in ("unas_mean_hw_s8", "unas_mean_box_s8", "unas_mean_s8"):
        got = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, x, out);", c)
        assert got.tolist() == expected, kernel
