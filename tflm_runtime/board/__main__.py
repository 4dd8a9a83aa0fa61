"""``python -m tflm_runtime.board model.tflite [--cpu cortex-m4|cortex-m7] [--board stm32f746]
[--inputs FILE.npy]``: generate C, build, run on the emulated board, check against the host build
and print instructions per inference, Flash and SRAM (``--json`` for a machine-readable record).
``model`` may also be a folder of C sources behind the model API (``model.h`` + ``*.c``)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tflm_runtime.board.measure import DEFAULT_STACK_BYTES, BoardMeasurement, measure_c_model
from tflm_runtime.board.targets import BOARDS, CPUS, DEFAULT_BOARD
from tflm_runtime.board.generate_and_measure import measure_tflite
from unas.errors import UnasError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tflm_runtime.board", description=__doc__)
    parser.add_argument("model", type=Path, help=".tflite file, or a folder with model.h + *.c")
    parser.add_argument("--cpu", type=str.lower, choices=sorted(CPUS), default=None,
                        help="core to compile for and emulate (default: the board's)")
    parser.add_argument("--board", type=str.lower, choices=sorted(BOARDS), default=DEFAULT_BOARD,
                        help=f"Flash/SRAM sizes to link for, from the table in "
                             f"tflm_runtime/board/targets.py (default {DEFAULT_BOARD})")
    parser.add_argument("--inputs", type=Path, default=None,
                        help=".npy of input samples: int8, or float (quantised with the .tflite "
                             "input's scale and zero point); default --samples random samples")
    parser.add_argument("--samples", type=int, default=2, help="random input samples (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="keep the build here (default: a temporary folder)")
    parser.add_argument("--stack-bytes", type=int, default=DEFAULT_STACK_BYTES,
                        help=f"stack reserved in SRAM (default {DEFAULT_STACK_BYTES})")
    parser.add_argument("--per-layer", action="store_true",
                        help="also time each kernel (the sources get a MODEL_LAYER_HOOK after each "
                             "statement of model_invoke unless they call it themselves)")
    parser.add_argument("--timeout", type=float, default=300.0, help="QEMU time limit, seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON record")
    return parser


def _load_inputs(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UnasError(f"{path}: expected a .npy file of int8 input samples ({error})") from None


def _summary(model: Path, m: BoardMeasurement) -> str:
    mem = m.memory
    counts = sorted(set(m.instructions))
    said = str(counts[0]) if len(counts) == 1 else f"{min(counts)}..{max(counts)}"
    lines = [
        f"{model} on {m.board} ({m.cpu}, QEMU {m.machine})",
        f"  instructions/inference: {said} ({len(m.instructions)} samples)",
        "  outputs: " + ("bit-exact with the host build" if m.host_outputs is not None
                         else "not checked"),
        f"  Flash: {mem.flash_bytes} of {mem.flash_capacity} B (model code {mem.model_code_bytes}, "
        f"model constants {mem.model_const_bytes}, harness {mem.harness_bytes}, "
        f"libraries {mem.library_bytes})",
        f"  SRAM: {mem.ram_bytes} of {mem.ram_capacity} B linked (model .bss "
        f"{mem.model_bss_bytes}, .data {mem.model_data_bytes}, stack reserved "
        f"{mem.stack_reserved_bytes}); peak {mem.peak_ram_bytes} B with the measured stack "
        f"{mem.stack_used_bytes} B",
    ]
    if m.layer_instructions:
        lines.append("  instructions per layer (first sample):")
        lines += [f"    {count:>12}  {name}"
                  for count, name in zip(m.layer_instructions[0], m.layer_names or ())]
    return "\n".join(lines)


def _record(model: Path, m: BoardMeasurement) -> dict[str, Any]:
    return {"model": str(model), "cpu": m.cpu, "board": m.board, "machine": m.machine,
            "instructions": list(m.instructions),
            "layer_instructions": [list(x) for x in m.layer_instructions or []],
            "layer_names": list(m.layer_names or []),
            "bit_exact_with_host": m.host_outputs is not None,
            "memory": asdict(m.memory) | {"peak_ram_bytes": m.memory.peak_ram_bytes},
            "calibration": asdict(m.calibration), "outputs": m.outputs.tolist()}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        inputs = _load_inputs(args.inputs) if args.inputs is not None else None
        options: dict[str, Any] = dict(cpu=args.cpu, board=args.board, inputs=inputs,
                                       rng=np.random.default_rng(args.seed), samples=args.samples,
                                       stack_bytes=args.stack_bytes, per_layer=args.per_layer,
                                       timeout_s=args.timeout)
        if args.model.is_dir():
            result = measure_c_model(args.model, build_dir=args.build_dir, **options)
        else:
            result = measure_tflite(args.model, build_dir=args.build_dir, **options)
    except UnasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(_record(args.model, result)) if args.json else _summary(args.model, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
