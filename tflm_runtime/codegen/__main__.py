"""CLI: ``python -m tflm_runtime.codegen model.tflite -o OUT/ [--verbose]``."""
from __future__ import annotations

import argparse
import sys

from unas.errors import UnasError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tflm_runtime.codegen",
        description="Generate plain C (model.c/model.h + kernels) from an int8 .tflite model.")
    parser.add_argument("model", help="the .tflite file")
    parser.add_argument("-o", "--out", required=True, help="output directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the memory plan")
    args = parser.parse_args(argv)
    from tflm_runtime.codegen.generator import generate

    try:
        result = generate(args.model, args.out)
    except UnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        print(result.plan.describe())
    print(f"wrote {', '.join(result.sources)} to {result.out_dir}: SRAM {result.sram_bytes} bytes "
          f"(the arena), constants {result.const_bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
