"""CIFAR-10 (and μNAS's binary variant) from the python-pickle batches, their archive, or the Keras download."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from unas.data.resize import resize_images
from unas.data.sources import download_or_fail, keras_cache_dir
from unas.data.spec import DatasetSpec
from unas.data.splits import Splits, make_splits
from unas.errors import DataError

BATCH_DIR = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and standard deviation of the CIFAR-10 training images, used for μNAS's normalisation.
CHANNEL_MEAN = np.array((0.4914, 0.4822, 0.4465), dtype=np.float32)
CHANNEL_STD = np.array((0.2023, 0.1994, 0.2010), dtype=np.float32)
_HOW_TO_GET = ("get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and set "
               "dataset.data_dir to the folder holding it (or its extracted cifar-10-batches-py)")


def _unpickle(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.loads(raw, encoding="bytes")
        data, labels = batch[b"data"], batch[b"labels"]
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(labels, dtype=np.int32)
    except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as error:
        raise DataError(f"{where}: not a CIFAR-10 python batch (expected a pickled dict with b'data' "
                        f"and b'labels': {error})") from error
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _from_folder(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: _unpickle((folder / name).read_bytes(), str(folder / name))
            for name in TRAIN_BATCHES + (TEST_BATCH,)}


def _from_archive(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    batches = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = Path(member.name).name
                if member.isfile() and name in TRAIN_BATCHES + (TEST_BATCH,):
                    batches[name] = _unpickle(tar.extractfile(member).read(), f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{archive}: cannot read the CIFAR-10 archive ({error})") from error
    missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if n not in batches]
    if missing:
        raise DataError(f"{archive}: the archive lacks {', '.join(missing)}")
    return batches


def _has_batches(folder: Path) -> bool:
    return all((folder / name).is_file() for name in TRAIN_BATCHES + (TEST_BATCH,))


def load_raw(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 NHWC train and test images with their labels, from the first place that has them."""
    roots = ([Path(spec.data_dir).expanduser()] if spec.data_dir else []) + [keras_cache_dir()]
    looked_in = []
    for root in roots:
        for folder in (root, root / BATCH_DIR):
            looked_in.append(folder)
            if _has_batches(folder):
                batches = _from_folder(folder)
                break
        else:
            if (root / ARCHIVE).is_file():
                batches = _from_archive(root / ARCHIVE)
            else:
                continue
        x_train = np.concatenate([batches[name][0] for name in TRAIN_BATCHES])
        y_train = np.concatenate([batches[name][1] for name in TRAIN_BATCHES])
        return x_train, y_train, batches[TEST_BATCH][0], batches[TEST_BATCH][1]
    missing = f"{BATCH_DIR}/data_batch_1..5 + test_batch (or {ARCHIVE})"
    (x_train, y_train), (x_test, y_test) = download_or_fail("cifar10", spec.download, missing, looked_in,
                                                            _HOW_TO_GET)
    return x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)


def normalise(images: np.ndarray) -> np.ndarray:
    """μNAS's CIFAR-10 preprocessing: scale to [0, 1], then per-channel (x - mean) / std."""
    return (images.astype(np.float32) / 255.0 - CHANNEL_MEAN) / CHANNEL_STD


def load_cifar10(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """CIFAR-10: 32x32x3 normalised images, 10 classes (2 with ``binary``)."""
    x_train, y_train, x_test, y_test = load_raw(spec)
    if len(y_train) and (y_train.min() < 0 or y_train.max() >= 10):
        raise DataError(f"cifar10: training labels span {y_train.min()}..{y_train.max()}, expected 0..9")

    def images(x: np.ndarray) -> np.ndarray:
        x = normalise(x)
        return resize_images(x, spec.image_size) if spec.image_size else x

    return make_splits(spec, rng, images(x_train), y_train.astype(np.int32), images(x_test),
                       y_test.astype(np.int32), num_classes=10, class_names=CLASS_NAMES)
