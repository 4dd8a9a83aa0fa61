"""Where dataset files are looked for, the Keras download fallback, and the one-line "missing" error."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unas.errors import DataError


def keras_cache_dir() -> Path:
    """The folder Keras downloads datasets to: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def find_first(directories: Sequence[Path], names: Sequence[str]) -> Path | None:
    """The first ``directory/name`` that is a file, trying every name in every directory in order."""
    for directory in directories:
        for name in names:
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return None


def keras_download(dataset: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``tf_keras.datasets.<dataset>.load_data()``: downloads into `keras_cache_dir` (needs internet)."""
    from unas.tfenv import keras

    return getattr(keras.datasets, dataset).load_data()


def download_or_fail(dataset: str, allowed: bool, missing: str, looked_in: Sequence[Path], how_to_get: str
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Try the Keras download (when ``allowed``); when that is off or fails, raise one `DataError` line
    saying which files were looked for where and how to get them."""
    places = ", ".join(str(p) for p in dict.fromkeys(looked_in)) or "(no folder)"
    if allowed:
        try:
            return keras_download(dataset)
        except Exception as error:  # noqa: BLE001 - any download failure becomes the one-line DataError
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
            tried = f"the Keras download failed ({reason})"
    else:
        tried = "downloading is off (dataset.download: false)"
    raise DataError(f"{dataset}: {missing} not found in {places}; {tried}; {how_to_get}")
