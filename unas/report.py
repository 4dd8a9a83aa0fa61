"""Report of a search folder: ``python -m unas.report DIR``.

Writes, atomically, into ``DIR``:

- ``pareto.csv``: the Pareto front of all trained candidates (non-dominated on validation error,
  peak memory, model size and MACs) with test error/accuracy and a ``within_bounds`` column;
- ``pareto/<id>.json``: each front model's architecture (after pruning), objectives, test
  accuracy and its trained model file (``models/<id>.keras``, written by the worker);
- ``plots/error_vs_<resource>.png``: validation error against each resource, front highlighted;
- ``plots/progress.png``: validation error of every candidate over the rounds and the best
  error within the resource bounds so far.

The report is a list of steps (:data:`REPORT_STEPS`); each takes a :class:`ReportContext` and
returns the files it wrote. Later stages (e.g. int8 export and TFLM measurements) append their
own step, or add columns with :data:`PARETO_COLUMNS`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unas.config import ObjectiveBounds, parse_config
from unas.deploy import deploy_report_step, summary_table, write_summary
from unas.errors import UnasError
from unas.experiment import CONFIG_SNAPSHOT
from unas.search.evolution import EVALUATIONS_FILE, pareto_front
from unas.files import JsonLines, atomic_write, atomic_write_json, atomic_write_text
from unas.search.objectives import OBJECTIVE_NAMES, RESOURCE_NAMES
from unas.search.records import EvaluationRecord


@dataclass
class ReportContext:
    """Everything a report step may use. ``extra_columns`` maps a record id to additional
    ``pareto.csv`` columns (steps that run before :func:`write_pareto_csv` may fill it)."""

    out_dir: Path
    records: list[EvaluationRecord]
    front: list[EvaluationRecord]
    bounds: ObjectiveBounds
    config: dict[str, Any]
    extra_columns: dict[int, dict[str, Any]] = field(default_factory=dict)

    def within_bounds(self, record: EvaluationRecord) -> bool:
        return record.objectives is not None and record.objectives.within(self.bounds.as_tuple())


ReportStep = Callable[[ReportContext], list[Path]]


def load_context(out_dir: str | Path) -> ReportContext:
    """Read a search folder (its log and config snapshot)."""
    out = Path(out_dir)
    snapshot = out / CONFIG_SNAPSHOT
    if not snapshot.exists():
        raise UnasError(f"{out}: not a search output folder (no {CONFIG_SNAPSHOT})")
    meta = json.loads(snapshot.read_text())
    cfg = parse_config(meta["config"], str(snapshot), check_dataset=False, check_space=False)
    records = [EvaluationRecord.from_dict(line) for line in JsonLines(out / EVALUATIONS_FILE).read()]
    records.sort(key=lambda r: r.id)
    front = sorted(pareto_front(records), key=lambda r: r.objectives.error)  # type: ignore[union-attr]
    return ReportContext(out_dir=out, records=records, front=front, bounds=cfg.objectives,
                         config=meta)


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


def _save_figure(fig: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_error_vs_resources(ctx: ReportContext) -> list[Path]:
    """One scatter plot per resource: all trained candidates, the front highlighted, bounds dashed."""
    plt = _pyplot()
    trained = [r for r in ctx.records if r.trained and r.objectives is not None]
    front_ids = {r.id for r in ctx.front}
    paths = []
    for index, name in enumerate(RESOURCE_NAMES, start=1):
        fig, ax = plt.subplots(figsize=(6, 4))
        for group, style in ((False, dict(c="0.7", s=12, label="evaluated")),
                             (True, dict(c="tab:red", s=28, label="Pareto front"))):
            pts = [r.objectives.as_tuple() for r in trained if (r.id in front_ids) == group]  # type: ignore[union-attr]
            if pts:
                ax.scatter([p[index] for p in pts], [p[0] for p in pts], **style)
        ax.axvline(ctx.bounds.as_tuple()[index], ls="--", c="k", lw=0.8, label="bound")
        ax.axhline(ctx.bounds.error, ls=":", c="k", lw=0.8)
        ax.set_xlabel(name)
        ax.set_ylabel("validation error")
        if trained and min(r.objectives.as_tuple()[index] for r in trained) > 0:  # type: ignore[union-attr]
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # decade labels only
        ax.legend(loc="upper right", fontsize=8)
        path = ctx.out_dir / "plots" / f"error_vs_{name}.png"
        _save_figure(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_progress(ctx: ReportContext) -> list[Path]:
    """Validation error per round and the best error within the resource bounds so far."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    trained = [r for r in ctx.records if r.trained and r.objectives is not None]
    if trained:
        ax.scatter([r.round for r in trained], [r.objectives.error for r in trained],  # type: ignore[union-attr]
                   s=8, c="0.6", label="candidate")
    best, xs, ys = None, [], []
    for r in ctx.records:
        if r.trained and r.objectives is not None and all(
                v <= b for v, b in zip(r.objectives.as_tuple()[1:], ctx.bounds.as_tuple()[1:])):
            best = r.objectives.error if best is None else min(best, r.objectives.error)
        if best is not None:
            xs.append(r.round)
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", c="tab:blue", label="best within resource bounds")
    ax.set_xlabel("round")
    ax.set_ylabel("validation error")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    path = ctx.out_dir / "plots" / "progress.png"
    _save_figure(fig, path)
    plt.close(fig)
    return [path]


# The deploy step adds pareto.csv columns, so it runs first; the summary needs its figures.
REPORT_STEPS: list[ReportStep] = [deploy_report_step, write_pareto_csv, write_pareto_models,
                                  plot_error_vs_resources, plot_progress, write_summary]


def write_report(out_dir: str | Path, steps: list[ReportStep] | None = None) -> list[Path]:
    """Run every report step on the search in ``out_dir``; returns the files written."""
    ctx = load_context(out_dir)
    written: list[Path] = []
    for step in REPORT_STEPS if steps is None else steps:
        written.extend(step(ctx))
    return written


def summary(out_dir: str | Path) -> str:
    """A few lines about a finished search (for the CLIs)."""
    ctx = load_context(out_dir)
    statuses: dict[str, int] = {}
    for r in ctx.records:
        kind = "reused" if r.reused_from is not None else r.status.split(":")[0]
        statuses[kind] = statuses.get(kind, 0) + 1
    lines = [f"{len(ctx.records)} candidates: " + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())),
             f"Pareto front: {len(ctx.front)} models, "
             f"{sum(ctx.within_bounds(r) for r in ctx.front)} within all bounds"]
    for r in ctx.front[:10]:
        o = r.objectives
        lines.append(f"  #{r.id}: val error {o.error:.4f}, test error {r.test_error:.4f}, "  # type: ignore[union-attr]
                     f"peak {o.peak_memory_bytes} B, size {o.model_size_bytes} B, MACs {o.macs}"  # type: ignore[union-attr]
                     + ("" if ctx.within_bounds(r) else "  (outside bounds)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unas.report",
                                     description="Pareto table, model files and plots of a search folder.")
    parser.add_argument("out_dir", help="the search's output folder")
    args = parser.parse_args(argv)
    try:
        written = write_report(args.out_dir)
        print(summary(args.out_dir))
        print(summary_table(args.out_dir))
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files under {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
