"""The search's plots: ``plots/error_vs_<resource>.png`` and ``plots/progress.png``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from unas.files import atomic_write
from unas.report.context import ReportContext
from unas.search.objectives import RESOURCE_NAMES


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
        if r.trained and r.objectives is not None and r.objectives.within_resource_bounds(
                ctx.bounds.as_tuple()):
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
