"""Fidelity on random CNN-space models: export → reorder → offline plan → TFLM.

For every model: reordering and the offline plan change no output bit in TFLM; where TFLM and
TFLite's reference kernels differ, the first differing operator is off by at most 1 LSB
(later layers may amplify it); TFLM's arena head equals the prediction exactly in the
converter's order, in the minimum-peak order and with the offline plan; the offline plan is
never above TFLM's own plan and the minimum-peak order never above the converter's.
"""
import numpy as np
import pytest

from unas.export.fidelity import check_tflite, random_cnn_tflite

N_MODELS = 8
SMALL_SPACE = dict(max_blocks=3, max_channels=16, max_dense_layers=2, max_units=32)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(N_MODELS))
def test_random_cnn_deploys_faithfully(seed):
    rng = np.random.default_rng(1000 + seed)
    blob, inputs, arch = random_cnn_tflite(rng, input_shape=(12, 12, 1), classes=3,
                                           space_bounds=SMALL_SPACE)
    row = check_tflite(blob, inputs)
    assert row.reordered_equal and row.planned_equal, arch
    assert row.divergence_lsb <= 1, (row.divergence_op, arch)
    if row.divergence_op:  # so far always FULLY_CONNECTED's rounding (see unas.export.rounding)
        assert row.divergence_explained, (row.divergence_op, arch)
    assert (row.max_lsb_vs_tflite == 0) == (row.divergence_op == ""), arch
    assert row.tflm_original == row.predicted_original, arch
    assert row.tflm_reordered == row.predicted_reordered, arch
    assert row.tflm_planned == row.plan_extent, arch
    assert row.peak_optimal <= row.peak_original <= row.predicted_original
    assert row.peak_optimal <= row.plan_extent <= row.predicted_reordered
