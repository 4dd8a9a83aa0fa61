"""The two int8 requantisation roundings, to explain where TFLM and TFLite outputs differ.

An int8 kernel turns its int32 accumulator into the output with a fixed-point multiplier
``q * 2**shift`` (``q`` a Q31 mantissa, from ``QuantizeMultiplier``:
:func:`tflm_runtime.codegen.quantization.quantize_multipliers`):

* **double rounding** (gemmlowp, TFLM's ``MultiplyByQuantizedMultiplier``):
  ``SaturatingRoundingDoublingHighMul(acc << left, q)`` rounds once, then
  ``RoundingDivideByPOT(·, right)`` rounds again;
* **single rounding** (TFLite built with ``TFLITE_SINGLE_ROUNDING``, as its reference
  FULLY_CONNECTED runs): ``(acc * q + 2**(30 - shift)) >> (31 - shift)``, one rounding.

They differ by one step when the first rounding pushes a value across a rounding boundary of the
second. :func:`explain_fully_connected` recomputes a FULLY_CONNECTED both ways from its (shared)
input and says which runtime matches which.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tflm_runtime.codegen.quantization import quantize_multipliers

if TYPE_CHECKING:  # pragma: no cover
    from tflm_runtime.tflite_model import Operator, TfliteModel


def requantize_double(acc: np.ndarray, q: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """gemmlowp double rounding (TFLM)."""
    acc = np.asarray(acc, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    product = (acc * (np.int64(1) << left)) * q
    nudged = product + np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # division truncating to 0
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def requantize_single(acc: np.ndarray, q: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Single rounding (TFLite's ``TFLITE_SINGLE_ROUNDING``)."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    return (np.asarray(acc, dtype=np.int64) * q + (np.int64(1) << (total - 1))) >> total


def fully_connected_both_ways(model: "TfliteModel", op: "Operator", x: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of int8 FULLY_CONNECTED ``op`` (of a parsed ``model``) on int8 input ``x``,
    requantised with double and with single rounding (fused RELU/RELU6/NONE applied)."""
    t_in, t_w, t_out = (model.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    units = t_w.shape[0]
    acc = np.asarray(x, dtype=np.int64).reshape(-1, t_w.shape[1]) - t_in.zero_point
    acc = acc @ t_w.data.astype(np.int64).T
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        acc = acc + model.tensors[op.inputs[2]].data.astype(np.int64)
    w_scales = np.asarray(t_w.scales if len(t_w.scales) == units else [t_w.scale] * units,
                          dtype=np.float64)
    real = np.float64(np.float32(t_in.scale)) * w_scales / np.float64(np.float32(t_out.scale))
    q, shift = quantize_multipliers(real)
    low, high = -128, 127
    activation = op.options.get("fused_activation_function", "NONE")
    if activation in ("RELU", "RELU6"):
        low = t_out.zero_point
    if activation == "RELU6":
        high = min(127, t_out.zero_point + int(round(6.0 / t_out.scale)))
    return tuple(np.clip(f(acc, q, shift) + t_out.zero_point, low, high)  # type: ignore[return-value]
                 for f in (requantize_double, requantize_single))


def explain_fully_connected(model: "TfliteModel", op: "Operator", x: np.ndarray,
                            tflm_out: np.ndarray,
                            tflite_out: np.ndarray) -> bool:
    """True if TFLM's output is the double-rounded and TFLite's the single-rounded result."""
    double, single = fully_connected_both_ways(model, op, x)
    return bool(np.array_equal(double.reshape(-1), np.asarray(tflm_out).reshape(-1))
                and np.array_equal(single.reshape(-1), np.asarray(tflite_out).reshape(-1)))
