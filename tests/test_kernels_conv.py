"""The dense convolution kernels with the generator's packed weights and folded requantisation
(the 1x1 paths _c1 / _expanded / _packed / _generic and their dispatcher unas_conv2d_1x1_s8,
unas_conv2d_patch_s8, unas_conv2d_s8 with ``rq``) on awkward shapes: odd
channel counts and widths, Cin = 1 / 3, strides, dilation, padding, multiplier shifts of both
signs (a left shift falls back to the generic path), saturation and zero multipliers. Host gcc
(portable C) against a Python transcription of TFLite Micro's reference arithmetic; the Cortex-M
DSP path is compared with the host build on the emulated board by tests/test_board_codegen.py."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_reference import (INT32_MAX, INT32_MIN, c_array, mbqm, quantization, reference_conv,
                              run_c)

from tflm_runtime.codegen.lowering import (
    bias_rows,
    conv_kernel,
    fast_requant_constants,
    pack_channel_pairs,
    pack_channel_pairs_int16,
    pack_channel_pairs_window16,
    packed_filter,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")



def _rqf_fast(acc: int, mult: int, lo: int, hi: int, shift: int) -> int:
    """unas_rqf_apply in Python (arbitrary precision, so it checks the 64-bit formula)."""
    return ((acc * mult + (hi << 32) + (lo & 0xFFFFFFFF) - (2**31 if acc < 0 else 0)) >> 32) >> shift


@settings(max_examples=400, deadline=None)
@given(acc=st.integers(INT32_MIN, INT32_MAX), mult=st.integers(2**30, 2**31 - 1),
       right=st.integers(1, 22), zp=st.integers(-128, 127))
def test_folded_requantisation_equals_tflm(acc, mult, right, zp):
    (constants,) = fast_requant_constants([(mult, -right)], zp)
    assert _rqf_fast(acc, *constants) == mbqm(acc, mult, -right) + zp


@settings(max_examples=200, deadline=None)
@given(acc=st.integers(-(2**16), 2**16), right=st.integers(1, 12), zp=st.integers(-128, 127))
def test_folded_requantisation_rounds_ties_like_tflm(acc, right, zp):
    """mult = 2^30 makes x = acc / 2 exactly, so halves of 2^right occur often."""
    (constants,) = fast_requant_constants([(2**30, -right)], zp)
    assert _rqf_fast(acc, *constants) == mbqm(acc, 2**30, -right) + zp


def test_fast_requantisation_refuses_left_and_tiny_shifts():
    assert fast_requant_constants([(2**30, -3), (2**30, 1)], 0) is None      # left shift
    assert fast_requant_constants([(2**30, -3), (2**30, 0)], 0) is None      # r = 0
    assert fast_requant_constants([(2**30, -23)], 0) is None                 # zp does not fold
    assert fast_requant_constants([(0, 0), (2**30, -5)], 3) is not None       # zero multiplier


def test_packing_interleaves_channel_pairs_four_taps_at_a_time():
    w = np.arange(3 * 6, dtype=np.int8).reshape(3, 6)  # 3 channels, 6 taps -> K4 = 8
    packed = pack_channel_pairs(w)
    assert packed.shape == (2, 2, 2, 4)
    assert packed[0, 0].tolist() == [[0, 1, 2, 3], [6, 7, 8, 9]]
    assert packed[0, 1].tolist() == [[4, 5, 0, 0], [10, 11, 0, 0]]
    assert packed[1, 0].tolist() == [[12, 13, 14, 15], [0, 0, 0, 0]]


def test_int16_packing_is_sxtb16_order_low_half_first():
    w = np.array([[1, -2, 3, -4, 5], [-1, 2, -3, 4, -5], [7, 7, 7, 7, 7]], dtype=np.int8)
    words = pack_channel_pairs_int16(w)
    assert words.shape == (2, 2, 4) and words.dtype == np.int32
    halves = words.view(np.int16).reshape(2, 2, 4, 2)  # little-endian: low half first
    assert halves[0, 0].tolist() == [[1, 3], [-2, -4], [-1, -3], [2, 4]]
    assert halves[0, 1].tolist() == [[5, 0], [0, 0], [-5, 0], [0, 0]]
    assert halves[1, 0].tolist() == [[7, 7], [7, 7], [0, 0], [0, 0]]


def test_window_packing_pairs_taps_in_filter_order():
    w = np.array([[1, -2, 3, -4, 5], [-1, 2, -3, 4, -5], [7, 7, 7, 7, 7]], dtype=np.int8)
    words = pack_channel_pairs_window16(w)
    assert words.shape == (2, 2, 4) and words.dtype == np.int32
    halves = words.view(np.int16).reshape(2, 2, 4, 2)  # little-endian: low half first
    assert halves[0, 0].tolist() == [[1, -2], [3, -4], [-1, 2], [-3, 4]]
    assert halves[0, 1].tolist() == [[5, 0], [0, 0], [-5, 0], [0, 0]]
    assert halves[1, 0].tolist() == [[7, 7], [7, 7], [0, 0], [0, 0]]
    assert packed_filter("unas_conv2d_patch_s8", 1, w)[1].tolist() == words.tolist()
    assert packed_filter("unas_conv2d_1x1_expanded_s8", 5, w)[1].tolist() == \
        pack_channel_pairs_int16(w).tolist()
    assert packed_filter("unas_conv2d_1x1_packed_s8", 200, w)[0] == "int8_t"


# in_h, in_w, in_c, out_c, k, stride, pad, dilation, shifts
CASES = [
    (5, 5, 3, 5, 1, 1, 0, 1, "normal"),   # 1x1, odd pixels and channels, depth < 4
    (4, 6, 16, 8, 1, 1, 0, 1, "mixed"),   # 1x1 multiple of 4, saturating shifts
    (7, 5, 9, 3, 1, 2, 0, 1, "normal"),   # strided 1x1 (rows), odd depth
    (3, 7, 6, 1, 1, 1, 0, 1, "normal"),   # a single output channel
    (4, 4, 5, 4, 1, 1, 0, 1, "left"),     # left shift: generic 1x1
    (3, 5, 131, 5, 1, 1, 0, 1, "normal"), # in_c > 128: int8 packed 1x1, depth tail
    (5, 5, 130, 3, 1, 2, 0, 1, "mixed"),  # same, strided
    (9, 9, 1, 7, 3, 1, 1, 1, "normal"),   # Cin = 1 first layer, same padding: patch kernel
    (8, 7, 1, 6, 5, 2, 2, 1, "mixed"),    # Cin = 1, 5x5 stride 2
    (9, 11, 3, 5, 3, 2, 1, 1, "normal"),  # Cin = 3 (RGB stem), odd width
    (7, 7, 2, 3, 3, 1, 2, 2, "normal"),   # dilation 2, taps outside the image
    (6, 5, 1, 4, 7, 1, 3, 1, "normal"),   # 7x7 larger than the image
    (6, 7, 5, 7, 3, 1, 1, 1, "left"),     # left shift: generic k x k kernel
    (5, 6, 20, 6, 3, 1, 1, 1, "mixed"),   # K = 180 > patch: direct kernel with rq
    (9, 9, 8, 4, 5, 2, 2, 1, "normal"),   # K = 200, stride 2, borders
    (7, 6, 17, 5, 3, 1, 1, 1, "normal"),  # K = 153, odd channels: border pairs of the top row
    (6, 9, 16, 3, 3, 2, 1, 2, "normal"),  # K = 144, dilation 2: single-pixel path
    (6, 7, 1, 9, 1, 1, 0, 1, "mixed"),    # 1x1 of one channel: one multiply per output
    (7, 9, 1, 4, 1, 2, 0, 1, "normal"),   # same, strided
]


@pytest.mark.parametrize("case", CASES)
def test_conv_kernels_with_generator_constants_match_tflm(case, kernels_object, tmp_path):
    in_h, in_w, in_c, out_c, k, stride, pad, dil, shifts = case
    rng = np.random.default_rng(CASES.index(case))
    span = dil * (k - 1) + 1
    out_h, out_w = (in_h + 2 * pad - span) // stride + 1, (in_w + 2 * pad - span) // stride + 1
    c = {"in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w,
         "out_c": out_c, "k_h": k, "k_w": k, "stride_h": stride, "stride_w": stride,
         "dil_h": dil, "dil_w": dil, "pad_t": pad, "pad_l": pad}
    _check_conv_against_tflm(c, shifts, rng, kernels_object, tmp_path)


def _same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """(output size, padding before) of TFLite's 'same' padding along one axis."""
    out = -(-size // stride)
    return out, max((out - 1) * stride + k - size, 0) // 2


# in_h, in_w, in_c, out_c, k, stride, shifts: 'same' convolutions of the direct kernel where
# most pixels are border pixels (gathered pairs, rows cut at the top/bottom, columns left out)
SAME_CASES = [
    (7, 7, 20, 9, 7, 1, "normal"),    # 7x7 on 7x7: no two pixels use the same taps
    (7, 7, 12, 5, 5, 1, "mixed"),     # 5x5 on 7x7
    (7, 7, 16, 3, 3, 1, "normal"),    # 3x3 on 7x7, K = 144
    (7, 7, 16, 7, 3, 2, "normal"),    # stride 2: 4x4 output, odd channels
    (4, 4, 9, 7, 5, 1, "normal"),     # 5x5 on 4x4
    (4, 4, 20, 5, 7, 2, "normal"),    # 7x7 stride 2 on 4x4
    (5, 7, 15, 1, 3, 2, "normal"),    # odd width, stride 2, one output channel
    (3, 5, 11, 5, 7, 1, "normal"),    # odd width narrower than the kernel
    (7, 5, 10, 35, 5, 1, "normal"),   # 35 channels: two blocks of 16 and an odd rest
    (5, 5, 60, 3, 7, 1, "normal"),    # 420-byte filter rows: gathered in pieces
    (1, 1, 40, 7, 5, 1, "normal"),    # one pixel: fewer than half of the columns run
    (2, 3, 30, 4, 7, 1, "normal"),    # 2x3 image, 7x7 kernel
    (7, 7, 16, 5, 5, 1, "left"),      # generic requantisation on border pairs
    (8, 9, 24, 6, 3, 1, "normal"),    # 72-byte rows: interior pairs read in place
    (9, 9, 30, 5, 3, 2, "mixed"),     # the same, stride 2
]


@pytest.mark.parametrize("case", SAME_CASES)
def test_direct_kernel_border_pixels_match_tflm(case, kernels_object, tmp_path):
    in_h, in_w, in_c, out_c, k, stride, shifts = case
    assert conv_kernel(k, k, in_c, True) == "unas_conv2d_s8"
    rng = np.random.default_rng(100 + SAME_CASES.index(case))
    (out_h, pad_t), (out_w, pad_l) = _same_padding(in_h, k, stride), _same_padding(in_w, k, stride)
    c = {"in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w,
         "out_c": out_c, "k_h": k, "k_w": k, "stride_h": stride, "stride_w": stride,
         "dil_h": 1, "dil_w": 1, "pad_t": pad_t, "pad_l": pad_l}
    _check_conv_against_tflm(c, shifts, rng, kernels_object, tmp_path, nonzero_in_zp=True)


def test_bias_rows_hold_the_bias_minus_in_zp_times_row_prefix_sums():
    w = np.arange(2 * 3 * 2 * 1).reshape(2, 3, 2, 1) - 5  # rows of channel 0: -9, -5, -1
    rows = bias_rows(np.array([100, -7]), w, in_zp=-3)
    assert rows.shape == (4, 2)
    assert rows[:, 0].tolist() == [100, 100 - 27, 100 - 42, 100 - 45]
    assert rows[-1].tolist() == (np.array([100, -7]) + 3 * w.reshape(2, -1).sum(axis=1)).tolist()


def _check_conv_against_tflm(c, shifts, rng, kernels_object, tmp_path, nonzero_in_zp=False):
    """Random int8 input, filter and bias for layer ``c`` (geometry fields), the generator's
    constants, the kernel conv_kernel picks on the host, compared with TFLM's arithmetic."""
    in_h, in_w, in_c, out_c, k = c["in_h"], c["in_w"], c["in_c"], c["out_c"], c["k_h"]
    x = rng.integers(-128, 128, size=(in_h, in_w, in_c), dtype=np.int64)
    w = rng.integers(-127, 128, size=(out_c, k, k, in_c), dtype=np.int64)
    bias = rng.integers(-20000, 20000, size=out_c, dtype=np.int64)
    mult, shift = quantization(rng, out_c, k * k * in_c, shifts)
    in_zp = int(rng.integers(-128, 128))
    if nonzero_in_zp and in_zp == 0:
        in_zp = 17
    c = {**c, "in_zp": in_zp, "out_zp": int(rng.integers(-20, 20)),
         "act_min": int(rng.choice([-128, -5])), "act_max": int(rng.choice([127, 100]))}
    rq = fast_requant_constants(list(zip(mult.tolist(), shift.tolist())), c["out_zp"])
    assert (rq is None) == (shifts == "left")
    kernel = conv_kernel(k, k, in_c, rq is not None)
    packed = kernel not in ("unas_conv2d_s8", "unas_conv2d_1x1_c1_s8") and rq is not None
    folded = bias - c["in_zp"] * w.reshape(out_c, -1).sum(axis=1)
    fields = ", ".join(f".{name} = {value}" for name, value in c.items())
    decls = [c_array("x", "int8_t", x), c_array("w", "int8_t", w),
             c_array("b", "int32_t", folded),
             c_array("brows", "int32_t", bias_rows(bias, w, c["in_zp"])),
             c_array("m", "int32_t", mult), c_array("s", "int32_t", shift)]
    extra = ""
    if packed:
        ctype, filt = packed_filter(kernel, in_c, w)
        decls.append(c_array("wp", ctype, filt))
        extra += ", .packed = (const int8_t *)wp"
    if rq is not None:
        rows = ", ".join("{" + ", ".join(map(str, r)) + "}" for r in rq)
        decls.append(f"static const unas_rqf rq[] = {{{rows}}};")
        extra += ", .rq = rq"
    decls.append(f"static const unas_conv_params p = {{{fields}, .weights = w, .bias = b, "
                 f".bias_rows = brows, .mult = m, .shift = s{extra}}};")
    got = run_c(kernels_object, tmp_path, decls, f"{kernel}(&p, x, out);",
                c["out_h"] * c["out_w"] * out_c)
    expected = reference_conv(x, w, bias, mult, shift, c)
    assert np.array_equal(got, expected.ravel())
    if k == 1:  # the dispatching entry point picks the same path from the fields set
        assert kernel.startswith("unas_conv2d_1x1_") and kernel != "unas_conv2d_1x1_s8"
        dispatched = run_c(kernels_object, tmp_path, decls, "unas_conv2d_1x1_s8(&p, x, out);",
                           c["out_h"] * c["out_w"] * out_c)
        assert np.array_equal(dispatched, got)

