"""Checks that an output path can be written, made before any work so a bad path fails in a
second with one line (not after a search or an export, with a traceback).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> (folder / "f").write_text("x")
1
>>> check_output_folder(folder / "new" / "out", "--out")
>>> check_output_folder(folder / "f" / "out", "--out")            # doctest: +ELLIPSIS
Traceback (most recent call last):
unas.errors.ConfigError: .../f/out: --out: .../f is a file, expected a folder
"""
from __future__ import annotations

import os
from pathlib import Path

from unas.errors import ConfigError


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(path: str | Path, what: str) -> None:
    """Raise a one-line `ConfigError` (naming ``path`` and ``what``, e.g. ``--out``) unless
    ``path`` is a folder, or can be created as one, that this process may write to."""
    path = Path(path).absolute()
    existing = _first_existing(path)
    if not existing.is_dir():
        raise ConfigError(f"{path}: {what}: {existing} is a file, expected a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: {what}: cannot write to {existing} (no write permission or "
                          "a read-only file system)")


def check_output_file(path: str | Path, what: str) -> None:
    """Raise a one-line `ConfigError` unless a file can be written at ``path``: its folder exists
    and is writable, and ``path`` is not a folder."""
    path = Path(path).absolute()
    if path.is_dir():
        raise ConfigError(f"{path}: {what}: is a folder, expected a file name")
    folder = path.parent
    if not folder.exists():
        existing = _first_existing(folder)
        if not existing.is_dir():
            raise ConfigError(f"{path}: {what}: {existing} is a file, expected a folder")
        raise ConfigError(f"{path}: {what}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"{path}: {what}: {folder} is a file, expected a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: {what}: cannot write to {folder} (no write permission or "
                          "a read-only file system)")
