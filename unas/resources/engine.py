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
    when its first input has no other pending consumer. A depthwise convolution that runs
    channel by channel (in place, or with one channel) copies each input channel into a plane
    padded with the zero point (:func:`depthwise_plane_bytes`), a ``SCRATCH`` arena tensor live
    only while it runs (:func:`_with_planes`);
    convolutions run directly on the input (no im2col buffer). Inverted-residual chains
    (:func:`fusable_chains`) run as one row-streamed step: the engine graph replaces each by a
    ``FUSED_BLOCK`` node and a ``SCRATCH`` node for the step's ring and row buffers (an arena
    tensor live only while the step runs), so the expanded tensors never count.

The search's memory objective for ``target: {engine: codegen}`` is :func:`peak_memory_bytes`,
computed from the resource graph alone, and equal to the SRAM the generator reports (its
arena). No TensorFlow here. Below, the depthwise conv runs in place and its 101-byte padded plane
(10 x 10 + 1) is live only while it runs: 256 + 101 bytes.

>>> from unas.resources.graph import new_graph, add_op
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (8, 8, 4))
>>> _ = add_op(g, "dw", "DEPTHWISE_CONV_2D", (8, 8, 4), ["in"], macs=8 * 8 * 4 * 9)
>>> _ = add_op(g, "fc", "FULLY_CONNECTED", (2,), ["dw"], macs=512)
>>> peak_memory_bytes(g, "tflm"), peak_memory_bytes(g, "codegen")
(512, 357)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from unas.errors import ConfigError
from unas.resources.graph import first_input

#: The inference engines whose memory the resource model knows, the default (``codegen``) first.
#: The one list: the config's ``target.engine``, ``python -m unas.resources --engine`` and
#: ``python -m unas.space_opt --engine`` all take theirs from here.
ENGINES = ("codegen", "tflm")
DEFAULT_ENGINE = ENGINES[0]


def check_engine(engine: str, what: str = "target.engine") -> str:
    """``engine`` if it is one of :data:`ENGINES`, else :class:`ConfigError` naming ``what``
    (the config key or command-line option it came from)."""
    if engine not in ENGINES:
        raise ConfigError(f"{what}: expected one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def _input_shape(graph: nx.DiGraph, node: str) -> tuple[int, ...] | None:
    src = first_input(graph, node)
    return None if src is None else tuple(graph.nodes[src]["shape"])


def runs_in_place(graph: nx.DiGraph, node: str, engine: str) -> bool:
    """Whether ``engine`` may write ``node``'s output over its first input."""
    check_engine(engine)
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


TFLM_ALIGNMENT = 16
SCRATCH_OP = "SCRATCH"
FUSED_OP = "FUSED_BLOCK"
#: Which chains the codegen engine may fuse: none, expand -> dw -> project only, or also
#: dw -> project without an expansion. :func:`engine_graph` tries each (in this order).
FUSION_POLICIES = ("none", "expand", "all")


def conv_geometry(graph: nx.DiGraph, node: str
                  ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """``(kernel, stride, dilation)`` of a ``CONV_2D``/``DEPTHWISE_CONV_2D`` node, each a
    ``(height, width)`` pair, or None when they cannot be known.

    Taken from the node's ``kernel``/``stride``/``dilation`` attributes (every graph unas builds
    has them); a hand-made graph without them gets a square kernel from ``macs`` read as
    full-window MACs (``H * W * C_out * k * k``, times ``C_in`` for CONV_2D), the smallest stride
    that gives the output size with ``'same'`` padding, and dilation 1.
    """
    data = graph.nodes[node]
    in_shape = _input_shape(graph, node)
    if in_shape is None:
        return None
    return infer_geometry(data["op"], tuple(data["shape"]), in_shape, data["macs"],
                          data.get("kernel"), data.get("stride"), data.get("dilation"))


def infer_geometry(op: str, shape: Sequence[int], in_shape: Sequence[int], macs: int,
                   kernel: Sequence[int] | None = None, stride: Sequence[int] | None = None,
                   dilation: Sequence[int] | None = None
                   ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """:func:`conv_geometry` from the node's fields: ``op``, output ``shape``, first input's
    ``in_shape``, ``macs`` and the optional ``kernel``/``stride``/``dilation`` pairs."""
    shape, in_shape = tuple(shape), tuple(in_shape)
    if len(shape) != 3 or len(in_shape) != 3:
        return None
    if kernel is None:
        per_tap = math.prod(shape) * (in_shape[-1] if op == "CONV_2D" else 1)
        side = math.isqrt(macs // per_tap) if per_tap and macs else 0
        if side < 1 or side * side * per_tap != macs:
            return None
        kernel = (side, side)
    if stride is None:
        pair = []
        for size, out in zip(in_shape[:2], shape[:2]):
            s = next((s for s in range(1, size + 1) if -(-size // s) == out), None)
            if s is None:
                return None
            pair.append(s)
        stride = tuple(pair)
    return (tuple(kernel), tuple(stride),  # type: ignore[return-value]
            tuple(dilation) if dilation is not None else (1, 1))


def depthwise_plane_bytes(shape: Sequence[int], in_shape: Sequence[int],
                          geometry: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
                          | None, in_place: bool) -> int:
    """Scratch the generated code needs for a depth-multiplier-1 ``DEPTHWISE_CONV_2D`` (output
    ``shape``, input ``in_shape``, ``(kernel, stride, dilation)`` from :func:`conv_geometry`).

    It runs channel by channel when it runs ``in_place`` (MCUNet's in-place depthwise) or has one
    channel (no dilation): each channel is copied into a plane padded with the input zero point,
    ``rows x pitch`` bytes that hold every tap of every output (``rows = (out_h - 1) * stride_h +
    (k_h - 1) * dil_h + 1``, ``pitch`` likewise), plus ``(-k_w) mod 4`` bytes that the last row's
    four-byte tap words may read. A 1x1 stride-1 one is per-element and needs none, as does any
    other depthwise convolution (it reads its input directly). Without a known geometry: one
    unpadded input channel (``H*W``).

    >>> depthwise_plane_bytes((28, 28, 8), (28, 28, 8), ((5, 5), (1, 1), (1, 1)), True)
    1027
    >>> depthwise_plane_bytes((28, 28, 8), (28, 28, 8), ((1, 1), (1, 1), (1, 1)), True)
    0
    """
    shape, in_shape = tuple(shape), tuple(in_shape)
    if len(shape) != 3 or len(in_shape) != 3 or shape[-1] != in_shape[-1]:
        return 0
    if geometry is None:
        return int(in_shape[0] * in_shape[1]) if in_place else 0
    (k_h, k_w), (s_h, s_w), (d_h, d_w) = geometry
    if (k_h, k_w) == (1, 1) and (s_h, s_w) == (1, 1):
        return 0
    if not in_place and not (in_shape[-1] == 1 and (d_h, d_w) == (1, 1)):
        return 0
    rows = (shape[0] - 1) * s_h + (k_h - 1) * d_h + 1
    pitch = (shape[1] - 1) * s_w + (k_w - 1) * d_w + 1
    return int(rows * pitch + (-k_w) % 4)


def _plane_bytes(graph: nx.DiGraph, node: str, in_place: bool) -> int:
    """:func:`depthwise_plane_bytes` of a graph node (0 for other operators)."""
    data = graph.nodes[node]
    in_shape = _input_shape(graph, node)
    if data["op"] != "DEPTHWISE_CONV_2D" or in_shape is None:
        return 0
    return depthwise_plane_bytes(data["shape"], in_shape, conv_geometry(graph, node), in_place)


def _pointwise(graph: nx.DiGraph, node: str) -> bool:
    """A 1x1, stride-1 ``CONV_2D`` with one activation input."""
    if graph.nodes[node]["op"] != "CONV_2D" or graph.in_degree(node) != 1:
        return False
    geometry = conv_geometry(graph, node)
    return geometry is not None and geometry[0] == (1, 1) and geometry[1] == (1, 1)


@dataclass(frozen=True)
class FusedChain:
    """An inverted-residual chain the generator runs as one row-streamed step.

    ``nodes``: ``expand`` (if any), ``depthwise``, ``project``, ``add`` (if any), in order;
    ``source`` is the block input, the last node's tensor the block output. The step's own
    buffer (``temp_bytes``, in the arena, live only while the step runs) holds a ring of
    ``ring_rows`` rows of the expanded tensor (none without an expansion: the depthwise reads
    the block input directly), one output row of the depthwise, and with a residual ADD one
    output row of the projection.
    """

    source: str
    expand: str | None
    depthwise: str
    project: str
    add: str | None
    ring_rows: int
    temp_bytes: int

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for n in (self.expand, self.depthwise, self.project, self.add) if n)

    @property
    def output(self) -> str:
        return self.nodes[-1]


def _sole_consumer(graph: nx.DiGraph, node: str) -> str | None:
    succs = list(graph.successors(node))
    return succs[0] if len(succs) == 1 else None


def fused_temp_bytes(in_shape: Sequence[int], mid_channels: int, out_shape: Sequence[int],
                     kernel_h: int, expand: bool, residual: bool) -> tuple[int, int]:
    """``(ring_rows, temp_bytes)`` of a fused chain: ``min(kernel_h, H)`` rows of the expanded
    tensor (``W * mid_channels`` bytes each; none without an expansion), one depthwise output
    row (``W_out * mid_channels``) and, with a residual, one projection row (``W_out * C_out``)."""
    height, width = int(in_shape[0]), int(in_shape[1])
    rows = min(int(kernel_h), height) if expand else 0
    out_w, out_c = int(out_shape[1]), int(out_shape[2])
    temp = rows * width * mid_channels + out_w * mid_channels + (out_w * out_c if residual else 0)
    return rows, temp


def fusable_chains(graph: nx.DiGraph, policy: str = "all") -> list[FusedChain]:
    """The chains ``CONV_2D 1x1 -> DEPTHWISE_CONV_2D -> CONV_2D 1x1 [-> ADD with the block
    input]`` (and, for ``policy="all"``, the same without the expansion) that the codegen
    engine fuses, in topological order and node-disjoint.

    Each intermediate tensor must have exactly one consumer and not be a graph output; the
    depthwise conv must keep its channel count and have dilation 1. A chain is only taken when
    its step buffer is smaller than the tensor it avoids (the expanded tensor, or the depthwise
    output without an expansion). The generator and :func:`engine_graph` both use this.
    """
    if policy not in FUSION_POLICIES:
        raise ValueError(f"fusion policy {policy!r}; expected one of {FUSION_POLICIES}")
    if policy == "none":
        return []
    used: set[str] = set()
    chains = []
    for dw in nx.topological_sort(graph):
        data = graph.nodes[dw]
        if data["op"] != "DEPTHWISE_CONV_2D" or graph.in_degree(dw) != 1:
            continue
        geometry = conv_geometry(graph, dw)
        src = first_input(graph, dw)
        if geometry is None or geometry[2] != (1, 1) or src is None or src in used:
            continue
        mid_shape = tuple(graph.nodes[src]["shape"])
        if tuple(data["shape"])[-1] != mid_shape[-1]:
            continue
        project = _sole_consumer(graph, dw)
        if project is None or project in used or not _pointwise(graph, project):
            continue
        expand = src if (_pointwise(graph, src) and _sole_consumer(graph, src) == dw) else None
        source = first_input(graph, expand) if expand else src
        if expand is None and policy != "all":
            continue
        in_shape = tuple(graph.nodes[source]["shape"])
        if len(in_shape) != 3:
            continue
        add = _sole_consumer(graph, project)
        if add is not None:
            inputs = {u for u, _ in graph.in_edges(add)}
            shapes = {tuple(graph.nodes[n]["shape"]) for n in (add, project, source)}
            if (graph.nodes[add]["op"] != "ADD" or graph.in_degree(add) != 2
                    or inputs != {project, source} or len(shapes) != 1):
                add = None
        out_shape = tuple(graph.nodes[project]["shape"])
        rows, temp = fused_temp_bytes(in_shape, mid_shape[-1], out_shape, geometry[0][0],
                                      expand is not None, add is not None)
        avoided = graph.nodes[expand if expand else dw]["bytes"]
        if temp >= avoided:
            continue
        chain = FusedChain(source, expand, dw, project, add, rows, temp)
        used.update(chain.nodes)
        chains.append(chain)
    return chains


def _fuse(graph: nx.DiGraph, chains: Sequence[FusedChain]) -> nx.DiGraph:
    """``graph`` with every chain contracted into one ``FUSED_BLOCK`` node (named after the
    chain's output tensor, attribute ``fused`` = the chain's nodes) and, right before it, a
    ``SCRATCH`` node of ``temp_bytes`` that only the fused node reads (live while it runs)."""
    result = graph.copy()
    for chain in chains:
        out = chain.output
        successors = [(v, d.get("index", 0)) for _, v, d in graph.out_edges(out, data=True)]
        totals = {key: sum(int(graph.nodes[n][key]) for n in chain.nodes)
                  for key in ("macs", "params", "size_bytes")}
        shape = tuple(graph.nodes[out]["shape"])
        result.remove_nodes_from(chain.nodes)
        result.add_node(out, op=FUSED_OP, shape=shape, bytes=math.prod(shape), fused=chain,
                        **totals)
        temp = f"{out}#temp"
        result.add_node(temp, op=SCRATCH_OP, shape=(chain.temp_bytes,), bytes=chain.temp_bytes,
                        macs=0, params=0, size_bytes=0)
        result.add_edge(chain.source, temp, index=0)
        result.add_edge(chain.source, out, index=0)
        result.add_edge(temp, out, index=1)
        for succ, index in successors:
            result.add_edge(out, succ, index=index)
    return result


def _marked(graph: nx.DiGraph, engine: str, dw_max_scratch: int | None) -> nx.DiGraph:
    """``graph`` with ``inplace`` marks; a depthwise conv only when its plane scratch (in place)
    is at most ``dw_max_scratch`` (None: no limit)."""
    result = graph.copy()
    for node in result:
        result.nodes[node].pop("inplace", None)
        if not runs_in_place(graph, node, engine):
            continue
        if result.nodes[node]["op"] == "DEPTHWISE_CONV_2D" and dw_max_scratch is not None:
            if _plane_bytes(graph, node, True) > dw_max_scratch:
                continue
        result.nodes[node]["inplace"] = True
    return result


PLANE_SUFFIX = "#plane"


def _with_planes(marked: nx.DiGraph) -> nx.DiGraph:
    """``marked`` (with ``inplace`` marks) plus, before each depthwise convolution that may run
    channel by channel, a ``SCRATCH`` node ``<node>#plane`` of :func:`depthwise_plane_bytes`
    (in place if marked) that reads the convolution's inputs and that only the convolution reads:
    an arena tensor live while the convolution runs (a marked one of several channels whose
    input is still needed elsewhere when it runs reads its input directly, the plane unused)."""
    result = marked.copy()
    for node in list(marked):
        plane = _plane_bytes(marked, node, bool(marked.nodes[node].get("inplace")))
        if plane <= 0:
            continue
        name = f"{node}{PLANE_SUFFIX}"
        result.add_node(name, op=SCRATCH_OP, shape=(plane,), bytes=plane, macs=0, params=0,
                        size_bytes=0)
        for src in marked.predecessors(node):
            result.add_edge(src, name, index=marked.edges[src, node].get("index", 0))
        result.add_edge(name, node, index=marked.in_degree(node))
    return result


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


#: Graph attribute of :func:`engine_graph`'s result: the minimum-peak schedule already found.
SCHEDULE_ATTR = "min_peak_schedule"


def engine_graph(graph: nx.DiGraph, engine: str) -> nx.DiGraph:
    """A copy of ``graph`` as ``engine`` runs it: ``inplace=True`` exactly on the nodes it runs
    in place and, for ``"codegen"``, fused inverted-residual chains contracted
    (:func:`fusable_chains`, :func:`_fuse`).

    For ``"codegen"`` an in-place depthwise convolution costs one padded input channel of scratch
    (:func:`depthwise_plane_bytes`), which only pays when it lowers the peak: depthwise convs run
    in place only up to a plane size, and chains are fused by one of :data:`FUSION_POLICIES`; the
    combination with the smallest working set + scratch wins (ties: the earlier policy, the
    smaller limit). ADD and RESHAPE, which need no scratch, always may run in place.

    The ``"codegen"`` graph keeps the minimum-peak schedule found for it in
    ``graph.graph[SCHEDULE_ATTR]`` (valid as long as no node size changes).
    """
    check_engine(engine)
    if engine == "tflm":
        return _tflm_view(graph)
    from unas.resources.schedule import min_peak_schedule

    best, best_schedule = None, None
    tried: list[list[FusedChain]] = []
    for policy in FUSION_POLICIES:
        chains = fusable_chains(graph, policy)
        if chains in tried:
            continue
        tried.append(chains)
        fused = _fuse(graph, chains)
        # smallest first: on a tie the fewer in-place depthwise convs (they copy every channel
        # into the padded plane; reading the input directly is faster)
        limits = [0, *sorted({_plane_bytes(fused, n, True) for n in fused
                              if fused.nodes[n]["op"] == "DEPTHWISE_CONV_2D"
                              and runs_in_place(fused, n, engine)} - {0})]
        for limit in limits:
            candidate = _with_planes(_marked(fused, engine, limit))
            schedule = min_peak_schedule(candidate)
            if best_schedule is None or schedule.peak_bytes < best_schedule.peak_bytes:
                best, best_schedule = candidate, schedule
    best.graph[SCHEDULE_ATTR] = best_schedule
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


def peak_memory_bytes(graph: nx.DiGraph, engine: str) -> int:
    """Peak SRAM: the exact min-peak working set of :func:`engine_graph` (scratch included)."""
    from unas.resources.schedule import min_peak_schedule

    viewed = engine_graph(graph, engine)
    schedule = viewed.graph.get(SCHEDULE_ATTR)
    return (schedule if schedule is not None else min_peak_schedule(viewed)).peak_bytes
