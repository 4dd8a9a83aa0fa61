"""Reading the harness's console records (see harness.c) into numbers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tflm_runtime.board.errors import BoardError


@dataclass
class HarnessReport:
    """Everything one harness run printed."""

    calibration: tuple[int, ...] = ()
    outputs: list[np.ndarray] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    layer_ticks: list[list[tuple[int, int]]] = field(default_factory=list)
    stack_used_bytes: int = 0
    samples: int = -1


def parse_console(text: str, where: str, output_bytes: int) -> HarnessReport:
    """Parse the harness's records; ``where`` names the run in errors (e.g. "QEMU mps2-an386")."""
    report = HarnessReport()
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        fields = rest.split()
        if tag == "CAL":
            report.calibration = tuple(int(v) for v in fields)
        elif tag == "RUN":
            sample, ticks, hex_bytes = int(fields[0]), int(fields[1]), fields[2] if len(fields) > 2 else ""
            data = np.frombuffer(bytes.fromhex(hex_bytes), dtype=np.int8)
            if sample != len(report.outputs) or data.size != output_bytes:
                raise BoardError(f"{where}: garbled output record for sample {sample}")
            report.outputs.append(data)
            report.ticks.append(ticks)
            report.layer_ticks.append([])
        elif tag == "LAYER":
            report.layer_ticks[int(fields[0])].append((int(fields[1]), int(fields[2])))
        elif tag == "STACK":
            report.stack_used_bytes = int(fields[0])
        elif tag == "DONE":
            report.samples = int(fields[0])
        elif tag == "ERROR":
            raise BoardError(f"{where}: {rest}")
        elif tag == "FAULT":
            raise BoardError(f"{where}: the program crashed (Cortex-M fault exception)")
    if report.samples != len(report.outputs) or report.samples < 0:
        raise BoardError(f"{where}: the harness did not finish (no DONE record); "
                         f"last output: {text.strip().splitlines()[-1:]!r}")
    return report
