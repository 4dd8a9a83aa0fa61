"""TinyNAS search-space optimisation: pick the MBConv space's (w, r) for a memory budget.

MCUNet (Lin et al., 2020) section 3.1: for every width multiplier ``w`` and input resolution
``r`` (108 configurations) sample ``m`` architectures, keep those whose exact peak memory fits
the SRAM budget and whose int8 size fits the Flash budget, and choose the configuration whose
fitting models have the largest mean FLOPs (counted as MACs). ``--grid`` repeats the choice over
SRAM x Flash budgets (MCUNet Figure 12).

Usage::

    python -m unas.space_opt --board stm32f746                   # 320KB SRAM, 1MB Flash
    python -m unas.space_opt --sram 256KB --flash 1MB --engine tflm --samples 300
    python -m unas.space_opt --grid --samples 1000 --out results/space_opt_grid

Outputs in ``--out`` (default ``results/space_opt``): ``ranking.md`` (every configuration with
fitting models, best first), ``flops_cdf.png`` (Figure 3), ``search.yaml`` (a search config for
``python -m unas.run`` with the MBConv space fixed at the best (w, r)); with ``--grid``:
``grid.md`` and ``grid.png``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from search_spaces.mbconv import RESOLUTIONS, WIDTH_MULTS
from unas.space_opt.boards import BOARDS, format_bytes, get_board, parse_bytes
from unas.errors import ConfigError, UnasError
from unas.resources.engine import DEFAULT_ENGINE, ENGINES
from unas.space_opt.rank import ConfigScore, GridCell, grid_search, rank_configurations
from unas.files import atomic_write_text
from unas.space_opt.report import (grid_table, plot_flops_cdf, plot_grid,
                                   ranking_table, search_config, write_search_config)
from unas.space_opt.sweep import SweepResult, sweep

#: Configurations where fewer samples fit are ignored: their mean FLOPs rests on a handful of
#: networks, and a search there would mostly draw networks that do not fit.
DEFAULT_MIN_FIT_FRACTION = 0.01
DEFAULT_GRID_SRAM = ("192KB", "256KB", "320KB", "384KB", "448KB", "512KB")
DEFAULT_GRID_FLASH = ("512KB", "768KB", "1MB", "1536KB", "2MB")


@dataclass(frozen=True)
class Budget:
    """SRAM (peak memory) and Flash (model size) limits in bytes."""

    sram_bytes: int
    flash_bytes: int

    def __str__(self) -> str:
        return f"{format_bytes(self.sram_bytes)} SRAM / {format_bytes(self.flash_bytes)} Flash"


@dataclass
class Optimisation:
    """Everything one run found: the sweep, the ranking under the budget, the grid."""

    sweep: SweepResult
    budget: Budget | None
    ranking: list[ConfigScore]
    grid: list[GridCell]

    @property
    def best(self) -> ConfigScore | None:
        return self.ranking[0] if self.ranking else None


def optimise(budget: Budget | None, *, samples: int = 1000, seed: int = 0,
             engine: str = DEFAULT_ENGINE, widths: Sequence[float] = WIDTH_MULTS,
             resolutions: Sequence[int] = RESOLUTIONS, input_channels: int = 3,
             num_classes: int = 1000, workers: int = 1,
             min_fit_fraction: float = DEFAULT_MIN_FIT_FRACTION,
             verify_every: int = 100,
             grid: tuple[Sequence[int], Sequence[int]] | None = None,
             progress: bool = True) -> Optimisation:
    """Sweep the configurations once, then rank them under ``budget`` and/or every budget of
    ``grid`` (SRAM list, Flash list). Raises :class:`UnasError` if nothing fits ``budget``.

    >>> run = optimise(Budget(64 * 1024, 512 * 1024), samples=4, widths=[0.2, 0.3],
    ...                resolutions=[48], progress=False)
    >>> run.best.label
    'w0.3-r48'
    """
    configurations = [(w, r) for w in widths for r in resolutions]
    result = sweep(configurations, samples, seed, engine=engine, input_channels=input_channels,
                   num_classes=num_classes, workers=workers, verify_every=verify_every,
                   progress=progress)
    ranking: list[ConfigScore] = []
    if budget is not None:
        ranking = rank_configurations(result.configs, budget.sram_bytes, budget.flash_bytes,
                                      min_fit_fraction)
        if not ranking:
            smallest_peak = min(int(c.peak_bytes.min()) for c in result.configs)
            smallest_size = min(int(c.size_bytes.min()) for c in result.configs)
            raise UnasError(
                f"no configuration has {min_fit_fraction:.1%} (and at least one) of its "
                f"samples fitting {budget}; smallest peak seen {format_bytes(smallest_peak)}, "
                f"smallest size {format_bytes(smallest_size)}: raise the budget or --samples")
    cells = grid_search(result.configs, *grid, min_fit_fraction) if grid else []
    return Optimisation(result, budget, ranking, cells)


# ---- command line ---------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise ConfigError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m unas.space_opt", description=__doc__.split("\n\n")[0])
    p.add_argument("--board", help=f"take SRAM and Flash from a board: {', '.join(BOARDS)}")
    p.add_argument("--sram", help="SRAM budget for peak memory, e.g. 320KB (overrides --board)")
    p.add_argument("--flash", help="Flash budget for the int8 model, e.g. 1MB (overrides --board)")
    p.add_argument("--engine", default=DEFAULT_ENGINE,
                   help=f"memory model: {' or '.join(ENGINES)} (default {DEFAULT_ENGINE})")
    p.add_argument("--samples", type=int, default=1000, help="architectures per configuration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (results do not depend on it)")
    p.add_argument("--verify-every", type=int, default=100,
                   help="cross-check every N-th sample against the resource model (0: never)")
    p.add_argument("--widths", help="comma list of w to sweep (default all 9)")
    p.add_argument("--resolutions", help="comma list of r to sweep (default all 12)")
    p.add_argument("--classes", type=int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--channels", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--min-fit-fraction", type=float, default=DEFAULT_MIN_FIT_FRACTION,
                   help="ignore configurations where fewer samples fit (default 0.01)")
    p.add_argument("--top", type=int, default=10, help="configurations in the CDF plot")
    p.add_argument("--grid", action="store_true", help="also choose (w, r) per SRAM x Flash")
    p.add_argument("--grid-sram", default=",".join(DEFAULT_GRID_SRAM))
    p.add_argument("--grid-flash", default=",".join(DEFAULT_GRID_FLASH))
    p.add_argument("--template", help="experiment YAML whose other sections search.yaml keeps")
    p.add_argument("--dataset", default="cifar10", help="dataset of search.yaml without template")
    p.add_argument("--error-bound", type=float, default=0.5,
                   help="objectives.error of search.yaml without template")
    p.add_argument("--out", default="results/space_opt", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _number_list(text: str, what: str, allowed: Sequence[float]) -> list:
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"{what}: expected a comma list of numbers, got {text!r}") from None
        match = [a for a in allowed if abs(a - value) < 1e-9]
        if not match:
            raise ConfigError(f"{what}: expected values from {list(allowed)}, got {item!r}")
        values.append(match[0])
    return sorted(set(values))


def _budget(args: argparse.Namespace) -> Budget | None:
    sram = flash = None
    if args.board is not None:
        board = get_board(args.board)
        sram, flash = board.sram_bytes, board.flash_bytes
    if args.sram is not None:
        sram = parse_bytes(args.sram, "--sram")
    if args.flash is not None:
        flash = parse_bytes(args.flash, "--flash")
    if sram is None and flash is None:
        if args.grid:
            return None
        raise ConfigError("expected --board, or --sram and --flash (or --grid)")
    if sram is None or flash is None:
        raise ConfigError(f"expected {'--sram' if sram is None else '--flash'} too (or --board)")
    return Budget(sram, flash)


def _check_args(args: argparse.Namespace) -> None:
    if not 0 <= args.min_fit_fraction <= 1:
        raise ConfigError(f"--min-fit-fraction: expected a number in [0, 1], "
                          f"got {args.min_fit_fraction}")
    for name in ("samples", "workers", "classes", "channels", "top"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected an integer >= 1, "
                              f"got {getattr(args, name)}")
    if not 0 < args.error_bound <= 1:
        raise ConfigError(f"--error-bound: expected a number in (0, 1], got {args.error_bound}")


def _load_template(path: str | None) -> dict | None:
    if path is None:
        return None
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"--template: cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--template: {path} is not valid YAML ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--template: {path}: expected a mapping of sections")
    return data


def _validate_search_config(config: dict, path: Path) -> None:
    """Check the generated config with :mod:`unas.config` before writing it (e.g. a dataset
    with a fixed input shape cannot be resized to ``r x r``)."""
    from unas.config import parse_config

    parse_config(config, str(path))


def run(argv: Sequence[str] | None = None) -> Optimisation:
    """Parse ``argv``, optimise, write the outputs, print a summary; raises :class:`UnasError`."""
    args = _parser().parse_args(argv)
    _check_args(args)
    budget = _budget(args)
    template = _load_template(args.template)
    widths = _number_list(args.widths, "--widths", WIDTH_MULTS) if args.widths else WIDTH_MULTS
    resolutions = (_number_list(args.resolutions, "--resolutions", RESOLUTIONS)
                   if args.resolutions else RESOLUTIONS)
    grid = None
    if args.grid:
        grid = ([parse_bytes(s, "--grid-sram") for s in args.grid_sram.split(",")],
                [parse_bytes(s, "--grid-flash") for s in args.grid_flash.split(",")])
    result = optimise(budget, samples=args.samples, seed=args.seed, engine=args.engine,
                      widths=widths, resolutions=[int(r) for r in resolutions],
                      input_channels=args.channels, num_classes=args.classes,
                      workers=args.workers, min_fit_fraction=args.min_fit_fraction,
                      verify_every=args.verify_every, grid=grid,
                      progress=not args.quiet)
    out = Path(args.out)
    command = "python -m unas.space_opt " + " ".join(argv if argv is not None else sys.argv[1:])
    setting = (f"{args.samples} samples per configuration, seed {args.seed}, engine "
               f"{args.engine}, {args.classes} classes, {args.channels} input channels; "
               f"FLOPs = MACs")
    if budget is not None and result.best is not None:
        best = result.best
        table = ranking_table(result.ranking)
        atomic_write_text(out / "ranking.md", f"# (w, r) configurations under {budget}\n\n"
                          f"`{command}`\n\n{setting}.\n\n{table}")
        plot_flops_cdf(out / "flops_cdf.png", result.sweep.configs, result.ranking,
                       budget.sram_bytes, budget.flash_bytes, args.top)
        config = search_config(best, budget.sram_bytes, budget.flash_bytes, args.engine,
                               template, args.dataset, args.error_bound)
        _validate_search_config(config, out / "search.yaml")
        write_search_config(out / "search.yaml", config,
                            f"MBConv search space fixed by TinyNAS search-space optimisation:\n"
                            f"{best.label} has the largest mean FLOPs "
                            f"({best.mean_flops / 1e6:.1f}M MACs) of models fitting {budget}.\n"
                            f"{command}")
        print(f"{budget}: best configuration {best.label} (mean {best.mean_flops / 1e6:.2f}M "
              f"FLOPs, {best.fit_fraction:.1%} fit)")
        print(ranking_table(result.ranking, args.top), end="")
        print(f"wrote {out / 'ranking.md'}, {out / 'flops_cdf.png'}, {out / 'search.yaml'}")
    if grid is not None:
        table = grid_table(result.grid)
        atomic_write_text(out / "grid.md", f"# Best (w, r) per SRAM x Flash budget\n\n"
                          f"`{command}`\n\n{setting}. Cells: configuration (mean FLOPs of "
                          f"fitting models, fraction fitting).\n\n{table}")
        plot_grid(out / "grid.png", result.grid)
        print(table, end="")
        print(f"wrote {out / 'grid.md'}, {out / 'grid.png'}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success; one line on stderr and 2 for bad input."""
    try:
        run(argv)
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
