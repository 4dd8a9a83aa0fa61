"""The generated code's dense int8 kernels (unas_conv2d_1x1_s8, unas_conv2d_s8, unas_fc_s8) on
shapes that exercise every blocking tail (odd channel and pixel counts, strides, padding, depths
that are not a multiple of four), compiled with the host gcc (portable C path) and compared with a
Python transcription of TFLite Micro's reference arithmetic. The Cortex-M DSP path is compared with
TFLM on the emulated board by tests/test_board_codegen.py."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from kernel_reference import (INT32_MAX, INT32_MIN, c_array, mbqm, quantization, reference_conv,
                              reference_depthwise, requantize, run_c)

from tflm_runtime.codegen.lowering import bias_rows

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")

# in_h, in_w, in_c, out_c, k, stride, pad
CONV_CASES = [
    (5, 5, 3, 5, 1, 1, 0),    # odd pixels (25), odd channels, depth < 4
    (4, 6, 16, 8, 1, 1, 0),   # everything even, depth a multiple of 4
    (7, 5, 9, 3, 1, 2, 0),    # strided 1x1, odd depth
    (6, 7, 5, 7, 3, 1, 1),    # 3x3 same padding, odd everything
    (9, 9, 8, 4, 3, 2, 1),    # 3x3 stride 2
    (8, 6, 3, 6, 5, 1, 2),    # 5x5, interior pairs and borders
    (5, 8, 4, 2, 3, 1, 0),    # 3x3 valid: every pixel interior
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_match_tflm_reference(case, kernels_object, tmp_path):
    in_h, in_w, in_c, out_c, k, stride, pad = case
    rng = np.random.default_rng(sum(case))
    out_h = (in_h + 2 * pad - k) // stride + 1
    out_w = (in_w + 2 * pad - k) // stride + 1
    x = rng.integers(-128, 128, size=(in_h, in_w, in_c), dtype=np.int64)
    w = rng.integers(-127, 128, size=(out_c, k, k, in_c), dtype=np.int64)
    bias = rng.integers(-5000, 5000, size=out_c, dtype=np.int64)
    mult, shift = quantization(rng, out_c, k * k * in_c, dead_channel=False)
    c = dict(in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k,
             k_w=k, stride_h=stride, stride_w=stride, dil_h=1, dil_w=1, pad_t=pad, pad_l=pad,
             in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-20, 20)),
             act_min=-128, act_max=int(rng.choice([127, 100])))
    folded = bias - c["in_zp"] * w.reshape(out_c, -1).sum(axis=1)
    fields = ", ".join(f".{name} = {value}" for name, value in c.items())
    decls = [c_array("x", "int8_t", x), c_array("w", "int8_t", w),
             c_array("b", "int32_t", folded),
             c_array("brows", "int32_t", bias_rows(bias, w, c["in_zp"])),
             c_array("m", "int32_t", mult), c_array("s", "int32_t", shift),
             f"static const unas_conv_params p = {{{fields}, .weights = w, .bias = b, "
             ".bias_rows = brows, .mult = m, .shift = s};"]
    kernel = "unas_conv2d_1x1_s8" if k == 1 else "unas_conv2d_s8"
    got = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, x, out);",
                out_h * out_w * out_c)
    expected = reference_conv(x, w, bias, mult, shift, c)
    assert np.array_equal(got, expected.ravel())


@pytest.mark.parametrize("rows, depth, units", [(1, 37, 7), (1, 64, 10), (3, 13, 5), (2, 8, 4)])
def test_fc_kernel_matches_tflm_reference(rows, depth, units, kernels_object, tmp_path):
    rng = np.random.default_rng(rows * 1000 + depth * 10 + units)
    x = rng.integers(-128, 128, size=(rows, depth), dtype=np.int64)
    w = rng.integers(-127, 128, size=(units, depth), dtype=np.int64)
    bias = rng.integers(-5000, 5000, size=units, dtype=np.int64)
    mult, shift = quantization(rng, units, depth, dead_channel=False)
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-20, 20))
    folded = bias - in_zp * w.sum(axis=1)
    decls = [c_array("x", "int8_t", x), c_array("w", "int8_t", w),
             c_array("b", "int32_t", folded), c_array("m", "int32_t", mult),
             c_array("s", "int32_t", shift),
             f"static const unas_fc_params p = {{.rows = {rows}, .depth = {depth}, "
             f".units = {units}, .out_zp = {out_zp}, .act_min = -128, .act_max = 127, "
             ".weights = w, .bias = b, .mult = m, .shift = s};"]
    got = run_c(kernels_object, tmp_path, decls, "unas_fc_s8(&p, x, out);", rows * units)
    expected = [requantize(int(bias[u] + np.dot(w[u], x[r] - in_zp)), int(mult[u]),
                           int(shift[u]), out_zp, -128, 127)
                for r in range(rows) for u in range(units)]
    assert got.tolist() == expected


@pytest.mark.parametrize("x, multiplier, shift", [
    (INT32_MIN, 2**30, 0), (INT32_MAX, 2**31 - 1, -31), (-(2**20) - 1, 1518500250, -5),
    (12345, 1073741824, -1), (-12345, 1073741824, -1), (-3, 2**31 - 1, -1)])
def test_requantization_edges_match_tflm(x, multiplier, shift, kernels_object, tmp_path):
    """The SMLAL-style doubling high multiply equals TFLM's nudge-and-truncate on the extremes."""
    decls = ["static volatile int32_t args[3];"]
    call = (f"args[0] = {x}; args[1] = {multiplier}; args[2] = {shift}; "
            "int32_t v = unas_mbqm(args[0], args[1], args[2]); "
            "memcpy(out, &v, 4);")
    got = run_c(kernels_object, tmp_path, decls, call, 4).view(np.int32)[0]
    assert got == mbqm(x, multiplier, shift)


# in_h, in_w, in_c, depth_mult, k, stride, pad, dilation
DEPTHWISE_CASES = [
    (6, 5, 7, 1, 3, 1, 1, 1),    # odd channels, same padding
    (7, 7, 40, 1, 3, 2, 1, 1),   # more channels than one block of 32, stride 2
    (9, 8, 4, 1, 5, 1, 2, 1),    # 5x5
    (6, 6, 3, 2, 3, 1, 1, 1),    # depth multiplier 2 (general path)
    (8, 8, 5, 1, 3, 1, 2, 2),    # dilation 2 (general path)
]


def _depthwise_case(case: tuple[int, ...]) -> tuple[dict, list[str], np.ndarray]:
    """(geometry, C declarations of x/w/b/m/s and params p, TFLM reference output) of one
    DEPTHWISE_CASES entry."""
    in_h, in_w, in_c, depth_mult, k, stride, pad, dil = case
    rng = np.random.default_rng(sum(case))
    out_c, span = in_c * depth_mult, dil * (k - 1) + 1
    out_h = (in_h + 2 * pad - span) // stride + 1
    out_w = (in_w + 2 * pad - span) // stride + 1
    x = rng.integers(-128, 128, size=(in_h, in_w, in_c), dtype=np.int64)
    w = rng.integers(-127, 128, size=(k, k, out_c), dtype=np.int64)
    bias = rng.integers(-2000, 2000, size=out_c, dtype=np.int64)
    mult, shift = quantization(rng, out_c, k * k, dead_channel=False)
    c = dict(in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
             depth_mult=depth_mult, k_h=k, k_w=k, stride_h=stride, stride_w=stride, dil_h=dil,
             dil_w=dil, pad_t=pad, pad_l=pad, in_zp=int(rng.integers(-128, 128)),
             out_zp=int(rng.integers(-20, 20)), act_min=-128, act_max=127)
    fields = ", ".join(f".{name} = {value}" for name, value in c.items())
    decls = [c_array("x", "int8_t", x), c_array("w", "int8_t", w),
             c_array("b", "int32_t", bias), c_array("m", "int32_t", mult),
             c_array("s", "int32_t", shift),
             f"static const unas_dwconv_params p = {{{fields}, .weights = w, .bias = b, "
             ".mult = m, .shift = s};"]
    return c, decls, reference_depthwise(x, w, bias, mult, shift, c).ravel()


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_kernel_matches_tflm_reference(case, kernels_object, tmp_path):
    c, decls, expected = _depthwise_case(case)
    got = run_c(kernels_object, tmp_path, decls, "unas_dwconv_s8(&p, x, out);", expected.size)
    assert np.array_equal(got, expected)


PLANE_CASES = [case for case in DEPTHWISE_CASES if case[3] == 1] + [
    (5, 7, 3, 1, 1, 1, 0, 1),    # 1x1, stride 1: per element
    (7, 6, 2, 1, 1, 2, 0, 1),    # 1x1, stride 2: a plane with 3 bytes of word overrun
    (9, 9, 3, 1, 3, 2, 0, 1),    # valid padding, last input row and column unread
    (5, 5, 2, 1, 7, 1, 3, 1),    # kernel larger than the image
]


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("case", PLANE_CASES)
def test_plane_and_per_element_depthwise_kernels_match_tflm_reference(case, in_place,
                                                                      kernels_object, tmp_path):
    """The channel-plane kernel (general per-tap path over the zero-point-padded plane, which
    also serves dilation) and the 1x1 per-element kernel, in place and not, with the plane sized
    by the resource model's formula and guard bytes after it that must stay untouched."""
    from unas.resources.engine import depthwise_plane_bytes

    c, decls, expected = _depthwise_case(case)
    geometry = ((c["k_h"], c["k_w"]), (c["stride_h"], c["stride_w"]), (c["dil_h"], c["dil_w"]))
    per_element = geometry[:2] == ((1, 1), (1, 1))
    plane = depthwise_plane_bytes((c["out_h"], c["out_w"], c["out_c"]),
                                  (c["in_h"], c["in_w"], c["in_c"]), geometry, True)
    assert (plane == 0) == per_element
    size = c["in_h"] * c["in_w"] * c["in_c"]
    decls += [f"static int8_t buf[{size}];", f"static int8_t plane[{plane} + 16];"]
    src, dst = ("buf", "buf") if in_place else ("x", "out")
    # without requantisation blocks (p.rq unset) the generator runs a 1x1 per-element depthwise
    # with the reference kernel, in place too; unas_dwconv_1x1_s8 (which needs p.rq) is checked
    # against TFLM through generated models (test_kernels_elementwise's dw1x1_ cases)
    kernel = (f"unas_dwconv_ref_s8(&p, {src}, {dst});" if per_element
              else f"unas_dwconv_planes_s8(&p, {src}, {dst}, plane);")
    call = (f"memcpy(buf, x, sizeof buf); memset(plane, 0x5A, sizeof plane); {kernel} "
            + (f"memcpy(out, buf, {expected.size}); " if in_place else "")
            + f"for (int i = {plane}; i < {plane} + 16; ++i) if (plane[i] != 0x5A) return 3;")
    got = run_c(kernels_object, tmp_path, ['#include <string.h>', *decls], call, expected.size)
    assert np.array_equal(got, expected)
