"""Chars74K, EnglishImg subset (62 classes: digits, upper- and lower-case letters), from the extracted
folder or the EnglishImg.tgz archive; resized to 48x48 (32x32 for the binary variant) as in μNAS."""
from __future__ import annotations

import io
import re
import string
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from unas.data.resize import resize_image
from unas.data.spec import DatasetSpec
from unas.data.splits import Splits, make_splits, split_off
from unas.errors import DataError

ARCHIVE = "EnglishImg.tgz"
IMAGE_ROOT = "English/Img/GoodImg/Bmp"
CLASS_NAMES = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)
# μNAS splits the 7705 images into 5000 / 705 / 2000 (train / validation / test); the test part is a fixed
# stratified 2000/7705 of the images (same every run), the validation part is dataset.validation_split
# of the rest (default 705, the paper's).
TEST_FRACTION = 2000 / 7705
TEST_SEED = 7705
_SAMPLE = re.compile(r"(?:^|/)Sample(\d{3})/[^/]+\.png$", re.IGNORECASE)
_HOW_TO_GET = ("get EnglishImg.tgz from https://info-ee.surrey.ac.uk/CVSSP/demos/chars74k/ and set "
               "dataset.data_dir to the folder holding it (or the extracted folder that contains English/)")


def default_image_size(spec: DatasetSpec) -> tuple[int, int]:
    """``spec.image_size``, else μNAS's 48x48 (32x32 for the binary variant)."""
    if spec.image_size:
        return spec.image_size
    return (32, 32) if spec.binary is not False else (48, 48)


def _decode(raw: bytes, where: str, size: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{where}: cannot decode the PNG image ({error})") from error
    return np.clip(resize_image(rgb, size), 0.0, 1.0)


def _label_of(path: str) -> int | None:
    match = _SAMPLE.search(path.replace("\\", "/"))
    if match is None:
        return None
    label = int(match.group(1)) - 1
    return label if 0 <= label < len(CLASS_NAMES) else None


def _from_folder(folder: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(p for p in folder.glob("Sample*/*") if p.suffix.lower() == ".png")
    labelled = [(p, _label_of(p.relative_to(folder).as_posix())) for p in files]
    labelled = [(p, label) for p, label in labelled if label is not None]
    if not labelled:
        raise DataError(f"chars74k: no SampleNNN/*.png images in {folder}; {_HOW_TO_GET}")
    progress = tqdm(labelled, desc="chars74k: reading", unit="png", leave=False, disable=len(labelled) < 1000)
    images = np.stack([_decode(p.read_bytes(), str(p), size) for p, _ in progress])
    return images, np.array([label for _, label in labelled], dtype=np.int32)


def _from_archive(archive: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    items = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc=f"chars74k: reading {archive.name}", unit="file", leave=False):
                label = _label_of(member.name)
                if member.isfile() and "GoodImg/Bmp/" in member.name and label is not None:
                    raw = tar.extractfile(member).read()
                    items.append((member.name, label, _decode(raw, f"{archive}:{member.name}", size)))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{archive}: cannot read the Chars74K archive ({error})") from error
    if not items:
        raise DataError(f"{archive}: no {IMAGE_ROOT}/SampleNNN/*.png images in the archive; {_HOW_TO_GET}")
    items.sort(key=lambda item: item[0])
    return np.stack([i[2] for i in items]), np.array([i[1] for i in items], dtype=np.int32)


def image_folders(data_dir: Path) -> list[Path]:
    """The folders in which SampleNNN directories are looked for, most specific last."""
    return [data_dir / IMAGE_ROOT, data_dir / "EnglishImg" / IMAGE_ROOT, data_dir / "Img/GoodImg/Bmp",
            data_dir / "GoodImg/Bmp", data_dir]


def load_raw(spec: DatasetSpec, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """All GoodImg images (float RGB in [0, 1], resized to ``size``) and labels 0..61."""
    if not spec.data_dir:
        raise DataError(f"chars74k: dataset.data_dir is not set; {_HOW_TO_GET}")
    data_dir = Path(spec.data_dir).expanduser()
    for folder in image_folders(data_dir):
        if folder.is_dir() and any(folder.glob("Sample[0-9][0-9][0-9]")):
            return _from_folder(folder, size)
    for archive in (data_dir / ARCHIVE, data_dir):
        if archive.is_file():
            return _from_archive(archive, size)
    raise DataError(f"chars74k: neither {data_dir / IMAGE_ROOT}/SampleNNN/*.png nor {data_dir / ARCHIVE} "
                    f"found; {_HOW_TO_GET}")


def load_chars74k(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """Chars74K EnglishImg/GoodImg: HxWx3 images in [0, 1], 62 classes (2 with ``binary``).

    The test set is a fixed stratified 2000/7705 of the images; the validation set is drawn with
    ``rng`` from the rest.
    """
    x, y = load_raw(spec, default_image_size(spec))
    x_rest, x_test, y_rest, y_test = split_off(x, y, TEST_FRACTION, TEST_SEED, "chars74k: fixed test split")
    return make_splits(spec, rng, x_rest, y_rest, x_test, y_test, num_classes=len(CLASS_NAMES),
                       class_names=CLASS_NAMES)
