"""Outputs of the search-space optimiser: tables, MCUNet-style plots and the search YAML.

Every file is written atomically (:func:`unas.files.atomic_write`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unas.space_opt.boards import format_bytes
from unas.space_opt.rank import QUANTILES, ConfigScore, GridCell, fitting_mask
from unas.space_opt.sweep import ConfigSamples
from unas.files import atomic_write, atomic_write_text


def _mflops(value: float) -> str:
    return "–" if math.isnan(value) else f"{value / 1e6:.1f}M"


def ranking_table(scores: Sequence[ConfigScore], limit: int | None = None) -> str:
    """Markdown table: configuration, fraction fitting, mean and quantile FLOPs (= MACs)."""
    qs = " | ".join(f"p{round(q * 100)} FLOPs" for q in QUANTILES)
    lines = [f"| rank | configuration | fit | mean FLOPs | {qs} | max FLOPs |",
             "|---:|---|---:|---:|" + "---:|" * len(QUANTILES) + "---:|"]
    for rank, s in enumerate(scores[:limit], start=1):
        quantiles = " | ".join(_mflops(q) for q in s.quantile_flops)
        lines.append(f"| {rank} | {s.label} | {s.fitting}/{s.samples} ({s.fit_fraction:.1%}) | "
                     f"{_mflops(s.mean_flops)} | {quantiles} | {_mflops(s.max_flops)} |")
    return "\n".join(lines) + "\n"


def grid_table(cells: Sequence[GridCell]) -> str:
    """Markdown table of the chosen configuration per (Flash row, SRAM column) budget."""
    srams = sorted({c.sram_bytes for c in cells})
    flashes = sorted({c.flash_bytes for c in cells})
    by_budget = {(c.sram_bytes, c.flash_bytes): c for c in cells}
    lines = ["| Flash \\ SRAM | " + " | ".join(format_bytes(s) for s in srams) + " |",
             "|---|" + "---|" * len(srams)]
    for flash in flashes:
        row = []
        for sram in srams:
            best = by_budget[(sram, flash)].best
            row.append("none fits" if best is None else
                       f"{best.label} ({_mflops(best.mean_flops)}, {best.fit_fraction:.0%})")
        lines.append(f"| {format_bytes(flash)} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_flops_cdf(path: str | Path, configs: Sequence[ConfigSamples],
                   scores: Sequence[ConfigScore], sram_bytes: int, flash_bytes: int,
                   top: int = 10) -> Path:
    """MCUNet Figure 3: the CDF of the fitting models' FLOPs for the ``top`` configurations,
    legend ``w{width}-r{resolution} | {mean FLOPs}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_label = {c.label: c for c in configs}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    for i, s in enumerate(scores[:top]):
        config = by_label[s.label]
        flops = np.sort(config.macs[fitting_mask(config, sram_bytes, flash_bytes)]) / 1e6
        cdf = np.arange(1, flops.size + 1) / flops.size
        ax.step(flops, cdf, where="post", color=colours[i % 10], lw=2.2 if i == 0 else 1.4,
                ls="-" if i < 5 else "--", label=f"{s.label} | {s.mean_flops / 1e6:.1f}M")
    ax.axhline(0.8, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("FLOPs (M) of models that fit (MACs)")
    ax.set_ylabel("cumulative probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"top {min(top, len(scores))} (w, r) spaces under "
                 f"{format_bytes(sram_bytes)} SRAM / {format_bytes(flash_bytes)} Flash")
    ax.legend(fontsize=7, loc="lower right", title="w-r | mean FLOPs", title_fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)


def plot_grid(path: str | Path, cells: Sequence[GridCell]) -> Path:
    """MCUNet Figure 12: chosen width multiplier and resolution per SRAM x Flash budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    srams = sorted({c.sram_bytes for c in cells})
    flashes = sorted({c.flash_bytes for c in cells})
    by_budget = {(c.sram_bytes, c.flash_bytes): c.best for c in cells}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, field, title, cmap in ((axes[0], "width_mult", "chosen width multiplier w", "Blues"),
                                   (axes[1], "resolution", "chosen resolution r", "Oranges")):
        values = np.full((len(flashes), len(srams)), np.nan)
        for i, flash in enumerate(flashes):
            for j, sram in enumerate(srams):
                best = by_budget[(sram, flash)]
                if best is not None:
                    values[i, j] = getattr(best, field)
        image = ax.imshow(values, origin="lower", cmap=cmap, aspect="auto")
        for i in range(len(flashes)):
            for j in range(len(srams)):
                best = by_budget[(srams[j], flashes[i])]
                text = "–" if best is None else f"{getattr(best, field):g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(srams)), [format_bytes(s) for s in srams])
        ax.set_yticks(range(len(flashes)), [format_bytes(f) for f in flashes])
        ax.set_xlabel("SRAM budget (peak memory)")
        ax.set_ylabel("Flash budget (model size)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.85)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)


def search_config(best: ConfigScore, sram_bytes: int, flash_bytes: int, engine: str,
                  template: dict[str, Any] | None = None, dataset: str = "cifar10",
                  error_bound: float = 0.5) -> dict[str, Any]:
    """A search config (the format of :mod:`unas.config`) for the MBConv space fixed at
    ``best``'s (w, r): the SRAM / Flash budgets become the peak-memory / size bounds, the MACs
    bound is the largest fitting model seen, and the dataset is resized to ``r x r``.

    ``template`` (a decoded experiment YAML) supplies every other section and the dataset;
    its pruning is switched off (structured pruning supports the ``cnn`` space only).
    """
    config: dict[str, Any] = dict(template or {})
    data = dict(config.get("dataset") or {"name": dataset})
    data["image_size"] = [best.resolution, best.resolution]
    config["dataset"] = data
    config["search_space"] = {"name": "mbconv", "bounds": {"width_mult": best.width_mult,
                                                          "resolution": best.resolution}}
    objectives = dict(config.get("objectives") or {"error": error_bound})
    objectives.update(peak_memory_bytes=int(sram_bytes), model_size_bytes=int(flash_bytes),
                      macs=int(best.max_flops))
    config["objectives"] = objectives
    config["target"] = {**dict(config.get("target") or {}), "engine": engine}
    if isinstance(config.get("pruning"), dict) and config["pruning"].get("enabled"):
        # structured pruning (unas.train.pruning) works on the cnn space's op plans only
        config["pruning"] = {**config["pruning"], "enabled": False}
    return config


def write_search_config(path: str | Path, config: dict[str, Any], header: str) -> Path:
    """Write ``config`` as YAML with ``header`` as leading comment lines."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return atomic_write_text(path, comment + yaml.safe_dump(config, sort_keys=False))
