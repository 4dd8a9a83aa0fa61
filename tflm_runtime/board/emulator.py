"""Running a board image under QEMU with semihosting and deterministic instruction counting."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tflm_runtime.board.errors import BoardError
from tflm_runtime.board.targets import Cpu
from tflm_runtime.board.toolchain import find_tool

#: ``-icount shift=6``: each instruction advances virtual time by 2**6 ns.
ICOUNT_SHIFT = 6
#: CMSDK APB timer 0 of the mps2 images counts at the 25 MHz peripheral clock.
TIMER_HZ = 25_000_000
#: Timer ticks per instruction under ``-icount shift=6``: 64 ns * 25 MHz = 1.6.
TICKS_PER_INSTRUCTION = TIMER_HZ * (2 ** ICOUNT_SHIFT) * 1e-9


def qemu_command(cpu: Cpu, elf: Path, console: Path) -> list[str]:
    """The QEMU command line that runs ``elf`` and writes the semihosting console to ``console``."""
    return [find_tool("qemu-system-arm"), "-M", cpu.qemu_machine, "-cpu", cpu.qemu_cpu,
            "-icount", f"shift={ICOUNT_SHIFT}",
            "-semihosting-config", "enable=on,target=native,chardev=console",
            "-chardev", f"file,id=console,path={console}",
            "-nographic", "-monitor", "none", "-kernel", str(elf)]


def run_in_qemu(cpu: Cpu, elf: Path, workdir: Path, timeout_s: float) -> str:
    """Run ``elf`` in ``workdir`` (where it reads ``inputs.bin``); return the console text."""
    console = workdir / "console.txt"
    console.unlink(missing_ok=True)
    command = qemu_command(cpu, elf, console)
    try:
        done = subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BoardError(f"QEMU {cpu.qemu_machine} timed out after {timeout_s:g} s "
                         f"(raise --timeout for a large model)") from None
    text = console.read_text() if console.exists() else ""
    if done.returncode != 0:
        said = (text.strip().splitlines() or done.stderr.strip().splitlines() or ["no output"])[-1]
        if said == "FAULT":
            said = "the program crashed (Cortex-M fault exception)"
        raise BoardError(f"QEMU {cpu.qemu_machine} exited with status {done.returncode}: {said}")
    return text
