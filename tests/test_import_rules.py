"""The dependency rules of docs/architecture.md: import-linter's contracts (.importlinter) and what
importing the TensorFlow-free packages really loads."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports")
    assert lint is not None, "lint-imports missing: scripts/setup.sh installs import-linter"
    # Run in the repository, where it reads .importlinter; --no-cache leaves no cache folder.
    done = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.parametrize("module", ["unas.search", "unas.resources", "unas.config",
                                    "unas.evaluation", "unas.experiment", "search_spaces",
                                    "search_spaces.registry", "unas.report",
                                    "tflm_runtime.codegen"])
def test_importing_loads_no_tensorflow(module):
    code = (f"import sys, {module}; "
            "sys.exit(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules) != [])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"importing {module} loads TensorFlow\n{done.stderr[-2000:]}"
