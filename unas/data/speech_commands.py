"""Speech Commands keyword spotting as μNAS uses it: the ten keywords plus ``_silence_`` and
``_unknown_``, MFCC features (98 frames x ``mfcc_coefficients`` x 1 for 1 s clips), the dataset's own
validation / testing lists. Features are computed once and cached."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unas.data.cache import cache_key, load_arrays, save_arrays, writable_cache_dir
from unas.data.mfcc import CLIP_SAMPLES, fit_clip, frames_per_clip, mfcc_features
from unas.data.spec import DatasetSpec
from unas.data.speech_source import (TESTING_LIST, VALIDATION_LIST, HOW_TO_GET, SpeechSource, decode_wav,
                                     locate, which_set)
from unas.data.splits import Splits, finish_splits
from unas.errors import DataError

SILENCE, UNKNOWN = "_silence_", "_unknown_"
# As in the TensorFlow example: each partition gets silence and unknown-word examples amounting to
# 10 % of its keyword examples each.
SILENCE_PERCENT, UNKNOWN_PERCENT = 10, 10
PARTITIONS = ("training", "validation", "testing")
FEATURE_VERSION = 2
_SELECTION_SEED = 59185  # fixes which unknown words and noise slices form the (cached) dataset
_BATCH = 256


def class_names(spec: DatasetSpec) -> tuple[str, ...]:
    """``_silence_`` (0), ``_unknown_`` (1), then the keywords (2..)."""
    return (SILENCE, UNKNOWN) + tuple(spec.speech_words)


def _partition(source: SpeechSource, words: tuple[str, ...]
               ) -> dict[str, list[tuple[str, int]]]:
    """(path, label) of every keyword and chosen unknown-word utterance, per partition."""
    validation, testing = source.listed(VALIDATION_LIST), source.listed(TESTING_LIST)
    wanted = {word: 2 + i for i, word in enumerate(words)}
    keyword: dict[str, list[tuple[str, int]]] = {p: [] for p in PARTITIONS}
    unknown: dict[str, list[str]] = {p: [] for p in PARTITIONS}
    found_words = set()
    for path in source.wavs():
        if validation is not None and testing is not None:
            part = "validation" if path in validation else "testing" if path in testing else "training"
        else:
            part = which_set(path)
        word = path.split("/")[0].lower()
        found_words.add(word)
        if word in wanted:
            keyword[part].append((path, wanted[word]))
        else:
            unknown[part].append(path)
    missing = [w for w in words if w not in found_words]
    if missing:
        raise DataError(f"speech_commands: no <word>/*.wav for {', '.join(missing)} in {source.location} "
                        f"(found: {', '.join(sorted(found_words)) or 'none'}); {HOW_TO_GET}")
    chooser = np.random.default_rng(_SELECTION_SEED)
    for part in PARTITIONS:
        count = min(len(unknown[part]), math.ceil(len(keyword[part]) * UNKNOWN_PERCENT / 100))
        chosen = chooser.choice(len(unknown[part]), size=count, replace=False) if count else []
        keyword[part] += [(unknown[part][i], 1) for i in sorted(chosen)]
    return keyword


def _keyword_count(items: list[tuple[str, int]]) -> int:
    return sum(1 for _, label in items if label >= 2)


def _silence_clips(source: SpeechSource, count: int, chooser: np.random.Generator) -> np.ndarray:
    """``count`` 1 s slices of background noise at a random volume in [0, 1) (zeros without noise files)."""
    clips = np.zeros((count, CLIP_SAMPLES), dtype=np.float32)
    noise = [decode_wav(raw, f"{source.location}/{path}") for path, raw in source.read_many(source.background_wavs())]
    noise = [n for n in noise if len(n) >= CLIP_SAMPLES]
    for i in range(count if noise else 0):
        track = noise[int(chooser.integers(len(noise)))]
        start = int(chooser.integers(len(track) - CLIP_SAMPLES + 1))
        clips[i] = track[start:start + CLIP_SAMPLES] * float(chooser.uniform(0.0, 1.0))
    return clips


def _features(source: SpeechSource, items: list[tuple[str, int]], coefficients: int, part: str
              ) -> np.ndarray:
    """MFCCs of the listed clips, in the order of ``items``; computed in batches while reading."""
    position = {path: i for i, (path, _) in enumerate(items)}
    features = np.zeros((len(items), frames_per_clip(), coefficients, 1), dtype=np.float32)
    batch: list[np.ndarray] = []
    batch_index: list[int] = []

    def flush() -> None:
        if batch:
            features[batch_index] = mfcc_features(np.stack(batch), coefficients)
            batch.clear()
            batch_index.clear()

    progress = tqdm(source.read_many(list(position)), total=len(items), unit="wav", leave=False,
                    desc=f"speech_commands {part}: MFCC", disable=len(items) < 1000)
    for path, raw in progress:
        batch.append(fit_clip(decode_wav(raw, f"{source.location}/{path}")))
        batch_index.append(position[path])
        if len(batch) == _BATCH:
            flush()
    flush()
    return features


def compute_features(spec: DatasetSpec, location: Path) -> dict[str, np.ndarray]:
    """Read every needed clip, add silence examples and compute MFCCs for the three partitions."""
    source = SpeechSource.open(location)
    try:
        parts = _partition(source, tuple(spec.speech_words))
        chooser = np.random.default_rng(_SELECTION_SEED + 1)
        arrays = {}
        for part, key in zip(PARTITIONS, ("train", "val", "test")):
            items = parts[part]
            x = _features(source, items, spec.mfcc_coefficients, part)
            silence_count = math.ceil(_keyword_count(items) * SILENCE_PERCENT / 100)
            silence = mfcc_features(_silence_clips(source, silence_count, chooser), spec.mfcc_coefficients)
            arrays["x_" + key] = np.concatenate([x, silence])
            arrays["y_" + key] = np.array([label for _, label in items] + [0] * silence_count, dtype=np.int32)
        return arrays
    finally:
        source.close()


def _cache_path(spec: DatasetSpec, location: Path) -> Path:
    stat = location.stat()
    lists = [location / name for name in (VALIDATION_LIST, TESTING_LIST)] if location.is_dir() else []
    key = cache_key({"location": str(location.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                     "lists": [p.stat().st_mtime_ns if p.is_file() else None for p in lists],
                     "words": list(spec.speech_words), "mfcc": spec.mfcc_coefficients,
                     "version": FEATURE_VERSION})
    base = location if location.is_dir() else location.parent
    preferred = [Path(spec.cache_dir).expanduser()] if spec.cache_dir else [base / ".unas_cache"]
    return writable_cache_dir(preferred) / f"speech_commands_{key}.npz"


def load_speech_commands(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """Speech Commands from ``spec.data_dir`` (extracted folder or archive): MFCC ``(98, c, 1)``
    features, ``len(speech_words) + 2`` classes. The validation set is the dataset's
    ``validation_list.txt``; ``rng`` only draws the ``max_train`` subsample."""
    location = locate(spec.data_dir)
    path = _cache_path(spec, location)
    arrays = load_arrays(path)
    if arrays is None:
        arrays = compute_features(spec, location)
        save_arrays(path, arrays)
    if len(arrays["y_train"]) == 0:
        raise DataError(f"speech_commands: no training clips in {location}; {HOW_TO_GET}")
    return finish_splits(spec, rng, arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"],
                         arrays["x_test"], arrays["y_test"], num_classes=len(spec.speech_words) + 2,
                         class_names=class_names(spec))
