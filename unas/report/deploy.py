"""The report step that deploys the Pareto models of a search folder.

For each chosen front model (:func:`select_models`): the int8 ``.tflite`` the export step wrote
(``DIR/tflite/<id>.tflite``), or a fresh export when that step did not run; then
:func:`unas.report.deploy_model.deploy_tflite` with the generated C kept in ``DIR/deploy/<id>/``.
The figures go into ``ctx.extra_columns`` (so ``pareto.csv`` gets them when the step runs before
``write_pareto_csv``) and from there into the summary (:mod:`unas.report.summary`).

A model that cannot be deployed (no model file, unsupported operator, dataset missing) gets a
``deploy_status`` saying why; the report goes on.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from unas.report.deploy_model import (
    DEFAULT_BOARD,
    DEFAULT_BOARD_SAMPLES,
    DEFAULT_CHECK_SAMPLES,
    DEFAULT_CPU,
    deploy_tflite,
    one_line,
)
from unas.errors import UnasError
from unas.report.tflm import measure_model

#: At most this many front models are deployed (within all bounds first, then the rest, each
#: group lowest validation error first).
DEFAULT_MAX_MODELS = 5


def select_models(ctx: Any, limit: int = DEFAULT_MAX_MODELS) -> list[Any]:
    """The front models to deploy: those within all bounds, then the others, each group by
    validation error, at most ``limit``."""
    inside = [r for r in ctx.front if ctx.within_bounds(r)]
    outside = [r for r in ctx.front if not ctx.within_bounds(r)]
    return (inside + outside)[:max(0, limit)]


def _export(ctx: Any, record: Any, splits: Any, rng: np.random.Generator) -> Path:
    """The model's int8 ``.tflite``: the export step's, or exported now (filling its columns)."""
    columns = ctx.extra_columns.setdefault(record.id, {})
    if columns.get("tflite_path") and (ctx.out_dir / columns["tflite_path"]).is_file():
        return ctx.out_dir / columns["tflite_path"]
    if not record.model_path or not (ctx.out_dir / record.model_path).is_file():
        raise UnasError(f"model #{record.id}: no saved model file ({record.model_path})")
    tflite_path = ctx.out_dir / "tflite" / f"{record.id}.tflite"
    columns.update(measure_model(ctx.out_dir / record.model_path, splits, rng, tflite_path))
    columns["tflite_path"] = str(tflite_path.relative_to(ctx.out_dir))
    return tflite_path


def _deploy_one(ctx: Any, record: Any, splits: Any, rng: np.random.Generator, cpu: str,
                board: str, check_samples: int, board_samples: int) -> dict[str, Any]:
    tflite_path = _export(ctx, record, splits, rng)
    x = np.asarray(splits.x_test[:check_samples], dtype=np.float32)
    figures = deploy_tflite(tflite_path, ctx.out_dir / "deploy" / str(record.id), x, cpu=cpu,
                            board=board, board_samples=board_samples)
    columns = dataclasses.asdict(figures)
    instructions = columns["board_instructions"]
    macs = record.objectives.macs
    columns["board_instructions_per_mac"] = (
        round(instructions / macs, 3) if isinstance(instructions, int) and macs > 0
        else instructions if isinstance(instructions, str) else "unavailable: no MACs")
    columns["board_cpu"], columns["board"] = cpu, board
    return columns


def deploy_report_step(ctx: Any, limit: int = DEFAULT_MAX_MODELS, cpu: str = DEFAULT_CPU,
                       board: str = DEFAULT_BOARD, check_samples: int = DEFAULT_CHECK_SAMPLES,
                       board_samples: int = DEFAULT_BOARD_SAMPLES) -> list[Path]:
    """Report step: deploy the chosen front models; fills ``ctx.extra_columns`` (``deploy_*``,
    ``codegen_*``, ``board_*``, ``bit_exact`` and, when it exports, the export step's columns)
    and returns the generated ``model.c`` files."""
    from tqdm import tqdm

    chosen = select_models(ctx, limit)
    if not chosen:
        return []
    try:
        splits = ctx.splits()
    except UnasError as error:
        for record in chosen:
            ctx.extra_columns.setdefault(record.id, {})["deploy_status"] = (
                f"unavailable: {one_line(error)}")
        print(f"deploy: skipped, the test data is unavailable: {one_line(error)}", file=sys.stderr)
        return []
    rng = np.random.default_rng(ctx.config.search.seed)
    written: list[Path] = []
    for record in tqdm(chosen, desc="deploy (C, host, board)", file=sys.stderr):
        started = time.perf_counter()
        columns = ctx.extra_columns.setdefault(record.id, {})
        if (not columns.get("tflite_path")
                and not (record.model_path and (ctx.out_dir / record.model_path).is_file())):
            columns["deploy_status"] = f"skipped: no saved model file ({record.model_path})"
            continue
        try:
            columns.update(_deploy_one(ctx, record, splits, rng, cpu, board, check_samples,
                                       board_samples))
            columns["deploy_status"] = "ok"
            written.append(ctx.out_dir / "deploy" / str(record.id) / "model.c")
        except Exception as error:  # noqa: BLE001 - one model must not stop the report
            said = one_line(error) if isinstance(error, UnasError) else (
                f"{type(error).__name__}: {one_line(error)}")
            columns["deploy_status"] = f"failed: {said}"
            print(f"deploy: model #{record.id}: {columns['deploy_status']}", file=sys.stderr)
        columns["deploy_seconds"] = round(time.perf_counter() - started, 1)
    return written
