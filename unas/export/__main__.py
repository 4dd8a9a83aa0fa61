"""``python -m unas.export MODEL_OR_RESULT_DIR [--model ID] -o model.tflite [--data CONFIG]``

Exports a trained model to a deployable int8 ``.tflite`` (full-integer PTQ calibrated on the
training split, operators in the minimum-peak order, offline memory plan) and reports float vs
int8 test accuracy (int8 measured in TFLM) and the arena TFLM uses.

MODEL_OR_RESULT_DIR is a ``.keras`` file (then ``--data CONFIG`` names the experiment YAML whose
dataset to use) or a search output folder (its ``config.json`` gives the dataset; ``--model ID``
picks a model, default: the Pareto model with the lowest validation error).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from unas.errors import ConfigError, DataError, UnasError


def _resolve(args: argparse.Namespace) -> tuple[Path, object, int]:
    """(keras model path, splits, seed) for the command line."""
    from unas.report.context import load_context
    from unas.report.tflm import splits_for

    source = Path(args.source)
    if source.is_dir():
        ctx = load_context(source)
        if args.model is None:
            with_model = [r for r in ctx.front if r.model_path]
            if not with_model:
                raise DataError(f"{source}: no Pareto model has a saved model file")
            record = with_model[0]
        else:
            matches = [r for r in ctx.records if r.id == args.model]
            if not matches or not matches[0].model_path:
                raise DataError(f"{source}: --model {args.model}: no trained model with that id")
            record = matches[0]
        print(f"model #{record.id} ({record.model_path})", file=sys.stderr)
        splits, seed = splits_for(ctx, args.data)
        return source / str(record.model_path), splits, seed
    if source.suffix != ".keras" or not source.is_file():
        raise DataError(f"{source}: expected a .keras model file or a search output folder")
    if args.data is None:
        raise ConfigError(f"{source}: --data CONFIG is required with a .keras file "
                          "(the experiment YAML whose dataset to use)")
    from unas.config import load_config
    from unas.experiment import load_splits

    cfg = load_config(args.data)
    return source, load_splits(cfg), cfg.search.seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.export", description=__doc__.split("\n\n")[1])
    parser.add_argument("source", help=".keras file or search output folder")
    parser.add_argument("--model", type=int, help="model id in the search folder")
    parser.add_argument("-o", "--output", required=True, help="where to write the .tflite")
    parser.add_argument("--data", help="experiment YAML whose dataset to use")
    parser.add_argument("--num-samples", type=int, default=200,
                        help="calibration samples from the training split (default 200)")
    args = parser.parse_args(argv)
    try:
        from unas.paths import check_output_file
        from unas.report.tflm import measure_model

        if args.num_samples < 1:
            raise ConfigError(f"--num-samples: expected an integer >= 1, got {args.num_samples}")
        check_output_file(args.output, "-o")

        keras_path, splits, seed = _resolve(args)
        columns = measure_model(keras_path, splits, np.random.default_rng(seed), Path(args.output),
                                num_samples=args.num_samples)
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    print(f"float test accuracy  {columns['float_test_accuracy']:.4f}")
    print(f"int8 test accuracy   {columns['int8_test_accuracy']:.4f}  (TFLM; drop "
          f"{100 * columns['int8_accuracy_drop']:+.2f} points)")
    print(f"TFLM arena head      {columns['tflm_arena_head_bytes']} B (predicted "
          f"{columns['predicted_head_bytes']} B)")
    print(f"TFLM arena tail      {columns['tflm_arena_tail_bytes_host64']} B (64-bit host structs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
