"""``pareto.csv`` and ``pareto/<id>.json``: the Pareto front of a search, one row/file per model."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from unas.files import atomic_write_json, atomic_write_text
from unas.report.context import ReportContext
from unas.search.objectives import OBJECTIVE_NAMES

PARETO_COLUMNS = ["id", *OBJECTIVE_NAMES, "test_error", "test_accuracy", "within_bounds",
                  "pruning_target", "round", "model_path", "architecture"]


def write_pareto_csv(ctx: ReportContext) -> list[Path]:
    """``pareto.csv``: one row per front model, lowest validation error first."""
    extra = sorted({k for cols in ctx.extra_columns.values() for k in cols})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PARETO_COLUMNS + extra)
    writer.writeheader()
    for r in ctx.front:
        row = {"id": r.id, **r.objectives.to_dict(),  # type: ignore[union-attr]
               "test_error": r.test_error,
               "test_accuracy": None if r.test_error is None else 1.0 - r.test_error,
               "within_bounds": ctx.within_bounds(r), "pruning_target": r.pruning_target,
               "round": r.round, "model_path": r.model_path,
               "architecture": f"pareto/{r.id}.json", **ctx.extra_columns.get(r.id, {})}
        writer.writerow(row)
    path = ctx.out_dir / "pareto.csv"
    atomic_write_text(path, buffer.getvalue())
    return [path]


def write_pareto_models(ctx: ReportContext) -> list[Path]:
    """``pareto/<id>.json`` for every front model."""
    paths = []
    for r in ctx.front:
        path = ctx.out_dir / "pareto" / f"{r.id}.json"
        atomic_write_json(path, {
            "id": r.id, "architecture": r.final_arch or r.arch, "proposed_architecture": r.arch,
            "objectives": r.objectives.to_dict(),  # type: ignore[union-attr]
            "test_error": r.test_error,
            "test_accuracy": None if r.test_error is None else 1.0 - r.test_error,
            "within_bounds": ctx.within_bounds(r), "pruning_target": r.pruning_target,
            "model": r.model_path,
            "model_exists": bool(r.model_path) and (ctx.out_dir / str(r.model_path)).exists()})
        paths.append(path)
    return paths
