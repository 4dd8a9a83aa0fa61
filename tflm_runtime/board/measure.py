"""Build a C model for the emulated board and the host, run both, check and measure.

Example (a folder with ``model.h`` + ``*.c`` behind the stable model API)::

    from pathlib import Path
    from tflm_runtime.board import measure_c_model
    result = measure_c_model(Path("out/"), cpu="cortex-m4", board="stm32f746")
    print(result.instructions[0], result.memory.flash_bytes, result.memory.ram_bytes)
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflm_runtime.board.console import HarnessReport, parse_console
from tflm_runtime.board.emulator import TICKS_PER_INSTRUCTION, run_in_qemu
from tflm_runtime.board.errors import BoardError
from tflm_runtime.board.instrument import has_hook, instrument_model
from tflm_runtime.board.linker import (SectionBytes, parse_memory_usage, section_bytes_by_file,
                                       write_memory_script)
from tflm_runtime.board.sources import HARNESS_DIR, ModelSources, read_model_sources
from tflm_runtime.board.targets import DEFAULT_BOARD, Board, Cpu, get_board, get_cpu
from tflm_runtime.board.toolchain import (BOARD_FLAGS, HOST_FLAGS, compile_object, find_tool,
                                          link_board_image, run_tool)
from unas.errors import UnasError

#: Stack reserved by the linker script above .data + .bss (the stack may use any free SRAM).
DEFAULT_STACK_BYTES = 4096
#: How far the measured ticks per instruction may be from the nominal 1.6 (relative).
CALIBRATION_TOLERANCE = 0.005
_LAYER_FLAGS = ("-include", "layer_hook.h", "-DMODEL_LAYER_HOOK(index)=board_layer_mark(index)")


@dataclass(frozen=True)
class Calibration:
    """How ticks became instructions in one run (see docs/board.md)."""

    ticks_per_instruction: float  #: measured on a loop of known length; nominal 1.6
    overhead_ticks: int  #: ticks between two consecutive timer reads, subtracted from each run
    spin_iterations: int  #: iterations of the short calibration loop (2 instructions each)
    spin_instructions: int  #: instructions measured for it (2 * iterations + call overhead)
    layer_mark_ticks: int  #: ticks one per-layer timer mark costs (0 when not per-layer)


@dataclass(frozen=True)
class MemoryUsage:
    """Flash and SRAM of the board image, as the linker placed it."""

    flash_bytes: int  #: whole image in Flash (vectors, code, constants, .data initialisers)
    ram_bytes: int  #: .data + .bss + the reserved stack
    flash_capacity: int
    ram_capacity: int
    model_code_bytes: int  #: .text of the model's own object files (no weights)
    model_const_bytes: int  #: .rodata of the model's object files (weights, biases, tables)
    model_data_bytes: int  #: initialised RAM of the model (.data)
    model_bss_bytes: int  #: zeroed RAM of the model (.bss: arena, scratch)
    harness_bytes: int  #: Flash used by the harness and start-up code
    library_bytes: int  #: Flash used by libc/libm/libgcc functions (memcpy, division, ...)
    stack_reserved_bytes: int
    stack_used_bytes: int  #: measured high-water mark of the stack

    @property
    def peak_ram_bytes(self) -> int:
        """SRAM actually touched: .data + .bss of everything plus the measured stack."""
        return self.ram_bytes - self.stack_reserved_bytes + self.stack_used_bytes


@dataclass(frozen=True)
class BoardMeasurement:
    """One model on one emulated board: outputs, instructions per inference and memory."""

    cpu: str
    board: str
    machine: str
    outputs: np.ndarray  #: int8, one row of MODEL_OUTPUT_BYTES per input sample
    host_outputs: np.ndarray | None  #: the host build's outputs (equal to ``outputs``)
    instructions: tuple[int, ...]  #: per input sample
    layer_instructions: tuple[tuple[int, ...], ...] | None  #: per sample, per hooked kernel
    layer_names: tuple[str, ...] | None  #: one label per hooked kernel
    memory: MemoryUsage
    calibration: Calibration


@contextmanager
def _build_directory(build_dir: Path | None) -> Iterator[Path]:
    if build_dir is not None:
        build_dir.mkdir(parents=True, exist_ok=True)
        yield build_dir
        return
    with tempfile.TemporaryDirectory(prefix="unas-board-") as temporary:
        yield Path(temporary)


def _object_name(sources: ModelSources, c_file: Path) -> str:
    return str(c_file.relative_to(sources.directory).with_suffix(".o")).replace(os.sep, "__")


def _model_flags(sources: ModelSources, per_layer: bool) -> list[str]:
    flags = [f"-I{d}" for d in sources.include_dirs] + [f"-I{HARNESS_DIR}"]
    return flags + list(_LAYER_FLAGS) if per_layer else flags


def build_board_image(sources: ModelSources, cpu: Cpu, board: Board, build_dir: Path,
                      stack_bytes: int = DEFAULT_STACK_BYTES,
                      per_layer: bool = False) -> tuple[Path, dict[str, tuple[int, int]],
                                                        dict[str, SectionBytes]]:
    """Cross-compile and link; return the ELF, ld's region usage and per-file section bytes."""
    gcc = find_tool("arm-none-eabi-gcc")
    flags = [*BOARD_FLAGS, *cpu.gcc_flags]
    model_dir, harness_dir = build_dir / "board_model", build_dir / "board_harness"
    objects = [harness_dir / "startup.o"]
    compile_object(gcc, HARNESS_DIR / "startup.s", objects[0], flags)
    harness_flags = flags + [f"-I{d}" for d in sources.include_dirs] + [f"-I{HARNESS_DIR}"]
    if per_layer:
        harness_flags.append("-DBOARD_LAYER_MARKS")
    for name in ("harness.c", "board_platform.c"):
        objects.append(harness_dir / name.replace(".c", ".o"))
        compile_object(gcc, HARNESS_DIR / name, objects[-1], harness_flags)
    model_flags = flags + _model_flags(sources, per_layer)
    for c_file in sources.c_files:
        objects.append(model_dir / _object_name(sources, c_file))
        compile_object(gcc, c_file, objects[-1], model_flags)
    write_memory_script(build_dir, board, stack_bytes)
    elf, map_file = build_dir / "app.elf", build_dir / "app.map"
    report = link_board_image(gcc, objects, flags, build_dir, HARNESS_DIR / "sections.ld", elf,
                              map_file, board.name)
    regions = parse_memory_usage(report)
    if "FLASH" not in regions or "RAM" not in regions:
        raise BoardError(f"linking the board image: no memory usage report from ld: {report!r}")
    return elf, regions, section_bytes_by_file(map_file.read_text())


def build_host_program(sources: ModelSources, build_dir: Path, per_layer: bool = False) -> Path:
    """Compile the same model sources and harness with the host gcc (the reference build)."""
    gcc = find_tool("gcc")
    program = build_dir / "host_app"
    run_tool([gcc, *HOST_FLAGS, *_model_flags(sources, per_layer),
              str(HARNESS_DIR / "harness.c"), str(HARNESS_DIR / "host_platform.c"),
              *map(str, sources.c_files), "-lm", "-o", str(program)], "host build")
    return program


def run_host_program(program: Path, workdir: Path, output_bytes: int) -> HarnessReport:
    """Run the host build in ``workdir`` (where ``inputs.bin`` is); parse its records."""
    done = subprocess.run([str(program)], cwd=workdir, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BoardError(f"host build of the model exited with status {done.returncode}: {said[0]}")
    return parse_console(done.stdout, "host build", output_bytes)


def _summarise_memory(regions: dict[str, tuple[int, int]], files: dict[str, SectionBytes],
                      build_dir: Path, stack_bytes: int, stack_used: int) -> MemoryUsage:
    model_prefix = str(build_dir / "board_model")
    harness_prefix = str(build_dir / "board_harness")
    model = [b for name, b in files.items() if name.startswith(model_prefix)]
    harness = [b for name, b in files.items() if name.startswith(harness_prefix)]
    library = [b for name, b in files.items()
               if not name.startswith((model_prefix, harness_prefix))]
    return MemoryUsage(
        flash_bytes=regions["FLASH"][0], ram_bytes=regions["RAM"][0],
        flash_capacity=regions["FLASH"][1], ram_capacity=regions["RAM"][1],
        model_code_bytes=sum(b.text for b in model),
        model_const_bytes=sum(b.rodata for b in model),
        model_data_bytes=sum(b.data for b in model), model_bss_bytes=sum(b.bss for b in model),
        harness_bytes=sum(b.text + b.rodata + b.data for b in harness),
        library_bytes=sum(b.text + b.rodata + b.data for b in library),
        stack_reserved_bytes=stack_bytes, stack_used_bytes=stack_used)


def _calibrate(values: tuple[int, ...], per_layer: bool) -> Calibration:
    if len(values) != 6:
        raise BoardError(f"QEMU run: garbled calibration record {values!r}")
    empty, short, long, n_short, n_long, mark = values
    measured = (long - short) / (2 * (n_long - n_short))
    if abs(measured / TICKS_PER_INSTRUCTION - 1) > CALIBRATION_TOLERANCE:
        raise BoardError(f"QEMU timer counts {measured:.4f} ticks per instruction, expected "
                         f"{TICKS_PER_INSTRUCTION} (is `-icount shift=6` in effect?)")
    return Calibration(measured, empty, n_short,
                       round((short - empty) / TICKS_PER_INSTRUCTION), mark if per_layer else 0)


def _instructions(ticks: int, calibration: Calibration, marks: int) -> int:
    overhead = calibration.overhead_ticks + marks * calibration.layer_mark_ticks
    return max(0, round((ticks - overhead) / TICKS_PER_INSTRUCTION))


def _layer_instructions(marks: list[tuple[int, int]], calibration: Calibration) -> tuple[int, ...]:
    """Instructions between consecutive marks, less the cost of one mark (see docs/board.md)."""
    previous, counts = 0, []
    for _, ticks in marks:
        interval = ticks - previous - calibration.layer_mark_ticks
        counts.append(max(0, round(interval / TICKS_PER_INSTRUCTION)))
        previous = ticks
    return tuple(counts)


def _as_input_rows(inputs: np.ndarray | None, sources: ModelSources, samples: int,
                   rng: np.random.Generator | None) -> np.ndarray:
    if inputs is None:
        if rng is None:
            raise UnasError("inputs: give input data or a numpy.random.Generator for random inputs")
        return rng.integers(-128, 128, size=(samples, sources.input_bytes), dtype=np.int8)
    array = np.asarray(inputs)
    if array.dtype != np.int8:
        raise UnasError(f"inputs: expected int8 data (the model's quantised input), got {array.dtype}")
    if array.size == 0 or array.size % sources.input_bytes != 0:
        raise UnasError(f"inputs: expected a multiple of MODEL_INPUT_BYTES={sources.input_bytes} "
                        f"values, got shape {array.shape}")
    return array.reshape(-1, sources.input_bytes)


def measure_c_model(model_dir: Path, cpu: str | None = None, board: str = DEFAULT_BOARD,
                    inputs: np.ndarray | None = None, rng: np.random.Generator | None = None,
                    samples: int = 2, build_dir: Path | None = None,
                    stack_bytes: int = DEFAULT_STACK_BYTES, per_layer: bool = False,
                    timeout_s: float = 300.0, check_host: bool = True) -> BoardMeasurement:
    """Build the C model in ``model_dir`` for ``board`` (core ``cpu``, default the board's),
    run it under QEMU on ``inputs`` (int8, ``samples`` random rows from ``rng`` if None),
    check the outputs equal the host build's and measure instructions, Flash and SRAM.

    Raises :class:`ModelDoesNotFitError` if the image does not fit the board, and
    :class:`BoardError` for a missing toolchain, a QEMU timeout/crash or an output mismatch."""
    target_board = get_board(board)
    target_cpu = get_cpu(cpu or target_board.cpu)
    sources = read_model_sources(Path(model_dir))
    rows = _as_input_rows(inputs, sources, samples, rng)
    with _build_directory(build_dir) as directory:
        names: tuple[str, ...] | None = None
        if per_layer and not any(has_hook(c) for c in sources.c_files):
            instrumented, names = instrument_model(sources.directory, directory / "instrumented")
            sources = read_model_sources(instrumented)
        elf, regions, files = build_board_image(sources, target_cpu, target_board, directory,
                                                stack_bytes, per_layer)
        (directory / "inputs.bin").write_bytes(rows.tobytes())
        console = run_in_qemu(target_cpu, elf, directory, timeout_s)
        where = f"QEMU {target_cpu.qemu_machine}"
        report = parse_console(console, where, sources.output_bytes)
        if report.samples != len(rows):
            raise BoardError(f"{where}: ran {report.samples} of {len(rows)} input samples")
        board_outputs = np.stack(report.outputs)
        host_outputs = None
        if check_host:
            host = run_host_program(build_host_program(sources, directory, per_layer), directory,
                                    sources.output_bytes)
            host_outputs = np.stack(host.outputs)
            _check_equal(board_outputs, host_outputs, target_cpu.name)
        if report.stack_used_bytes > stack_bytes:
            raise BoardError(f"the stack grew to {report.stack_used_bytes} bytes, more than the "
                             f"{stack_bytes} reserved: rerun with --stack-bytes "
                             f"{report.stack_used_bytes + 1024}")
    calibration = _calibrate(report.calibration, per_layer)
    instructions = tuple(_instructions(t, calibration, len(m))
                         for t, m in zip(report.ticks, report.layer_ticks))
    layers = (tuple(_layer_instructions(m, calibration) for m in report.layer_ticks)
              if per_layer else None)
    if per_layer and names is None:
        names = tuple(f"hook {index}" for index, _ in (report.layer_ticks or [[]])[0])
    memory = _summarise_memory(regions, files, directory, stack_bytes, report.stack_used_bytes)
    return BoardMeasurement(target_cpu.name, target_board.name, target_cpu.qemu_machine,
                            board_outputs, host_outputs, instructions, layers, names, memory,
                            calibration)


def _check_equal(board: np.ndarray, host: np.ndarray, cpu: str) -> None:
    if board.shape != host.shape:
        raise BoardError(f"output mismatch: board ({cpu}) gave {board.shape}, host {host.shape}")
    differ = np.argwhere(board != host)
    if differ.size:
        sample, byte = differ[0]
        raise BoardError(f"output mismatch: board ({cpu}) and host build differ in "
                         f"{len(differ)} bytes; first at sample {sample} byte {byte}: "
                         f"board {board[sample, byte]}, host {host[sample, byte]}")
