"""Linker script set-up and reading the linker's answers (memory usage report, map file)."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tflm_runtime.board.targets import (EMULATED_FLASH_BYTES, EMULATED_FLASH_ORIGIN,
                                        EMULATED_RAM_BYTES, EMULATED_RAM_ORIGIN, Board)
from unas.errors import UnasError

_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
_USAGE_LINE = re.compile(r"^\s*(\w+):\s+(\d+)\s*(B|KB|MB|GB)\s+(\d+)\s*(B|KB|MB|GB)", re.MULTILINE)
_OUTPUT_SECTION = re.compile(r"^(\.[\w.]+)(?:\s+0x[0-9a-f]+\s+0x[0-9a-f]+.*)?$")
_INPUT_SECTION = re.compile(r"^ (\.[\w.]+|COMMON)?\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$")
_INPUT_NAME_ONLY = re.compile(r"^ (\.[\w.]+|COMMON)\s*$")


def write_memory_script(directory: Path, board: Board, stack_bytes: int) -> Path:
    """Write ``memory.ld``: the board's Flash/SRAM sizes at addresses the mps2 machine has."""
    if board.flash_bytes > EMULATED_FLASH_BYTES or board.sram_bytes > EMULATED_RAM_BYTES:
        raise UnasError(f"--board {board.name}: larger than the emulated memories "
                        f"({EMULATED_FLASH_BYTES} B Flash, {EMULATED_RAM_BYTES} B SRAM)")
    path = directory / "memory.ld"
    path.write_text(
        "/* Written by tflm_runtime.board: " + board.name + " sizes on the mps2 memory map. */\n"
        "MEMORY\n{\n"
        f"    FLASH (rx) : ORIGIN = {EMULATED_FLASH_ORIGIN:#010x}, LENGTH = {board.flash_bytes}\n"
        f"    RAM (rwx) : ORIGIN = {EMULATED_RAM_ORIGIN:#010x}, LENGTH = {board.sram_bytes}\n"
        "}\n"
        f"BOARD_STACK_BYTES = {stack_bytes};\n")
    return path


def parse_memory_usage(report: str) -> dict[str, tuple[int, int]]:
    """``{region: (used bytes, region bytes)}`` from ld's ``--print-memory-usage`` report."""
    return {region: (int(used) * _UNITS[used_unit], int(size) * _UNITS[size_unit])
            for region, used, used_unit, size, size_unit in _USAGE_LINE.findall(report)}


@dataclass(frozen=True)
class SectionBytes:
    """Bytes a group of object files put in the image, by kind of output section."""

    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0


def _kind(output_section: str) -> str | None:
    if output_section in (".text", ".isr_vector", ".ARM.exidx", ".ARM.extab"):
        return "text"
    if output_section in (".rodata", ".init_array", ".fini_array", ".preinit_array"):
        return "rodata"
    if output_section == ".data":
        return "data"
    if output_section == ".bss":
        return "bss"
    return None


def section_bytes_by_file(map_text: str) -> dict[str, SectionBytes]:
    """Per input file (object or ``archive(member)``), the bytes linked into each kind of section.

    Reads the "Linker script and memory map" part of a GNU ld map file (``-Wl,-Map=``)."""
    start = map_text.find("Linker script and memory map")
    lines = map_text[start:].splitlines() if start >= 0 else []
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    output_section: str | None = None
    pending_input = False
    for line in lines:
        out_match = _OUTPUT_SECTION.match(line)
        if out_match and not line.startswith(" "):
            output_section = out_match.group(1)
            continue
        if _INPUT_NAME_ONLY.match(line):
            pending_input = True
            continue
        in_match = _INPUT_SECTION.match(line)
        if in_match and (in_match.group(1) is not None or pending_input):
            kind = _kind(output_section or "")
            size = int(in_match.group(3), 16)
            if kind is not None and size > 0 and not line.lstrip().startswith("*fill*"):
                totals[in_match.group(4).strip()][kind] += size
        pending_input = False
    return {name: SectionBytes(**kinds) for name, kinds in totals.items()}
