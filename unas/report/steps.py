"""The report of a search folder as a list of steps (:data:`REPORT_STEPS`).

Each step takes the :class:`~unas.report.context.ReportContext` and returns the files it wrote.
The deploy step adds ``pareto.csv`` columns, so it runs before ``write_pareto_csv``; the summary
needs its figures, so it runs last.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unas.report.context import ReportContext, load_context
from unas.report.deploy import deploy_report_step
from unas.report.pareto import write_pareto_csv, write_pareto_models
from unas.report.plots import plot_error_vs_resources, plot_progress
from unas.report.summary import write_summary

ReportStep = Callable[[ReportContext], list[Path]]

REPORT_STEPS: list[ReportStep] = [deploy_report_step, write_pareto_csv, write_pareto_models,
                                  plot_error_vs_resources, plot_progress, write_summary]


def _context(source: ReportContext | str | Path) -> ReportContext:
    return source if isinstance(source, ReportContext) else load_context(source)


def write_report(source: ReportContext | str | Path, steps: list[ReportStep] | None = None
                 ) -> list[Path]:
    """Run every report step on a search (its folder, or a context already loaded); returns the
    files written."""
    ctx = _context(source)
    written: list[Path] = []
    for step in REPORT_STEPS if steps is None else steps:
        written.extend(step(ctx))
    return written


def summary(source: ReportContext | str | Path) -> str:
    """A few lines about a finished search (for the CLIs)."""
    ctx = _context(source)
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
