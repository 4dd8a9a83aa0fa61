"""One int8 ``.tflite`` through the deployment chain: generated C, host build checked bit-exact
against TFLM, then the emulated Cortex-M board checked against the host build.

Example::

    >>> figures = deploy_tflite(Path("runs/x/tflite/7.tflite"), Path("/tmp/d7"),
    ...                         x_int8[:32])                                 # doctest: +SKIP
    >>> figures.bit_exact, figures.board_instructions                       # doctest: +SKIP
    (True, 61234)
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unas.errors import UnasError

#: Core compiled for and emulated, and the board whose Flash/SRAM sizes the image is linked for.
DEFAULT_CPU = "cortex-m4"
DEFAULT_BOARD = "stm32f746"
#: Test samples run on the host build and in TFLM for the bit-exact check.
DEFAULT_CHECK_SAMPLES = 32
#: Of those, the samples also run on the emulated board (one QEMU run for all of them).
DEFAULT_BOARD_SAMPLES = 32
#: Tools the board measurement needs (installed by ``scripts/setup.sh``).
BOARD_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")


@dataclass(frozen=True)
class DeployFigures:
    """What one model needs and does once deployed.

    A check or measurement that could not run holds the string ``"unavailable: <reason>"``
    (missing tool) or ``"failed: <reason>"`` instead of its value.
    """

    codegen_arena_bytes: int
    codegen_sram_bytes: int  #: the arena: the generated code's whole activation memory
    weights_bytes: int  #: constants the generated code keeps in Flash
    check_samples: int
    bit_exact: bool | str  #: host build of the generated C == TFLM on every checked sample
    bit_exact_detail: str  #: the first difference, "" when bit-exact
    board_samples: int
    board_instructions: int | str  #: mean instructions per inference on the emulated core
    board_flash_bytes: int | str  #: model code + constants in the board image
    board_code_bytes: int | str
    board_peak_ram_bytes: int | str  #: .data + .bss of the image plus the measured stack
    board_equals_host: bool | str


def one_line(error: BaseException) -> str:
    """``error`` as one short line (for a table cell)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def board_unavailable_reason() -> str | None:
    """Why the board cannot be emulated here (a missing tool), or None when it can."""
    missing = [tool for tool in BOARD_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not found on PATH (bash scripts/setup.sh installs "
                "gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)")
    return None


def _host_check(blob: bytes, out_dir: Path, x: np.ndarray, output_shape: tuple[int, ...],
                output_dtype: str) -> tuple[np.ndarray | None, bool | str, str]:
    """Host outputs of the generated C, and whether they equal TFLM's on ``x``."""
    from tflm_runtime.codegen.verify import build_host, run_host, run_tflm

    if shutil.which("gcc") is None:
        return None, "unavailable: gcc not found on PATH", ""
    executable = build_host([out_dir], jobs=1)[0]
    ours = run_host(executable, x, output_shape, output_dtype)
    theirs = run_tflm(blob, x).reshape(ours.shape)
    bad = [i for i in range(len(x)) if not np.array_equal(ours[i], theirs[i])]
    if not bad:
        return ours, True, ""
    flat_ours, flat_theirs = ours[bad[0]].reshape(-1), theirs[bad[0]].reshape(-1)
    index = int(np.flatnonzero(flat_ours != flat_theirs)[0])
    return ours, False, (f"{len(bad)} of {len(x)} samples differ; sample {bad[0]} index {index}: "
                         f"C {flat_ours[index]} vs TFLM {flat_theirs[index]}")


def _board_run(out_dir: Path, x: np.ndarray, host_outputs: np.ndarray | None, cpu: str,
               board: str, timeout_s: float) -> dict[str, int | bool | str]:
    from tflm_runtime.board import measure_c_model

    reason = board_unavailable_reason()
    if reason is not None:
        return dict.fromkeys(("board_instructions", "board_flash_bytes", "board_code_bytes",
                              "board_peak_ram_bytes", "board_equals_host"),
                             f"unavailable: {reason}")
    try:
        m = measure_c_model(out_dir, cpu=cpu, board=board, inputs=x, timeout_s=timeout_s)
    except UnasError as error:  # does not fit, QEMU crash/timeout, board != its host build
        return dict.fromkeys(("board_instructions", "board_flash_bytes", "board_code_bytes",
                              "board_peak_ram_bytes", "board_equals_host"),
                             f"failed: {one_line(error)}")
    equal: bool | str = True if m.host_outputs is not None else "unavailable: host not built"
    if host_outputs is not None:
        equal = bool(np.array_equal(m.outputs.reshape(len(x), -1),
                                    host_outputs[:len(x)].reshape(len(x), -1)))
    mem = m.memory
    return {"board_instructions": int(round(float(np.mean(m.instructions)))),
            "board_flash_bytes": mem.model_code_bytes + mem.model_const_bytes,
            "board_code_bytes": mem.model_code_bytes,
            "board_peak_ram_bytes": mem.peak_ram_bytes,
            "board_equals_host": equal}


def deploy_tflite(tflite_path: Path, work_dir: Path, inputs: np.ndarray, *,
                  cpu: str = DEFAULT_CPU, board: str = DEFAULT_BOARD,
                  board_samples: int = DEFAULT_BOARD_SAMPLES,
                  timeout_s: float = 120.0) -> DeployFigures:
    """Generate C for ``tflite_path`` into ``work_dir``, check it bit-exact against TFLM on
    ``inputs`` (batch first; int8, or float quantised with the model's input scale and zero
    point) on the host, run the first ``board_samples`` of them on the
    emulated ``cpu`` linked for ``board`` and measure it there.

    Code generation errors (an unsupported operator) raise; a missing toolchain or a failed
    board run is reported in the figures instead.
    """
    from tflm_runtime.codegen import generate
    from tflm_runtime.tflite_model import as_model_input, parse_tflite

    tflite_path, work_dir = Path(tflite_path), Path(work_dir)
    blob = tflite_path.read_bytes()
    model = parse_tflite(blob, str(tflite_path))
    work_dir.mkdir(parents=True, exist_ok=True)
    generated = generate(model, work_dir)
    out_t = model.tensors[model.outputs[0]]
    output_shape = tuple(out_t.shape[1:] if len(out_t.shape) > 1 else out_t.shape)
    x = as_model_input(model, inputs)
    host_outputs, bit_exact, detail = _host_check(blob, generated.out_dir, x, output_shape,
                                                  out_t.dtype)
    on_board = x[:max(1, min(board_samples, len(x)))]
    board_columns = _board_run(generated.out_dir, on_board, host_outputs, cpu, board, timeout_s)
    return DeployFigures(
        codegen_arena_bytes=generated.arena_bytes,
        codegen_sram_bytes=generated.sram_bytes, weights_bytes=generated.const_bytes,
        check_samples=len(x), bit_exact=bit_exact, bit_exact_detail=detail,
        board_samples=len(on_board), **board_columns)  # type: ignore[arg-type]
