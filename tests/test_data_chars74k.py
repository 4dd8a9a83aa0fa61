"""Chars74K EnglishImg from a tiny folder / EnglishImg.tgz of real PNG files written here."""
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unas.data import DatasetSpec, load_dataset
from unas.data.chars74k import CLASS_NAMES, IMAGE_ROOT
from unas.errors import DataError

SAMPLES = (1, 11, 37, 62)   # '0', 'A', 'a', 'z'
PER_CLASS = 8


def write_tree(root: Path) -> Path:
    """English/Img/GoodImg/Bmp/SampleNNN/imgNNN-MMMMM.png, images of different sizes; each image's
    top-left red value encodes a unique id. Also a BadImag folder that must be ignored."""
    n = 0
    for sample in SAMPLES:
        folder = root / IMAGE_ROOT / f"Sample{sample:03d}"
        folder.mkdir(parents=True)
        for k in range(PER_CLASS):
            size = (20 + 3 * k, 30 + k)  # (w, h)
            pixels = np.full((size[1], size[0], 3), 40 * (sample % 5), dtype=np.uint8)
            pixels[: size[1] // 2, : size[0] // 2, 0] = n * 7 % 256
            Image.fromarray(pixels).save(folder / f"img{sample:03d}-{k + 1:05d}.png")
            n += 1
    bad = root / "English/Img/BadImag/Bmp/Sample001"
    bad.mkdir(parents=True)
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(bad / "img001-00001.png")
    return root


def test_folder_shapes_ranges_classes(tmp_path, rng):
    write_tree(tmp_path)
    s = load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path), validation_split=4), rng)
    assert s.input_shape == (48, 48, 3) and s.num_classes == 62 and s.class_names == CLASS_NAMES
    total = len(SAMPLES) * PER_CLASS
    assert len(s.x_test) == round(total * 2000 / 7705) and len(s.x_val) == 4
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == total
    assert s.x_train.dtype == np.float32 and 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
    assert set(np.unique(np.concatenate([s.y_train, s.y_val, s.y_test]))) == {0, 10, 36, 61}


def _keys(x: np.ndarray) -> set[bytes]:
    return {np.round(img * 255).astype(np.uint8).tobytes() for img in x}


def test_fixed_test_split_and_validation_from_train_only(tmp_path):
    write_tree(tmp_path)
    spec = DatasetSpec(name="chars74k", data_dir=str(tmp_path), validation_split=0.25)
    a = load_dataset(spec, np.random.default_rng(1))
    b = load_dataset(spec, np.random.default_rng(1))
    c = load_dataset(spec, np.random.default_rng(99))
    assert _keys(a.x_test) == _keys(c.x_test)                      # the test split never changes
    assert _keys(a.x_val) == _keys(b.x_val) and _keys(a.x_val) != _keys(c.x_val)
    assert _keys(a.x_val).isdisjoint(_keys(a.x_test)) and _keys(a.x_val).isdisjoint(_keys(a.x_train))
    assert _keys(c.x_val) <= _keys(a.x_train) | _keys(a.x_val)


def test_binary_defaults_to_32x32(tmp_path, rng):
    write_tree(tmp_path)
    s = load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path), binary=True, validation_split=4), rng)
    assert s.input_shape == (32, 32, 3) and s.num_classes == 2
    labels = np.concatenate([s.y_train, s.y_val, s.y_test])
    assert np.count_nonzero(labels == 1) == 2 * PER_CLASS  # '0' and 'A' are below class 31, 'a' and 'z' not


def test_image_size_option(tmp_path, rng):
    write_tree(tmp_path)
    s = load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path), image_size=(24, 16),
                                 validation_split=4), rng)
    assert s.x_train.shape[1:] == (24, 16, 3)


def test_archive_gives_the_same_data_as_the_folder(tmp_path):
    tree = write_tree(tmp_path / "extracted")
    archive = tmp_path / "archive" / "EnglishImg.tgz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "English", arcname="English")
    spec = DatasetSpec(name="chars74k", validation_split=4)
    folder = load_dataset(DatasetSpec(**{**spec.__dict__, "data_dir": str(tree)}), np.random.default_rng(5))
    packed = load_dataset(DatasetSpec(**{**spec.__dict__, "data_dir": str(archive.parent)}), np.random.default_rng(5))
    direct = load_dataset(DatasetSpec(**{**spec.__dict__, "data_dir": str(archive)}), np.random.default_rng(5))
    for other in (packed, direct):
        np.testing.assert_array_equal(folder.x_test, other.x_test)
        np.testing.assert_array_equal(folder.y_val, other.y_val)


def test_missing_dataset_error_names_places(tmp_path, rng):
    with pytest.raises(DataError) as info:
        load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path)), rng)
    message = str(info.value)
    assert str(tmp_path / IMAGE_ROOT) in message and "EnglishImg.tgz" in message and "\n" not in message


def test_data_dir_is_required(rng):
    with pytest.raises(DataError, match="dataset.data_dir is not set"):
        load_dataset(DatasetSpec(name="chars74k"), rng)


def test_corrupt_png_is_a_one_line_error(tmp_path, rng):
    write_tree(tmp_path)
    (tmp_path / IMAGE_ROOT / "Sample011" / "img011-00003.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"img011-00003.png: cannot decode"):
        load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path)), rng)


def test_default_validation_size_is_the_papers_705(tmp_path, rng):
    write_tree(tmp_path)  # 24 non-test images: too few for 705
    with pytest.raises(DataError, match=r"^chars74k: dataset.validation_split: 705 of 24 examples"):
        load_dataset(DatasetSpec(name="chars74k", data_dir=str(tmp_path)), rng)
