"""Aging evolution vs random search on the digits demo, at the same number of evaluations.

For each algorithm and seed, runs ``experiments/digits.yaml`` (or ``--config``) with
``initial_population + rounds = --evals`` and measures the hypervolume of the candidates within
bounds (objectives divided by their bounds, reference point = the bounds = (1, 1, 1, 1)).
Prints a table and writes it, with the command and the date, to benchmarks/results/search.md.

    python benchmarks/bench_search.py                      # 30 evaluations, 5 seeds each
    python benchmarks/bench_search.py --evals 20 --seeds 2 # shorter
"""
from __future__ import annotations

import argparse
import copy
import datetime
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unas.config import parse_config  # noqa: E402
from unas.experiment import run_experiment  # noqa: E402
from unas.files import atomic_write_text  # noqa: E402
from unas.search.pareto import hypervolume  # noqa: E402


def run_one(raw: dict, where: str, algorithm: str, seed: int, evals: int, out: Path) -> dict:
    """One search; returns its hypervolume, best error within bounds and wall time."""
    data = copy.deepcopy(raw)
    search = data.setdefault("search", {})
    initial = min(int(search.get("initial_population", 100)), evals)
    search.update(algorithm=algorithm, seed=seed, initial_population=initial, rounds=evals - initial)
    search["sample_size"] = min(int(search.get("sample_size", 25)), int(search.get("population_size", 100)))
    cfg = parse_config(data, where)
    start = time.monotonic()
    result = run_experiment(cfg, out_dir=out, progress=False)
    wall = time.monotonic() - start
    bounds = np.array(cfg.objectives.as_tuple())
    trained = result.trained_records()
    points = np.array([r.objectives.as_tuple() for r in trained]).reshape(-1, 4) / bounds
    best = result.best_within_resource_bounds()
    return {"hv": hypervolume(points, np.ones(4)), "trained": len(trained),
            "best_error": None if best is None else best.objectives.error, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "digits.yaml"))
    parser.add_argument("--evals", type=int, default=30, help="evaluations per search")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per algorithm")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "search.md"))
    args = parser.parse_args(argv)
    raw = yaml.safe_load(Path(args.config).read_text())
    results: dict[str, list[dict]] = {"aging": [], "random": []}
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        for seed in range(args.seeds):
            for algorithm in results:
                row = run_one(raw, args.config, algorithm, seed, args.evals, Path(tmp) / f"{algorithm}{seed}")
                results[algorithm].append(row)
                print(f"{algorithm:6s} seed {seed}: hypervolume {row['hv']:.4f}, "
                      f"{row['trained']} trained, best error within bounds {row['best_error']}, "
                      f"{row['wall_s']:.0f} s", file=sys.stderr, flush=True)
    lines = ["| algorithm | seeds | evaluations | hypervolume (mean ± std) | best error within bounds (mean) | trained per search (mean) | wall time per search (mean, s) |",
             "|---|---|---|---|---|---|---|"]
    for algorithm, rows in results.items():
        hv = np.array([r["hv"] for r in rows])
        best = [r["best_error"] for r in rows if r["best_error"] is not None]
        lines.append(f"| {algorithm} | {len(rows)} | {args.evals} | {hv.mean():.4f} ± {hv.std():.4f} | "
                     f"{np.mean(best) if best else float('nan'):.4f} ({len(best)}/{len(rows)} found one) | "
                     f"{np.mean([r['trained'] for r in rows]):.1f} | {np.mean([r['wall_s'] for r in rows]):.0f} |")
    hv_aging = np.mean([r["hv"] for r in results["aging"]])
    hv_random = np.mean([r["hv"] for r in results["random"]])
    ratio = hv_aging / hv_random if hv_random > 0 else float("inf")
    table = "\n".join(lines)
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]).relative_to(ROOT))
                                                              if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                                                              *(argv if argv is not None else sys.argv[1:])])
    text = (f"# Search benchmark: aging evolution vs random search\n\n"
            f"Command: `{command}`  \nDate: {datetime.date.today().isoformat()}  \n"
            f"Config: `{Path(args.config).name}`; hypervolume of the candidates within bounds, "
            f"objectives divided by their bounds, reference point (1, 1, 1, 1).\n\n{table}\n\n"
            f"Hypervolume ratio aging / random: {ratio:.2f}\n")
    print(text)
    atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
