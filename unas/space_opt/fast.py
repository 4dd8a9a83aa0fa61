"""Exact MACs, int8 size and peak memory of an MBConv network straight from its operator list.

The sweep of TinyNAS's search-space optimisation measures 108 x 1000 networks. Building each
one's networkx resource graph and asking :func:`unas.resources.engine.peak_memory_bytes` costs a
few milliseconds, nearly all of it networkx bookkeeping; this module computes the same three
numbers from :meth:`search_spaces.mbconv.MBConvArchitecture.operators` with plain lists in tens
of microseconds. It is exact, not an estimate:

* an MBConv network's operators form one chain with residual skips, so the only topological
  order is the operator list itself and the minimum peak is that order's peak;
* the working set follows the execution model of :mod:`unas.resources.memory` step by step, and
  the in-place operators, fused blocks and scratch tensors are those of
  :mod:`unas.resources.engine` (``codegen``: inverted-residual chains fused into one step with
  its row buffer live only during that step, under the best of the engine's fusion policies;
  depthwise conv keeping its channel count in place up to the cut-off that minimises the peak,
  ADD onto an equal-shaped first input, RESHAPE; a depthwise conv that may run channel by
  channel has its padded channel plane live while it runs; ``tflm``: neither, but 16-byte
  aligned buffers and int8 MEAN's scratch while it runs).

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
from unas.errors import ArchitectureError
from unas.resources.engine import (FUSED_OP, FUSION_POLICIES, SCRATCH_OP, check_engine,
                                   depthwise_plane_bytes, fused_temp_bytes, infer_geometry)


class Costs(NamedTuple):
    """MACs, peak memory (bytes, scratch included) and int8 model size (bytes)."""

    macs: int
    peak_bytes: int
    size_bytes: int


def operator_costs(ops: Sequence[Operator], engine: str) -> Costs:
    """Costs of running ``ops`` in list order (which must be topological) under ``engine``.

    For ``codegen`` the engine fuses inverted-residual chains by one of its fusion policies and
    runs a depthwise conv in place only up to the plane size
    (:func:`unas.resources.engine.depthwise_plane_bytes`) that minimises the peak
    (:func:`unas.resources.engine.engine_graph`): every policy and candidate cut-off is tried, as
    there.
    """
    check_engine(engine, "--engine")
    macs = sum(op.macs for op in ops)
    model_size = sum(op.size_bytes for op in ops)
    if engine == "tflm":
        return Costs(macs, _chain_peak(ops, None), model_size)
    peaks = []
    for policy in FUSION_POLICIES:
        fused = _fused_ops(ops, policy)
        index = {op.name: i for i, op in enumerate(fused)}
        limits = sorted({_plane_bytes(op, fused[index[op.inputs[0]]].shape, True) for op in fused
                         if op.op == "DEPTHWISE_CONV_2D" and op.inputs
                         and _runs_in_place(op, fused[index[op.inputs[0]]].shape)}, reverse=True)
        peaks += [_chain_peak(fused, limit) for limit in [*limits, 0]]
    return Costs(macs, min(peaks), model_size)


def _fused_ops(ops: Sequence[Operator], policy: str) -> list[Operator]:
    """``ops`` with the chains :func:`unas.resources.engine.fusable_chains` takes under
    ``policy`` replaced by a ``SCRATCH`` (the step's row buffer) and a ``FUSED_BLOCK`` operator,
    in the chain's place (the list stays the only topological order)."""
    if policy == "none":
        return list(ops)
    by_name = {op.name: op for op in ops}
    consumers: dict[str, list[str]] = {op.name: [] for op in ops}
    for op in ops:
        for src in op.inputs:
            consumers[src].append(op.name)

    def sole_consumer(name: str) -> str | None:
        return consumers[name][0] if len(consumers[name]) == 1 else None

    def pointwise(name: str) -> bool:
        op = by_name[name]
        if op.op != "CONV_2D" or len(op.inputs) != 1:
            return False
        in_shape = by_name[op.inputs[0]].shape
        return (len(op.shape) == 3 and len(in_shape) == 3 and op.shape[:2] == in_shape[:2]
                and op.kernel == 1)

    used: set[str] = set()
    replaced: dict[str, list[Operator]] = {}
    for dw in ops:
        if dw.op != "DEPTHWISE_CONV_2D" or len(dw.inputs) != 1 or dw.inputs[0] in used:
            continue
        src = dw.inputs[0]
        mid_shape = by_name[src].shape
        kernel = dw.kernel
        if (not kernel or len(dw.shape) != 3 or len(mid_shape) != 3
                or dw.shape[-1] != mid_shape[-1]):
            continue
        project = sole_consumer(dw.name)
        if project is None or project in used or not pointwise(project):
            continue
        expand = src if pointwise(src) and sole_consumer(src) == dw.name else None
        if expand is None and policy != "all":
            continue
        source = by_name[expand].inputs[0] if expand else src
        in_shape = by_name[source].shape
        if len(in_shape) != 3:
            continue
        add = sole_consumer(project)
        if add is not None:
            op = by_name[add]
            shapes = {tuple(by_name[n].shape) for n in (add, project, source)}
            if op.op != "ADD" or len(op.inputs) != 2 or set(op.inputs) != {project, source} \
                    or len(shapes) != 1:
                add = None
        out_shape = by_name[project].shape
        _, temp = fused_temp_bytes(in_shape, mid_shape[-1], out_shape, kernel,
                                   expand is not None, add is not None)
        if temp >= math.prod(by_name[expand or dw.name].shape):
            continue
        chain = [n for n in (expand, dw.name, project, add) if n]
        used.update(chain)
        last = by_name[chain[-1]]
        members = [by_name[n] for n in chain]
        replaced[last.name] = [
            Operator(f"{last.name}#temp", SCRATCH_OP, (temp,), (source,)),
            Operator(last.name, FUSED_OP, last.shape, (source, f"{last.name}#temp"),
                     sum(m.macs for m in members), sum(m.params for m in members),
                     sum(m.size_bytes for m in members))]
    result = []
    for op in ops:
        if op.name in replaced:
            result += replaced[op.name]
        elif op.name not in used:
            result.append(op)
    return result


def _plane_bytes(op: Operator, in_shape: tuple[int, ...], in_place: bool) -> int:
    """The engine's :func:`unas.resources.engine.depthwise_plane_bytes` for one operator."""
    if op.op != "DEPTHWISE_CONV_2D":
        return 0
    geometry = infer_geometry(op.op, op.shape, in_shape, op.macs, **op.geometry())
    return depthwise_plane_bytes(op.shape, in_shape, geometry, in_place)


def _chain_peak(ops: Sequence[Operator], dw_limit: int | None) -> int:
    """Peak working set of the list order, scratch included; ``dw_limit`` is None for ``tflm``
    (nothing in place), else the largest depthwise plane that may run in place (``codegen``)."""
    codegen = dw_limit is not None
    index = {op.name: i for i, op in enumerate(ops)}
    sizes = [math.prod(op.shape) for op in ops]
    if not codegen:  # TFLM rounds every buffer up to 16 bytes
        sizes = [-(-size // 16) * 16 for size in sizes]
    sources = [[index[src] for src in op.inputs] for op in ops]
    pending = [0] * len(ops)
    for srcs in sources:
        for src in srcs:
            pending[src] += 1
    live = sum(size for size, srcs in zip(sizes, sources) if not srcs)
    peak = 0
    for op, size, srcs in zip(ops, sizes, sources):
        if not srcs:  # a graph input: live from the start
            peak = max(peak, live)
            continue
        first = srcs[0]
        in_shape = ops[first].shape
        in_place = codegen and _runs_in_place(op, in_shape)
        # a depthwise conv that may run channel by channel (marked in place, or one channel):
        # its padded plane is an arena tensor live while it runs (engine._with_planes)
        plane = _plane_bytes(op, in_shape, in_place) if codegen else 0
        if in_place and plane > dw_limit:  # a plane above the cut-off: not marked in place
            in_place = False
            plane = _plane_bytes(op, in_shape, False)
        in_place = in_place and pending[first] == 1
        if in_place:
            step = live - sizes[first] + max(sizes[first], size) + plane
        else:
            step = live + size + plane
        if not codegen and op.op == "MEAN":  # TFLM's int8 MEAN scratch, live while it runs
            rank = len(in_shape) + 1
            step += sum(-(-n // 16) * 16 for n in (4 * size_elements(op), 4 * rank, 4 * (rank - 2)))
        peak = max(peak, step)
        live += size
        for src in srcs:
            pending[src] -= 1
            if pending[src] == 0:
                live -= sizes[src]
    return peak


def size_elements(op: Operator) -> int:
    """Elements of ``op``'s output tensor."""
    return math.prod(op.shape)


def _runs_in_place(op: Operator, in_shape: tuple[int, ...]) -> bool:
    if op.op == "DEPTHWISE_CONV_2D":
        return len(op.shape) == 3 and len(in_shape) == 3 and op.shape[-1] == in_shape[-1]
    if op.op == "ADD":
        return tuple(in_shape) == tuple(op.shape)
    if op.op == "RESHAPE":
        return math.prod(in_shape) == math.prod(op.shape)
    return False


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
