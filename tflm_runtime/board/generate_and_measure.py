"""From a ``.tflite`` file to board measurements: generate C with the code generator, then measure."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tflm_runtime.board.errors import BoardError
from tflm_runtime.board.measure import BoardMeasurement, measure_c_model


def generate_model_sources(tflite_path: Path, out_dir: Path) -> Path:
    """Write the generated C (``model.h``, ``model.c``, kernels) for ``tflite_path`` to ``out_dir``."""
    try:
        from tflm_runtime import codegen
    except ImportError as error:
        raise BoardError(f"{tflite_path}: the code generator tflm_runtime.codegen is not "
                         f"available ({error})") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    codegen.generate(Path(tflite_path), out_dir)
    return out_dir


def quantized_inputs(tflite_path: Path, inputs: np.ndarray) -> np.ndarray:
    """``inputs`` as the model's int8 input (:func:`tflm_runtime.tflite_model.as_model_input`;
    the file is read only for float data)."""
    from tflm_runtime.tflite_model import as_model_input, read_tflite

    array = np.asarray(inputs)
    if not np.issubdtype(array.dtype, np.floating):
        return array
    return as_model_input(read_tflite(tflite_path), array)


def measure_tflite(tflite_path: Path, build_dir: Path | None = None,
                   **options: Any) -> BoardMeasurement:
    """Generate C for ``tflite_path`` and :func:`measure_c_model` it (same keyword options;
    float ``inputs`` are quantised with the model's input scale and zero point).

    Example::

        import numpy as np
        from tflm_runtime.board import measure_tflite
        m = measure_tflite(Path("model.tflite"), cpu="cortex-m4", rng=np.random.default_rng(0))
        print(m.instructions[0], m.memory.model_code_bytes)
    """
    tflite_path = Path(tflite_path)
    if not tflite_path.is_file():
        raise BoardError(f"{tflite_path}: not found; expected a .tflite model")
    if options.get("inputs") is not None:
        options["inputs"] = quantized_inputs(tflite_path, options["inputs"])
    if build_dir is not None:
        sources = generate_model_sources(tflite_path, Path(build_dir) / "model")
        return measure_c_model(sources, build_dir=Path(build_dir), **options)
    with tempfile.TemporaryDirectory(prefix="unas-board-") as temporary:
        sources = generate_model_sources(tflite_path, Path(temporary) / "model")
        return measure_c_model(sources, build_dir=Path(temporary), **options)
