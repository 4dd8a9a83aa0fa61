"""Per-evaluation quality of asynchronous aging evolution with N candidates in flight.

With N workers the search proposes each child from a population that lacks the N - 1
candidates still training, and results come back in the order they finish, not the order they
were proposed. Training on this 2-core machine is too slow for many seeds, so this benchmark
separates that question from training: it runs the *real* search
(:class:`unas.search.evolution.AgingEvolution`: proposal rule, aging, duplicate handling,
in-flight bookkeeping) on the real search space and resource model of a config, with

- a fixed surrogate error (:class:`SurrogateEvaluator`): a deterministic function of the
  architecture's exact resources plus a per-architecture offset from a hash of its JSON
  (a rugged landscape that mutations can climb, see :func:`surrogate_error`);
- :class:`VirtualTimeExecutor`: N workers in virtual time; a candidate trains for a time that
  grows with its MACs (times a log-normal factor drawn from its seed), so results return out of
  order exactly as they would from N real workers, and the run is deterministic.

For every seed and N it reports the best error within the resource bounds and the hypervolume
after K records (in the order the search wrote them), and pairs each N > 1 run with the N = 1
run of the same seed (Wilcoxon signed-rank test). ``--ray-check`` also runs a few seeds on the
real :class:`~unas.search.ray_executor.RayExecutor` (the surrogate sleeping for the virtual
duration times ``--ray-time-scale``) to show the virtual executor orders results like Ray does.

Writes its section of ``benchmarks/results/parallel.md`` (the other sections are kept)::

    python benchmarks/bench_staleness.py --seeds 30 --workers 1,2,4,8 --evaluations 30,100
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import heapq
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search_spaces.registry import architecture_from_json  # noqa: E402
from unas.config import ExperimentConfig, ObjectiveBounds, load_config  # noqa: E402
from unas.search.evolution import EVALUATIONS_FILE, AgingEvolution  # noqa: E402
from unas.evaluation import EvalResult, EvalTask  # noqa: E402
from unas.files import JsonLines, atomic_write_text  # noqa: E402
from unas.search.measure import ResourceMeter  # noqa: E402
from unas.search.objectives import normalise, scalarise  # noqa: E402
from unas.search.records import EvaluationRecord  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "parallel.md"
SECTION = "## Per-evaluation quality with N candidates in flight"

ERROR_FLOOR = 0.02
MACS_SCALE = 3000.0
SIZE_SCALE = 800.0
HASH_OFFSET = 0.04
DURATION_BASE_MACS = 5000.0
DURATION_SIGMA = 0.3


def _unit_hash(text: str) -> float:
    """A fixed number in [0, 1) for ``text`` (the same on every machine and run)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2.0**64


def surrogate_error(arch_json: str, model_size_bytes: int, macs: int) -> float:
    """Validation error stand-in: falls with MACs and model size, with diminishing returns, plus
    a fixed per-architecture offset in ``[-HASH_OFFSET/2, HASH_OFFSET/2)``.

    ``ERROR_FLOOR + (1 - ERROR_FLOOR) / (1 + sqrt(macs / 3000) * sqrt(size / 800))``; e.g. a model
    at the digits bounds (30,000 MACs, 4,000 bytes) gets about 0.14 before the offset.

    >>> round(surrogate_error('{"a": 1}', 4000, 30000) - surrogate_error('{"a": 1}', 500, 2000), 3)
    -0.458
    """
    capacity = np.sqrt(max(macs, 0) / MACS_SCALE) * np.sqrt(max(model_size_bytes, 0) / SIZE_SCALE)
    base = ERROR_FLOOR + (1.0 - ERROR_FLOOR) / (1.0 + capacity)
    offset = HASH_OFFSET * (_unit_hash(arch_json) - 0.5)
    return float(np.clip(base + offset, 0.0, 1.0))


def virtual_duration(task: EvalTask, macs: int) -> float:
    """Training time of ``task`` in virtual seconds: grows with MACs, times a log-normal factor
    drawn from the task's seed (so two runs proposing the same task agree)."""
    factor = np.random.default_rng(task.seed).lognormal(0.0, DURATION_SIGMA)
    return float((1.0 + macs / DURATION_BASE_MACS) * factor)


@dataclass
class SurrogateEvaluator:
    """``evaluate(task) -> EvalResult`` with :func:`surrogate_error` (picklable: also an
    evaluator factory for the Ray executor, whose workers sleep ``time_scale`` x the virtual
    duration to stand in for training)."""

    input_shape: tuple[int, ...]
    num_classes: int
    engine: str
    time_scale: float = 0.0
    _meter: ResourceMeter | None = field(default=None, repr=False)

    def resources(self, arch_dict: dict[str, Any]) -> tuple[str, tuple[int, int, int]]:
        """The architecture's canonical JSON and its exact ``(peak, size, macs)``."""
        if self._meter is None:
            self._meter = ResourceMeter(self.input_shape, self.num_classes, self.engine)
        arch = architecture_from_json(arch_dict)
        return arch.to_json(), self._meter(arch)

    def __call__(self) -> Callable[[EvalTask], EvalResult]:
        return self.call

    def evaluate(self, task: EvalTask) -> tuple[EvalResult, float]:
        """The result of ``task`` and how long it trains in virtual seconds."""
        text, (_, size, macs) = self.resources(task.arch)
        duration = virtual_duration(task, macs)
        if self.time_scale > 0:
            time.sleep(duration * self.time_scale)
        error = surrogate_error(text, size, macs)
        return EvalResult(id=task.id, status="ok", val_error=error, test_error=error,
                          wall_time_s=duration), duration

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_meter": None}

    def call(self, task: EvalTask) -> EvalResult:
        """Executor-facing form (what a worker runs)."""
        return self.evaluate(task)[0]


class VirtualTimeExecutor:
    """``capacity`` workers in virtual time: each submitted task finishes at submission time
    plus its :func:`virtual_duration`; :meth:`next_result` returns the earliest to finish (ties
    by submission order) and advances the clock to it. Implements the Executor protocol."""

    def __init__(self, evaluator: SurrogateEvaluator, capacity: int) -> None:
        self.capacity = capacity
        self._evaluator = evaluator
        self._heap: list[tuple[float, int, EvalResult]] = []
        self._submitted = 0
        self.now = 0.0

    def submit(self, task: EvalTask) -> None:
        if len(self._heap) >= self.capacity:
            raise RuntimeError(f"VirtualTimeExecutor already has {self.capacity} tasks in flight")
        result, duration = self._evaluator.evaluate(task)
        heapq.heappush(self._heap, (self.now + duration, self._submitted, result))
        self._submitted += 1

    def next_result(self, timeout: float | None = None) -> EvalResult | None:
        if not self._heap:
            return None
        finish, _, result = heapq.heappop(self._heap)
        self.now = finish
        return result

    def close(self) -> None:
        self._heap.clear()


SCALARISATION_WEIGHTS = np.random.default_rng(20261121).uniform(0.0, 1.0, size=(200, 4))
"""Fixed λ vectors for :func:`quality` (drawn like the search draws its own, U(0, 1))."""


@dataclass(frozen=True)
class Quality:
    """What one search found."""

    best_error: float | None
    scalarised: float
    trained: int


def quality(records: list[EvaluationRecord], bounds: ObjectiveBounds, cap: float) -> Quality:
    """Best error among trained candidates within the three resource bounds, and the best
    scalarised objective (the search's own ``max_i λ_i min(f_i / b_i, cap)``) averaged over
    :data:`SCALARISATION_WEIGHTS` (the R2 indicator: lower is better; it rewards the whole
    front the random scalarisation aims at, not one corner of it)."""
    limits = np.array(bounds.as_tuple(), dtype=float)
    trained = [r for r in records if r.trained and r.objectives is not None]
    points = np.array([r.objectives.as_tuple() for r in trained],  # type: ignore[union-attr]
                      dtype=float).reshape(-1, 4)
    fits = points[np.all(points[:, 1:] <= limits[1:], axis=1)]
    scaled = normalise(points, limits, cap)
    if len(points):
        best = scalarise(scaled[None, :, :], SCALARISATION_WEIGHTS[:, None, :]).min(axis=1)
        scalarised = float(best.mean())
    else:
        scalarised = cap
    return Quality(best_error=float(fits[:, 0].min()) if len(fits) else None,
                   scalarised=scalarised, trained=len(trained))


def run_search(cfg: ExperimentConfig, shapes: tuple[tuple[int, ...], int], seed: int,
               workers: int, total: int, out: Path, count_in_flight: bool = True,
               executor: Any = None) -> list[EvaluationRecord]:
    """One search of ``total`` proposals with ``workers`` in flight (on a
    :class:`VirtualTimeExecutor` unless ``executor`` is given); its records in log order."""
    from search_spaces import get_space

    input_shape, num_classes = shapes
    settings = dataclasses.replace(cfg.search, seed=seed,
                                   rounds=max(0, total - cfg.search.initial_population))
    space = get_space(cfg.search_space.name, **cfg.search_space.bounds)
    meter = ResourceMeter(input_shape, num_classes, cfg.target.engine)
    search = AgingEvolution(space, settings, cfg.objectives, cfg.pruning, meter, out,
                            count_in_flight=count_in_flight)
    if executor is None:
        executor = VirtualTimeExecutor(SurrogateEvaluator(input_shape, num_classes,
                                                          cfg.target.engine), workers)
    search.run(executor, poll_s=0.05)
    return [EvaluationRecord.from_dict(line) for line in JsonLines(out / EVALUATIONS_FILE).read()]


def paired(base: list[float], other: list[float]) -> dict[str, float]:
    """Mean and std of ``other - base`` per seed, wins/ties/losses of ``other`` (lower is
    better), and the two-sided Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    diff = np.asarray(other, dtype=float) - np.asarray(base, dtype=float)
    nonzero = diff[np.abs(diff) > 1e-12]
    p = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else 1.0
    return {"mean": float(diff.mean()), "std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
            "better": int((diff < -1e-12).sum()), "equal": int((np.abs(diff) <= 1e-12).sum()),
            "worse": int((diff > 1e-12).sum()), "p": p}


def _ms(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.4f} ± {arr.std(ddof=1) if len(arr) > 1 else 0.0:.4f}"


def table(results: dict[tuple[int, str], list[Quality]], label: str) -> list[str]:
    """Markdown rows, per K and kind: mean ± std over seeds and the paired comparison with the
    serial search (kind ``1``) of the same K and seed (lower is better for both measures)."""
    lines = [f"| {label}: K | N / rule | best error in bounds | Δ vs serial (better/equal/worse, "
             "p) | best scalarised objective | Δ vs serial (better/equal/worse, p) | trained |",
             "|---:|---|---:|---|---:|---|---:|"]
    for (k, kind), qs in results.items():
        base = results[(k, "1")]
        err = [1.0 if q.best_error is None else q.best_error for q in qs]
        goal = [q.scalarised for q in qs]
        d_err = d_goal = "-"
        if kind != "1":
            pe = paired([1.0 if q.best_error is None else q.best_error for q in base], err)
            pg = paired([q.scalarised for q in base], goal)
            d_err, d_goal = (f"{d['mean']:+.4f} ± {d['std']:.4f} ({d['better']}/{d['equal']}/"
                             f"{d['worse']}, p={d['p']:.2g})" for d in (pe, pg))
        lines.append(f"| {k} | {kind} | {_ms(err)} | {d_err} | {_ms(goal)} | {d_goal} | "
                     f"{np.mean([q.trained for q in qs]):.1f} |")
    return lines


def model_description(config: str) -> str:
    """What the numbers below the command are (written with them)."""
    return (
        f"The real search (`AgingEvolution`) on `{config}`'s search space, bounds and exact "
        "resource model; no training: a candidate's error is the fixed surrogate "
        f"`{ERROR_FLOOR} + {1 - ERROR_FLOOR:.2f} / (1 + sqrt(MACs / {MACS_SCALE:g}) * "
        f"sqrt(size / {SIZE_SCALE:g}))` plus a fixed per-architecture offset in "
        f"±{HASH_OFFSET / 2:g} (a hash of its JSON), and it trains for "
        f"`(1 + MACs / {DURATION_BASE_MACS:g}) * lognormal(0, {DURATION_SIGMA})` virtual "
        "seconds (drawn from its seed) on one of N virtual workers, so results come back in "
        "the order they finish, as from N real workers. Each row is one search of K proposals "
        "per seed (its whole result), compared per seed with the serial search (N = 1) of the "
        "same seed: mean ± std over seeds, how many seeds were better/equal/worse than serial, "
        "and the two-sided Wilcoxon signed-rank p. *best error in bounds*: lowest surrogate "
        "error among trained candidates within the three resource bounds; *best scalarised "
        "objective*: the search's own `max_i λ_i min(f_i / b_i, cap)` minimised over the "
        "trained candidates, averaged over 200 fixed λ ~ U(0, 1)^4 (the R2 indicator). "
        "Lower is better for both. *plain*: the asynchronous rule without "
        "`count_in_flight`; *counted*: the default (in-flight children join the parent sample "
        "with their exact resources and their parent's error, random proposals until "
        "`initial_population` results are in). *random search*: `algorithm: random`, serial.")


def _comparable(records: list[EvaluationRecord]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k != "wall_time_s"} for r in records]


def section_of(text: str, heading: str) -> str | None:
    """The ``## `` sections of ``text`` titled ``heading`` or ``heading: <title>``
    (``--title``), each up to the next ``## ``, in order; ``None`` if there is none."""
    lines, chunks, i = text.splitlines(), [], 0
    while i < len(lines):
        if lines[i].strip() == heading or lines[i].startswith(heading + ": "):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("## ")),
                       len(lines))
            chunks.append("\n".join(lines[i:end]).rstrip())
            i = end
        else:
            i += 1
    return "\n\n".join(chunks) + "\n" if chunks else None


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with the ``## `` section titled ``heading`` replaced by ``section`` (appended if
    absent); other sections are kept as they are."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    after = [""] + lines[end:] if end < len(lines) else []
    return "\n".join(lines[:start] + section.rstrip("\n").splitlines() + after).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/digits.yaml")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--evaluations", default="30,100",
                        help="K: one search of K proposals per K (the whole search's result)")
    parser.add_argument("--population", default="",
                        help="also run with population_size,sample_size,initial_population[,K]")
    parser.add_argument("--title", default="",
                        help="write a section of its own, headed by the section title + this")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    cfg = load_config(ROOT / args.config if not Path(args.config).is_absolute() else args.config)
    workers = [int(w) for w in args.workers.split(",")]
    ks = [int(k) for k in args.evaluations.split(",")]
    variants = [("config", cfg, ks)]
    if args.population:
        pop, sample, init, *k_pop = (int(v) for v in args.population.split(","))
        variants.append((f"pop {pop}", dataclasses.replace(cfg, search=dataclasses.replace(
            cfg.search, population_size=pop, sample_size=sample, initial_population=init)),
            k_pop or ks))
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="staleness-", dir=shm if shm.is_dir() else None))
    from unas.experiment import dataset_shapes

    shapes = dataset_shapes(cfg)
    cpu_start = time.process_time()
    sections: list[str] = []
    try:
        for label, variant, variant_ks in variants:
            results: dict[tuple[int, str], list[Quality]] = {}
            random_search = dataclasses.replace(variant, search=dataclasses.replace(
                variant.search, algorithm="random"))
            kinds = [("1", variant, 1, True)]
            for n in (w for w in workers if w > 1):
                kinds += [(f"{n}, plain", variant, n, False), (f"{n}, counted", variant, n, True)]
            kinds.append(("random search", random_search, 1, True))
            for k in variant_ks:
                for kind, kind_cfg, n, counted in kinds:
                    for seed in range(args.seeds):
                        out = work / f"{label}-{k}-{kind}-{seed}".replace(" ", "").replace(",", "")
                        records = run_search(kind_cfg, shapes, seed, n, k, out, counted)
                        shutil.rmtree(out)
                        if kind == "1" and seed < 3:  # serially the two rules are one
                            plain = run_search(kind_cfg, shapes, seed, n, k, out, False)
                            shutil.rmtree(out)
                            if _comparable(plain) != _comparable(records):
                                raise AssertionError("count_in_flight changed a serial search")
                        results.setdefault((k, kind), []).append(
                            quality(records, variant.objectives, variant.search.objective_cap))
                    print(f"{label} K={k} {kind}: {args.seeds} seeds done", file=sys.stderr)
            s = variant.search
            sections += [f"Search `{label}`: population {s.population_size}, sample "
                         f"{s.sample_size}, initial population {s.initial_population}.", ""]
            sections += table(results, label) + [""]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = time.process_time() - cpu_start
    command = "python benchmarks/bench_staleness.py " + " ".join(sys.argv[1:])
    heading = f"{SECTION}: {args.title}" if args.title else SECTION
    text = "\n".join([
        heading, "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {args.seeds} seeds per N, {cpu:.0f} s CPU in all.", "",
        f"Command: `{command.strip()}`", "",
        model_description(args.config), "",
        *sections]).rstrip() + "\n"
    output = Path(args.output)
    old = output.read_text() if output.exists() else ""
    atomic_write_text(output, replace_section(old, heading, text))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
