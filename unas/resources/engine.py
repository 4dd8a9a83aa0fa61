"""Engine-specific view of a resource graph: which operators run in place, how much scratch.

Two inference engines are modelled:

``"tflm"``
    TensorFlow Lite Micro: no operator works in place; every buffer is rounded up to 16 bytes
    (TFLM's arena alignment), and an int8 ``MEAN`` asks for scratch buffers (an int32 per
    output element, and int32 arrays of the input rank and the reduced axes, each rounded up
    to 16) that are live only while it runs. With these, the exact working-set peak equals the
    arena head TFLM reports for the model reordered and planned by ``unas.export``
    (``benchmarks/bench_tflm_fidelity.py`` checks that on 50 models).
``"codegen"``
    The project's C code generator (``tflm_runtime.codegen``). It runs in place
    (``inplace=True``, see :mod:`unas.resources.memory` for the execution model):
    ``DEPTHWISE_CONV_2D`` with depth multiplier 1 (MCUNet's in-place depthwise convolution),
    ``ADD`` onto its first input (same shape as the output) and ``RESHAPE`` (an alias), each only
    when its first input has no other pending consumer. Its one scratch buffer holds one input
    channel (``H*W`` bytes) of the largest depthwise convolution that runs in place;
    convolutions run directly on the input (no im2col buffer).

The search's memory objective for ``target: {engine: codegen}`` is :func:`peak_memory_bytes`,
computed from the resource graph alone, and equal to the SRAM the generator reports
(arena + scratch). No TensorFlow here.

>>> from unas.resources.graph import new_graph, add_op
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (8, 8, 4))
>>> _ = add_op(g, "dw", "DEPTHWISE_CONV_2D", (8, 8, 4), ["in"], macs=8 * 8 * 4 * 9)
>>> _ = add_op(g, "fc", "FULLY_CONNECTED", (2,), ["dw"], macs=512)
>>> peak_memory_bytes(g, "tflm"), peak_memory_bytes(g, "codegen")
(512, 322)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx

from unas.errors import ConfigError
from unas.resources.graph import first_input

ENGINES = ("tflm", "codegen")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"target.engine: expected one of {', '.join(ENGINES)}, got {engine!r}")


def _input_shape(graph: nx.DiGraph, node: str) -> tuple[int, ...] | None:
    src = first_input(graph, node)
    return None if src is None else tuple(graph.nodes[src]["shape"])


def runs_in_place(graph: nx.DiGraph, node: str, engine: str) -> bool:
    """Whether ``engine`` may write ``node``'s output over its first input."""
    _check_engine(engine)
    if engine == "tflm":
        return False
    data = graph.nodes[node]
    op, shape = data["op"], tuple(data["shape"])
    in_shape = _input_shape(graph, node)
    if in_shape is None:
        return False
    if op == "DEPTHWISE_CONV_2D":
        return len(shape) == 3 and len(in_shape) == 3 and shape[-1] == in_shape[-1]
    if op == "ADD":
        return in_shape == shape
    if op == "RESHAPE":
        return math.prod(in_shape) == math.prod(shape)
    return False


def _marked(graph: nx.DiGraph, engine: str, dw_max_pixels: int | None) -> nx.DiGraph:
    result = graph.copy()
    for node in result:
        result.nodes[node].pop("inplace", None)
        if not runs_in_place(graph, node, engine):
            continue
        if result.nodes[node]["op"] == "DEPTHWISE_CONV_2D" and dw_max_pixels is not None:
            in_shape = _input_shape(graph, node)
            if in_shape is None or in_shape[0] * in_shape[1] > dw_max_pixels:
                continue
        result.nodes[node]["inplace"] = True
    return result


TFLM_ALIGNMENT = 16
SCRATCH_OP = "SCRATCH"


def _align(size: int) -> int:
    return -(-int(size) // TFLM_ALIGNMENT) * TFLM_ALIGNMENT


def _tflm_view(graph: nx.DiGraph) -> nx.DiGraph:
    """``graph`` as TFLM allocates it: 16-byte aligned buffers, and a ``SCRATCH`` node right
    before each ``MEAN`` (it reads MEAN's inputs and MEAN reads it, so it is live exactly while
    MEAN runs when scheduled just before it, which the optimiser then does)."""
    result = _marked(graph, "tflm", None)
    for node in list(graph):
        data = result.nodes[node]
        data["bytes"] = _align(data["bytes"])
        if data["op"] == "MEAN":
            in_shape = _input_shape(graph, node)
            rank = 1 + (len(in_shape) if in_shape else 0)  # with the batch dimension
            axes = max(1, rank - 2)  # global pooling reduces H and W
            scratch = (_align(4 * math.prod(graph.nodes[node]["shape"])) + _align(4 * rank)
                       + _align(4 * axes))
            name = f"{node}#scratch"
            result.add_node(name, op=SCRATCH_OP, shape=(scratch,), bytes=scratch, macs=0,
                            params=0, size_bytes=0)
            for src in list(graph.predecessors(node)):
                result.add_edge(src, name, index=graph.edges[src, node].get("index", 0))
            result.add_edge(name, node, index=graph.in_degree(node))
    return result


def engine_graph(graph: nx.DiGraph, engine: str) -> nx.DiGraph:
    """A copy of ``graph`` with ``inplace=True`` exactly on the nodes ``engine`` runs in place.

    For ``"codegen"`` an in-place depthwise convolution costs one input channel of scratch, which
    only pays when it lowers the peak: depthwise convs run in place only up to a pixel count
    (``H*W`` of their input) chosen to minimise working set + scratch (ADD and RESHAPE, which
    need no scratch, always may).
    """
    _check_engine(engine)
    if engine == "tflm":
        return _tflm_view(graph)
    from unas.resources.schedule import min_peak_schedule

    limits = sorted({int(s[0] * s[1]) for n in graph
                     if graph.nodes[n]["op"] == "DEPTHWISE_CONV_2D"
                     and runs_in_place(graph, n, engine)
                     for s in [_input_shape(graph, n)]}, reverse=True) + [0]
    best, best_total = None, None
    for limit in limits:
        candidate = _marked(graph, engine, limit)
        schedule = min_peak_schedule(candidate)
        total = schedule.peak_bytes + _scratch_of_order(candidate, schedule.order)
        if best_total is None or total < best_total:
            best, best_total = candidate, total
    return best


def in_place_nodes(graph: nx.DiGraph, order: Sequence[str]) -> set[str]:
    """Nodes marked ``inplace`` that really run in place in ``order`` (their first input has no
    other pending consumer when they run), as :mod:`unas.resources.memory` models it."""
    pending = {n: graph.out_degree(n) for n in graph}
    result = set()
    for node in order:
        if graph.nodes[node].get("inplace"):
            src = first_input(graph, node)
            if src is not None and pending[src] == 1:
                result.add(node)
        for src in graph.predecessors(node):
            pending[src] -= 1
    return result


def _scratch_of_order(marked: nx.DiGraph, order: Sequence[str]) -> int:
    sizes = [0]
    for node in in_place_nodes(marked, order):
        if marked.nodes[node]["op"] == "DEPTHWISE_CONV_2D":
            in_shape = _input_shape(marked, node)
            sizes.append(int(in_shape[0] * in_shape[1]))
    return max(sizes)


def scratch_bytes(graph: nx.DiGraph, engine: str, order: Sequence[str] | None = None) -> int:
    """Size of the engine's one shared scratch buffer (max over operators, MCUNet eq. 1-2) when
    it runs ``order`` (default: the exact min-peak schedule of :func:`engine_graph`).
    A ``graph`` that already carries ``inplace`` marks with an ``order`` is taken as it is."""
    _check_engine(engine)
    if engine == "tflm":
        return 0
    if order is None:
        from unas.resources.schedule import min_peak_schedule
        marked = engine_graph(graph, engine)
        order = min_peak_schedule(marked).order
    else:
        marked = graph
    return _scratch_of_order(marked, order)


def peak_memory_bytes(graph: nx.DiGraph, engine: str) -> int:
    """Peak SRAM: exact min-peak working set of :func:`engine_graph` plus :func:`scratch_bytes`."""
    from unas.resources.schedule import min_peak_schedule

    marked = engine_graph(graph, engine)
    schedule = min_peak_schedule(marked)
    return schedule.peak_bytes + scratch_bytes(marked, engine, schedule.order)
