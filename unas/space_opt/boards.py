"""Memory sizes as text (``320KB`` <-> 327680) and the boards a budget can be taken from.

The boards are the one table of :mod:`tflm_runtime.board.targets` (the board harness links for
the same boards), re-exported here; among them are those MCUNet deploys to (Lin et al., 2020,
section 4 "Model deployment" and Table 4). Sizes use binary units, as datasheets do:
``1KB = 1KiB = 1024 bytes``, ``1MB = 1MiB = 1024 * 1024 bytes``.

>>> get_board("stm32f746").sram_bytes
327680
>>> parse_bytes("1MB"), parse_bytes("320kB"), parse_bytes("512 KiB"), parse_bytes("1000")
(1048576, 327680, 524288, 1000)
"""
from __future__ import annotations

import re

from tflm_runtime.board.targets import BOARDS, KIB, MIB, Board, get_board
from unas.errors import ConfigError

__all__ = ["BOARDS", "KIB", "MIB", "Board", "format_bytes", "get_board", "parse_bytes"]

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
