"""TFLM's view of activation memory: predicted arena head, optimal operator order, offline plan.

TFLM plans the non-persistent arena ("head") from buffer lifetimes in *file order*: a tensor is
live from the operator that produces it (graph inputs: from the first operator) to its last
consumer (graph outputs: to the end), and every buffer is rounded up to 16 bytes
(``MicroArenaBufferAlignment``). Kernels may also request *scratch buffers* that live only
while their operator runs; with the host's reference kernels only int8 ``MEAN`` does (three:
``4 * output elements``, ``4 * input rank``, ``4 * number of axes`` bytes, each 16-aligned).

That is the project's execution model (:mod:`unas.resources.memory`) with node sizes
``align16(bytes)`` (node attribute ``tflm_bytes``, for ``size_attr="tflm_bytes"``) and, for each
operator with scratch, one extra ``SCRATCH`` node of the scratch bytes that consumes the
operator's inputs and feeds the operator (so it is live exactly while the operator runs when
scheduled right before it, which a minimum-peak schedule does). TFLM has no in-place operators
(RESHAPE copies), so no node is ``inplace``.

On top of the working set, the head depends on *placement*: TFLM's ``GreedyMemoryPlanner``
(largest buffer first, first fit) can leave holes. :func:`predicted_head` replays that planner
exactly (or the model's offline plan plus TFLM's greedy placement of what the plan leaves
online), so it equals TFLM's reported head; :func:`plan_offsets` searches a placement that
reaches the working-set peak.

Example (the small int8 model of :func:`unas.export.demo.small_int8_tflite`; the
flatbuffer edits are :mod:`unas.export.flatbuffer`'s)::

    >>> from unas.export.demo import small_int8_tflite
    >>> blob = small_int8_tflite()
    >>> from unas.export.flatbuffer import reorder_operators, with_offline_plan
    >>> from tflm_runtime.tflite_model import parse_tflite
    >>> order, peak = optimal_operator_order(parse_tflite(blob))
    >>> order, peak
    ([0, 1, 2, 3], 208)
    >>> reordered = reorder_operators(blob, order)
    >>> offsets, extent = offline_plan(parse_tflite(reordered))
    >>> predicted_head(parse_tflite(with_offline_plan(reordered, offsets))) == extent == peak
    True
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

import networkx as nx

from unas.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from tflm_runtime.tflite_model import Operator, TfliteModel

TFLM_ALIGNMENT = 16
SIZE_ATTR = "tflm_bytes"
SCRATCH_OP = "SCRATCH"


def align_up(size: int, alignment: int = TFLM_ALIGNMENT) -> int:
    """``size`` rounded up to a multiple of ``alignment``."""
    return -(-int(size) // alignment) * alignment


def scratch_sizes(model: "TfliteModel", op: "Operator") -> list[int]:
    """Aligned bytes of the scratch buffers TFLM's reference kernel for ``op`` requests, in
    request order (``model``/``op`` as parsed by :mod:`tflm_runtime.tflite_model`).

    Only quantised ``MEAN`` requests any: an int32 accumulator per output element, and int
    arrays of the input rank and of the number of reduced axes.
    """
    if op.opcode == "MEAN" and model.tensors[op.inputs[0]].dtype in ("int8", "int16", "uint8"):
        outputs = math.prod(model.tensors[op.outputs[0]].shape)
        rank = len(model.tensors[op.inputs[0]].shape)
        axes = math.prod(model.tensors[op.inputs[1]].shape)
        return [align_up(4 * outputs), align_up(4 * rank), align_up(4 * axes)]
    return []


def tflm_graph(model: "TfliteModel") -> nx.DiGraph:
    """The resource graph of a parsed ``.tflite`` with ``tflm_bytes`` = 16-aligned tensor bytes, plus a
    ``SCRATCH`` node before every operator that requests scratch buffers."""
    from tflm_runtime.tflite_model import resource_graph

    graph = resource_graph(model)
    for node, tensor_index in graph.graph["tensor_index"].items():
        graph.nodes[node][SIZE_ATTR] = align_up(model.tensors[tensor_index].nbytes)
    graph.graph["scratch_of"] = {}
    for node, index in list(graph.graph["operator_index"].items()):
        scratch = sum(scratch_sizes(model, model.operators[index]))
        if scratch:
            name = f"{node}#scratch"
            graph.add_node(name, op=SCRATCH_OP, shape=(scratch,), bytes=scratch, macs=0, params=0,
                           size_bytes=0, **{SIZE_ATTR: scratch})
            for src in list(graph.predecessors(node)):
                graph.add_edge(src, name, index=graph.edges[src, node]["index"])
            graph.add_edge(name, node, index=len(list(graph.predecessors(node))))
            graph.graph["scratch_of"][name] = node
    return graph


def file_order(graph: nx.DiGraph) -> list[str]:
    """Graph inputs first, then operator nodes in file order (how TFLM executes them), each
    ``SCRATCH`` node right before its operator."""
    op_index = graph.graph["operator_index"]
    scratch_of = graph.graph.get("scratch_of", {})
    position = {n: float(i) for n, i in op_index.items()}
    position.update({s: op_index[op] - 0.5 for s, op in scratch_of.items()})
    inputs = [n for n in graph if n not in position]
    return inputs + sorted(position, key=position.__getitem__)


def predicted_peak(model: "TfliteModel") -> int:
    """Peak working set of activations and scratch (16-aligned) in the model's own operator
    order (``peak_of_order`` of the project's resource model, TFLM view)."""
    from unas.resources.memory import peak_of_order

    graph = tflm_graph(model)
    return peak_of_order(graph, file_order(graph), size_attr=SIZE_ATTR)


def optimal_operator_order(model: "TfliteModel") -> tuple[list[int], int]:
    """The operator order (old operator indices) of minimum peak under TFLM's view, and that peak.

    Uses :func:`unas.resources.schedule.min_peak_schedule` on :func:`tflm_graph`.
    """
    from unas.resources.schedule import min_peak_schedule

    graph = tflm_graph(model)
    schedule = min_peak_schedule(graph, size_attr=SIZE_ATTR)
    op_index = graph.graph["operator_index"]
    return [op_index[n] for n in schedule.order if n in op_index], int(schedule.peak_bytes)


@dataclass(frozen=True)
class Lifetime:
    """One arena buffer: id (tensor index; scratch buffers follow the tensors, as in TFLM),
    aligned bytes, and the first/last operator position that needs it."""

    tensor: int
    size: int
    first: int
    last: int


def lifetimes(model: "TfliteModel") -> list[Lifetime]:
    """Lifetimes of the activation tensors in file order, as TFLM computes them
    (:func:`unas.resources.memory.first_last_use` over the operators)."""
    from unas.resources.memory import first_last_use

    steps = [([t for t in op.inputs if t >= 0 and not model.tensors[t].is_constant], op.outputs)
             for op in model.operators]
    use = first_last_use(steps, model.inputs, model.outputs, unproduced=lambda pos, t: DataError(
        f"model: operator {pos} reads tensor {t} before it is produced"))
    return [Lifetime(t, align_up(model.tensors[t].nbytes), *use[t]) for t in sorted(use)]


def scratch_lifetimes(model: "TfliteModel") -> list[Lifetime]:
    """The kernels' scratch buffers, live only during their operator (ids after the tensors)."""
    items: list[Lifetime] = []
    for pos, op in enumerate(model.operators):
        for size in scratch_sizes(model, op):
            items.append(Lifetime(len(model.tensors) + len(items), size, pos, pos))
    return items


def predicted_head(model: "TfliteModel") -> int:
    """TFLM's arena head for the model as it is: its offline-planned tensors where the model
    carries an ``OfflineMemoryAllocation`` plan, everything else (online tensors, scratch)
    placed by TFLM's greedy planner replayed exactly. At least :func:`predicted_peak`; larger
    when the placement leaves holes (fragmentation)."""
    items = lifetimes(model) + scratch_lifetimes(model)
    plan = model.offline_plan or ()
    fixed = {t.tensor: plan[t.tensor] for t in items if t.tensor < len(plan) and plan[t.tensor] >= 0}
    return tflm_greedy_plan(items, fixed)[1]


def _first_fit(items: Sequence[Lifetime], fixed: Sequence[tuple[int, Lifetime]] = ()
               ) -> dict[int, int]:
    """Place ``items`` in the given order, each at the lowest offset where it overlaps no placed
    item that is live at the same time (TFLM's ``GreedyMemoryPlanner`` placement rule);
    ``fixed`` (offset, lifetime) pairs are in place from the start."""
    placed: list[tuple[int, int, Lifetime]] = [(o, o + t.size, t) for o, t in fixed]
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


def _extent(items: Sequence[Lifetime], offsets: dict[int, int]) -> int:
    return max((offsets[t.tensor] + t.size for t in items), default=0)


def working_set_peak(items: Sequence[Lifetime]) -> int:
    """The largest sum of sizes live at one operator: a lower bound of any placement."""
    steps = {t.first for t in items}
    return max((sum(t.size for t in items if t.first <= s <= t.last) for s in steps), default=0)


def tflm_greedy_plan(items: Sequence[Lifetime], fixed: dict[int, int] | None = None
                     ) -> tuple[dict[int, int], int]:
    """TFLM's plan (``GreedyMemoryPlanner``): the ``fixed`` (offline) offsets first, then the
    other buffers largest first, each at the lowest offset clear of the time-overlapping ones.

    Ties in size go in *descending* id: TFLM fills its sort array from the tail for
    online-planned buffers and then bubble-sorts it stably by size.
    """
    fixed = dict(fixed or {})
    online = sorted((t for t in items if t.tensor not in fixed), key=lambda t: (-t.size, -t.tensor))
    offsets = _first_fit(online, [(fixed[t.tensor], t) for t in items if t.tensor in fixed])
    offsets.update(fixed)
    return offsets, _extent(items, offsets)


def plan_offsets(items: Sequence[Lifetime], max_nodes: int = 20000) -> tuple[dict[int, int], int]:
    """Arena offsets for ``items`` (tensors live at the same time never overlap) and the extent.

    Starts from TFLM's own greedy plan, then runs a depth-first branch-and-bound twice (tensors
    by birth, and largest first). Each tensor tries offset 0, the top of the lower bound, and
    every position touching a time-overlapping tensor already placed; the search stops at the
    working-set peak (the lower bound, reached when a gap-free placement exists) or after
    ``max_nodes`` placements per pass. Never worse than TFLM's online planner.
    """
    items = list(items)
    bound = working_set_peak(items)
    best_offsets, best_extent = tflm_greedy_plan(items)
    for key in (lambda t: (t.first, -t.size, t.tensor), lambda t: (-t.size, t.first, t.tensor)):
        if best_extent <= bound:
            break
        found = _branch_and_bound(sorted(items, key=key), bound, best_extent, max_nodes)
        if found is not None:
            best_offsets, best_extent = found
    return best_offsets, best_extent


def _branch_and_bound(items: list[Lifetime], bound: int, incumbent: int, max_nodes: int
                      ) -> tuple[dict[int, int], int] | None:
    """Best placement of ``items`` (in this order) with extent below ``incumbent``, or None."""
    best: tuple[dict[int, int], int] | None = None
    best_extent = incumbent
    nodes = 0
    placed: list[tuple[int, int, Lifetime]] = []

    def search(index: int, extent: int) -> None:
        nonlocal best, best_extent, nodes
        if best_extent <= bound or nodes >= max_nodes:
            return
        if index == len(items):
            best, best_extent = ({t.tensor: o for o, _, t in placed}, extent), extent
            return
        item = items[index]
        busy = [(o, e) for o, e, t in placed if t.first <= item.last and item.first <= t.last]
        candidates = {0, bound - item.size} | {e for _, e in busy} | {o - item.size for o, _ in busy}
        for offset in sorted(c for c in candidates if c >= 0):
            end = offset + item.size
            if max(extent, end) >= best_extent:
                continue
            if any(offset < e and o < end for o, e in busy):
                continue
            nodes += 1
            placed.append((offset, end, item))
            search(index + 1, max(extent, end))
            placed.pop()

    search(0, 0)
    return best


def offline_plan(model: "TfliteModel") -> tuple[list[int], int]:
    """Per-tensor offsets for TFLM's ``OfflineMemoryAllocation`` (``-1`` for constants) for the
    model's current operator order, and the head TFLM will then use.

    Scratch buffers are placed along with the tensors by :func:`plan_offsets` (so the plan
    leaves room for them), but TFLM always plans scratch online: the returned head is TFLM's
    greedy placement of the scratch around the offline tensors, replayed exactly.
    """
    tensors = lifetimes(model)
    scratch = scratch_lifetimes(model)
    offsets, _ = plan_offsets(tensors + scratch)
    n_tensors = len(model.tensors)
    fixed = {t.tensor: offsets[t.tensor] for t in tensors}
    _, head = tflm_greedy_plan(tensors + scratch, fixed)
    return [fixed.get(t, -1) for t in range(n_tensors)], head
