"""The CPUs and boards the harness can target, and how they map onto QEMU's mps2 machines.

QEMU has no STM32F7 with a working timer and semihosting-friendly memory, so a *board* here is
a pair of sizes (Flash, SRAM) enforced by the linker script, while the code runs on the mps2 FPGA
image with the same core: mps2-an386 (Cortex-M4) or mps2-an500 (Cortex-M7). Both map 4 MB of
ZBT SSRAM1 at 0x00000000 (used as "Flash", where the vector table must be) and 4 MB of
SSRAM2/3 at 0x20000000 (used as SRAM), so any board up to 4 MB + 4 MB fits.
"""
from __future__ import annotations

from dataclasses import dataclass

from unas.errors import UnasError

#: Address and size of the emulated memory that holds the "Flash" region (mps2 ZBT SSRAM1).
EMULATED_FLASH_ORIGIN = 0x00000000
EMULATED_FLASH_BYTES = 4 * 1024 * 1024
#: Address and size of the emulated memory that holds the "SRAM" region (mps2 ZBT SSRAM2/3).
EMULATED_RAM_ORIGIN = 0x20000000
EMULATED_RAM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Cpu:
    """A Cortex-M core: the compiler flags for it and the QEMU machine that emulates it."""

    name: str
    gcc_flags: tuple[str, ...]
    qemu_machine: str
    qemu_cpu: str


@dataclass(frozen=True)
class Board:
    """A target board: its core and the sizes of its Flash and (contiguous) SRAM."""

    name: str
    cpu: str
    flash_bytes: int
    ram_bytes: int


CPUS: dict[str, Cpu] = {
    "cortex-m4": Cpu("cortex-m4", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
                     "mps2-an386", "cortex-m4"),
    "cortex-m7": Cpu("cortex-m7", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
                     "mps2-an500", "cortex-m7"),
}

_KB = 1024
BOARDS: dict[str, Board] = {
    # SRAM = DTCM + SRAM1 + SRAM2, contiguous from 0x20000000 on the real chip.
    "stm32f746": Board("stm32f746", "cortex-m7", 1024 * _KB, 320 * _KB),
    "stm32f767": Board("stm32f767", "cortex-m7", 2048 * _KB, 512 * _KB),
    "stm32f412": Board("stm32f412", "cortex-m4", 1024 * _KB, 256 * _KB),
    "stm32f446": Board("stm32f446", "cortex-m4", 512 * _KB, 128 * _KB),
    # Largest contiguous SRAM of the H743 is its 512 KB AXI SRAM.
    "stm32h743": Board("stm32h743", "cortex-m7", 2048 * _KB, 512 * _KB),
}

DEFAULT_BOARD = "stm32f746"


def get_cpu(name: str) -> Cpu:
    """The :class:`Cpu` called ``name`` (``cortex-m4`` or ``cortex-m7``)."""
    if name not in CPUS:
        raise UnasError(f"--cpu: expected one of {sorted(CPUS)}, got {name!r}")
    return CPUS[name]


def get_board(name: str) -> Board:
    """The :class:`Board` called ``name``, e.g. ``get_board("stm32f746").ram_bytes == 327680``."""
    if name not in BOARDS:
        raise UnasError(f"--board: expected one of {sorted(BOARDS)}, got {name!r}")
    return BOARDS[name]
