"""Sampling and measuring the MBConv space's (w, r) configurations (TinyNAS's first stage).

For every configuration, ``m`` architectures are drawn and each one's exact peak memory (under
the chosen engine), int8 model size and MACs are recorded -- only shapes and schedules, no
training. The work is cut into fixed chunks of samples, each with its own generator spawned
from the seed with :class:`numpy.random.SeedSequence` (configuration ``i`` of the full 108-grid
gets ``SeedSequence(seed).spawn(108)[i]``, which spawns one child per chunk), so the results
depend on the seed only, not on the number of worker processes nor on which other
configurations are swept.

>>> from unas.space_opt_sweep import sweep
>>> result = sweep([(0.3, 48)], samples=3, seed=0, workers=1, progress=False)
>>> result.configs[0].macs.shape
(3,)
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

import networkx as nx
import numpy as np

from search_spaces.mbconv import RESOLUTIONS, WIDTH_MULTS, MBConvSpace
from unas.errors import ConfigError

#: Samples per unit of work: small enough to balance two workers, large enough to amortise IPC.
CHUNK_SAMPLES = 250
ENGINES = ("codegen", "tflm")


@dataclass
class ConfigSamples:
    """Measurements of the ``m`` sampled architectures of one ``(w, r)`` configuration."""

    width_mult: float
    resolution: int
    macs: np.ndarray  # int64, one per sample
    peak_bytes: np.ndarray
    size_bytes: np.ndarray

    @property
    def label(self) -> str:
        """MCUNet's legend style: ``w0.5-r128``."""
        return f"w{self.width_mult:g}-r{self.resolution}"


@dataclass
class Timing:
    """Seconds spent in each step, summed over every sample (all workers together)."""

    sample_s: float = 0.0
    graph_s: float = 0.0
    peak_s: float = 0.0
    totals_s: float = 0.0
    samples: int = 0

    def add(self, other: "Timing") -> None:
        self.sample_s += other.sample_s
        self.graph_s += other.graph_s
        self.peak_s += other.peak_s
        self.totals_s += other.totals_s
        self.samples += other.samples


@dataclass
class SweepResult:
    """The :class:`ConfigSamples` of each configuration (in the order asked for) and the time
    spent per step."""

    configs: list[ConfigSamples] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)


def all_configurations() -> list[tuple[float, int]]:
    """The 108 ``(w, r)`` pairs of MCUNet, w-major."""
    return [(w, r) for w in WIDTH_MULTS for r in RESOLUTIONS]


def forced_order(graph: nx.DiGraph) -> list | None:
    """The graph's only topological order, if it has just one, else None.

    A DAG has exactly one topological order iff consecutive nodes of a topological order are
    joined by edges (a Hamiltonian path). MBConv graphs are one chain of operators with residual
    skips, and :func:`unas.resources.graph.add_op` keeps insertion order, so ``list(graph)`` is
    checked first; the minimum-peak schedule of such a graph needs no search.
    """
    order = list(graph)
    has_edge = graph.has_edge
    if all(has_edge(a, b) for a, b in zip(order, order[1:])):
        return order
    order = list(nx.topological_sort(graph))
    return order if all(has_edge(a, b) for a, b in zip(order, order[1:])) else None


def peak_function(engine: str) -> Callable[[nx.DiGraph], int]:
    """``graph -> exact minimum peak bytes`` for ``engine`` (``codegen``: in-place operators as
    the code generator runs them; ``tflm``: none), from :mod:`unas.resources`.

    Graphs with a single topological order (every MBConv network) skip the schedule search:
    their peak is :func:`unas.resources.memory.peak_of_order` of that order.
    """
    if engine not in ENGINES:
        raise ConfigError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    from unas.resources.memory import peak_of_order

    try:
        from unas.resources.engine import peak_memory_bytes
    except ModuleNotFoundError:  # TEMPORARY until unas.resources.engine lands: no in-place ops
        from unas.resources.schedule import min_peak_schedule

        def exact(graph: nx.DiGraph) -> int:
            return int(min_peak_schedule(graph).peak_bytes)

        def prepared(graph: nx.DiGraph) -> nx.DiGraph:
            return graph
    else:
        def exact(graph: nx.DiGraph) -> int:
            return int(peak_memory_bytes(graph, engine))

        def prepared(graph: nx.DiGraph) -> nx.DiGraph:
            return graph

    def peak(graph: nx.DiGraph) -> int:
        order = forced_order(graph)
        if order is None:
            return exact(graph)
        return int(peak_of_order(prepared(graph), order))

    return peak


def measure_chunk(width_mult: float, resolution: int, seed: np.random.SeedSequence, count: int,
                  engine: str, input_channels: int, num_classes: int
                  ) -> tuple[np.ndarray, Timing]:
    """Draw ``count`` architectures of ``(w, r)`` and measure them: ``(count, 3)`` int64 array of
    (MACs, peak bytes, size bytes) and the time spent per step."""
    space = MBConvSpace(width_mult=width_mult, resolution=resolution)
    rng = np.random.default_rng(seed)
    peak_of = peak_function(engine)
    shape = (resolution, resolution, input_channels)
    out = np.empty((count, 3), dtype=np.int64)
    timing = Timing(samples=count)
    clock = time.perf_counter
    for i in range(count):
        t0 = clock()
        arch = space.random_architecture(rng)
        t1 = clock()
        graph = arch.resource_graph(shape, num_classes)
        t2 = clock()
        peak = peak_of(graph)
        t3 = clock()
        macs = size = 0
        for _, data in graph.nodes(data=True):
            macs += data["macs"]
            size += data["size_bytes"]
        t4 = clock()
        out[i] = (macs, peak, size)
        timing.sample_s += t1 - t0
        timing.graph_s += t2 - t1
        timing.peak_s += t3 - t2
        timing.totals_s += t4 - t3
    return out, timing


def _run_task(task: tuple) -> tuple[np.ndarray, Timing]:
    return measure_chunk(*task)


def sweep(configurations: Sequence[tuple[float, int]], samples: int, seed: int, *,
          engine: str = "codegen", input_channels: int = 3, num_classes: int = 1000,
          workers: int = 1, progress: bool = True) -> SweepResult:
    """Measure ``samples`` random architectures of each ``(w, r)`` in ``configurations``.

    ``workers > 1`` uses that many processes (spawned, so safe after TensorFlow was imported);
    the numbers are identical for any ``workers``.
    """
    grid = all_configurations()
    if samples < 1:
        raise ConfigError(f"--samples: expected an integer >= 1, got {samples}")
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
    peak_function(engine)  # fail early on a bad engine name
    roots = np.random.SeedSequence(seed).spawn(len(grid))
    tasks, owners = [], []
    for index, (w, r) in enumerate(configurations):
        if (w, r) not in grid:
            raise ConfigError(f"configuration w={w} r={r}: expected w in {list(WIDTH_MULTS)} and "
                              f"r in {list(RESOLUTIONS)}")
        sizes = [CHUNK_SAMPLES] * (samples // CHUNK_SAMPLES)
        if samples % CHUNK_SAMPLES:
            sizes.append(samples % CHUNK_SAMPLES)
        for chunk_seed, count in zip(roots[grid.index((w, r))].spawn(len(sizes)), sizes):
            tasks.append((w, r, chunk_seed, count, engine, input_channels, num_classes))
            owners.append(index)
    parts: list[list[np.ndarray]] = [[] for _ in configurations]
    result = SweepResult()
    from tqdm import tqdm

    bar = tqdm(total=len(tasks) and samples * len(configurations), unit="arch",
               desc="sampling (w, r) spaces", disable=not progress, smoothing=0.05)
    if workers == 1 or len(tasks) == 1:
        outputs = map(_run_task, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        outputs = pool.map(_run_task, tasks)  # yields in task order
    try:
        for owner, task, (values, timing) in zip(owners, tasks, outputs):
            parts[owner].append(values)
            result.timing.add(timing)
            bar.update(task[3])
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    for (w, r), chunks in zip(configurations, parts):
        values = np.concatenate(chunks)
        result.configs.append(ConfigSamples(w, r, values[:, 0], values[:, 1], values[:, 2]))
    return result
