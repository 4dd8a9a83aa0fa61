"""Benchmark of parallel candidate evaluation: serial executor vs Ray with 1 and 2 workers.

Runs the same digits search (fixed number of evaluations, same seed) once per mode and
measures, in the same run:

1. throughput: trained evaluations per hour of wall time (executor start-up included, and
   without it), mean training time of one candidate, and the search process's own time per
   evaluation (proposal, resources, log, checkpoint: everything but the executor's calls);
2. quality per evaluation: best validation error within the resource bounds and overall, and
   the Pareto front size after the same number of evaluations (asynchronous evolution with N in
   flight proposes children from a population that misses the N-1 unfinished ones);
3. a projection to bigger machines from the measured per-worker times (model in the report).

Writes ``benchmarks/results/parallel.md`` (``--output``), keeping the sections this run did not
measure: with ``--modes ""`` only the ``--fixed`` section is replaced; the hand-written reading
and bench_staleness.py's section are always kept::

    python benchmarks/bench_parallel.py                                  # serial, ray:1, ray:2
    python benchmarks/bench_parallel.py --evaluations 12 --epochs 2 --seeds 0,1
    python benchmarks/bench_parallel.py --modes "" --fixed 6 --epochs 1  # the fixed section only
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_staleness import SECTION as STALENESS  # noqa: E402
from benchmarks.bench_staleness import replace_section, section_of  # noqa: E402
from unas.config import ExperimentConfig, load_config  # noqa: E402
from unas.search.backends import make_executor  # noqa: E402
from unas.search.evolution import AgingEvolution  # noqa: E402
from unas.evaluation import EvalResult, EvalTask  # noqa: E402
from unas.search.executor import Executor  # noqa: E402
from unas.files import atomic_write_text  # noqa: E402
from unas.search.ray_runtime import default_num_workers, local_cpu_count  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "parallel.md"
TITLE = "# Parallel candidate evaluation (serial executor vs Ray workers)"
FIXED = "## The same candidates, no search"
#: Sections a run of this script does not write, kept from the existing file in this order (the
#: hand-written reading of the numbers, bench_staleness.py's results).
READING = "## Reading these numbers"
KEPT = (READING, STALENESS)


class TimedExecutor:
    """Passes calls through and adds up the time the search spent in the executor: waiting in
    ``next_result`` and in ``submit`` (which may start a worker process)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.capacity = inner.capacity
        self.waiting_s = 0.0

    def submit(self, task: EvalTask) -> None:
        start = time.perf_counter()
        try:
            self.inner.submit(task)
        finally:
            self.waiting_s += time.perf_counter() - start

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        start = time.perf_counter()
        try:
            return self.inner.next_result(timeout)
        finally:
            self.waiting_s += time.perf_counter() - start

    def close(self) -> None:
        self.inner.close()


def mode_config(cfg: ExperimentConfig, mode: str, cores: int) -> ExperimentConfig:
    """``serial`` or ``ray:N`` (N workers sharing the machine's cores evenly)."""
    if mode == "serial":
        execution = dataclasses.replace(cfg.execution, backend="serial", num_workers=None)
    else:
        workers = int(mode.split(":", 1)[1])
        execution = dataclasses.replace(cfg.execution, backend="ray", num_workers=workers,
                                        cpus_per_worker=float(max(1, cores // workers)),
                                        address=None)
    return dataclasses.replace(cfg, execution=execution)


def run_once(cfg: ExperimentConfig, out: Path) -> dict[str, Any]:
    """One search as :func:`unas.experiment.run_experiment` runs it, with timings."""
    from search_spaces import get_space
    from unas.experiment import dataset_shapes
    from unas.search.measure import ResourceMeter
    from unas.train.worker import TrainingEvaluator

    input_shape, num_classes = dataset_shapes(cfg)
    space = get_space(cfg.search_space.name, **cfg.search_space.bounds)
    meter = ResourceMeter(input_shape, num_classes, cfg.target.engine)
    search = AgingEvolution(space, cfg.search, cfg.objectives, cfg.pruning, meter, out)
    evaluator = TrainingEvaluator(dataset=cfg.dataset, data_seed=cfg.search.seed,
                                  training=cfg.training, pruning=cfg.pruning, out_dir=str(out))
    start = time.perf_counter()
    executor = TimedExecutor(make_executor(cfg.execution, evaluator))
    started = time.perf_counter()
    try:
        search.run(executor, poll_s=0.2)
    finally:
        executor.close()
    end = time.perf_counter()
    trained = search.trained_records()
    best = search.best_within_resource_bounds()
    wall, search_s = end - start, end - started
    return {
        "wall_s": wall, "startup_s": started - start, "search_s": search_s,
        "trained": len(trained), "workers": executor.capacity,
        "records": search.finished,
        "per_hour": 3600.0 * len(trained) / wall,
        "per_hour_running": 3600.0 * len(trained) / search_s,
        "train_s": sum(r.wall_time_s for r in trained) / max(1, len(trained)),
        "cycle_s": executor.capacity * search_s / max(1, len(trained)),
        "driver_s": max(0.0, search_s - executor.waiting_s) / max(1, search.finished),
        "best_in_bounds": None if best is None else best.objectives.error,
        "best": min((r.objectives.error for r in trained), default=None),
        "front": len(search.front()),
    }


def fixed_throughput(cfg: ExperimentConfig, count: int, seed: int, out: Path) -> dict[str, Any]:
    """Train the same ``count`` random architectures (those within the resource bounds) with
    ``cfg.execution``, keeping the executor full; throughput without any search in the way."""
    import numpy as np

    from search_spaces import get_space
    from unas.experiment import dataset_shapes
    from unas.search.evolution import over_bounds
    from unas.search.measure import ResourceMeter
    from unas.train.worker import TrainingEvaluator

    input_shape, num_classes = dataset_shapes(cfg)
    space = get_space(cfg.search_space.name, **cfg.search_space.bounds)
    meter = ResourceMeter(input_shape, num_classes, cfg.target.engine)
    rng = np.random.default_rng(seed)
    tasks: list[EvalTask] = []
    for _ in range(100 * count):
        if len(tasks) == count:
            break
        arch = space.random_architecture(rng)
        if over_bounds(meter(arch), None, cfg.objectives) is None:
            tasks.append(EvalTask(id=len(tasks), arch=json.loads(arch.to_json()),
                                  seed=int(rng.integers(0, 2**31 - 1))))
    evaluator = TrainingEvaluator(dataset=cfg.dataset, data_seed=seed, training=cfg.training,
                                  pruning=cfg.pruning, out_dir=str(out), save_models=False)
    start = time.perf_counter()
    executor = make_executor(cfg.execution, evaluator)
    started = time.perf_counter()
    queue, done, ok = list(tasks), 0, 0
    try:
        while done < len(tasks):
            while queue and done + executor.capacity > len(tasks) - len(queue):
                executor.submit(queue.pop(0))
            result = executor.next_result(1.0)
            if result is not None:
                done += 1
                ok += result.status == "ok"
    finally:
        executor.close()
    end = time.perf_counter()
    return {"tasks": len(tasks), "ok": ok, "wall_s": end - start, "startup_s": started - start,
            "per_hour": 3600.0 * len(tasks) / (end - start),
            "per_hour_running": 3600.0 * len(tasks) / (end - started)}


def _mean(values: list[float | None]) -> float | None:
    """Mean of the values that exist (``None`` if none do)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def projection(runs: dict[str, list[dict[str, Any]]], cores: int) -> list[str]:
    """Evaluations per hour on bigger machines from this machine's per-worker training times."""
    def mean(mode: str, key: str) -> float | None:
        values = [r[key] for r in runs.get(mode, [])]
        return sum(values) / len(values) if values else None

    t_all = mean("ray:1", "cycle_s")          # one worker with all `cores` cores
    t_one = mean(f"ray:{cores}", "cycle_s")   # `cores` workers with one core each
    all_runs = [r for rs in runs.values() for r in rs]
    driver = sum(r["driver_s"] for r in all_runs) / len(all_runs)
    if t_all is None or t_one is None or cores < 2:
        return ["(needs the ray:1 and ray:<cores> modes on a machine with >= 2 cores)"]
    alpha = max(0.0, math.log(t_one / t_all) / math.log(cores))  # t(c) ~ c^-alpha
    lines = [
        f"Model: a worker with c cores turns one candidate around in t(c) seconds (its cycle: "
        f"W x search time without start-up / trained candidates, so worker start-up, "
        f"recycling and result handling are in it); measured here t(1) = {t_one:.1f} s (with "
        f"{cores} workers side by side) and t({cores}) = {t_all:.1f} s (one worker), so "
        f"t(c) ~ c^-{alpha:.2f} between 1 and {cores} cores. W workers give W * 3600 / t(c) "
        f"evaluations per hour, capped by the search process, which spends "
        f"{driver * 1000:.0f} ms per evaluation on average (Amdahl's serial part: at most "
        f"{3600 / max(driver, 1e-9):,.0f} evaluations per hour). Above {cores} cores per worker "
        f"the low column assumes no further gain, the high one the same exponent. Only "
        f"t(1) and t({cores}) are measured; the rest is this model.",
        "",
        "| cores | default workers x cores | evals/h (low) | evals/h (high) | "
        "1-core workers: evals/h |",
        "|---:|---|---:|---:|---:|",
    ]
    for total in (2, 4, 8, 16, 32, 64):
        workers = default_num_workers(total)
        per = total // workers

        def rate(w: int, t: float) -> float:
            return min(w * 3600.0 / t, 3600.0 / max(driver, 1e-9))

        low = rate(workers, t_all if per >= cores else t_one * per ** -alpha)
        high = rate(workers, t_one * per ** -alpha)
        lines.append(f"| {total} | {workers} x {per} | {low:,.0f} | {high:,.0f} | "
                     f"{rate(total, t_one):,.0f} |")
    return lines


def merge_report(old: str | None, new: str, searched: bool) -> str:
    """The results file after a run: ``new`` (:func:`report`'s text) with what the run did not
    measure kept from ``old``: the search part (all before the sections below) when it ran no
    search, the fixed-candidates section when it ran none, and the :data:`KEPT` sections."""
    if old is None:
        return new
    text = new if searched else _without(old, (FIXED, *KEPT))
    for heading in (FIXED, *KEPT):
        section = section_of(new, heading) or section_of(old, heading)
        if section:
            text = replace_section(text, heading, section)
    return text


def _without(text: str, headings: tuple[str, ...]) -> str:
    """``text`` without its ``## `` sections titled ``headings``."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("## "):  # titled variants ("heading: title") go too, as section_of
            skipping = any(line.strip() == h or line.startswith(h + ": ") for h in headings)
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, cores: int,
           loads: tuple[str, str], command: str,
           fixed: dict[str, dict[str, Any]] | None = None) -> str:
    date = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    lines = [TITLE]
    if runs:  # without searches only the fixed-candidates section (merge_report keeps the rest)
        lines += [
            "",
            f"Date: {date}. Machine: {platform.processor() or platform.machine()}, {cores} cores "
            f"(load average {loads[0]} at the start, {loads[1]} at the end: the cores are shared "
            f"with other users, so absolute times are noisy; the modes ran one after the other).",
            "",
            f"Command: `{command}`",
            "",
            f"Search: `{args.config}` with {args.evaluations} proposals "
            f"({args.evaluations // 2} random, then children), {args.epochs} epoch(s) per "
            f"candidate, seeds {args.seeds}. `ray:N` = N Ray workers with {cores}/N cores each. "
            "evals/h counts trained candidates (skipped ones are not trained).",
            "",
            "| mode | seed | trained | wall s | start-up s | evals/h | evals/h w/o start-up | "
            "train s/cand | worker cycle s | search ms/eval | best err in bounds | best err | "
            "front |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for mode, mode_runs in runs.items():
        for seed, r in zip(args.seed_list, mode_runs):
            lines.append(
                f"| {mode} | {seed} | {r['trained']} | {r['wall_s']:.0f} | {r['startup_s']:.1f} | "
                f"{r['per_hour']:.0f} | {r['per_hour_running']:.0f} | {r['train_s']:.1f} | "
                f"{r['cycle_s']:.1f} | "
                f"{r['driver_s'] * 1000:.0f} | {_fmt(r['best_in_bounds'])} | {_fmt(r['best'])} | "
                f"{r['front']} |")
    if runs:
        lines += ["", "Per mode, mean over seeds (throughput relative to the first mode; quality "
                  "after the same number of proposals):", "",
                  "| mode | evals/h | relative | best err in bounds | best err | front |",
                  "|---|---:|---:|---:|---:|---:|"]
    ref = None
    for mode, mode_runs in runs.items():
        rate = _mean([r["per_hour"] for r in mode_runs])
        ref = ref or max(rate or 0.0, 1e-9)
        lines.append(f"| {mode} | {rate:.0f} | {(rate or 0.0) / ref:.2f}x | "
                     f"{_fmt(_mean([r['best_in_bounds'] for r in mode_runs]))} | "
                     f"{_fmt(_mean([r['best'] for r in mode_runs]))} | "
                     f"{_mean([r['front'] for r in mode_runs]):.1f} |")
    if runs:
        lines += ["", "## Projection", ""] + projection(runs, cores)
    if fixed:
        lines += ["", FIXED, "", f"Command: `{command}`, run {date} (load average {loads[0]} "
                  f"at the start, {loads[1]} at the end).", "",
                  f"`{args.fixed_config}`: {args.fixed} random architectures within its bounds "
                  f"(seed {args.seed_list[0]}), {args.epochs} epoch(s) each, the executor kept "
                  "full; every mode trains exactly the same candidates.", "",
                  "| mode | trained ok | wall s | start-up s | evals/h | evals/h w/o start-up |",
                  "|---|---:|---:|---:|---:|---:|"]
        for mode, r in fixed.items():
            lines.append(f"| {mode} | {r['ok']}/{r['tasks']} | {r['wall_s']:.0f} | "
                         f"{r['startup_s']:.1f} | {r['per_hour']:.0f} | "
                         f"{r['per_hour_running']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/digits.yaml")
    parser.add_argument("--evaluations", type=int, default=16, help="proposals per search")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--modes", default="serial,ray:1,ray:2")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--fixed", type=int, default=0,
                        help="also train this many fixed random candidates per mode (no search)")
    parser.add_argument("--fixed-config", default="experiments/fashion_mnist.yaml")
    parser.add_argument("--fixed-modes", default="ray:1,ray:2")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    cores = local_cpu_count()
    base = load_config(REPO / args.config if not Path(args.config).is_absolute() else args.config)
    loads = [f"{os.getloadavg()[0]:.1f}", ""]
    runs: dict[str, list[dict[str, Any]]] = {}
    fixed: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="bp", dir="/tmp"))
    try:
        if args.fixed:
            fixed_base = load_config(REPO / args.fixed_config)
            fixed_base = dataclasses.replace(
                fixed_base, training=dataclasses.replace(fixed_base.training, epochs=args.epochs))
            for mode in args.fixed_modes.split(","):
                fixed[mode] = fixed_throughput(mode_config(fixed_base, mode, cores), args.fixed,
                                               args.seed_list[0], work / f"fixed-{mode[-1]}")
                print(f"fixed {mode}: {fixed[mode]['tasks']} in {fixed[mode]['wall_s']:.0f} s",
                      file=sys.stderr)
        for mode in (args.modes.split(",") if args.modes else []):
            for seed in args.seed_list:
                search = dataclasses.replace(base.search, seed=seed,
                                             initial_population=args.evaluations // 2,
                                             rounds=args.evaluations - args.evaluations // 2)
                training = dataclasses.replace(base.training, epochs=args.epochs)
                cfg = mode_config(dataclasses.replace(base, search=search, training=training),
                                  mode, cores)
                out = work / f"{mode.replace(':', '')}-{seed}"
                result = run_once(cfg, out)
                runs.setdefault(mode, []).append(result)
                print(f"{mode} seed {seed}: {result['trained']} trained in "
                      f"{result['wall_s']:.0f} s ({result['per_hour']:.0f}/h), best in bounds "
                      f"{_fmt(result['best_in_bounds'])}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads[1] = f"{os.getloadavg()[0]:.1f}"
    command = "python benchmarks/bench_parallel.py " + " ".join(sys.argv[1:])
    text = report(runs, args, cores, (loads[0], loads[1]), command.strip(), fixed)
    output = Path(args.output)
    text = merge_report(output.read_text() if output.exists() else None, text,
                        searched=bool(runs))
    atomic_write_text(output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
