"""The CPUs and boards the harness can target, and how they map onto QEMU's mps2 machines.

QEMU has no STM32F7 with a working timer and semihosting-friendly memory, so a *board* here is
a pair of sizes (Flash, SRAM) enforced by the linker script, while the code runs on the mps2 FPGA
image with the same core: mps2-an386 (Cortex-M4) or mps2-an500 (Cortex-M7). Both map 4 MB of
ZBT SSRAM1 at 0x00000000 (used as "Flash", where the vector table must be) and 4 MB of
SSRAM2/3 at 0x20000000 (used as SRAM), so any board up to 4 MB + 4 MB fits.
"""
from __future__ import annotations

from dataclasses import dataclass

from unas.errors import ConfigError

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


CPUS: dict[str, Cpu] = {
    "cortex-m4": Cpu("cortex-m4", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
                     "mps2-an386", "cortex-m4"),
    "cortex-m7": Cpu("cortex-m7", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
                     "mps2-an500", "cortex-m7"),
}

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Board:
    """One MCU board: its core (a key of :data:`CPUS`) and clock, the on-chip SRAM the model's
    activations can use and its Flash, in bytes (binary units, as datasheets count them:
    1KB = 1024 B), and where the figures come from."""

    name: str
    cpu: str
    mhz: int
    sram_bytes: int
    flash_bytes: int
    source: str


_MCUNET = "MCUNet (Lin et al., NeurIPS 2020), section 4 'Model deployment' and Table 4; "
_F7_SRAM = " (DTCM + SRAM1 + SRAM2, contiguous from 0x20000000)"

#: The one table of boards: ``python -m tflm_runtime.board --board`` links for their sizes and
#: ``python -m unas.space_opt --board`` takes its SRAM / Flash budget from them.
BOARDS: dict[str, Board] = {board.name: board for board in (
    Board("stm32f412", "cortex-m4", 100, 256 * KIB, 1 * MIB,
          _MCUNET + "ST DS10314 (STM32F412xE/G): 256 Kbytes SRAM, 1 Mbyte Flash (xG part)"),
    Board("stm32f446", "cortex-m4", 180, 128 * KIB, 512 * KIB,
          "ST DS10693 (STM32F446xC/E): 128 Kbytes SRAM, 512 Kbytes Flash (xE part)"),
    Board("stm32f746", "cortex-m7", 216, 320 * KIB, 1 * MIB,
          _MCUNET + "ST DS10916 (STM32F745xx/746xx): 320 Kbytes SRAM" + _F7_SRAM
          + ", 1 Mbyte Flash"),
    Board("stm32f765", "cortex-m7", 216, 512 * KIB, 1 * MIB,
          _MCUNET + "ST DS11532 (STM32F765xx/767xx): 512 Kbytes SRAM" + _F7_SRAM
          + ", 1 Mbyte Flash (xG part, as MCUNet counts it; the xI part has 2 Mbytes)"),
    Board("stm32f767", "cortex-m7", 216, 512 * KIB, 2 * MIB,
          "ST DS11532 (STM32F765xx/767xx): 512 Kbytes SRAM" + _F7_SRAM
          + ", 2 Mbytes Flash (xI part, as on the NUCLEO-F767ZI board)"),
    Board("stm32h743", "cortex-m7", 480, 512 * KIB, 2 * MIB,
          _MCUNET + "ST DS12110 (STM32H743xI): 2 Mbytes Flash; its largest contiguous SRAM, "
                    "the 512 Kbytes AXI SRAM, holds the activations (1 Mbyte SRAM in total)"),
)}

DEFAULT_BOARD = "stm32f746"


def get_cpu(name: str) -> Cpu:
    """The :class:`Cpu` called ``name`` (``cortex-m4`` or ``cortex-m7``, any case)."""
    cpu = CPUS.get(name.strip().lower()) if isinstance(name, str) else None
    if cpu is None:
        raise ConfigError(f"--cpu: expected one of {', '.join(sorted(CPUS))}, got {name!r}")
    return cpu


def get_board(name: str) -> Board:
    """The :class:`Board` called ``name`` (any case); :class:`ConfigError` names the known ones.

    >>> get_board("STM32F746").sram_bytes, get_board("stm32f746").flash_bytes
    (327680, 1048576)
    """
    board = BOARDS.get(name.strip().lower()) if isinstance(name, str) else None
    if board is None:
        raise ConfigError(f"--board: expected one of {', '.join(sorted(BOARDS))}, got {name!r}")
    return board
