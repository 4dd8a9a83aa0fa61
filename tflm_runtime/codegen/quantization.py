"""Integer requantisation parameters computed exactly as TFLite Micro computes them at Prepare.

Every function mirrors one TFLM helper (same float/double rounding), so the literals the generator
writes make the C kernels bit-exact with TFLM::

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.25)
    (1073741824, -1)
"""
from __future__ import annotations

import math

import numpy as np

from tflm_runtime.tflite_model import Tensor


def _round_half_away(x: float) -> int:
    """``std::round``: halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= m * 2^(shift - 31)`` with ``m`` in Q0.31."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` of every element of ``reals``: int64 arrays of Q31 mantissas
    and shifts (same shape), for numpy callers."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).reshape(-1)]
    shape = np.shape(reals)
    q = np.array([m for m, _ in pairs], dtype=np.int64).reshape(shape)
    shift = np.array([s for _, s in pairs], dtype=np.int64).reshape(shape)
    return q, shift


def conv_multipliers(input_t: Tensor, filter_t: Tensor, output_t: Tensor,
                     channels: int) -> list[tuple[int, int]]:
    """Per-output-channel (multiplier, shift) of CONV_2D / DEPTHWISE_CONV_2D
    (``PopulateConvolutionQuantizationParams``: double arithmetic on the float32 scales)."""
    scales = filter_t.scales
    result = []
    for c in range(channels):
        filter_scale = scales[c] if len(scales) > 1 else scales[0]
        result.append(quantize_multiplier(input_t.scale * filter_scale / output_t.scale))
    return result


def fc_multipliers(input_t: Tensor, filter_t: Tensor, output_t: Tensor,
                   units: int) -> list[tuple[int, int]]:
    """FULLY_CONNECTED: per-channel as conv; per-tensor via ``GetQuantizedConvolutionMultipler``,
    whose input*filter product is taken in float32 before widening to double."""
    if len(filter_t.scales) > 1:
        return conv_multipliers(input_t, filter_t, output_t, units)
    product = float(np.float32(input_t.scale) * np.float32(filter_t.scale))
    return [quantize_multiplier(product / output_t.scale)] * units


def activation_range(activation: str, output_t: Tensor) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for int8 outputs (float32 division, std::round)."""
    lo, hi = -128, 127
    scale = np.float32(output_t.scale)
    zp = output_t.zero_point

    def quantize(value: float) -> int:
        return zp + _round_half_away(float(np.float32(value) / scale))

    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    if activation in ("NONE", None):
        return lo, hi
    raise ValueError(f"unsupported fused activation {activation}")


def add_params(in1: Tensor, in2: Tensor, out: Tensor) -> dict[str, int]:
    """int8 ADD parameters (``left_shift = 20``), as TFLM's ``CalculateOpDataAdd``."""
    left_shift = 20
    twice_max = 2 * float(max(np.float32(in1.scale), np.float32(in2.scale)))
    m1, s1 = quantize_multiplier(in1.scale / twice_max)
    m2, s2 = quantize_multiplier(in2.scale / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << left_shift) * out.scale))
    return dict(left_shift=left_shift, in1_offset=-in1.zero_point, in1_mult=m1, in1_shift=s1,
                in2_offset=-in2.zero_point, in2_mult=m2, in2_shift=s2,
                out_offset=out.zero_point, out_mult=mo, out_shift=so)


def mean_params(input_t: Tensor, output_t: Tensor, count: int) -> tuple[int, int]:
    """(multiplier, shift) of int8 MEAN with ``1/count`` folded in (TFLM ``QuantizedMeanOrSum``)."""
    mult, shift = quantize_multiplier(input_t.scale / output_t.scale)
    if count > 0:
        extra = min(count.bit_length() - 1, 32, 31 + shift)
        mult = (mult << extra) // count
        shift -= extra
    return mult, shift


def softmax_params(input_t: Tensor, beta: float) -> tuple[int, int, int]:
    """(input_mult, input_left_shift, diff_min) of int8 SOFTMAX (``PreprocessSoftmaxScaling``
    with 5 integer bits and ``CalculateInputRadius``)."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * input_t.scale * (1 << (31 - integer_bits)),
               float((1 << 31) - 1))
    mult, left_shift = quantize_multiplier(real)
    radius = ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    diff_min = -int(math.floor(radius))
    return mult, left_shift, diff_min
