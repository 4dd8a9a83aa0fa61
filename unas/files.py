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
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar


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


class JsonLinesError(ValueError):
    """A JSON-lines file has a line that is not a JSON object (the message names file and line).
    Not a :class:`unas.errors.UnasError` (this module stands below it): callers turn it into
    theirs."""


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


class FolderLockedError(RuntimeError):
    """Another running process holds the folder's lock (the message names the folder and pid).
    Not a :class:`unas.errors.UnasError` (this module stands below it): callers turn it into
    theirs."""


class FolderLock:
    """An exclusive lock on a folder while one process works in it (a search in its output
    folder): ``fcntl.flock`` on ``<folder>/<name>``, a file holding the owner's pid and host.

    The kernel drops a flock when its process ends, however it ends (SIGKILL included), so a
    lock file left by a dead owner never blocks: the next process takes the lock and rewrites
    the file. Where flock is not supported (some network file systems) the recorded pid is
    checked instead: a lock whose owner is no longer running on this host is taken over.
    Re-entrant within one process; use it as a context manager.

    >>> import tempfile
    >>> with FolderLock(tempfile.mkdtemp()) as lock:
    ...     lock.owner()["pid"] == os.getpid()
    True
    """

    _held: ClassVar[dict[Path, list[int]]] = {}  # lock file → [fd, depth] in this process

    def __init__(self, folder: str | Path, name: str = "search.lock", what: str = "search") -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what

    def owner(self) -> dict[str, Any]:
        """What the lock file says about its owner (``{}`` if it says nothing readable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _refuse(self) -> FolderLockedError:
        owner = self.owner()
        who = (f"pid {owner.get('pid')} on {owner.get('host')}" if owner.get("pid")
               else "another process")
        return FolderLockedError(f"{self.folder}: another {self.what} is running in this folder "
                                 f"({who}, lock file {self.path.name}); wait for it to end or "
                                 "use another output folder")

    def _owner_alive(self) -> bool:
        owner = self.owner()
        if not owner.get("pid") or owner.get("pid") == os.getpid():
            return False
        if owner.get("host") != socket.gethostname():
            return True  # cannot tell: assume it runs
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, TypeError):
            return True
        return True

    def acquire(self) -> "FolderLock":
        import fcntl

        key = self.path.absolute()
        if key in self._held:
            self._held[key][1] += 1
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._refuse() from None
            except OSError:  # no flock here: fall back on the recorded pid
                if self._owner_alive():
                    raise self._refuse() from None
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._held[key] = [fd, 1]
        return self

    def release(self) -> None:
        import fcntl

        key = self.path.absolute()
        held = self._held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del self._held[key]
        try:
            os.ftruncate(held[0], 0)  # no owner any more (the file stays: deleting it races)
            fcntl.flock(held[0], fcntl.LOCK_UN)
        except OSError:
            pass
        finally:
            os.close(held[0])

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
