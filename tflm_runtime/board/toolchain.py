"""Compiling and linking with arm-none-eabi-gcc (board) and gcc (host), with one-line errors."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tflm_runtime.board.errors import BoardError, ModelDoesNotFitError

#: Warnings are errors everywhere: the generated code must be clean on both compilers.
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
BOARD_FLAGS = ("-O2", "-mthumb", "-ffunction-sections", "-fdata-sections", *WARNING_FLAGS)
HOST_FLAGS = ("-O2", *WARNING_FLAGS)

_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def find_tool(name: str) -> str:
    """Absolute path of the program ``name``; a one-line error saying how to install it if absent."""
    path = shutil.which(name)
    if path is None:
        raise BoardError(f"{name} not found on PATH: install the board toolchain with "
                         f"`bash scripts/setup.sh` (gcc-arm-none-eabi, libnewlib-arm-none-eabi, "
                         f"qemu-system-arm)")
    return path


def run_tool(command: list[str], what: str, cwd: Path | None = None) -> str:
    """Run a compiler/linker command; return its combined output, or raise with its first error."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise BoardError(f"{what} failed: {first_error_line(output)}")
    return output


def first_error_line(output: str) -> str:
    """The most useful single line of a compiler's error output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "(no output)"


def compile_object(compiler: str, source: Path, obj: Path, flags: list[str]) -> None:
    """Compile one C or assembly source file to ``obj``."""
    obj.parent.mkdir(parents=True, exist_ok=True)
    run_tool([compiler, *flags, "-c", str(source), "-o", str(obj)], f"compiling {source.name}")


def link_board_image(compiler: str, objects: list[Path], flags: list[str], linker_dir: Path,
                     script: Path, elf: Path, map_file: Path, board_name: str) -> str:
    """Link the board image; return ld's ``--print-memory-usage`` report.

    Raises :class:`ModelDoesNotFitError` naming the region and the overflow when the image
    does not fit the board."""
    command = [compiler, *flags, "-nostartfiles", "-T", str(script), "-L", str(linker_dir),
               "-Wl,--gc-sections", "-Wl,--print-memory-usage", f"-Wl,-Map={map_file}",
               *map(str, objects), "-lm", "-lc", "-lgcc", "-o", str(elf)]
    done = subprocess.run(command, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        overflows = {region: int(n) for region, n in _OVERFLOW.findall(output)}
        if overflows:
            said = ", ".join(f"{region} overflowed by {n} bytes" for region, n in overflows.items())
            raise ModelDoesNotFitError(f"the model does not fit {board_name}: {said}")
        if "undefined reference to `_sbrk'" in output:
            raise BoardError("linking the board image failed: the model uses the heap (malloc), "
                             "which the board harness does not provide")
        raise BoardError(f"linking the board image failed: {first_error_line(output)}")
    return output
