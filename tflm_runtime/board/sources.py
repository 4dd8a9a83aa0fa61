"""The C sources of one build: the model's (model.h + *.c) and the harness's (this folder)."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from unas.errors import UnasError

#: Folder of the harness's C, assembly and linker files (shipped as package data).
HARNESS_DIR = Path(__file__).resolve().parent

_DEFINE = re.compile(r"^\s*#\s*define\s+(MODEL_\w+_BYTES)\s+(.+?)\s*(?://.*|/\*.*)?$", re.MULTILINE)
_MACROS = ("MODEL_INPUT_BYTES", "MODEL_OUTPUT_BYTES", "MODEL_ARENA_BYTES")


@dataclass(frozen=True)
class ModelSources:
    """A model in C behind the stable API of ``model.h``."""

    directory: Path
    c_files: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    input_bytes: int
    output_bytes: int
    arena_bytes: int


def _integer_expression(text: str, where: str) -> int:
    """Value of a constant integer macro body like ``(28 * 28 * 1)`` or ``4096u``."""
    cleaned = re.sub(r"(?<=\d)[uUlL]+\b", "", text)
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError:
        tree = None
    allowed = (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.FloorDiv,
               ast.UnaryOp, ast.USub)
    if tree is None or not all(isinstance(node, allowed) for node in ast.walk(tree)):
        raise UnasError(f"{where}: expected a constant integer expression, got {text!r}")
    value = eval(compile(tree, where, "eval"), {"__builtins__": {}})  # only + - * // on ints
    if not isinstance(value, int):
        raise UnasError(f"{where}: expected a constant integer expression, got {text!r}")
    return value


def _c_files(directory: Path) -> tuple[Path, ...]:
    """The generator's ``manifest.json`` ``sources`` list if there is one, else every ``*.c``."""
    manifest = directory / "manifest.json"
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text())["sources"]
        except (ValueError, KeyError, TypeError):
            raise UnasError(f"{manifest}: sources: expected a list of .c files") from None
        files = tuple(directory / name for name in listed)
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UnasError(f"{manifest}: sources: {missing[0]} does not exist")
        return files
    return tuple(sorted(directory.rglob("*.c")))


def read_model_sources(directory: Path) -> ModelSources:
    """Check ``directory`` holds ``model.h`` (with the MODEL_*_BYTES macros) and C files
    (those listed in ``manifest.json`` when the code generator wrote one)."""
    header = directory / "model.h"
    if not header.is_file():
        raise UnasError(f"{header}: not found; expected the generated model.h")
    defines = dict(_DEFINE.findall(header.read_text()))
    sizes = {}
    for macro in _MACROS:
        if macro not in defines:
            raise UnasError(f"{header}: {macro}: expected a #define, found none")
        sizes[macro] = _integer_expression(defines[macro].replace("/", "//"), f"{header}: {macro}")
    c_files = _c_files(directory)
    if not c_files:
        raise UnasError(f"{directory}: no .c files; expected the generated model sources")
    include_dirs = tuple(sorted({directory, *(h.parent for h in directory.rglob("*.h"))}))
    return ModelSources(directory, c_files, include_dirs, sizes["MODEL_INPUT_BYTES"],
                        sizes["MODEL_OUTPUT_BYTES"], sizes["MODEL_ARENA_BYTES"])
