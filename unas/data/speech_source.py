"""Speech Commands files, from the extracted folder or the ``speech_commands_v0.0x.tar.gz`` archive:
listing, reading, and the standard train / validation / test partition."""
from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from unas.errors import DataError

SAMPLE_RATE = 16000
BACKGROUND_DIR = "_background_noise_"
ARCHIVES = ("speech_commands_v0.02.tar.gz", "speech_commands_v0.01.tar.gz")
VALIDATION_LIST, TESTING_LIST = "validation_list.txt", "testing_list.txt"
# The TensorFlow example's hash partition (used only when the lists are absent): 10 % / 10 %.
VALIDATION_PERCENT, TESTING_PERCENT = 10.0, 10.0
_MAX_WAVS_PER_CLASS = 2**27 - 1
HOW_TO_GET = ("get speech_commands_v0.02.tar.gz from "
              "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz "
              "and set dataset.data_dir to the folder holding it (or the extracted folder)")


def which_set(relative_path: str) -> str:
    """'training', 'validation' or 'testing' from a stable hash of the speaker part of the file name
    (everything before ``_nohash_``), as the dataset's own lists were made."""
    speaker = re.sub(r"_nohash_.*$", "", Path(relative_path).name)
    bucket = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16) % (_MAX_WAVS_PER_CLASS + 1)
    percent = bucket * (100.0 / _MAX_WAVS_PER_CLASS)
    if percent < VALIDATION_PERCENT:
        return "validation"
    if percent < VALIDATION_PERCENT + TESTING_PERCENT:
        return "testing"
    return "training"


def decode_wav(raw: bytes, where: str) -> np.ndarray:
    """A mono float32 waveform in [-1, 1) from WAV bytes; the sample rate must be 16 kHz."""
    try:
        rate, data = wavfile.read(io.BytesIO(raw))
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{where}: cannot read the WAV file ({error})") from error
    if rate != SAMPLE_RATE:
        raise DataError(f"{where}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    if data.ndim == 2:
        data = data[:, 0]
    if data.dtype == np.int16:
        return data.astype(np.float32) / 32768.0
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype == np.int32:
        return data.astype(np.float32) / 2147483648.0
    return data.astype(np.float32)


@dataclass
class SpeechSource:
    """Access to the dataset's files by their path relative to the dataset root (``word/file.wav``)."""

    location: Path
    archive: tarfile.TarFile | None
    members: dict[str, tarfile.TarInfo]
    relative_paths: list[str]

    @classmethod
    def open(cls, location: Path) -> "SpeechSource":
        """Open an extracted folder or a ``.tar.gz`` archive."""
        if location.is_dir():
            paths = sorted(p.relative_to(location).as_posix() for p in location.glob("*/*.wav"))
            text = sorted(p.name for p in location.glob("*.txt"))
            return cls(location, None, {}, paths + text)
        try:
            archive = tarfile.open(location, "r:*")
            members = {}
            for member in archive.getmembers():
                if member.isfile():
                    name = re.sub(r"^(\./)+", "", member.name)
                    members[name] = member
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"{location}: cannot read the Speech Commands archive ({error})") from error
        return cls(location, archive, members, sorted(members))

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()

    def has(self, relative_path: str) -> bool:
        return relative_path in self.members if self.archive else (self.location / relative_path).is_file()

    def read(self, relative_path: str) -> bytes:
        if self.archive is None:
            return (self.location / relative_path).read_bytes()
        stream = self.archive.extractfile(self.members[relative_path])
        assert stream is not None
        return stream.read()

    def read_many(self, relative_paths: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """Read files, in archive order for an archive (one forward pass through the stream)."""
        order = sorted(relative_paths, key=lambda p: self.members[p].offset_data) if self.archive \
            else list(relative_paths)
        for path in order:
            yield path, self.read(path)

    def wavs(self) -> list[str]:
        """``word/file.wav`` of every utterance (not the background noise)."""
        return [p for p in self.relative_paths
                if p.count("/") == 1 and p.endswith(".wav") and not p.startswith(BACKGROUND_DIR + "/")]

    def background_wavs(self) -> list[str]:
        return [p for p in self.relative_paths if p.startswith(BACKGROUND_DIR + "/") and p.endswith(".wav")]

    def listed(self, list_name: str) -> set[str] | None:
        """The paths named in ``validation_list.txt`` / ``testing_list.txt``, or None if absent."""
        if not self.has(list_name):
            return None
        lines = self.read(list_name).decode("utf-8").splitlines()
        return {line.strip() for line in lines if line.strip()}


def locate(data_dir: str | None) -> Path:
    """The dataset folder or archive under ``data_dir``; one-line DataError when there is none."""
    if not data_dir:
        raise DataError(f"speech_commands: dataset.data_dir is not set; {HOW_TO_GET}")
    root = Path(data_dir).expanduser()
    if root.is_file():
        return root
    if root.is_dir() and (any(root.glob("*/*.wav")) or (root / TESTING_LIST).is_file()):
        return root
    for name in ARCHIVES:
        if (root / name).is_file():
            return root / name
    raise DataError(f"speech_commands: no <word>/*.wav folders, {TESTING_LIST} or {' / '.join(ARCHIVES)} "
                    f"in {root}; {HOW_TO_GET}")
