"""Microcontroller boards (SRAM and Flash from their datasheets) and memory-size parsing.

The boards are those MCUNet deploys to (Lin et al., 2020, section 4 "Model deployment" and
Table 4); their SRAM / Flash figures agree with ST's datasheets. Sizes use binary units, as
datasheets do: ``1KB = 1KiB = 1024 bytes``, ``1MB = 1MiB = 1024 * 1024 bytes``.

>>> get_board("stm32f746").sram_bytes
327680
>>> parse_bytes("1MB"), parse_bytes("320kB"), parse_bytes("512 KiB"), parse_bytes("1000")
(1048576, 327680, 524288, 1000)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from unas.errors import ConfigError

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Board:
    """One MCU: its core, on-chip SRAM and Flash in bytes, and where the figures come from."""

    name: str
    core: str
    sram_bytes: int
    flash_bytes: int
    source: str


_MCUNET = "MCUNet (Lin et al., NeurIPS 2020), section 4 'Model deployment' and Table 4"

BOARDS: dict[str, Board] = {board.name: board for board in (
    Board("stm32f412", "Cortex-M4 @ 100 MHz", 256 * KIB, 1 * MIB,
          _MCUNET + "; ST DS10314 (STM32F412xE/G): 256 Kbytes SRAM, 1 Mbyte Flash"),
    Board("stm32f746", "Cortex-M7 @ 216 MHz", 320 * KIB, 1 * MIB,
          _MCUNET + "; ST DS10916 (STM32F745xx/746xx): 320 Kbytes SRAM, 1 Mbyte Flash"),
    Board("stm32f765", "Cortex-M7 @ 216 MHz", 512 * KIB, 1 * MIB,
          _MCUNET + "; ST DS11532 (STM32F765xx): 512 Kbytes SRAM, 1 Mbyte Flash (xG part)"),
    Board("stm32h743", "Cortex-M7 @ 480 MHz", 512 * KIB, 2 * MIB,
          _MCUNET + "; ST DS12110 (STM32H743xI): 2 Mbytes Flash; MCUNet counts the 512 KB "
                    "AXI SRAM that holds activations (1 MB SRAM in total)"),
)}


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive); :class:`ConfigError` names the known ones."""
    board = BOARDS.get(name.strip().lower()) if isinstance(name, str) else None
    if board is None:
        raise ConfigError(f"--board: expected one of {', '.join(sorted(BOARDS))}, got {name!r}")
    return board


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB}


def parse_bytes(text: str | int, what: str = "size") -> int:
    """``"320KB"`` → 327680. Accepts B, K/KB/KiB, M/MB/MiB (binary units, any case) or a plain
    integer; raises :class:`ConfigError` naming ``what`` otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = _SIZE.match(text) if isinstance(text, str) else None
        if match is None or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"{what}: expected a size such as 320KB, 1MB or 65536, got {text!r}")
        value, unit = float(match.group(1)), match.group(2).lower()
    size = value * _UNITS[unit]
    if size < 1 or size != int(size):
        raise ConfigError(f"{what}: expected a whole number of bytes >= 1, got {text!r}")
    return int(size)


def format_bytes(size: int) -> str:
    """Short binary-unit text: 327680 → ``320KB``, 1572864 → ``1.5MB``."""
    for unit, scale in (("MB", MIB), ("KB", KIB)):
        if size >= scale:
            return f"{size / scale:g}{unit}"
    return f"{size}B"
