"""MNIST and Fashion-MNIST from IDX files (gzipped or not), a Keras ``mnist.npz``, or the Keras download."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from unas.data.resize import resize_images
from unas.data.sources import download_or_fail, find_first, keras_cache_dir
from unas.data.spec import DatasetSpec
from unas.data.splits import Splits, make_splits
from unas.errors import DataError

IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                       "Bag", "Ankle boot")
_HOW_TO_GET = {
    "mnist": "get the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
             "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) from https://yann.lecun.com/exdb/mnist/ "
             "or mnist.npz from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz "
             "and set dataset.data_dir to their folder",
    "fashion_mnist": "install the Debian package dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist) "
                     "or get the four IDX files from https://github.com/zalandoresearch/fashion-mnist "
                     "and set dataset.data_dir to their folder",
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) of unsigned bytes into an array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read IDX file ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (expected magic 00 00 08 xx)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    if len(shape) != ndim or len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path}: IDX header says shape {shape} but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx_set(directory: Path) -> dict[str, np.ndarray] | None:
    found = {key: find_first([directory], [name + ".gz", name]) for key, name in IDX_FILES.items()}
    if any(path is None for path in found.values()):
        return None
    return {key: read_idx(path) for key, path in found.items()}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return {key: data[key] for key in IDX_FILES}
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: expected a Keras mnist.npz with {', '.join(IDX_FILES)} ({error})") from error


def _search_dirs(spec: DatasetSpec) -> list[Path]:
    dirs = [Path(spec.data_dir).expanduser()] if spec.data_dir else []
    if spec.name == "fashion_mnist" and not spec.data_dir:
        dirs.append(DEBIAN_FASHION_MNIST)
    cache = keras_cache_dir()
    dirs.append(cache / "fashion-mnist" if spec.name == "fashion_mnist" else cache)
    return dirs


def load_raw(spec: DatasetSpec) -> dict[str, np.ndarray]:
    """The uint8 images (N, 28, 28) and labels of ``spec.name`` from the first place that has them."""
    dirs = _search_dirs(spec)
    for directory in dirs:
        arrays = _read_idx_set(directory)
        if arrays is not None:
            return arrays
        if spec.name == "mnist" and (directory / "mnist.npz").is_file():
            return _read_npz(directory / "mnist.npz")
    missing = " / ".join(f"{name}[.gz]" for name in IDX_FILES.values())
    if spec.name == "mnist":
        missing += " (or mnist.npz)"
    (x_train, y_train), (x_test, y_test) = download_or_fail(spec.name, spec.download, missing, dirs,
                                                            _HOW_TO_GET[spec.name])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> None:
    for part in ("train", "test"):
        x, y = arrays["x_" + part], arrays["y_" + part]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{spec.name}: {part} images {x.shape} and labels {y.shape} do not match "
                            "(expected (N, H, W) and (N,))")
        if len(y) and int(y.max()) >= 10:
            raise DataError(f"{spec.name}: {part} labels go up to {int(y.max())}, expected 0..9")


def _load(spec: DatasetSpec, rng: np.random.Generator, class_names: tuple[str, ...]) -> Splits:
    arrays = load_raw(spec)
    _check(spec, arrays)

    def images(key: str) -> np.ndarray:
        x = arrays[key].astype(np.float32)[..., np.newaxis] / 255.0
        return resize_images(x, spec.image_size) if spec.image_size else x

    return make_splits(spec, rng, images("x_train"), arrays["y_train"].astype(np.int32), images("x_test"),
                       arrays["y_test"].astype(np.int32), num_classes=10, class_names=class_names)


def load_mnist(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """MNIST: 28x28x1 images in [0, 1], 10 classes; IDX files or mnist.npz from ``data_dir`` or the
    Keras cache, else the Keras download."""
    return _load(spec, rng, tuple(str(i) for i in range(10)))


def load_fashion_mnist(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """Fashion-MNIST: 28x28x1 images in [0, 1], 10 classes; IDX files from ``data_dir`` (default: the
    Debian package's /usr/share/datasets/fashion-mnist) or the Keras cache, else the Keras download."""
    return _load(spec, rng, FASHION_CLASS_NAMES)
