"""Per-layer timing for generated code that has no ``MODEL_LAYER_HOOK`` of its own.

The proposed contract (docs/board.md): the generated ``model_invoke()`` calls
``MODEL_LAYER_HOOK(k)`` after its k-th kernel (defined empty unless the build defines it).
Until the generator emits it, :func:`instrument_model` writes a copy of the sources in which a
hook follows every statement of ``model_invoke``'s body, labelled by the comment above the
statement (the generator's ``/* step N: CONV_2D #i -> ... */``) or by the called function.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from tflm_runtime.board.errors import BoardError

HOOK = "MODEL_LAYER_HOOK"
_INVOKE = re.compile(r"void\s+model_invoke\s*\(\s*void\s*\)\s*\{")
#: "CONV_2D #3", or for a fused block "FUSED_BLOCK #5 (CONV_2D #4 -> DEPTHWISE_CONV_2D #5 -> ...)"
_STEP_COMMENT = re.compile(r"/\*\s*step\s+\d+:\s*(\w+\s+#\d+(?:\s*\([^)]*\))?)")
_CALL = re.compile(r"^\s*(\w+)\s*\(")


def has_hook(model_c: Path) -> bool:
    """Whether the model's C code already calls MODEL_LAYER_HOOK itself."""
    return HOOK in model_c.read_text()


def _label(previous: str, statement: str, index: int) -> str:
    comment = _STEP_COMMENT.search(previous)
    call = _CALL.match(statement)
    parts = [call.group(1)] if call else []
    parts += [comment.group(1)] if comment else []
    return " ".join(parts) or f"statement {index}"


def instrument_model(source_dir: Path, out_dir: Path) -> tuple[Path, tuple[str, ...]]:
    """Copy ``source_dir`` to ``out_dir`` with a hook after each statement of ``model_invoke``.

    Returns the copy and one label per hook. Only single-line statements at the top level of
    the body are hooked (the generator's straight list of kernel calls)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(source_dir, out_dir)
    for model_c in sorted(out_dir.rglob("*.c")):
        text = model_c.read_text()
        match = _INVOKE.search(text)
        if match is None:
            continue
        end = text.find("\n}", match.end())
        if end < 0:
            raise BoardError(f"{model_c}: cannot find the end of model_invoke() to add timers")
        lines = text[match.end():end].split("\n")
        body, labels, previous = [], [], ""
        for line in lines:
            body.append(line)
            stripped = line.strip()
            if stripped.endswith(";") or (stripped.endswith("*/") and ";" in stripped
                                           and not stripped.startswith("/*")):
                body.append(f"  {HOOK}({len(labels)});")
                labels.append(_label(previous, stripped, len(labels)))
            elif stripped:
                previous = stripped
        model_c.write_text(text[:match.end()] + "\n".join(body) + text[end:])
        return out_dir, tuple(labels)
    raise BoardError(f"{source_dir}: no model_invoke(void) definition found to add timers to")
