"""TFLM's integer requantisation in Python, for tables and constants computed at generation time.

The functions reproduce gemmlowp/TFLM bit for bit on Python integers (int32 semantics), so a value
the generator precomputes equals what the C kernel (and TFLM) would compute at run time::

    >>> multiply_by_quantized_multiplier(1000, 1 << 30, -1)
    250
    >>> fast_requantization(1 << 30, -3, 5000, out_zp=-2)
    (1073741824, 1, -12, 3)
"""
from __future__ import annotations

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _wrap32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    product = a * b
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    total = product + nudge
    quotient = abs(total) >> 31
    return quotient if total >= 0 else -quotient


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` (ties away from zero)."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM ``MultiplyByQuantizedMultiplier`` (left shift wraps as the C ``uint32`` shift does)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x << left), multiplier), right)


def fast_requantization(multiplier: int, shift: int, bound: int,
                        out_zp: int = 0) -> tuple[int, int, int, int] | None:
    """``(mult, left + 1, nudge, right)`` for the C helper ``unas_dw_rq``, which returns
    ``MultiplyByQuantizedMultiplier(acc, multiplier, shift) + out_zp`` when ``|acc| <= bound``;
    None when it cannot promise that.

    It needs ``acc << (left + 1)`` to fit in int32 (SMMULR of the doubled value is the doubling
    high multiply), a right shift of at least 1, and no int32 overflow when the nudge (rounding
    half plus ``out_zp << right``) is added to the high product."""
    left, right = max(shift, 0), max(-shift, 0)
    if right < 1 or right > 31 or multiplier < 0:
        return None
    if bound << (left + 1) > INT32_MAX:
        return None
    high = ((bound << left) * multiplier >> 31) + 1  # |SaturatingRoundingDoublingHighMul|
    nudge = (1 << (right - 1)) + (out_zp << right)
    if high + abs(nudge) + 1 > INT32_MAX:
        return None
    return multiplier, left + 1, nudge, right
