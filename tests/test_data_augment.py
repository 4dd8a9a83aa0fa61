"""μNAS training augmentation as tf.data map functions."""
import numpy as np
import pytest

from unas.data import DatasetSpec
from unas.data.augment import PLANS, augment_fn, max_shift_pixels
from unas.tfenv import tf


def _run(fn, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(fn)
    xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in ds])
    return np.stack(xs), np.array(ys)


def test_off_and_speech_give_none(rng):
    assert augment_fn(DatasetSpec(name="cifar10", augment=False), rng) is None
    assert augment_fn(DatasetSpec(name="speech_commands"), rng) is None


@pytest.mark.parametrize("name, shape", [("digits", (8, 8, 1)), ("mnist", (28, 28, 1)),
                                         ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)),
                                         ("chars74k", (48, 48, 3))])
def test_shapes_dtypes_and_labels_are_kept(name, shape, rng):
    x = rng.random((6,) + shape).astype(np.float32)
    y = np.arange(6, dtype=np.int32)
    ax, ay = _run(augment_fn(DatasetSpec(name=name), rng), x, y)
    assert ax.shape == x.shape and ax.dtype == np.float32
    np.testing.assert_array_equal(ay, y)
    assert not np.array_equal(ax, x)  # something moved in at least one of six images


def test_same_seed_same_augmentation():
    x = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
    y = np.zeros(8, dtype=np.int32)
    spec = DatasetSpec(name="cifar10")
    a, _ = _run(augment_fn(spec, np.random.default_rng(5)), x, y)
    b, _ = _run(augment_fn(spec, np.random.default_rng(5)), x, y)
    c, _ = _run(augment_fn(spec, np.random.default_rng(6)), x, y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cifar_is_a_shift_or_flip_of_the_input_within_four_pixels():
    x = np.arange(32 * 32, dtype=np.float32).reshape(1, 32, 32, 1)
    out, _ = _run(augment_fn(DatasetSpec(name="cifar10"), np.random.default_rng(1)),
                  np.repeat(x, 20, axis=0), np.zeros(20, dtype=np.int32))
    for image in out[..., 0]:
        centre = image[16, 16]
        row, col = divmod(int(centre), 32)
        assert abs(row - 16) <= 4 and (abs(col - 16) <= 4 or abs(col - 15) <= 4)  # 15: mirrored centre
        assert set(np.unique(image)) <= set(np.unique(x))  # no interpolation: pixels are moved only


def test_chars74k_shift_is_ten_percent_of_size():
    assert max_shift_pixels(DatasetSpec(name="chars74k"), (48, 48, 3)) == (4, 4)
    assert max_shift_pixels(DatasetSpec(name="chars74k"), (32, 32, 3)) == (3, 3)
    assert max_shift_pixels(DatasetSpec(name="cifar10"), (32, 32, 3)) == (4, 4)


def test_mnist_rotation_keeps_a_centred_disc_and_happens_sometimes():
    yy, xx = np.mgrid[:28, :28]
    disc = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2 < 36).astype(np.float32)
    bar = np.zeros((28, 28), dtype=np.float32)
    bar[13:15, 4:24] = 1.0
    n = 200
    out, _ = _run(augment_fn(DatasetSpec(name="mnist"), np.random.default_rng(2)),
                  np.repeat(bar[None, ..., None], n, axis=0), np.zeros(n, dtype=np.int32))
    # a horizontal bar that is only shifted stays exactly two rows of ones; a rotated one does not
    rotated = sum(1 for image in out[..., 0] if not np.isin(image, (0.0, 1.0)).all())
    assert 0.15 * n < rotated < 0.45 * n  # p = 0.3
    disc_out, _ = _run(augment_fn(DatasetSpec(name="mnist"), np.random.default_rng(3)),
                       np.repeat(disc[None, ..., None], 20, axis=0), np.zeros(20, dtype=np.int32))
    np.testing.assert_allclose(disc_out.sum(axis=(1, 2, 3)), disc.sum(), rtol=0.08)


def test_every_image_dataset_has_a_plan():
    assert set(PLANS) == {"digits", "mnist", "fashion_mnist", "cifar10", "chars74k"}
    assert PLANS["fashion_mnist"].flip and not PLANS["mnist"].flip and PLANS["cifar10"].flip
