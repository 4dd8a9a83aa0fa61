"""CIFAR-10 from pickled python batches written here in the real format (folder and tar.gz archive)."""
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from unas.data import DatasetSpec, load_dataset
from unas.data import sources
from unas.data.cifar import CHANNEL_MEAN, CHANNEL_STD, TEST_BATCH, TRAIN_BATCHES
from unas.errors import DataError

PER_BATCH = 20


def _batch(first_id: int) -> dict:
    ids = np.arange(first_id, first_id + PER_BATCH)
    rows = np.random.default_rng(first_id).integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
    rows[:, 0], rows[:, 1] = ids % 256, ids // 256  # red channel, pixels (0,0) and (0,1): the id
    return {b"batch_label": b"batch", b"labels": [int(i % 10) for i in ids], b"data": rows,
            b"filenames": [f"{i}.png".encode() for i in ids]}


def _batches() -> dict[str, bytes]:
    names = TRAIN_BATCHES + (TEST_BATCH,)
    return {name: pickle.dumps(_batch(i * PER_BATCH)) for i, name in enumerate(names)}


def write_folder(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, raw in _batches().items():
        (folder / name).write_bytes(raw)
    return folder


def write_archive(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, raw in _batches().items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return archive


def _ids(x: np.ndarray) -> set[int]:
    red = np.rint((x[:, 0, :2, 0] * CHANNEL_STD[0] + CHANNEL_MEAN[0]) * 255).astype(int)
    return set((red[:, 0] + 256 * red[:, 1]).tolist())


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def fail(dataset):
        raise OSError("no network")

    monkeypatch.setattr(sources, "keras_download", fail)


def test_folder_layout_shapes_normalisation_and_disjoint_splits(tmp_path, rng):
    write_folder(tmp_path)
    s = load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path)), rng)
    assert s.input_shape == (32, 32, 3) and s.num_classes == 10 and s.class_names[0] == "airplane"
    assert s.x_train.shape == (90, 32, 32, 3) and s.x_val.shape == (10, 32, 32, 3) and len(s.x_test) == 20
    assert s.x_train.dtype == np.float32
    # normalised: (v/255 - mean) / std spans roughly [-2.5, 2.8]
    assert s.x_train.min() < -2.0 and s.x_train.max() > 2.5
    train, val, test = _ids(s.x_train), _ids(s.x_val), _ids(s.x_test)
    assert val.isdisjoint(train) and val.isdisjoint(test) and train | val == set(range(100))
    assert test == set(range(100, 120))


def test_pixel_layout_is_nhwc(tmp_path, rng):
    folder = write_folder(tmp_path)
    raw = pickle.loads((folder / TEST_BATCH).read_bytes())
    s = load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path)), rng)
    expected = raw[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)[3]
    np.testing.assert_allclose(s.x_test[3], (expected / 255.0 - CHANNEL_MEAN) / CHANNEL_STD, rtol=1e-5)


def test_archive_and_batch_folder_itself_are_accepted(tmp_path, rng):
    write_archive(tmp_path / "a")
    a = load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path / "a")), np.random.default_rng(1))
    folder = write_folder(tmp_path / "b")
    b = load_dataset(DatasetSpec(name="cifar10", data_dir=str(folder)), np.random.default_rng(1))
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)


def test_keras_cache_folder_is_used(tmp_path, rng):
    write_folder(tmp_path / "keras_home" / "datasets")
    assert len(load_dataset(DatasetSpec(name="cifar10"), rng).x_test) == 20


def test_binary_variant_lower_half_is_class_one(tmp_path, rng):
    write_folder(tmp_path)
    s = load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path), binary=True), rng)
    assert s.num_classes == 2 and s.input_shape == (32, 32, 3)
    test_ids = sorted(_ids(s.x_test))
    assert len(test_ids) == 20
    red = np.rint((s.x_test[:, 0, :2, 0] * CHANNEL_STD[0] + CHANNEL_MEAN[0]) * 255).astype(int)
    ids = red[:, 0] + 256 * red[:, 1]
    np.testing.assert_array_equal(s.y_test, (ids % 10 < 5).astype(int))


def test_class_pair(tmp_path, rng):
    write_folder(tmp_path)
    s = load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path), binary=(3, 5), validation_split=2), rng)
    assert s.class_names == ("cat", "dog") and len(s.y_test) == 4 and len(s.y_val) == 2
    assert len(s.y_train) == 20 - 2


def test_missing_batches_error_names_files_and_places(tmp_path, rng):
    with pytest.raises(DataError) as info:
        load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path)), rng)
    message = str(info.value)
    assert "data_batch_1" in message and "cifar-10-python.tar.gz" in message and str(tmp_path) in message
    assert "keras_home" in message and "Keras download failed" in message and "\n" not in message


def test_corrupt_batch_is_a_one_line_error(tmp_path, rng):
    folder = write_folder(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 python batch"):
        load_dataset(DatasetSpec(name="cifar10", data_dir=str(tmp_path)), rng)
