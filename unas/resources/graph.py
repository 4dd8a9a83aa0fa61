"""The resource graph: one node per operator as it executes on the MCU (TFLite/TFLM view).

Every producer of a resource graph (``search_spaces`` architectures, ``graph_from_keras``, the
``.tflite`` reader in ``tflm_runtime``) builds it with :func:`add_op`, so all of them agree on the
node attributes:

=============  ==========================================================================
``op``         TFLite builtin name: ``INPUT`` (a graph input), ``CONV_2D``,
               ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``, ``MAX_POOL_2D``,
               ``AVERAGE_POOL_2D``, ``ADD``, ``CONCATENATION``, ``MEAN``, ``RESHAPE``,
               ``SOFTMAX``, ``PAD``, ...  BatchNorm is folded into the conv before it and
               ReLU/ReLU6 are fused into the op before them, as the TFLite converter does.
``shape``      output shape without the batch dimension, a tuple of ints, e.g. ``(16, 16, 8)``
``bytes``      size of the int8 output tensor: ``prod(shape)``
``macs``       multiply-accumulates of one inference of this operator
``params``     number of stored parameters (weights + biases) after BN folding
``size_bytes`` bytes they take as TFLite stores them: int8 weights, int32 biases
``inplace``    optional; True if the output may overwrite the first input when that input
               has no other pending consumer (e.g. in-place depthwise convolution)
``kernel``     optional (``CONV_2D``, ``DEPTHWISE_CONV_2D``): filter ``(height, width)``
``stride``     optional (same ops): ``(stride_h, stride_w)``
``dilation``   optional (same ops): ``(dilation_h, dilation_w)``; the padding follows from
               these and the input/output sizes, as TFLM computes it
=============  ==========================================================================

Edges go from producer to consumer; the edge attribute ``index`` is the input position
(0 = first input). Graph inputs are the nodes with no predecessors; graph outputs are the nodes
with no successors.

Example::

    >>> g = new_graph()
    >>> add_op(g, "input", "INPUT", (8, 8, 1))
    'input'
    >>> add_op(g, "fc", "FULLY_CONNECTED", (10,), inputs=["input"], macs=640, params=650,
    ...        size_bytes=640 + 4 * 10)
    'fc'
    >>> g.nodes["fc"]["bytes"]
    10
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

GRAPH_ATTRS = ("op", "shape", "bytes", "macs", "params", "size_bytes")


def new_graph() -> nx.DiGraph:
    """An empty resource graph."""
    return nx.DiGraph()


def add_op(
    graph: nx.DiGraph,
    name: str,
    op: str,
    shape: Sequence[int],
    inputs: Iterable[str] = (),
    *,
    macs: int = 0,
    params: int = 0,
    size_bytes: int = 0,
    inplace: bool = False,
    kernel: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    dilation: Sequence[int] | None = None,
) -> str:
    """Add operator ``name`` with output ``shape`` consuming ``inputs`` (in order); return ``name``.

    ``kernel``/``stride``/``dilation`` (pairs, height first) are stored only when given."""
    if name in graph:
        raise ValueError(f"resource graph already has a node named {name!r}")
    shape = tuple(int(d) for d in shape)
    if any(d < 1 for d in shape):
        raise ValueError(f"operator {name!r} ({op}) has an empty output shape {shape}")
    attrs = dict(op=op, shape=shape, bytes=math.prod(shape), macs=int(macs), params=int(params),
                 size_bytes=int(size_bytes))
    if inplace:
        attrs["inplace"] = True
    for key, pair in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if pair is not None:
            attrs[key] = (int(pair[0]), int(pair[1]))
    graph.add_node(name, **attrs)
    for index, src in enumerate(inputs):
        if src not in graph:
            raise ValueError(f"operator {name!r} consumes unknown node {src!r}")
        graph.add_edge(src, name, index=index)
    return name


def graph_inputs(graph: nx.DiGraph) -> list[str]:
    """Nodes with no predecessors (they are live from the start)."""
    return [n for n in graph if graph.in_degree(n) == 0]


def graph_outputs(graph: nx.DiGraph) -> list[str]:
    """Nodes with no successors (they are never freed)."""
    return [n for n in graph if graph.out_degree(n) == 0]


def first_input(graph: nx.DiGraph, node: str) -> str | None:
    """The producer of ``node``'s input 0, or None for a graph input."""
    for src, _, data in graph.in_edges(node, data=True):
        if data.get("index", 0) == 0:
            return src
    return None


@dataclass(frozen=True)
class Schedule:
    """An execution order (every node, topologically sorted) and the peak working set it needs."""

    order: tuple[str, ...]
    peak_bytes: int
