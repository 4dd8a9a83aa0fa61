"""MACs count the taps inside the input (unas.resources.macs)."""
from __future__ import annotations

from hypothesis import given, strategies as st

from unas.resources.macs import conv_macs, taps_inside


def _taps_by_enumeration(in_size: int, out_size: int, kernel: int, stride: int,
                         dilation: int) -> int:
    span = (kernel - 1) * dilation + 1
    pad_before = max((out_size - 1) * stride + span - in_size, 0) // 2
    return sum(1 for o in range(out_size) for t in range(kernel)
               if 0 <= o * stride - pad_before + t * dilation < in_size)


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 3), st.integers(1, 3),
       st.booleans())
def test_taps_inside_equals_enumerating_every_output_and_tap(in_size, kernel, stride, dilation,
                                                           same):
    span = (kernel - 1) * dilation + 1
    out_size = -(-in_size // stride) if same else (in_size - span) // stride + 1
    if out_size < 1:
        return
    assert taps_inside(in_size, out_size, kernel, stride, dilation) == _taps_by_enumeration(
        in_size, out_size, kernel, stride, dilation)


@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 5), st.integers(1, 3),
       st.integers(1, 8), st.integers(1, 8))
def test_valid_padding_counts_every_tap_of_every_window(height, width, kernel, stride, c_in,
                                                        c_out):
    out_h, out_w = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    if min(out_h, out_w) < 1:
        return
    macs = conv_macs((height, width, c_in), (out_h, out_w, c_out), (kernel, kernel),
                     (stride, stride))
    assert macs == out_h * out_w * c_out * kernel * kernel * c_in


def test_same_padding_drops_the_taps_over_the_border():
    # 3x3 'same' on 3x3: per axis the middle output reads 3 taps, the edges 2 each -> 7
    assert conv_macs((3, 3, 2), (3, 3, 4), (3, 3)) == 7 * 7 * 2 * 4
    assert conv_macs((3, 3, 2), (3, 3, 4), (3, 3), depthwise=True) == 7 * 7 * 4
    # a 7x7 kernel on a 1x1 map reads only its centre tap
    assert conv_macs((1, 1, 16), (1, 1, 8), (7, 7)) == 16 * 8
    # 1x1 kernels never touch padding
    assert conv_macs((5, 6, 3), (5, 6, 7), (1, 1)) == 5 * 6 * 3 * 7


def test_stride_two_same_pads_after_the_image_first():
    # 4 -> 2 with a 3x3 stride-2 window: total padding 1, all of it after the last column,
    # so output 0 reads 0..2 (3 inside) and output 1 reads 2..4 (2 inside)
    assert taps_inside(4, 2, 3, 2) == 5
    # 5x5, 32 -> 16: one before, two after
    assert taps_inside(32, 16, 5, 2) == 16 * 5 - 3
