"""Ranking (w, r) configurations by the FLOPs of their models that fit (MCUNet section 3.1).

A configuration's quality is the mean FLOPs of its sampled architectures whose peak memory fits
the SRAM budget and whose int8 size fits the Flash budget: a space that holds bigger models
under the constraints tends to give a more accurate searched model (MCUNet Figure 3 / 10).
FLOPs are counted as MACs, MCUNet's convention (its "FLOPs" are multiply-accumulates; the
ranking is the same for 2 x MACs), as the resource model counts them (taps inside the input).

>>> import numpy as np
>>> from unas.space_opt.sweep import ConfigSamples
>>> a = ConfigSamples(0.5, 96, np.array([10, 20, 30]), np.array([1, 2, 9]), np.array([1, 1, 1]))
>>> b = ConfigSamples(0.3, 96, np.array([15, 16, 17]), np.array([1, 1, 1]), np.array([1, 1, 1]))
>>> [s.label for s in rank_configurations([a, b], sram_bytes=5, flash_bytes=5)]
['w0.3-r96', 'w0.5-r96']
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unas.space_opt.sweep import ConfigSamples

#: Quantiles of the fitting models' FLOPs reported per configuration.
QUANTILES = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class ConfigScore:
    """One configuration under one budget: how many samples fit and their FLOPs (= MACs)."""

    width_mult: float
    resolution: int
    samples: int
    fitting: int
    mean_flops: float  # NaN when nothing fits
    quantile_flops: tuple[float, ...]  # at QUANTILES; NaN when nothing fits
    max_flops: int  # 0 when nothing fits

    @property
    def fit_fraction(self) -> float:
        return self.fitting / self.samples

    @property
    def label(self) -> str:
        return f"w{self.width_mult:g}-r{self.resolution}"


def fitting_mask(config: ConfigSamples, sram_bytes: int, flash_bytes: int) -> np.ndarray:
    """Which samples satisfy ``peak <= sram`` and ``size <= flash``."""
    return (config.peak_bytes <= sram_bytes) & (config.size_bytes <= flash_bytes)


def score(config: ConfigSamples, sram_bytes: int, flash_bytes: int) -> ConfigScore:
    """Fraction fitting and FLOPs statistics of the fitting samples of ``config``."""
    flops = config.macs[fitting_mask(config, sram_bytes, flash_bytes)]
    if flops.size:
        mean = float(flops.mean())
        quantiles = tuple(float(q) for q in np.quantile(flops, QUANTILES))
        top = int(flops.max())
    else:
        mean, quantiles, top = float("nan"), tuple(float("nan") for _ in QUANTILES), 0
    return ConfigScore(config.width_mult, config.resolution, int(config.macs.size),
                       int(flops.size), mean, quantiles, top)


def rank_configurations(configs: Sequence[ConfigSamples], sram_bytes: int, flash_bytes: int,
                        min_fit_fraction: float = 0.0) -> list[ConfigScore]:
    """Configurations where at least one sample and at least ``min_fit_fraction`` of the samples
    fit, best (highest mean FLOPs) first; ties go to the larger fitting fraction, then to the
    smaller ``(w, r)``."""
    scores = [score(c, sram_bytes, flash_bytes) for c in configs]
    kept = [s for s in scores if s.fitting >= 1 and s.fit_fraction >= min_fit_fraction]
    return sorted(kept, key=lambda s: (-s.mean_flops, -s.fitting, s.width_mult, s.resolution))


@dataclass(frozen=True)
class GridCell:
    """The best configuration for one (SRAM, Flash) budget, or None when nothing fits."""

    sram_bytes: int
    flash_bytes: int
    best: ConfigScore | None


def grid_search(configs: Sequence[ConfigSamples], srams: Sequence[int], flashes: Sequence[int],
                min_fit_fraction: float = 0.0) -> list[GridCell]:
    """The best configuration under every SRAM x Flash budget (MCUNet Figure 12). The samples
    do not depend on the budget, so one sweep serves the whole grid."""
    cells = []
    for flash in flashes:
        for sram in srams:
            ranked = rank_configurations(configs, sram, flash, min_fit_fraction)
            cells.append(GridCell(sram, flash, ranked[0] if ranked else None))
    return cells
