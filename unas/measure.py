"""``python -m unas.measure model.tflite [--data CONFIG] [--repeats N]``: one model in TFLM.

Prints a table: int8 test accuracy in TFLM (with ``--data``, the experiment YAML whose test
split to use), TFLM's arena (non-persistent head = activations + scratch; persistent tail =
64-bit host structs; total; and the smallest arena that runs, by bisection), the project's
predictions of the head (working-set peak and exact replay of TFLM's planner), weight bytes,
MACs and mean host latency per inference. The measuring is :mod:`tflm_runtime.bench`, which
works on any ``.tflite`` TFLM runs; the predictions need operators the project models (a last
line says what the code generator would refuse). TFLM runs in a child process first, so a model
or arena size on which the host TFLM crashes is an error, not exit 139. This entry point adds
the experiment's dataset.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from unas.errors import UnasError


def test_split(config: str) -> tuple[np.ndarray, np.ndarray]:
    """The test split (inputs, labels) of the experiment YAML ``config``, loaded with its data
    seed (the split the search used)."""
    from unas.config import load_config
    from unas.data import load_dataset

    cfg = load_config(config)
    splits = load_dataset(cfg.dataset, np.random.default_rng(cfg.search.seed))
    return splits.x_test, splits.y_test


test_split.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.measure",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("model", help=".tflite file")
    parser.add_argument("--data", help="experiment YAML whose test split to use")
    parser.add_argument("--repeats", type=int, default=50, help="invokes timed (default 50)")
    args = parser.parse_args(argv)
    try:
        from tflm_runtime.bench import bench_tflite, format_table
        from tflm_runtime.tflite_model import read_tflite

        path = Path(args.model)
        read_tflite(path)  # one-line error for a missing or malformed file
        x_test, y_test = test_split(args.data) if args.data else (None, None)
        row = bench_tflite(path.read_bytes(), x_test, y_test, args.repeats, path=str(path))
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(row, path.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
