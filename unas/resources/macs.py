"""Multiply-accumulates of a convolution: the taps that fall inside the input.

A ``'same'`` convolution's window hangs over the image border at the edges; the taps that land
on the zero padding multiply nothing, and neither TFLM's kernels nor the generated C compute
them. On the small feature maps of MCU models that share is large (a 7x7 'same' conv on a 7x7
map has 43% of its window taps outside), so counting full windows makes MACs a poor latency
proxy. Every MAC count in unas (resource graphs from Keras, TFLite or the search spaces' own
operator lists) counts in-image taps with :func:`conv_macs`; on ``'valid'`` convolutions and 1x1
kernels that equals the usual ``H_out * W_out * C_out * k_h * k_w * C_in``.

Padding follows TensorFlow: the total is whatever the output size needs, ``pad_total // 2`` of
it before the first row/column. That also covers ``'valid'`` (no padding) without being told.

>>> conv_macs((4, 4, 1), (4, 4, 2), (3, 3), (1, 1))   # 'same' 3x3: 4*4*9*2 = 288 full-window
200
>>> conv_macs((5, 5, 3), (3, 3, 8), (3, 3), (1, 1))   # 'valid': every tap inside, 3*3*9*3*8
1944
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=4096)  # a sweep asks for the same few (size, kernel, stride) again and again
def taps_inside(in_size: int, out_size: int, kernel: int, stride: int = 1,
                dilation: int = 1) -> int:
    """Along one axis: how many (output position, tap) pairs read a position inside the input
    (``0 <= o * stride - pad_before + t * dilation < in_size``), TensorFlow's padding."""
    if min(in_size, out_size, kernel, stride, dilation) < 1:
        return 0
    span = (kernel - 1) * dilation + 1
    pad_before = max((out_size - 1) * stride + span - in_size, 0) // 2
    count = 0
    for tap in range(kernel):
        offset = tap * dilation - pad_before  # input position this tap reads for output 0
        if offset > in_size - 1:
            continue
        first = (-offset + stride - 1) // stride if offset < 0 else 0
        last = min(out_size - 1, (in_size - 1 - offset) // stride)
        count += max(0, last - first + 1)
    return count


def conv_macs(in_shape: Sequence[int], out_shape: Sequence[int], kernel: Sequence[int],
              stride: Sequence[int] = (1, 1), dilation: Sequence[int] = (1, 1),
              depthwise: bool = False) -> int:
    """MACs of a ``CONV_2D`` (or, with ``depthwise``, a multiplier-1 ``DEPTHWISE_CONV_2D``) from
    ``(H, W, C)`` input and output shapes and ``(height, width)`` kernel/stride/dilation pairs:
    in-image taps per output channel times the input channels a tap reads (1 for depthwise)."""
    rows = taps_inside(int(in_shape[0]), int(out_shape[0]), int(kernel[0]), int(stride[0]),
                       int(dilation[0]))
    cols = taps_inside(int(in_shape[1]), int(out_shape[1]), int(kernel[1]), int(stride[1]),
                       int(dilation[1]))
    per_tap = 1 if depthwise else int(in_shape[2])
    return rows * cols * per_tap * int(out_shape[2])
