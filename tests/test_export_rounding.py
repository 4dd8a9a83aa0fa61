"""The two requantisation roundings: both close to the real product, at most one step apart."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_runtime.codegen.quantization import quantize_multipliers as quantize_multiplier
from unas.export.rounding import requantize_double, requantize_single


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 20), 1 << 20), st.floats(1e-5, 0.99))
def test_roundings_track_the_real_product_and_differ_by_at_most_one(acc, real):
    q, shift = quantize_multiplier(np.array([real]))
    double = int(requantize_double(np.array([acc]), q, shift)[0])
    single = int(requantize_single(np.array([acc]), q, shift)[0])
    exact = acc * real
    assert abs(single - exact) <= 0.5 + 1e-6 * max(1.0, abs(exact))
    assert abs(double - exact) <= 1.0 + 1e-6 * max(1.0, abs(exact))
    assert abs(double - single) <= 1


def test_quantize_multiplier_is_a_q31_mantissa():
    q, shift = quantize_multiplier(np.array([0.5, 0.75, 0.0123]))
    assert np.all((q >= 1 << 30) & (q < 1 << 31))
    np.testing.assert_allclose(q * 2.0 ** (shift - 31), [0.5, 0.75, 0.0123], rtol=1e-9)


def test_a_case_where_double_rounding_differs():
    # near exact halves the first rounding of the double scheme can move a value across the second
    q, shift = quantize_multiplier(np.array([0.2500000001]))
    accs = np.arange(-4000, 4000)
    double = requantize_double(accs, q, shift)
    single = requantize_single(accs, q, shift)
    assert np.any(double != single) and np.all(np.abs(double - single) <= 1)
