"""Export every Pareto model of a search folder to int8, measure it in TFLM, extend pareto.csv.

For each front model with a saved ``models/<id>.keras``: int8 PTQ calibrated on the training
split, operators reordered to the minimum-peak schedule, offline memory plan, written to
``DIR/tflite/<id>.tflite``; then int8 test accuracy in TFLM and TFLM's arena figures. The
columns added to ``pareto.csv`` are :data:`TFLM_COLUMNS`.

From the report (:mod:`unas.report.steps`), as a step that runs before ``write_pareto_csv``::

    REPORT_STEPS.insert(0, tflm_report_step)

or on its own, on a finished search: ``export_and_measure("runs/x")`` (rewrites pareto.csv).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from unas.errors import DataError
from unas.export.quantize import DEFAULT_NUM_SAMPLES
from unas.experiment import load_splits
from unas.report.context import load_context
from unas.report.pareto import write_pareto_csv
from unas.files import atomic_write_bytes

#: pareto.csv columns this step adds (bytes; accuracies on the test split).
TFLM_COLUMNS = ("float_test_accuracy", "int8_test_accuracy", "int8_accuracy_drop",
                "tflm_arena_head_bytes", "tflm_arena_tail_bytes_host64", "tflm_arena_total_bytes",
                "predicted_head_bytes", "tflite_path")


def splits_for(ctx: Any, data_config: str | None = None) -> tuple[Any, int]:
    """The dataset splits and data seed to export with: the search's (``ctx.splits()``), or
    those of the experiment YAML ``data_config``."""
    if data_config is None:
        return ctx.splits(), ctx.config.search.seed
    from unas.config import load_config

    cfg = load_config(data_config)
    return load_splits(cfg), cfg.search.seed


def measure_model(keras_path: Path, splits, rng: np.random.Generator, tflite_path: Path,
                  progress: bool = True, num_samples: int = DEFAULT_NUM_SAMPLES) -> dict[str, Any]:
    """Export one ``.keras`` model, write its ``.tflite``, return its :data:`TFLM_COLUMNS`."""
    from tqdm import tqdm

    from unas.export.pipeline import export_keras
    from unas.tfenv import keras

    if not keras_path.exists():
        raise DataError(f"{keras_path}: trained model file not found")
    try:
        model = keras.models.load_model(keras_path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras, zipfile and h5py each raise their own kinds
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
        raise DataError(f"{keras_path}: cannot load the Keras model (empty, truncated or not a "
                        f".keras file? {reason})") from None

    def bar(it):
        return tqdm(it, total=len(splits.x_test), desc=f"int8 {keras_path.stem}", file=sys.stderr,
                    leave=False, disable=not progress)

    result = export_keras(model, splits.x_train, splits.x_test, splits.y_test, rng, num_samples,
                          progress=bar, name=str(tflite_path))
    try:
        atomic_write_bytes(tflite_path, result.deployed.tflite)
    except OSError as error:
        raise DataError(f"{tflite_path}: cannot write the .tflite ({error.strerror})") from None
    usage = result.arena_usage
    return {
        "float_test_accuracy": result.float_accuracy,
        "int8_test_accuracy": result.int8_accuracy,
        "int8_accuracy_drop": result.accuracy_drop,
        "tflm_arena_head_bytes": usage.nonpersistent_bytes,
        "tflm_arena_tail_bytes_host64": usage.persistent_bytes,
        "tflm_arena_total_bytes": usage.total_bytes,
        "predicted_head_bytes": result.deployed.head_bytes,
        "tflite_path": str(tflite_path),
    }


def tflm_report_step(ctx, data_config: str | None = None) -> list[Path]:
    """Report step: export and measure every front model; fills ``ctx.extra_columns`` (so it
    must run before ``write_pareto_csv``) and returns the ``.tflite`` files written."""
    from tqdm import tqdm

    splits, seed = splits_for(ctx, data_config)
    rng = np.random.default_rng(seed)
    written: list[Path] = []
    for record in tqdm(ctx.front, desc="export Pareto models", file=sys.stderr):
        if not record.model_path or not (ctx.out_dir / record.model_path).is_file():
            print(f"export: model #{record.id} has no saved model file; skipped", file=sys.stderr)
            continue
        tflite_path = ctx.out_dir / "tflite" / f"{record.id}.tflite"
        columns = measure_model(ctx.out_dir / record.model_path, splits, rng, tflite_path)
        columns["tflite_path"] = str(tflite_path.relative_to(ctx.out_dir))
        ctx.extra_columns.setdefault(record.id, {}).update(columns)
        written.append(tflite_path)
    return written


def export_and_measure(result_dir: str | os.PathLike[str], data_config: str | None = None
                       ) -> list[Path]:
    """Export/measure the front of a finished search and rewrite its ``pareto.csv`` with the
    TFLM columns; returns the files written."""
    ctx = load_context(result_dir)
    written = tflm_report_step(ctx, data_config)
    return written + write_pareto_csv(ctx)
