"""Sampling and measuring the MBConv space's (w, r) configurations (TinyNAS's first stage).

For every configuration, ``m`` architectures are drawn and each one's exact peak memory (under
the chosen engine), int8 model size and MACs are recorded -- only shapes and schedules, no
training. The work is cut into fixed chunks of samples, each with its own generator spawned
from the seed with :class:`numpy.random.SeedSequence` (configuration ``i`` of the full 108-grid
gets ``SeedSequence(seed).spawn(108)[i]``, which spawns one child per chunk), so the results
depend on the seed only, not on the number of worker processes nor on which other
configurations are swept. Each network is measured from its operator list by
:mod:`unas.space_opt.fast` (exact; a share of samples is cross-checked against the resource
model, see :func:`measure_chunk`).

>>> from unas.space_opt.sweep import sweep
>>> result = sweep([(0.3, 48)], samples=3, seed=0, workers=1, progress=False)
>>> result.configs[0].macs.shape
(3,)
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.context import BaseContext

import numpy as np

from search_spaces.mbconv import RESOLUTIONS, WIDTH_MULTS, MBConvSpace
from unas.errors import ConfigError
from unas.resources.engine import check_engine
from unas.space_opt.fast import check_against_resource_model, operator_costs

#: Samples per unit of work: small enough to balance two workers, large enough to amortise IPC.
CHUNK_SAMPLES = 250


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
    """CPU seconds spent in each step, summed over every sample (all workers together). CPU
    rather than wall time, so the breakdown means the same on a machine shared with other jobs.
    """

    sample_s: float = 0.0  # drawing the architecture
    operators_s: float = 0.0  # its operator list (shapes, MACs, sizes)
    costs_s: float = 0.0  # peak memory, size and MACs from the list
    verify_s: float = 0.0  # the resource-model cross-check of some samples
    cpu_s: float = 0.0  # all CPU time of the chunks (the steps plus the loop around them)
    samples: int = 0
    verified: int = 0

    def add(self, other: "Timing") -> None:
        for name in ("sample_s", "operators_s", "costs_s", "verify_s", "cpu_s", "samples",
                     "verified"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class SweepResult:
    """The :class:`ConfigSamples` of each configuration (in the order asked for) and the time
    spent per step."""

    configs: list[ConfigSamples] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)


def all_configurations() -> list[tuple[float, int]]:
    """The 108 ``(w, r)`` pairs of MCUNet, w-major."""
    return [(w, r) for w in WIDTH_MULTS for r in RESOLUTIONS]


def measure_chunk(width_mult: float, resolution: int, seed: np.random.SeedSequence, count: int,
                  engine: str, input_channels: int, num_classes: int, verify_every: int = 100
                  ) -> tuple[np.ndarray, Timing]:
    """Draw ``count`` architectures of ``(w, r)`` and measure them: ``(count, 3)`` int64 array of
    (MACs, peak bytes, size bytes) and the CPU time spent per step.

    Samples ``0, verify_every, 2 * verify_every, ...`` of the chunk are also measured by the
    resource model (networkx graph, :func:`unas.resources.engine.peak_memory_bytes`), which
    raises :class:`unas.errors.ArchitectureError` if the fast path disagrees.
    """
    space = MBConvSpace(width_mult=width_mult, resolution=resolution)
    rng = np.random.default_rng(seed)
    shape = (resolution, resolution, input_channels)
    out = np.empty((count, 3), dtype=np.int64)
    timing = Timing(samples=count)
    clock = time.process_time
    cpu_start = clock()
    for i in range(count):
        t0 = clock()
        arch = space.random_architecture(rng)
        t1 = clock()
        ops = arch.operators(shape, num_classes)
        t2 = clock()
        out[i] = operator_costs(ops, engine)
        t3 = clock()
        if verify_every and i % verify_every == 0:
            check_against_resource_model(arch, shape, num_classes, engine)
            timing.verified += 1
        timing.sample_s += t1 - t0
        timing.operators_s += t2 - t1
        timing.costs_s += t3 - t2
        timing.verify_s += clock() - t3
    timing.cpu_s = clock() - cpu_start
    return out, timing


def _process_context() -> BaseContext:
    """Fork-server processes: they start from a clean server (safe after TensorFlow was
    imported, unlike fork) that has already imported this module (quicker than spawn)."""
    context = get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _run_task(task: tuple) -> tuple[np.ndarray, Timing]:
    return measure_chunk(*task)


def sweep(configurations: Sequence[tuple[float, int]], samples: int, seed: int, *,
          engine: str = "codegen", input_channels: int = 3, num_classes: int = 1000,
          workers: int = 1, verify_every: int = 100, progress: bool = True) -> SweepResult:
    """Measure ``samples`` random architectures of each ``(w, r)`` in ``configurations``.

    ``workers > 1`` uses that many fork-server processes (safe after TensorFlow was imported);
    the numbers are identical for any ``workers``. Every ``verify_every``-th sample of a chunk
    (0: none) is cross-checked against the resource model (see :func:`measure_chunk`).
    """
    grid = all_configurations()
    if samples < 1:
        raise ConfigError(f"--samples: expected an integer >= 1, got {samples}")
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
    check_engine(engine, "--engine")
    if verify_every < 0:
        raise ConfigError(f"--verify-every: expected an integer >= 0, got {verify_every}")
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
            tasks.append((w, r, chunk_seed, count, engine, input_channels, num_classes,
                          verify_every))
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
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_process_context())
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
