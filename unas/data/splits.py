"""`Splits` (the arrays a search trains on) and the helpers every loader shares to build them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from unas.data.spec import DatasetSpec, default_validation_split
from unas.errors import DataError


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test arrays of one dataset.

    Images are float32 NHWC, labels int32 class indices. ``x_val`` is held out from the training
    data (for the search objective); ``x_test`` is the dataset's separate test set.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    name: str
    class_names: tuple[str, ...] | None = None


def _seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def split_off(x: np.ndarray, y: np.ndarray, size: float | int, seed: int, what: str = "split"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(x, y)`` into a kept part and a held-out part of ``size`` (fraction or count),
    stratified by label when every class has at least two examples. Returns
    ``x_kept, x_held, y_kept, y_held``; a `DataError` naming ``what`` when either part would be empty."""
    n_held = size if isinstance(size, int) else int(round(size * len(y)))
    if not 1 <= n_held < len(y):
        raise DataError(f"{what}: {size} of {len(y)} examples leaves an empty part "
                        f"(need 1..{max(len(y) - 1, 0)} held-out examples)")
    counts = np.bincount(y)
    nonzero = counts[counts > 0]
    present = len(nonzero)
    stratify = y if present and nonzero.min() >= 2 and present <= n_held <= len(y) - present else None
    x_kept, x_held, y_kept, y_held = train_test_split(x, y, test_size=n_held, random_state=seed, stratify=stratify)
    return x_kept, x_held, y_kept, y_held


def apply_binary(x: np.ndarray, y: np.ndarray, binary: bool | tuple[int, int], num_classes: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """μNAS's binary variant: ``True`` → label 1 for the lower half of the classes, 0 otherwise;
    a pair ``(a, b)`` → keep only classes a (→ 0) and b (→ 1); ``False`` → unchanged."""
    if binary is False:
        return x, y
    if binary is True:
        return x, (y < (num_classes + 1) // 2).astype(np.int32)
    a, b = binary
    keep = (y == a) | (y == b)
    return x[keep], (y[keep] == b).astype(np.int32)


def binary_class_names(binary: bool | tuple[int, int], class_names: tuple[str, ...] | None,
                       num_classes: int) -> tuple[str, ...] | None:
    """Class names after `apply_binary`."""
    if binary is False or class_names is None:
        return class_names
    if binary is True:
        half = (num_classes + 1) // 2
        return (f"{class_names[half]}..{class_names[-1]}", f"{class_names[0]}..{class_names[half - 1]}")
    return (class_names[binary[0]], class_names[binary[1]])


def make_splits(spec: DatasetSpec, rng: np.random.Generator, x_train: np.ndarray, y_train: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray, num_classes: int,
                class_names: tuple[str, ...] | None = None) -> Splits:
    """Apply the binary variant, hold out `default_validation_split` of the training data (drawn with
    ``rng``), subsample to ``spec.max_train`` and package everything as `Splits`."""
    x_train, y_train = apply_binary(x_train, y_train.astype(np.int32), spec.binary, num_classes)
    x_test, y_test = apply_binary(x_test, y_test.astype(np.int32), spec.binary, num_classes)
    names = binary_class_names(spec.binary, class_names, num_classes)
    if spec.binary is not False:
        num_classes = 2
    x_train, x_val, y_train, y_val = split_off(x_train, y_train, default_validation_split(spec), _seed_from(rng),
                                               f"{spec.name}: dataset.validation_split")
    return finish_splits(spec, rng, x_train, y_train, x_val, y_val, x_test, y_test, num_classes, names)


def finish_splits(spec: DatasetSpec, rng: np.random.Generator, x_train: np.ndarray, y_train: np.ndarray,
                  x_val: np.ndarray, y_val: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  num_classes: int, class_names: tuple[str, ...] | None) -> Splits:
    """Subsample the training set to ``spec.max_train`` (with ``rng``) and package `Splits`."""
    if spec.max_train is not None and spec.max_train < len(y_train):
        keep = np.sort(rng.choice(len(y_train), size=spec.max_train, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    def i32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.int32)

    return Splits(x_train=f32(x_train), y_train=i32(y_train), x_val=f32(x_val), y_val=i32(y_val),
                  x_test=f32(x_test), y_test=i32(y_test), input_shape=tuple(int(d) for d in x_train.shape[1:]),
                  num_classes=num_classes, name=spec.name, class_names=class_names)
