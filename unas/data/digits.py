"""scikit-learn's bundled 8x8 handwritten digits: the no-download dataset of the quick demo."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits

from unas.data.spec import DatasetSpec
from unas.data.splits import Splits, make_splits, split_off

# The test split is fixed (same 20 % every run, stratified), so test accuracies stay comparable.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 20210409


def load_digits(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """1797 8x8 grey images scaled to [0, 1] (pixel values 0..16 / 16), 10 classes."""
    bunch = _sklearn_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., np.newaxis]
    y = bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = split_off(x, y, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED, "digits: fixed test split")
    names = tuple(str(int(t)) for t in bunch.target_names)
    return make_splits(spec, rng, x_train, y_train, x_test, y_test, num_classes=10, class_names=names)
