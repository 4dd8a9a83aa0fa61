"""unas_conv2d_1x1_rows_s8, the 1x1 path the fused inverted-residual steps run their expansion
and projection through: same filter and arithmetic as unas_conv2d_1x1_expanded_s8, so the same
bytes as TFLM's reference on awkward shapes (lone last pixels, odd channel counts, depth tails,
strides, several rows at once, clamped activations). Host gcc (portable C); the Cortex-M DSP
path is compared with the host build and TFLM on the emulated board by
tests/test_codegen_fused.py."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from kernel_reference import c_array, quantization, reference_conv, run_c

from tflm_runtime.codegen.lowering import fast_requant_constants, packed_filter

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")

# in_h, in_w, in_c, out_c, stride, shifts, activation
CASES = [
    (1, 9, 8, 24, 1, "normal", (0, 127)),     # one row, odd width: a lone last pixel
    (3, 5, 16, 7, 1, "mixed", (-128, 127)),   # rows together, odd output channels
    (2, 4, 6, 3, 1, "normal", (-5, 100)),     # depth tail, clamped both ways
    (1, 18, 1, 2, 1, "mixed", (-128, 127)),   # a single input channel
    (5, 7, 24, 16, 2, "normal", (0, 127)),    # strided rows
    (1, 1, 128, 1, 1, "normal", (-128, 127)), # one pixel, the widest expanded depth
]


@pytest.mark.parametrize("case", CASES)
def test_rows_kernel_equals_tflm_and_the_expanded_path(case, kernels_object,
                                                       tmp_path):
    in_h, in_w, in_c, out_c, stride, shifts, (act_min, act_max) = case
    rng = np.random.default_rng(CASES.index(case))
    out_h, out_w = (in_h - 1) // stride + 1, (in_w - 1) // stride + 1
    x = rng.integers(-128, 128, size=(in_h, in_w, in_c), dtype=np.int64)
    w = rng.integers(-127, 128, size=(out_c, 1, 1, in_c), dtype=np.int64)
    bias = rng.integers(-20000, 20000, size=out_c, dtype=np.int64)
    mult, shift = quantization(rng, out_c, in_c, shifts)
    c = {"in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w,
         "out_c": out_c, "k_h": 1, "k_w": 1, "stride_h": stride, "stride_w": stride,
         "dil_h": 1, "dil_w": 1, "pad_t": 0, "pad_l": 0,
         "in_zp": int(rng.integers(-128, 128)), "out_zp": int(rng.integers(-20, 20)),
         "act_min": act_min, "act_max": act_max}
    rq = fast_requant_constants(list(zip(mult.tolist(), shift.tolist())), c["out_zp"])
    kernel = "unas_conv2d_1x1_expanded_s8"  # the path the rows kernel stands in for
    assert rq is not None
    folded = bias - c["in_zp"] * w.reshape(out_c, -1).sum(axis=1)
    ctype, filt = packed_filter(kernel, in_c, w)
    rows = ", ".join("{" + ", ".join(map(str, r)) + "}" for r in rq)
    fields = ", ".join(f".{name} = {value}" for name, value in c.items())
    decls = [c_array("x", "int8_t", x), c_array("w", "int8_t", w),
             c_array("b", "int32_t", folded), c_array("m", "int32_t", mult),
             c_array("s", "int32_t", shift), c_array("wp", ctype, filt),
             f"static const unas_rqf rq[] = {{{rows}}};",
             f"static const unas_conv_params p = {{{fields}, .weights = w, .bias = b, "
             ".mult = m, .shift = s, .packed = (const int8_t *)wp, .rq = rq};"]
    size = out_h * out_w * out_c
    got = run_c(kernels_object, tmp_path, decls, "unas_conv2d_1x1_rows_s8(&p, x, out);", size)
    expected = reference_conv(x, w, bias, mult, shift, c)
    assert np.array_equal(got, expected.ravel())
    expanded = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, x, out);", size)
    assert np.array_equal(got, expanded)
