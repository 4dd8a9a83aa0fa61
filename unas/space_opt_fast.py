"""Exact MACs, int8 size and peak memory of an MBConv network straight from its operator list.

The sweep of TinyNAS's search-space optimisation measures 108 x 1000 networks. Building each
one's networkx resource graph and asking :func:`unas.resources.engine.peak_memory_bytes` costs a
few milliseconds, nearly all of it networkx bookkeeping; this module computes the same three
numbers from :meth:`search_spaces.mbconv.MBConvArchitecture.operators` with plain lists in tens
of microseconds. It is exact, not an estimate:

* an MBConv network's operators form one chain with residual skips, so the only topological
  order is the operator list itself and the minimum peak is that order's peak;
* the working set follows the execution model of :mod:`unas.resources.memory` step by step, and
  the in-place operators and the scratch buffer are those of :mod:`unas.resources.engine`
  (``codegen``: depthwise conv keeping its channel count, ADD onto an equal-shaped first input,
  RESHAPE; scratch = the largest im2col column of a non-1x1 conv or input channel of an in-place
  depthwise conv; ``tflm``: neither).

Because it restates those rules, :func:`check_against_resource_model` compares it with the
resource model itself; the sweep calls it on a seeded share of its samples and stops on any
difference, and the tests compare them on random networks.

>>> import numpy as np
>>> from search_spaces.mbconv import MBConvSpace
>>> arch = MBConvSpace(0.3, 64).random_architecture(np.random.default_rng(0))
>>> costs = operator_costs(arch.operators((64, 64, 3), 10), "codegen")
>>> costs == check_against_resource_model(arch, (64, 64, 3), 10, "codegen")
True
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from search_spaces.mbconv import MBConvArchitecture, Operator
from unas.errors import ArchitectureError, ConfigError

ENGINES = ("codegen", "tflm")


class Costs(NamedTuple):
    """MACs, peak memory (bytes, scratch included) and int8 model size (bytes)."""

    macs: int
    peak_bytes: int
    size_bytes: int


def operator_costs(ops: Sequence[Operator], engine: str) -> Costs:
    """Costs of running ``ops`` in list order (which must be topological) under ``engine``."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    codegen = engine == "codegen"
    index = {op.name: i for i, op in enumerate(ops)}
    sizes = [math.prod(op.shape) for op in ops]
    sources = [[index[src] for src in op.inputs] for op in ops]
    pending = [0] * len(ops)
    for srcs in sources:
        for src in srcs:
            pending[src] += 1
    live = sum(size for size, srcs in zip(sizes, sources) if not srcs)
    peak = scratch = macs = model_size = 0
    for op, size, srcs in zip(ops, sizes, sources):
        macs += op.macs
        model_size += op.size_bytes
        if not srcs:  # a graph input: live from the start
            peak = max(peak, live)
            continue
        first = srcs[0]
        in_shape = ops[first].shape
        in_place = codegen and _runs_in_place(op, in_shape)
        if in_place and pending[first] == 1:
            step = live - sizes[first] + max(sizes[first], size)
        else:
            step = live + size
        peak = max(peak, step)
        if codegen:
            scratch = max(scratch, _scratch(op, size, in_shape, in_place))
        live += size
        for src in srcs:
            pending[src] -= 1
            if pending[src] == 0:
                live -= sizes[src]
    return Costs(macs, peak + scratch, model_size)


def _runs_in_place(op: Operator, in_shape: tuple[int, ...]) -> bool:
    if op.op == "DEPTHWISE_CONV_2D":
        return len(op.shape) == 3 and len(in_shape) == 3 and op.shape[-1] == in_shape[-1]
    if op.op == "ADD":
        return tuple(in_shape) == tuple(op.shape)
    if op.op == "RESHAPE":
        return math.prod(in_shape) == math.prod(op.shape)
    return False


def _scratch(op: Operator, size: int, in_shape: tuple[int, ...], in_place: bool) -> int:
    if op.op == "CONV_2D":
        column = op.macs // size if size else 0
        return 0 if column == (in_shape[-1] if in_shape else 1) else column
    if op.op == "DEPTHWISE_CONV_2D" and in_place:
        return int(in_shape[0] * in_shape[1])
    return 0


def check_against_resource_model(arch: MBConvArchitecture, input_shape: tuple[int, ...],
                                 num_classes: int, engine: str) -> Costs:
    """The costs by the resource model (graph, :func:`unas.resources.engine.peak_memory_bytes`);
    raises :class:`ArchitectureError` if :func:`operator_costs` disagrees."""
    from unas.resources.engine import peak_memory_bytes

    graph = arch.resource_graph(input_shape, num_classes)
    exact = Costs(sum(d["macs"] for _, d in graph.nodes(data=True)),
                  int(peak_memory_bytes(graph, engine)),
                  sum(d["size_bytes"] for _, d in graph.nodes(data=True)))
    fast = operator_costs(arch.operators(input_shape, num_classes), engine)
    if fast != exact:
        raise ArchitectureError(f"fast MBConv costs {tuple(fast)} differ from unas.resources "
                                f"{tuple(exact)} ({engine}) for {arch.to_json()}")
    return exact
