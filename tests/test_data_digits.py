"""The bundled scikit-learn digits: shapes, ranges, fixed test split, reproducible validation split."""
import numpy as np

from unas.data import DatasetSpec, load_dataset


def _rows(a: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in a.reshape(len(a), -1)}


def test_shapes_dtypes_and_range(rng):
    s = load_dataset(DatasetSpec(name="digits"), rng)
    assert s.input_shape == (8, 8, 1) and s.num_classes == 10 and s.name == "digits"
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int32
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 1797
    assert s.x_train.min() >= 0.0 and s.x_train.max() == 1.0
    assert set(np.unique(s.y_test)) == set(range(10))
    assert s.class_names == tuple(str(i) for i in range(10))


def test_test_split_is_fixed_and_validation_comes_from_train_only():
    a = load_dataset(DatasetSpec(name="digits"), np.random.default_rng(1))
    b = load_dataset(DatasetSpec(name="digits"), np.random.default_rng(2))
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_val, b.x_val)
    # digits has a few duplicate images; compare indices via the union instead of exact disjointness
    assert len(a.x_val) == round(0.1 * (len(a.x_val) + len(a.x_train)))
    assert _rows(a.x_val) <= _rows(b.x_train) | _rows(b.x_val)


def test_same_seed_same_split():
    a = load_dataset(DatasetSpec(name="digits", max_train=200), np.random.default_rng(7))
    b = load_dataset(DatasetSpec(name="digits", max_train=200), np.random.default_rng(7))
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert len(a.x_train) == 200


def test_validation_is_stratified(rng):
    s = load_dataset(DatasetSpec(name="digits", validation_split=0.2), rng)
    counts = np.bincount(s.y_val, minlength=10)
    assert counts.max() - counts.min() <= 2


def test_binary_variant_and_class_pair(rng):
    s = load_dataset(DatasetSpec(name="digits", binary=True), rng)
    assert s.num_classes == 2 and set(np.unique(s.y_train)) == {0, 1}
    pair = load_dataset(DatasetSpec(name="digits", binary=(3, 8), validation_split=20), rng)
    assert pair.num_classes == 2 and pair.class_names == ("3", "8") and len(pair.x_val) == 20
    assert len(pair.y_test) < 100  # only the 3s and 8s of the fixed test split


def test_package_and_image_loaders_do_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from unas.data import load_dataset, DatasetSpec, augment_fn; "
            "load_dataset(DatasetSpec(name='digits'), np.random.default_rng(0)); "
            "import unas.data.mnist, unas.data.cifar, unas.data.chars74k, unas.data.speech_commands; "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_validation_split_too_large_or_too_small_is_a_data_error(rng):
    import pytest

    from unas.errors import DataError

    with pytest.raises(DataError, match=r"^digits: dataset.validation_split: 5000 of 1438 examples"):
        load_dataset(DatasetSpec(name="digits", validation_split=5000), rng)
    with pytest.raises(DataError, match=r"^digits: dataset.validation_split: 0.0001 of 1438"):
        load_dataset(DatasetSpec(name="digits", validation_split=0.0001), rng)
