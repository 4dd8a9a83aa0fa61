"""Exact minimum-peak-memory execution order of a resource graph.

The graph is cut at every operator that is comparable with all others (an ancestor or descendant of
every node): any topological order runs everything before such a cut first, so the pieces between
consecutive cuts (the *segments*) are independent problems, each solved exactly by
:func:`unas.resources.schedule.search.solve_segment`. Tensors crossing a segment enter it as inputs
live from its start, or as a constant offset when no operator in it consumes them. A chain is all
cuts and needs no search at all; a μNAS CNN splits into its few branchy blocks. Segments are
solved smallest first; one without in-place operators whose optimum is below the peak the others
already need only has to stay under it (the graph's peak is exact either way).

>>> from unas.resources.graph import new_graph, add_op
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (4,))
>>> _ = add_op(g, "big", "FULLY_CONNECTED", (100,), ["in"])
>>> _ = add_op(g, "small", "FULLY_CONNECTED", (1,), ["big"])
>>> _ = add_op(g, "wide", "FULLY_CONNECTED", (50,), ["in"])
>>> _ = add_op(g, "add", "CONCATENATION", (51,), ["small", "wide"])
>>> min_peak_schedule(g)  # runs the big branch first: its 100 bytes never meet the wide 50
Schedule(order=('in', 'big', 'small', 'wide', 'add'), peak_bytes=105)
"""
from __future__ import annotations

import networkx as nx

from unas.resources.graph import Schedule, first_input
from unas.resources.memory import check_graph
from unas.resources.schedule.search import Segment, solve_segment

_NEVER = 1 << 62  # "last use" of a graph output


def min_peak_schedule(graph: nx.DiGraph, size_attr: str = "bytes", *,
                      refined: bool = True) -> Schedule:
    """The topological order with the smallest peak working set (exact), and that peak.

    A segment without in-place operators whose own optimum is below the graph's peak gets an order
    that stays under that peak (not necessarily its own best). ``refined=False`` solves the
    segments with the plain search (same peak, slower; for tests).

    Raises :class:`unas.errors.ArchitectureError` for a cyclic graph or a node without ``size_attr``.
    """
    check_graph(graph, size_attr)
    if graph.number_of_nodes() == 0:
        return Schedule((), 0)
    rank = {n: i for i, n in enumerate(graph)}
    names = list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))
    index = {n: i for i, n in enumerate(names)}
    sizes = [int(graph.nodes[n][size_attr]) for n in names]
    preds = [tuple(index[p] for p in graph.predecessors(n)) for n in names]
    succs = [tuple(index[s] for s in graph.successors(n)) for n in names]
    last_use = [max(s, default=_NEVER) for s in succs]
    cuts = _cut_positions(preds, succs)
    segments: list[tuple[int, Segment, list[int]]] = []
    live: set[int] = set()
    lo = 0
    for hi in cuts + ([len(names) - 1] if cuts[-1:] != [len(names) - 1] else []):
        seg, local = _segment(graph, names, index, sizes, preds, succs, last_use, live, lo, hi)
        segments.append((lo, seg, local))
        for node in range(lo, hi + 1):
            live.add(node)
        live = {t for t in live if last_use[t] > hi}
        lo = hi + 1
    # Smallest segments first: their peaks are a floor that no other segment has to get under.
    peak = 0
    solved: list[list[int]] = [[] for _ in segments]
    for i in sorted(range(len(segments)), key=lambda i: len(segments[i][1].sizes)):
        seg = segments[i][1]
        floor = peak if refined and not any(seg.inplace) else 0
        seg_peak, solved[i] = solve_segment(seg, refined, floor=floor)
        peak = max(peak, seg_peak)
    order: list[int] = []
    for (lo, seg, local), seg_order in zip(segments, solved):
        order.extend(local[i] for i in range(seg.n_inputs) if local[i] >= lo)  # graph inputs
        order.extend(local[i] for i in seg_order)
    return Schedule(tuple(names[i] for i in order), peak)


def _cut_positions(preds: list[tuple[int, ...]], succs: list[tuple[int, ...]]) -> list[int]:
    """Topological positions of the nodes comparable with every other node, ascending."""
    n = len(preds)
    ancestors = [0] * n
    for v in range(n):
        mask = 0
        for p in preds[v]:
            mask |= ancestors[p] | (1 << p)
        ancestors[v] = mask
    descendants = [0] * n
    for v in reversed(range(n)):
        mask = 0
        for s in succs[v]:
            mask |= descendants[s] | (1 << s)
        descendants[v] = mask
    return [v for v in range(n)
            if ancestors[v].bit_count() + descendants[v].bit_count() + 1 == n]


def _segment(graph: nx.DiGraph, names: list, index: dict, sizes: list[int],
             preds: list[tuple[int, ...]], succs: list[tuple[int, ...]], last_use: list[int],
             live: set[int], lo: int, hi: int) -> tuple[Segment, list[int]]:
    """The problem of running topological positions ``lo..hi`` with ``live`` tensors carried in.

    Returns the segment and the map from its local tensor numbers to topological positions.
    """
    carried = sorted(t for t in live if any(lo <= s <= hi for s in succs[t]))
    offset = sum(sizes[t] for t in live) - sum(sizes[t] for t in carried)
    sources = [v for v in range(lo, hi + 1) if not preds[v]]
    ops = [v for v in range(lo, hi + 1) if preds[v]]
    local = carried + sources + ops
    to_local = {t: i for i, t in enumerate(local)}
    seg_succ = []
    for t in local:
        mask = 0
        for s in succs[t]:
            if lo <= s <= hi:
                mask |= 1 << to_local[s]
        seg_succ.append(mask)
    first_in = []
    for t in local:
        src = first_input(graph, names[t]) if preds[t] and t >= lo else None
        first_in.append(to_local[index[src]] if src is not None else -1)
    seg = Segment(
        sizes=tuple(sizes[t] for t in local),
        n_inputs=len(carried) + len(sources),
        preds=tuple(tuple(to_local[p] for p in preds[t]) if t >= lo else () for t in local),
        succ_mask=tuple(seg_succ),
        pinned=tuple(last_use[t] > hi for t in local),
        first_in=tuple(first_in),
        inplace=tuple(bool(graph.nodes[names[t]].get("inplace")) and t >= lo for t in local),
        offset=offset,
    )
    return seg, local
