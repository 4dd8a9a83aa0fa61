"""The commands and snippets the docs show, run as written (taken from the .md files, so a doc that
drifts from the code fails here): the model exports of docs/codegen.md and docs/board.md, the
build line of docs/codegen.md, the commands of docs/resources.md and the --help texts."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": ""}


def _python_c(doc: str, needle: str) -> str:
    """The code of the ``python -c "..."`` command in ``doc`` that mentions ``needle``, with the
    shell's line continuations and the prose's line breaks joined."""
    text = (ROOT / doc).read_text()
    found = [m.group(1) for m in re.finditer(r'python -c "(.*?)"', text, re.S)
             if needle in m.group(1)]
    assert found, f"{doc}: no python -c command with {needle!r}"
    return re.sub(r"\s*\n\s*", " ", found[0].replace("\\\n", " "))


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def mcunet_like(tmp_path_factory) -> Path:
    """docs/codegen.md's export of the board benchmark's MCUNet-like net, run as written."""
    folder = tmp_path_factory.mktemp("mcunet_like")
    done = _run([sys.executable, "-c", _python_c("docs/codegen.md", "_mcunet_like")], folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "mcunet_like.tflite"


def test_codegen_md_export_snippet_writes_the_model(mcunet_like):
    assert mcunet_like.stat().st_size > 10_000


def test_fixed_models_snippet_of_codegen_and_board_md_runs(tmp_path):
    code = _python_c("docs/codegen.md", "FIXED_MODELS")
    assert code == _python_c("docs/board.md", "FIXED_MODELS")
    done = _run([sys.executable, "-c", code.replace("/tmp/m/", f"{tmp_path}/")], ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {"cnn_space_seed1", "cnn_space_seed2", "mcunet_like", "pointwise_1x1"}
    assert {p.stem for p in tmp_path.glob("*.tflite")} == names


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_codegen_md_build_line_and_its_libm_note(mcunet_like, tmp_path):
    """The documented build compiles; a plain int8 model links with -lm, or without it when the
    unused float helper is dropped, and not otherwise (what docs/codegen.md says)."""
    text = (ROOT / "docs/codegen.md").read_text()
    build = re.search(r"`(cc -std=c99 -O2 -c model\.c [^`]*)`", text).group(1).split()
    assert re.search(r"link\s+with `-lm`", text)
    out = tmp_path / "out"
    done = _run([sys.executable, "-m", "tflm_runtime.codegen", str(mcunet_like), "-o", str(out)],
                tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (out / "main.c").write_text('#include "model.h"\n'
                                "int main(void) { model_invoke(); return model_output()[0]; }\n")
    assert _run(build, out).returncode == 0
    objects = ["model.o", "unas_kernels.o", "unas_fused.o"]
    link = ["cc", "main.c", *objects, "-o", "m"]
    without = _run(link, out)
    assert without.returncode != 0 and "round" in without.stderr
    assert _run([*link, "-lm"], out).returncode == 0
    gc = ["cc", "-ffunction-sections", "-Wl,--gc-sections", "main.c", "model.c", "unas_kernels.c",
          "unas_fused.c", "-o", "m"]
    assert _run(gc, out).returncode == 0


def test_board_help_does_not_ask_for_a_layer_hook():
    done = _run([sys.executable, "-m", "tflm_runtime.board", "--help"], ROOT, 120)
    assert done.returncode == 0
    assert "needs MODEL_LAYER_HOOK" not in done.stdout
    for name in ("stm32f746", "stm32f765", "stm32f767", "stm32h743"):
        assert name in done.stdout


def test_search_md_says_what_the_shipped_configs_and_make_pruning_are():
    import ast

    import yaml

    text = (ROOT / "docs/search.md").read_text()
    configs = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "experiments").glob("*.yaml")}
    paper = {name: c for name, c in configs.items() if name != "digits.yaml"}
    assert all(c["pruning"]["enabled"] for c in paper.values())
    assert not configs["digits.yaml"]["pruning"]["enabled"]
    assert "`pruning.enabled: true`" in text and "`pruning.enabled: false` until" not in text
    rounds = {name: c["search"]["rounds"] for name, c in paper.items()}
    assert rounds.pop("cifar.yaml") == 4100 and set(rounds.values()) == {2000}
    assert "`cifar.yaml` with 4100 rounds" in text
    # make_pruning as documented: same parameters, three return values
    documented = re.search(r"```python\n(def make_pruning.*?)```", text, re.S).group(1)
    doc_def = ast.parse(documented).body[0]
    source = ast.parse((ROOT / "unas/train/pruning.py").read_text())
    real = next(n for n in source.body if isinstance(n, ast.FunctionDef)
                and n.name == "make_pruning")
    assert [a.arg for a in doc_def.args.args] == [a.arg for a in real.args.args]
    assert len(doc_def.returns.slice.elts) == len(real.returns.slice.elts) == 3


def test_paths_the_docs_name_exist():
    """Every experiments/*.yaml, docs/*.md and unas|tflm_runtime|search_spaces module path
    written in the docs (e.g. docs/tinynas.md's --template) is a file of the repository."""
    pattern = re.compile(r"(?<![\w/.])((?:experiments|docs)/[\w./-]+\.(?:yaml|md)|"
                         r"(?:unas|tflm_runtime|search_spaces)/[\w/]+\.py)")
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in set(pattern.findall(doc.read_text())):
            if not (ROOT / path).exists() and path != "experiments/x.yaml":  # x: a placeholder
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing


def _module_exists(dotted: str) -> bool:
    """Whether ``a.b.c`` names a module of the repository, or a name defined in one."""
    here = ROOT
    for part in dotted.split("."):
        if (here / part / "__init__.py").exists():
            here = here / part
        elif (here / f"{part}.py").exists():
            return True
        else:  # a name the package defines or re-exports
            init = here / "__init__.py"
            return init.exists() and re.search(rf"\b{part}\b", init.read_text()) is not None
    return True


def test_modules_the_docs_name_exist():
    """Every ``unas.…``, ``tflm_runtime.…`` or ``search_spaces.…`` the docs write in backticks is
    a module of the repository (or a name in one): moved files leave no stale paths behind."""
    pattern = re.compile(r"`(?:python -m )?((?:unas|tflm_runtime|search_spaces)(?:\.\w+)+)")
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for dotted in sorted(set(pattern.findall(doc.read_text()))):
            if not _module_exists(dotted):
                missing.append(f"{doc.name}: {dotted}")
    assert not missing, missing


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_deploy_flow_md_lists_what_deploy_id_holds(mcunet_like, tmp_path):
    import numpy as np

    from tflm_runtime.tflite_model import parse_tflite
    from unas.report.deploy_model import deploy_tflite

    text = (ROOT / "docs/deploy_flow.md").read_text()
    listed = text[text.index("`DIR/deploy/<id>/`:"):]
    listed = listed[:listed.index("\n- ") if "\n- " in listed else None]
    model = parse_tflite(mcunet_like.read_bytes(), str(mcunet_like))
    shape = model.tensors[model.inputs[0]].shape[1:]
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *shape), dtype=np.int8)
    deploy_tflite(mcunet_like, tmp_path / "7", x, board_samples=1)
    written = {p.name for p in (tmp_path / "7").iterdir()}
    named = set(re.findall(r"`([\w.]+)`", listed))
    named |= {f"{stem}.{ext}" for stem, exts in re.findall(r"`(\w+)\.(c/\.h)`", listed)
              for ext in ("c", "h")}
    assert written <= named, written - named
    assert {"model.c", "harness.c", "model_host"} <= written
