"""Atomic on-disk cache of computed arrays (``.npz``), keyed by a hash of what produced them."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from unas.files import atomic_write


def cache_key(description: dict) -> str:
    """A short stable hash of a JSON-able description of the inputs and settings."""
    return hashlib.sha1(json.dumps(description, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is absent or unreadable (then it is recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError):
        return None


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (a temporary file in the same folder, then os.replace)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as stream:
            np.savez(stream, **arrays)

    atomic_write(path, write)


def writable_cache_dir(preferred: list[Path]) -> Path:
    """The first of ``preferred`` that exists-or-can-be-created and is writable, else ~/.cache/unas."""
    for directory in preferred:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return directory
    fallback = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "unas"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback
