"""unas.files: the one atomic-write helper every writer uses."""
import os
import stat
import subprocess

import pytest

from unas.files import atomic_write, atomic_write_bytes, atomic_write_json


def test_atomic_write_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write_bytes(tmp_path / "x.bin", b"abc")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": 1})

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", broken)
    assert (tmp_path / "x.json").read_text() == '{\n "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_the_temporary_file_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"")))
    assert seen == [".png"]


def _hold_lock(folder) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (until killed)."""
    import sys

    code = ("import sys, time; from unas.files import FolderLock; "
            "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_folder_lock_refuses_a_second_owner_and_dies_with_its_owner(tmp_path):
    from unas.files import FolderLock, FolderLockedError

    proc = _hold_lock(tmp_path)
    try:
        with pytest.raises(FolderLockedError) as info:
            FolderLock(tmp_path).acquire()
        message = str(info.value)
        assert message.startswith(f"{tmp_path}: another search is running in this folder (pid "
                                  f"{proc.pid} on ") and "\n" not in message
    finally:
        proc.kill()  # SIGKILL: no clean-up runs, the kernel drops the flock
        proc.wait()
    assert FolderLock(tmp_path).owner()["pid"] == proc.pid  # a stale lock file is left...
    with FolderLock(tmp_path) as lock:  # ...and taken over
        assert lock.owner()["pid"] == os.getpid()
        with FolderLock(tmp_path):  # re-entrant in one process
            pass
        assert lock.owner()["pid"] == os.getpid()
    assert FolderLock(tmp_path).owner() == {}  # released on exit


def test_a_folder_lock_is_released_when_an_exception_leaves_it(tmp_path):
    from unas.files import FolderLock

    with pytest.raises(ValueError):
        with FolderLock(tmp_path):
            raise ValueError("boom")
    FolderLock(tmp_path).acquire().release()
