"""Pruning ablation (μNAS Figure 3, section 4.2): searches with and without structured pruning.

For every seed, runs the same search twice, once with ``pruning.enabled: false`` and once with
``true``, at the same number of evaluations (``initial_population + rounds = --evals``) and the
same search seed. Compares the error-vs-model-size Pareto fronts: the 2-D hypervolume of the
trained candidates within *all four* resource bounds, with error and model size divided by their
bounds and reference point (1, 1) (so 1.0 would be a zero-error, zero-byte model). Prints a
table, draws both fronts (error vs model size, log x, fronts highlighted) and writes the table,
the command and the date to ``--out`` (a Markdown file; the PNG goes next to it).

The digits setting (default) is ``experiments/digits.yaml`` with a small model-size bound
(``--size-bound``, 1000 bytes) so that models that fit must be small, an error bound of 0.25
(``--error-bound``; small models on 8x8 digits rarely reach the config's 0.15), and target
sparsities in [0.05, 0.8] pruned between epochs 1 and 4 of 8 (the window is scaled to
``--epochs``).
``--full`` runs ``experiments/fashion_mnist.yaml`` instead (the Debian package's files in
/usr/share/datasets/fashion-mnist), with its own bounds and schedule.

    python benchmarks/bench_pruning.py --evals 30 --seeds 6           # digits, ~25 min on 2 cores
    python benchmarks/bench_pruning.py --full --evals 60 --seeds 2 --epochs 10

Searches live in ``--work`` (default: a temporary folder); a search already finished there is
reused, not rerun, so an interrupted benchmark can be continued with the same ``--work``.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_search import run_one  # noqa: E402
from unas.config import parse_config  # noqa: E402
from unas.errors import UnasError  # noqa: E402
from unas.search.evolution import CONFIG_SNAPSHOT  # noqa: E402
from unas.search.evolution import EVALUATIONS_FILE  # noqa: E402
from unas.files import atomic_write_text  # noqa: E402
from unas.search.pareto import hypervolume, non_dominated  # noqa: E402
from unas.search.records import EvaluationRecord  # noqa: E402

SETTINGS = ("without pruning", "with pruning")
DIGITS_SIZE_BOUND = 1000
DIGITS_ERROR_BOUND = 0.25
DIGITS_SPARSITY = (0.05, 0.8)


@dataclass
class SearchOutcome:
    """One finished search: its trained records and the summary numbers of the table."""

    setting: str
    seed: int
    records: list[EvaluationRecord]
    bounds: tuple[float, float, float, float]
    wall_s: float
    num_classes: int

    @property
    def training_s(self) -> float:
        """Seconds spent training, summed over the candidates (also right for a search reused
        from ``--work``, whose own ``wall_s`` is only the time to reload it)."""
        return float(sum(r.wall_time_s for r in self.trained))

    @property
    def at_chance(self) -> int:
        """Trained candidates whose validation error is within 0.02 of guessing (1 - 1/classes):
        trainings that collapsed."""
        chance = 1.0 - 1.0 / self.num_classes
        return sum(r.objectives.error >= chance - 0.02 for r in self.trained)  # type: ignore[union-attr]

    @property
    def trained(self) -> list[EvaluationRecord]:
        return [r for r in self.records if r.trained]

    @property
    def skipped(self) -> int:
        return sum(r.status.startswith("skipped") for r in self.records)

    def points(self) -> np.ndarray:
        """(error, model size) of every trained candidate, shape (n, 2)."""
        return error_size(self.trained)

    def hypervolume(self) -> float:
        return error_size_hypervolume(self.trained, self.bounds)

    def best_error(self) -> float | None:
        """Lowest validation error among trained candidates within all four bounds."""
        fits = [r.objectives.error for r in within_bounds(self.trained, self.bounds)]  # type: ignore[union-attr]
        return min(fits, default=None)


def error_size(records: list[EvaluationRecord]) -> np.ndarray:
    """``(error, model_size_bytes)`` of records with objectives, shape (n, 2)."""
    return np.array([(r.objectives.error, r.objectives.model_size_bytes)  # type: ignore[union-attr]
                     for r in records if r.objectives is not None], dtype=float).reshape(-1, 2)


def within_bounds(records: list[EvaluationRecord], bounds: tuple[float, ...]) -> list[EvaluationRecord]:
    """Records with objectives at or below every bound (error, peak memory, size, MACs)."""
    return [r for r in records if r.objectives is not None and r.objectives.within_all_bounds(bounds)]


def error_size_hypervolume(records: list[EvaluationRecord], bounds: tuple[float, ...]) -> float:
    """2-D hypervolume of ``records`` within all ``bounds``: error and model size divided by
    their bounds, reference point (1, 1).

    >>> from unas.search.objectives import Objectives
    >>> rec = EvaluationRecord(id=0, round=0, arch={}, status="ok", seed=0,
    ...                        objectives=Objectives(0.05, 10, 500, 100))
    >>> round(error_size_hypervolume([rec], (0.1, 100, 1000, 1000)), 6)
    0.25
    """
    points = error_size(within_bounds(records, bounds)) / np.array([bounds[0], bounds[2]])
    return hypervolume(points, np.ones(2))


def front_line(points: np.ndarray) -> np.ndarray:
    """The non-dominated (error, size) points sorted by size, duplicates dropped: the front to draw."""
    pts = np.unique(np.asarray(points, dtype=float).reshape(-1, 2), axis=0)
    if len(pts) == 0:
        return pts
    front = pts[non_dominated(pts)]
    return front[np.argsort(front[:, 1], kind="stable")]


def scaled_schedule(start: int, end: int, epochs: int, new_epochs: int) -> tuple[int, int]:
    """The pruning window ``[start, end)`` of an ``epochs``-long training scaled to ``new_epochs``,
    keeping ``0 <= start < end <= new_epochs``.

    >>> scaled_schedule(1, 4, 8, 8), scaled_schedule(3, 18, 30, 10), scaled_schedule(1, 4, 8, 2)
    ((1, 4), (1, 6), (0, 1))
    """
    if new_epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {new_epochs}")
    if new_epochs == epochs:
        return start, end
    new_end = min(new_epochs, max(1, round(end * new_epochs / epochs)))
    new_start = min(new_end - 1, round(start * new_epochs / epochs))
    return max(0, new_start), new_end


def ablation_config(raw: dict[str, Any], pruning: bool, epochs: int | None = None,
                    size_bound: int | None = None, error_bound: float | None = None,
                    sparsity: tuple[float, float] | None = None) -> dict[str, Any]:
    """A copy of the raw config ``raw`` for one arm of the ablation: pruning on or off,
    training for ``epochs`` (pruning window scaled along), and optionally other model-size and
    error bounds and target-sparsity range. Everything else is left as it is, so both arms differ only in
    ``pruning.enabled``."""
    data = copy.deepcopy(raw)
    training = data.setdefault("training", {})
    prune = data.setdefault("pruning", {})
    old_epochs = int(training.get("epochs", 1))
    if epochs is not None:
        start, end = scaled_schedule(int(prune.get("start_epoch", 0)),
                                     int(prune.get("end_epoch", old_epochs)), old_epochs, epochs)
        training["epochs"], prune["start_epoch"], prune["end_epoch"] = epochs, start, end
    if size_bound is not None:
        data.setdefault("objectives", {})["model_size_bytes"] = int(size_bound)
    if error_bound is not None:
        data.setdefault("objectives", {})["error"] = float(error_bound)
    if sparsity is not None:
        prune["target_sparsity"] = [float(sparsity[0]), float(sparsity[1])]
    prune["enabled"] = bool(pruning)
    return data


def search_sizes(raw: dict[str, Any], evals: int) -> dict[str, Any]:
    """``raw`` with a population small enough for ``evals`` evaluations to include evolution:
    the initial (random) population is at most a third of them."""
    data = copy.deepcopy(raw)
    search = data.setdefault("search", {})
    initial = min(int(search.get("initial_population", 100)), max(2, evals // 3))
    search["initial_population"] = initial
    search["population_size"] = min(int(search.get("population_size", 100)), initial)
    search["sample_size"] = min(int(search.get("sample_size", 25)), max(2, initial // 2))
    return data


def run_search(raw: dict[str, Any], where: str, setting: str, seed: int, evals: int,
               out: Path) -> SearchOutcome:
    """One aging-evolution search (``bench_search.run_one``), read back from its log."""
    summary = run_one(raw, where, "aging", seed, evals, out)
    cfg = parse_config(raw, where)
    lines = (out / EVALUATIONS_FILE).read_text().splitlines()
    records = [EvaluationRecord.from_dict(json.loads(line)) for line in lines if line.strip()]
    num_classes = int(json.loads((out / CONFIG_SNAPSHOT).read_text())["num_classes"])
    return SearchOutcome(setting=setting, seed=seed, records=records,
                         bounds=cfg.objectives.as_tuple(), wall_s=float(summary["wall_s"]),
                         num_classes=num_classes)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def results_table(outcomes: dict[str, list[SearchOutcome]]) -> str:
    """Markdown table: per seed and mean ± std, hypervolume, best error within bounds, counts."""
    lines = ["| seed | setting | hypervolume (error × size) | best error within bounds | "
             "smallest size within bounds (B) | trained | of which at chance accuracy | "
             "skipped before training | training time (s) |", "|---|---|---|---|---|---|---|---|---|"]
    seeds = sorted({o.seed for rows in outcomes.values() for o in rows})
    for seed in seeds:
        for setting in SETTINGS:
            for o in (o for o in outcomes.get(setting, []) if o.seed == seed):
                fits = error_size(within_bounds(o.trained, o.bounds))
                smallest = None if len(fits) == 0 else float(fits[:, 1].min())
                lines.append(f"| {seed} | {setting} | {o.hypervolume():.4f} | {_fmt(o.best_error())} | "
                             f"{_fmt(smallest, '.0f')} | {len(o.trained)} | {o.at_chance} | {o.skipped} | "
                             f"{o.training_s:.0f} |")
    for setting in SETTINGS:
        rows = outcomes.get(setting, [])
        if not rows:
            continue
        hv = np.array([o.hypervolume() for o in rows])
        best = [b for b in (o.best_error() for o in rows) if b is not None]
        lines.append(f"| mean | **{setting}** | **{hv.mean():.4f} ± {hv.std():.4f}** | "
                     f"{_fmt(float(np.mean(best)) if best else None)} ({len(best)}/{len(rows)} found one) | | "
                     f"{np.mean([len(o.trained) for o in rows]):.1f} | "
                     f"{np.mean([o.at_chance for o in rows]):.1f} | "
                     f"{np.mean([o.skipped for o in rows]):.1f} | {np.mean([o.training_s for o in rows]):.0f} |")
    return "\n".join(lines)


def plot_fronts(outcomes: dict[str, list[SearchOutcome]], title: str, path: Path) -> None:
    """Error vs model size (log x) of every trained model of both arms, all seeds pooled, with
    each arm's Pareto front highlighted and the bounds dashed (like μNAS Figure 3)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"without pruning": "tab:blue", "with pruning": "tab:orange"}
    bounds = None
    for setting in SETTINGS:
        rows = outcomes.get(setting, [])
        if not rows:
            continue
        bounds = rows[0].bounds
        points = np.concatenate([o.points() for o in rows]) if rows else np.zeros((0, 2))
        if len(points) == 0:
            continue
        colour = colours[setting]
        ax.scatter(points[:, 1], points[:, 0], s=14, alpha=0.35, color=colour, label=f"{setting}: models")
        front = front_line(points)
        ax.step(front[:, 1], front[:, 0], where="post", color=colour, linewidth=2)
        ax.scatter(front[:, 1], front[:, 0], s=40, color=colour, edgecolor="black", zorder=3,
                   label=f"{setting}: Pareto front")
    if bounds is not None:
        ax.axhline(bounds[0], color="grey", linestyle="--", linewidth=1)
        ax.axvline(bounds[2], color="grey", linestyle="--", linewidth=1, label="bounds")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("model size (bytes, int8)")
    ax.set_ylabel("validation error")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _command(argv: list[str] | None) -> str:
    script = Path(sys.argv[0])
    shown = str(script.resolve().relative_to(ROOT)) if script.resolve().is_relative_to(ROOT) else str(script)
    return "python " + " ".join(shlex.quote(a) for a in [shown, *(argv if argv is not None else sys.argv[1:])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=30, help="evaluations per search (default 30)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per setting (default 2)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per candidate (default: the config's); the pruning "
                             "window is scaled along")
    parser.add_argument("--full", action="store_true",
                        help="Fashion-MNIST (experiments/fashion_mnist.yaml) instead of digits")
    parser.add_argument("--size-bound", type=int, default=None,
                        help=f"model size bound in bytes (digits default {DIGITS_SIZE_BOUND}; "
                             "--full: the config's)")
    parser.add_argument("--error-bound", type=float, default=None,
                        help=f"validation error bound (digits default {DIGITS_ERROR_BOUND}; "
                             "--full: the config's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pruning.md"),
                        help="Markdown result file; the PNG is written next to it")
    parser.add_argument("--work", default=None,
                        help="folder for the searches (default: a temporary one); finished "
                             "searches found there are reused")
    args = parser.parse_args(argv)
    if args.evals < 2 or args.seeds < 1:
        parser.error("--evals must be >= 2 and --seeds >= 1")
    try:
        return _run(args, argv)
    except UnasError as err:
        print(str(err), file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    from tqdm import tqdm

    config = ROOT / "experiments" / ("fashion_mnist.yaml" if args.full else "digits.yaml")
    raw = search_sizes(yaml.safe_load(config.read_text()), args.evals)
    size_bound = args.size_bound if args.size_bound or args.full else DIGITS_SIZE_BOUND
    error_bound = args.error_bound if args.error_bound or args.full else DIGITS_ERROR_BOUND
    sparsity = None if args.full else DIGITS_SPARSITY
    arms = {setting: ablation_config(raw, setting == "with pruning", args.epochs, size_bound,
                                     error_bound, sparsity)
            for setting in SETTINGS}
    outcomes: dict[str, list[SearchOutcome]] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="bench_pruning_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        bar = tqdm(total=args.seeds * len(SETTINGS), desc="searches", unit="search", file=sys.stderr)
        for seed in range(args.seeds):
            for setting, data in arms.items():
                folder = work / f"{'pruned' if setting == 'with pruning' else 'dense'}_seed{seed}"
                o = run_search(data, str(config), setting, seed, args.evals, folder)
                outcomes[setting].append(o)
                tqdm.write(f"seed {seed} {setting}: hypervolume {o.hypervolume():.4f}, "
                           f"{len(o.trained)} trained ({o.at_chance} at chance), {o.skipped} skipped, best error within "
                           f"bounds {_fmt(o.best_error())}, {o.training_s:.0f} s training", file=sys.stderr)
                bar.update(1)
        bar.close()
    out = Path(args.out)
    png = out.with_suffix(".png")
    name = "Fashion-MNIST" if args.full else "digits"
    plot_fronts(outcomes, f"{name}: error vs model size, {args.seeds} seed(s) × {args.evals} evaluations", png)
    cfg = arms["with pruning"]
    b, p, t = cfg["objectives"], cfg["pruning"], cfg["training"]
    hv = {s: float(np.mean([o.hypervolume() for o in outcomes[s]])) for s in SETTINGS}
    ratio = (f"{hv['with pruning'] / hv['without pruning']:.2f}" if hv["without pruning"] > 0
             else "undefined (no model within the bounds without pruning)")
    table = results_table(outcomes)
    text = (f"# Pruning ablation on {name} (μNAS Figure 3)\n\n"
            f"Command: `{_command(argv)}`  \nDate: {datetime.date.today().isoformat()}  \n"
            f"Config: `{config.name}` with bounds error {b['error']}, peak memory "
            f"{b['peak_memory_bytes']} B, model size {b['model_size_bytes']} B, MACs {b['macs']}; "
            f"{t['epochs']} epochs per candidate; pruning (one arm only): target sparsity in "
            f"{p['target_sparsity']}, from epoch {p['start_epoch']} to epoch {p['end_epoch']}; aging "
            f"evolution, {args.evals} evaluations per search ({cfg['search']['initial_population']} "
            f"random, then children), the same search seeds for both arms.\n\n"
            f"Hypervolume: of the (validation error, model size) points of the trained candidates "
            f"within all four bounds, each divided by its bound, reference point (1, 1).\n\n"
            f"{table}\n\nMean hypervolume ratio with / without pruning: {ratio}\n\n"
            f"![error vs model size]({png.name})\n")
    print(table)
    print(f"\nMean hypervolume ratio with / without pruning: {ratio}")
    atomic_write_text(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
