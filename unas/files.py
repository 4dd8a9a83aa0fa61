"""Crash-safe files: atomic whole-file writes and an fsync'ed JSON-lines log.

Every file unas writes for a user (search state, reports, plots, models, generated C, caches)
goes through :func:`atomic_write`: the content is written to a temporary file in the target's
folder, flushed to disk and moved over the target with ``os.replace``, so a reader (or a process
killed mid-write) sees the old file or the new one, never half of one. The file gets the
permissions the umask gives a new file (``mkstemp`` alone would leave it ``0600``).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_json(folder / "a" / "x.json", {"b": 1})
>>> (folder / "a" / "x.json").read_text()
'{\\n "b": 1\\n}\\n'
>>> log = JsonLines(folder / "log.jsonl"); log.append({"id": 1}); log.read()
[{'id': 1}]
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unas.errors import UnasError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temporary file next to ``path`` (same suffix, so writers that
    pick a format by suffix, e.g. ``savefig`` or Keras ``save``, work), fsync it, give it the
    umask's permissions and move it over ``path``. The temporary file is removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


class JsonLinesError(UnasError):
    """A JSON-lines file has a line that is not a JSON object (the message names file and line)."""


class JsonLines:
    """An append-only JSON-lines file; every appended line is flushed and fsync'ed.

    A process killed mid-write leaves a torn last line (no newline). :meth:`read` ignores it and
    changes nothing; the one writer calls :meth:`repair` (cut it) before appending again, once it
    has decided to continue the log. Any other line that is not a JSON object is an error."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _complete(self) -> tuple[bytes, int]:
        """The file's bytes up to its last newline, and how many bytes follow (the torn tail)."""
        if not self.path.exists():
            return b"", 0
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        return data[:end], len(data) - end

    def read(self) -> list[dict[str, Any]]:
        """All complete records, in file order (a torn last line is left out, not removed).
        Raises :class:`JsonLinesError` naming the line that is not a JSON object."""
        data, _ = self._complete()
        records = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
                raise JsonLinesError(f"{self.path}: line {number}: not valid JSON "
                                     f"({' '.join(str(err).split())[:120]})") from None
            if not isinstance(record, dict):
                raise JsonLinesError(f"{self.path}: line {number}: expected a JSON object, "
                                     f"got {type(record).__name__}")
            records.append(record)
        return records

    def torn_tail(self) -> int:
        """Bytes after the last complete line (a write that was cut off); 0 if none."""
        return self._complete()[1]

    def repair(self) -> bool:
        """Cut a torn last line from the file itself; True if there was one."""
        data, torn = self._complete()
        if not torn:
            return False
        with open(self.path, "r+b") as handle:
            handle.truncate(len(data))
            os.fsync(handle.fileno())
        return True

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line, durable when this returns."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
