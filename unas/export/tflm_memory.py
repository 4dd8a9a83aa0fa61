"""TFLM's view of activation memory: predicted arena head, optimal operator order, offline plan.

TFLM plans the non-persistent arena ("head") from tensor lifetimes in *file order*: a tensor is
live from the operator that produces it (graph inputs: from the first operator) to its last
consumer (graph outputs: to the end), and every buffer is rounded up to 16 bytes
(``MicroArenaBufferAlignment``). That is the project's execution model
(:mod:`unas.resources.memory`) with node sizes ``align16(bytes)``, stored here as the node
attribute ``tflm_bytes`` so that ``peak_of_order`` / ``min_peak_schedule`` can be asked with
``size_attr="tflm_bytes"``. TFLM has no in-place operators (RESHAPE copies), so no node is
``inplace``.

Example::

    >>> order, peak = optimal_operator_order(blob)                    # doctest: +SKIP
    >>> predicted_head(reorder_operators(blob, order)) == peak        # doctest: +SKIP
    True
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from unas.errors import DataError

TFLM_ALIGNMENT = 16
SIZE_ATTR = "tflm_bytes"


def align_up(size: int, alignment: int = TFLM_ALIGNMENT) -> int:
    """``size`` rounded up to a multiple of ``alignment``."""
    return -(-int(size) // alignment) * alignment


def tflm_graph(model_bytes: bytes) -> nx.DiGraph:
    """The resource graph of a ``.tflite`` with ``tflm_bytes`` = 16-aligned tensor bytes."""
    from tflm_runtime.tflite_model import parse_tflite, resource_graph

    model = parse_tflite(model_bytes)
    graph = resource_graph(model)
    for node, tensor_index in graph.graph["tensor_index"].items():
        graph.nodes[node][SIZE_ATTR] = align_up(model.tensors[tensor_index].nbytes)
    return graph


def file_order(graph: nx.DiGraph) -> list[str]:
    """Graph inputs first, then operator nodes in file order (how TFLM executes them)."""
    op_index = graph.graph["operator_index"]
    inputs = [n for n in graph if n not in op_index]
    return inputs + sorted(op_index, key=op_index.__getitem__)


def predicted_head(model_bytes: bytes) -> int:
    """Predicted peak of activations (16-aligned) for the model's own operator order."""
    from unas.resources.memory import peak_of_order

    graph = tflm_graph(model_bytes)
    return peak_of_order(graph, file_order(graph), size_attr=SIZE_ATTR)


def optimal_operator_order(model_bytes: bytes) -> tuple[list[int], int]:
    """The operator order (old operator indices) of minimum peak under TFLM's view, and that peak.

    Uses :func:`unas.resources.schedule.min_peak_schedule` on :func:`tflm_graph`.
    """
    from unas.resources.schedule import min_peak_schedule

    graph = tflm_graph(model_bytes)
    schedule = min_peak_schedule(graph, size_attr=SIZE_ATTR)
    op_index = graph.graph["operator_index"]
    return [op_index[n] for n in schedule.order if n in op_index], int(schedule.peak_bytes)


@dataclass(frozen=True)
class Lifetime:
    """An activation tensor's bytes (aligned) and first/last operator position that needs it."""

    tensor: int
    size: int
    first: int
    last: int


def lifetimes(model_bytes: bytes) -> list[Lifetime]:
    """Lifetimes of the activation tensors in file order, as TFLM computes them."""
    from tflm_runtime.tflite_model import parse_tflite

    model = parse_tflite(model_bytes)
    n_ops = len(model.operators)
    first: dict[int, int] = {t: 0 for t in model.inputs}
    last: dict[int, int] = {t: 0 for t in model.inputs}
    for pos, op in enumerate(model.operators):
        for t in op.inputs:
            if t >= 0 and not model.tensors[t].is_constant:
                if t not in first:
                    raise DataError(f"model: operator {pos} reads tensor {t} before it is produced")
                last[t] = pos
        for t in op.outputs:
            first.setdefault(t, pos)
            last[t] = max(last.get(t, pos), pos)
    for t in model.outputs:
        last[t] = n_ops - 1
    return [Lifetime(t, align_up(model.tensors[t].nbytes), first[t], last[t]) for t in sorted(first)]


def _first_fit(items: list[Lifetime]) -> dict[int, int]:
    placed: list[tuple[int, int, Lifetime]] = []  # (offset, end, lifetime)
    offsets: dict[int, int] = {}
    for item in items:
        busy = sorted((o, e) for o, e, other in placed
                      if other.first <= item.last and item.first <= other.last)
        offset = 0
        for start, end in busy:
            if offset + item.size <= start:
                break
            offset = max(offset, end)
        offsets[item.tensor] = offset
        placed.append((offset, offset + item.size, item))
    return offsets


def plan_offsets(items: Sequence[Lifetime]) -> tuple[dict[int, int], int]:
    """Arena offsets for ``items`` (no two live-overlapping tensors overlap) and the arena extent.

    First-fit placement tried in a few orders (largest first as TFLM's greedy planner does, by
    start, by longest life); the smallest extent wins. The extent is at least the peak working
    set and equals it whenever the lifetimes allow a gap-free placement.
    """
    items = list(items)
    keys = (lambda t: (-t.size, t.first), lambda t: (t.first, -t.size),
            lambda t: (-(t.last - t.first), -t.size), lambda t: (-t.size * (t.last - t.first + 1),))
    best: tuple[dict[int, int], int] | None = None
    for key in keys:
        offsets = _first_fit(sorted(items, key=key))
        extent = max((offsets[t.tensor] + t.size for t in items), default=0)
        if best is None or extent < best[1]:
            best = (offsets, extent)
    assert best is not None
    return best


def offline_plan(model_bytes: bytes) -> tuple[list[int], int]:
    """Per-tensor offsets for TFLM's ``OfflineMemoryAllocation`` (``-1`` for constants) and the
    planned arena extent, for the model's current operator order."""
    from tflm_runtime.tflite_model import parse_tflite

    n_tensors = len(parse_tflite(model_bytes).tensors)
    offsets, extent = plan_offsets(lifetimes(model_bytes))
    return [offsets.get(t, -1) for t in range(n_tensors)], extent
