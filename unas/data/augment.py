"""Training-set augmentation of μNAS (Table 4) as ``tf.data`` map functions ``(x, y) -> (x, y)``.

TensorFlow is imported only when a map function is built.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unas.data.spec import DatasetSpec


@dataclass(frozen=True)
class AugmentPlan:
    """What one dataset's augmentation does to a single HWC image.

    ``shift``: maximum shift in pixels (int) or as a fraction of height/width (float), done by
    symmetric padding and a random crop back to the original size; ``rotate``: maximum rotation in
    radians, applied with probability ``rotate_probability``; ``flip``: random left-right flip.
    """

    shift: int | float = 0
    rotate: float = 0.0
    rotate_probability: float = 0.0
    flip: bool = False


# Table 4 of the paper. MNIST: the table also lists a left-right flip, but μNAS's released MNIST
# augmentation has none and a mirrored digit is a different glyph, so the flip is left out (Fashion-MNIST
# keeps it). digits (8x8) scales MNIST's 2-pixel shift on 28x28 down to 1 pixel.
PLANS: dict[str, AugmentPlan] = {
    "digits": AugmentPlan(shift=1, rotate=0.2, rotate_probability=0.3),
    "mnist": AugmentPlan(shift=2, rotate=0.2, rotate_probability=0.3),
    "fashion_mnist": AugmentPlan(shift=2, rotate=0.2, rotate_probability=0.3, flip=True),
    "cifar10": AugmentPlan(shift=4, flip=True),
    "chars74k": AugmentPlan(shift=0.1),
}


def _rotate(tf, image, angle):
    """Rotate an HWC image by ``angle`` radians about its centre (bilinear, zero fill)."""
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[tf.newaxis]
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return rotated[0]


def _shift(tf, generator, image, plan_shift: int | float):
    """Pad symmetrically by the maximum shift, then crop the original size at a random offset."""
    shape = tf.shape(image)
    if isinstance(plan_shift, float):
        static = image.shape
        dy, dx = int(static[0] * plan_shift), int(static[1] * plan_shift)
    else:
        dy = dx = plan_shift
    if dy == 0 and dx == 0:
        return image
    padded = tf.pad(image, [[dy, dy], [dx, dx], [0, 0]], mode="SYMMETRIC")
    oy = generator.uniform([], 0, 2 * dy + 1, dtype=tf.int32)
    ox = generator.uniform([], 0, 2 * dx + 1, dtype=tf.int32)
    return tf.slice(padded, tf.stack([oy, ox, 0]), shape)


def augment_fn(spec: DatasetSpec, rng: np.random.Generator) -> Callable | None:
    """The μNAS augmentation of ``spec``'s dataset as a ``tf.data`` map function over single
    (unbatched) ``(image HWC, label)`` pairs, or None (``spec.augment`` false, or Speech Commands,
    whose features are precomputed). Its random draws come from a ``tf.random.Generator`` seeded from
    ``rng``: the same seed and a sequential map give the same augmented images.

    >>> import numpy as np
    >>> from unas.tfenv import tf
    >>> spec = DatasetSpec(name="cifar10")
    >>> fn = augment_fn(spec, np.random.default_rng(0))
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 32, 32, 3), np.float32), [0, 1])).map(fn)
    >>> [tuple(x.shape) for x, _ in ds]
    [(32, 32, 3), (32, 32, 3)]
    """
    if not spec.augment or spec.name not in PLANS:
        return None
    from unas.tfenv import tf

    plan = PLANS[spec.name]
    generator = tf.random.Generator.from_seed(int(rng.integers(0, 2**31 - 1)))

    def augment(x, y):
        if plan.flip:
            x = tf.where(generator.uniform([]) < 0.5, tf.reverse(x, axis=[1]), x)
        if plan.rotate > 0.0:
            angle = generator.uniform([], -plan.rotate, plan.rotate)
            x = _rotate(tf, x, tf.where(generator.uniform([]) < plan.rotate_probability, angle, 0.0))
        x = _shift(tf, generator, x, plan.shift)
        return x, y

    return augment


def max_shift_pixels(spec: DatasetSpec, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """The largest shift (rows, columns) `augment_fn` applies to images of ``image_shape``."""
    plan = PLANS.get(spec.name, AugmentPlan())
    if isinstance(plan.shift, float):
        return int(image_shape[0] * plan.shift), int(image_shape[1] * plan.shift)
    return plan.shift, plan.shift


__all__ = ["AugmentPlan", "PLANS", "augment_fn", "max_shift_pixels"]
