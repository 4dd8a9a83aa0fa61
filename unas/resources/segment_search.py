"""Exact minimum-peak order of one *segment* of a resource graph (see :mod:`unas.resources.schedule`).

A segment is a small scheduling problem with integer-indexed tensors: ``n_inputs`` tensors live from
the start (graph inputs and tensors carried in from earlier segments), then the operators to run.
The search is a bottleneck Dijkstra over downsets (bitmasks of executed operators; the live bytes
are a function of the downset), with

* chain compression: inside a chain (each op the only consumer of the one before) an optimal order
  only pauses where the chain's resident tensor is not above both neighbouring pause points, so the
  steps between such points run as one unit (exchange argument in ``docs/resources.md``);
* free moves: a unit whose working set is within the peak already paid and which does not grow the
  live bytes can always be run first (exchange argument), so such states get a single successor;
* an upper bound from a greedy order (states that cannot beat it are dropped) and a lower bound
  (the largest unavoidable single step) that stops the search as soon as an order reaches it.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Tensors ``0..n_inputs-1`` are live at the start, the rest are operators to schedule.

    ``preds[i]`` are the producers ``i`` consumes, ``succ_mask[i]`` the bitmask of its consumers
    inside the segment, ``pinned[i]`` tensors never freed here (graph outputs or needed later),
    ``first_in[i]`` the producer of input 0 (or -1), ``offset`` bytes live throughout.
    """

    sizes: tuple[int, ...]
    n_inputs: int
    preds: tuple[tuple[int, ...], ...]
    succ_mask: tuple[int, ...]
    pinned: tuple[bool, ...]
    first_in: tuple[int, ...]
    inplace: tuple[bool, ...]
    offset: int


@dataclass(frozen=True)
class _Unit:
    """Operators run back to back: ``nodes``; ``static`` units have a fixed (peak, delta)."""

    nodes: tuple[int, ...]
    mask: int
    need: int
    static: bool
    rel_peak: int
    delta: int


def _chain_links(seg: Segment) -> dict[int, int]:
    """``p -> x`` when ``x``'s only input is operator ``p`` and ``x`` is ``p``'s only consumer."""
    links = {}
    for x in range(seg.n_inputs, len(seg.sizes)):
        if len(seg.preds[x]) != 1:
            continue
        p = seg.preds[x][0]
        if p >= seg.n_inputs and not seg.pinned[p] and seg.succ_mask[p] == 1 << x:
            links[p] = x
    return links


def _inplace_step(seg: Segment, prev: int, node: int) -> tuple[int, int]:
    """(working set − live, live change) of chain step ``node`` whose only input is ``prev``."""
    a, b = seg.sizes[prev], seg.sizes[node]
    rel = max(a, b) - a if seg.inplace[node] and seg.first_in[node] == prev else b
    return rel, b - a


def _pause_points(sizes: list[int]) -> list[int]:
    """Positions of a chain where it may pause: no kept interior point is >= both its neighbours."""
    kept: list[int] = []
    for pos, size in enumerate(sizes):
        while len(kept) >= 2 and sizes[kept[-1]] >= max(sizes[kept[-2]], size):
            kept.pop()
        kept.append(pos)
    return kept


def build_units(seg: Segment) -> list[_Unit]:
    """Single operators, with chain interiors grouped into static units between pause points."""
    links = _chain_links(seg)
    linked_to = set(links.values())
    units: list[_Unit] = []
    for start in range(seg.n_inputs, len(seg.sizes)):
        if start in linked_to:
            continue
        chain = [start]
        while chain[-1] in links:
            chain.append(links[chain[-1]])
        units.append(_single(seg, start))
        pauses = _pause_points([seg.sizes[c] for c in chain])
        for lo, hi in zip(pauses, pauses[1:]):
            rel_live, peak = 0, 0
            for pos in range(lo + 1, hi + 1):
                rel, change = _inplace_step(seg, chain[pos - 1], chain[pos])
                peak = max(peak, rel_live + rel)
                rel_live += change
            nodes = tuple(chain[lo + 1:hi + 1])
            mask = sum(1 << v for v in nodes)
            units.append(_Unit(nodes, mask, 1 << chain[lo], True, peak, rel_live))
    return units


def _single(seg: Segment, node: int) -> _Unit:
    need = 0
    for p in seg.preds[node]:
        need |= 1 << p
    return _Unit((node,), 1 << node, need, False, 0, 0)


def _apply(seg: Segment, unit: _Unit, done: int, live: int) -> tuple[int, int]:
    """(working set incl. offset, live bytes after) of running ``unit`` from downset ``done``."""
    if unit.static:
        return live + unit.rel_peak + seg.offset, live + unit.delta
    node = unit.nodes[0]
    after = done | unit.mask
    size = seg.sizes[node]
    cost = live + size
    src = seg.first_in[node]
    if seg.inplace[node] and src >= 0 and not seg.pinned[src] and not seg.succ_mask[src] & ~after:
        cost = live - seg.sizes[src] + max(seg.sizes[src], size)
    new_live = live + size
    for p in seg.preds[node]:
        if not seg.pinned[p] and not seg.succ_mask[p] & ~after:
            new_live -= seg.sizes[p]
    return cost + seg.offset, new_live


def _lower_bound(seg: Segment, start_live: int) -> int:
    """No order beats the start state or the cheapest possible run of any single operator."""
    bound = start_live + seg.offset
    for node in range(seg.n_inputs, len(seg.sizes)):
        inputs = sum(seg.sizes[p] for p in seg.preds[node])
        own = seg.sizes[node]
        src = seg.first_in[node]
        if seg.inplace[node] and src >= 0 and not seg.pinned[src]:
            own = max(seg.sizes[src], own) - seg.sizes[src]
        bound = max(bound, inputs + own + seg.offset)
    return bound


def _greedy(seg: Segment, units: list[_Unit], start: int, live: int) -> tuple[int, list[_Unit]]:
    """Repeatedly run the available unit with the smallest (working set, live after)."""
    done, peak, chosen = start, live + seg.offset, []
    remaining = list(units)
    while remaining:
        best = None
        for i, unit in enumerate(remaining):
            if unit.need & ~done:
                continue
            cost, new_live = _apply(seg, unit, done, live)
            if best is None or (cost, new_live) < best[0]:
                best = ((cost, new_live), i)
        (cost, live), i = best
        unit = remaining.pop(i)
        done |= unit.mask
        peak = max(peak, cost)
        chosen.append(unit)
    return peak, chosen


def solve_segment(seg: Segment) -> tuple[int, list[int]]:
    """Minimum peak (including ``offset``) and an order of the segment's operators achieving it."""
    units = build_units(seg)
    start = (1 << seg.n_inputs) - 1
    start_live = sum(seg.sizes[:seg.n_inputs])
    upper, greedy_units = _greedy(seg, units, start, start_live)
    greedy_order = [v for unit in greedy_units for v in unit.nodes]
    lower = _lower_bound(seg, start_live)
    if len(units) <= 1 or upper <= lower:
        return upper, greedy_order
    goal = (1 << len(seg.sizes)) - 1
    start_peak = start_live + seg.offset
    best = {start: start_peak}
    parent: dict[int, tuple[int, _Unit]] = {}
    heap = [(max(start_peak, lower), 0, start, start_peak, start_live)]
    while heap:
        _, neg_depth, done, peak, live = heapq.heappop(heap)
        if peak > best[done]:
            continue  # superseded by a cheaper way to reach the same downset
        if done == goal:
            order: list[int] = []
            while done != start:
                done, unit = parent[done]
                order[:0] = unit.nodes
            return peak, order
        moves = []
        for unit in units:
            if unit.mask & done or unit.need & ~done:
                continue
            cost, new_live = _apply(seg, unit, done, live)
            if cost <= peak and new_live <= live:
                moves = [(unit, cost, new_live)]
                break
            moves.append((unit, cost, new_live))
        for unit, cost, new_live in moves:
            new_peak = max(peak, cost)
            if new_peak >= upper:
                continue
            nxt = done | unit.mask
            if new_peak < best.get(nxt, upper):
                best[nxt] = new_peak
                parent[nxt] = (done, unit)
                heapq.heappush(heap, (max(new_peak, lower), neg_depth - len(unit.nodes), nxt, new_peak,
                                      new_live))
    return upper, greedy_order
