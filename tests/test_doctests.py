"""The ``>>>`` examples in the packages' docstrings are tests too: every module of ``unas``,
``search_spaces`` and ``tflm_runtime`` is imported and its examples run, one test per module,
so the CI command (``python3 -m pytest -q tests``) fails when an example goes stale.

A module that cannot be imported fails its test (an example nobody can run is a broken one).
Modules named ``__main__`` are imported too: they must guard their command line with
``if __name__ == "__main__":``.
"""
from __future__ import annotations

import doctest
import importlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("unas", "search_spaces", "tflm_runtime")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    """Every module of the packages, found from the files (not by importing them)."""
    names = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if all(part.isidentifier() for part in parts):
                names.append(".".join(parts))
    return sorted(names)


MODULES = _modules()


def test_modules_found():
    assert len(MODULES) > 40 and "unas.resources.engine" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, name) if t.examples]
    if not tests:
        return
    # Examples that write files write them into a fresh folder (the working directory and
    # tempfile's folders are under pytest's tmp_path); numpy prints as numpy 1 did (``1`` not
    # ``np.int64(1)``) so the outputs read the same on either version.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    printoptions = np.get_printoptions()
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        np.set_printoptions(legacy="1.25")
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    try:
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test, out=report.append)
    finally:
        np.set_printoptions(**printoptions)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} examples failed in {name}:\n" + "".join(report)
