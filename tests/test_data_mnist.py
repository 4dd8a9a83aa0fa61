"""MNIST / Fashion-MNIST from IDX files written here in the real format (gzipped and plain)."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from unas.data import DatasetSpec, load_dataset
from unas.data import sources
from unas.data.mnist import DEBIAN_FASHION_MNIST, IDX_FILES, read_idx
from unas.errors import DataError


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _images(count: int, first_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose first two pixels encode a unique id, so overlaps between splits can be checked."""
    ids = np.arange(first_id, first_id + count)
    x = np.zeros((count, 28, 28), dtype=np.uint8)
    x[:, 0, 0], x[:, 0, 1] = ids % 256, ids // 256
    x[:, 10:18, 10:18] = 255
    return x, (ids % 10).astype(np.uint8)


def write_idx_set(folder: Path, n_train: int = 200, n_test: int = 50, gzipped: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = _images(n_train, 0), _images(n_test, n_train)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, name in IDX_FILES.items():
        data = _idx_bytes(arrays[key])
        if gzipped:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def _ids(x: np.ndarray) -> set[int]:
    pixels = np.rint(x[:, 0, :2, 0] * 255).astype(int)
    return set((pixels[:, 0] + 256 * pixels[:, 1]).tolist())


@pytest.fixture(autouse=True)
def no_keras_cache_or_network(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def offline(dataset):
        raise OSError("URL fetch failure: no network in tests")

    monkeypatch.setattr(sources, "keras_download", offline)


@pytest.mark.parametrize("gzipped", [True, False])
def test_loads_idx_files(tmp_path, rng, gzipped):
    write_idx_set(tmp_path / "mnist", gzipped=gzipped)
    s = load_dataset(DatasetSpec(name="mnist", data_dir=str(tmp_path / "mnist")), rng)
    assert s.x_train.shape == (180, 28, 28, 1) and s.x_val.shape == (20, 28, 28, 1)
    assert s.x_test.shape == (50, 28, 28, 1) and s.input_shape == (28, 28, 1) and s.num_classes == 10
    assert s.x_train.dtype == np.float32 and s.y_test.dtype == np.int32
    assert 0.0 <= s.x_train.min() and s.x_train.max() == 1.0
    train, val, test = _ids(s.x_train), _ids(s.x_val), _ids(s.x_test)
    assert val.isdisjoint(train) and val.isdisjoint(test) and train.isdisjoint(test)
    assert val | train == set(range(200)) and test == set(range(200, 250))
    # labels stay with their images (label = id % 10)
    pixels = np.rint(s.x_val[:, 0, :2, 0] * 255).astype(int)
    np.testing.assert_array_equal(s.y_val, (pixels[:, 0] + 256 * pixels[:, 1]) % 10)


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    write_idx_set(tmp_path)
    spec = DatasetSpec(name="mnist", data_dir=str(tmp_path), max_train=60)
    a = load_dataset(spec, np.random.default_rng(3))
    b = load_dataset(spec, np.random.default_rng(3))
    c = load_dataset(spec, np.random.default_rng(4))
    assert _ids(a.x_val) == _ids(b.x_val) and _ids(a.x_train) == _ids(b.x_train)
    assert _ids(a.x_val) != _ids(c.x_val)
    assert len(a.x_train) == 60


def test_resize_and_binary(tmp_path, rng):
    write_idx_set(tmp_path)
    s = load_dataset(DatasetSpec(name="mnist", data_dir=str(tmp_path), image_size=(14, 14), binary=True), rng)
    assert s.x_train.shape[1:] == (14, 14, 1) and s.num_classes == 2
    assert set(np.unique(s.y_test)) == {0, 1}


def test_keras_cache_npz_is_used(tmp_path, rng):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    (x_train, y_train), (x_test, y_test) = _images(100, 0), _images(30, 100)
    np.savez(cache / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    s = load_dataset(DatasetSpec(name="mnist", validation_split=10), rng)
    assert len(s.x_train) == 90 and len(s.x_val) == 10 and len(s.x_test) == 30


def test_missing_files_name_the_files_the_folder_and_how_to_get_them(tmp_path, rng):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        load_dataset(DatasetSpec(name="mnist", data_dir=str(empty)), rng)
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(empty) in message and "Keras download failed" in message and "data_dir" in message


def test_download_off_is_said(tmp_path, rng):
    with pytest.raises(DataError, match="download: false"):
        load_dataset(DatasetSpec(name="fashion_mnist", data_dir=str(tmp_path), download=False), rng)


def test_successful_download_is_used(tmp_path, rng, monkeypatch):
    (x_train, y_train), (x_test, y_test) = _images(40, 0), _images(10, 40)
    monkeypatch.setattr(sources, "keras_download", lambda name: ((x_train, y_train), (x_test, y_test)))
    s = load_dataset(DatasetSpec(name="mnist", data_dir=str(tmp_path), validation_split=0.25), rng)
    assert len(s.x_train) == 30 and len(s.x_test) == 10


def test_malformed_idx_is_a_one_line_error(tmp_path, rng):
    write_idx_set(tmp_path, gzipped=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, dtype=np.uint8))[:-2])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: IDX header says shape \(5,\)"):
        load_dataset(DatasetSpec(name="mnist", data_dir=str(tmp_path)), rng)


def test_read_idx_rejects_other_magic(tmp_path):
    path = tmp_path / "bad-idx"
    path.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        read_idx(path)


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_package(rng):
    s = load_dataset(DatasetSpec(name="fashion_mnist", validation_split=0.1), rng)
    assert s.x_train.shape == (54000, 28, 28, 1) and s.x_val.shape == (6000, 28, 28, 1)
    assert s.x_test.shape == (10000, 28, 28, 1) and s.class_names[-1] == "Ankle boot"
    assert np.bincount(s.y_val).tolist() == [600] * 10 and np.bincount(s.y_test).tolist() == [1000] * 10
    assert s.x_train.min() == 0.0 and s.x_train.max() == 1.0
