"""One *segment* of a resource graph as an integer-indexed scheduling problem, cut into units.

Tensors ``0..n_inputs-1`` are live at the start (graph inputs and tensors carried in from earlier
segments); the rest are operators to schedule. Operators are grouped into *units* run back to back:

* a chain (each operator the only consumer of the one before, which is its only input) only needs
  to pause where its resident tensor is not above both neighbouring pause points, so the steps
  between such points form one *static* unit with a fixed working-set increase and live-bytes
  change (exchange argument in ``docs/resources.md``);
* every other operator is a unit of its own whose cost depends on which tensors it frees.

Units are organised in *groups*: one per segment input (no units) and one per chain (its first
operator, then its static units, in order), which is what the lower bounds work with.
"""
from __future__ import annotations

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
class Unit:
    """Operators ``nodes`` run back to back; needs the tensors in ``need``; ``static`` units raise
    the working set by ``rel_peak`` over the live bytes and change the live bytes by ``delta``."""

    nodes: tuple[int, ...]
    mask: int
    need: int
    static: bool
    rel_peak: int
    delta: int


@dataclass(frozen=True)
class Plan:
    """The units of a segment and their groups.

    ``group_units[g]`` are the unit numbers of group ``g`` in execution order; ``residents[g][j]``
    is the bytes group ``g`` holds after its first ``j`` units; ``group_end[g]`` the tensor it ends
    with; ``unit_group[u]`` the group of unit ``u``.
    """

    units: list[Unit]
    unit_group: list[int]
    group_units: list[list[int]]
    residents: list[list[int]]
    group_end: list[int]


def chain_links(seg: Segment) -> dict[int, int]:
    """``p -> x`` when ``x``'s only input is operator ``p`` and ``x`` is ``p``'s only consumer."""
    links = {}
    for x in range(seg.n_inputs, len(seg.sizes)):
        if len(seg.preds[x]) != 1:
            continue
        p = seg.preds[x][0]
        if p >= seg.n_inputs and not seg.pinned[p] and seg.succ_mask[p] == 1 << x:
            links[p] = x
    return links


def pause_points(sizes: list[int]) -> list[int]:
    """Positions of a chain where it may pause: no kept interior point is >= both its neighbours.

    >>> pause_points([10, 1, 100, 1, 10])
    [0, 1, 3, 4]
    """
    kept: list[int] = []
    for pos, size in enumerate(sizes):
        while len(kept) >= 2 and sizes[kept[-1]] >= max(sizes[kept[-2]], size):
            kept.pop()
        kept.append(pos)
    return kept


def _chain_step(seg: Segment, prev: int, node: int) -> tuple[int, int]:
    """(working set − live bytes, live change) of chain step ``node`` whose only input is ``prev``."""
    a, b = seg.sizes[prev], seg.sizes[node]
    rel = max(a, b) - a if seg.inplace[node] and seg.first_in[node] == prev else b
    return rel, b - a


def single_unit(seg: Segment, node: int) -> Unit:
    """A unit of one operator whose cost is worked out when it runs (:func:`apply_unit`)."""
    need = 0
    for p in seg.preds[node]:
        need |= 1 << p
    return Unit((node,), 1 << node, need, False, 0, 0)


def job_priority(rise: int, net: int) -> tuple[int, int]:
    """Order of the best interleaving of independent sequences: jobs that free memory first
    (smallest rise first), then the others by largest drop (Abdel-Wahab & Kameda 1978)."""
    return (0, rise) if net <= 0 else (1, net - rise)


def build_plan(seg: Segment, merge: bool = True) -> Plan:
    """Single operators, with chain interiors grouped into static units between pause points;
    ``merge`` also joins neighbouring static units whose :func:`job_priority` is out of order
    (exchange argument in ``docs/resources.md``: some optimal order runs them back to back)."""
    links = chain_links(seg)
    linked_to = set(links.values())
    units: list[Unit] = []
    unit_group: list[int] = []
    residents: list[list[int]] = [[seg.sizes[t]] for t in range(seg.n_inputs)]
    group_end = list(range(seg.n_inputs))
    group_units: list[list[int]] = [[] for _ in range(seg.n_inputs)]
    for start in range(seg.n_inputs, len(seg.sizes)):
        if start in linked_to:
            continue
        chain = [start]
        while chain[-1] in links:
            chain.append(links[chain[-1]])
        group = len(residents)
        group_end.append(chain[-1])
        group_units.append([len(units)])
        unit_group.append(group)
        units.append(single_unit(seg, start))
        pauses = pause_points([seg.sizes[c] for c in chain])
        jobs: list[tuple[int, int, list[int]]] = []  # (rise, net change, chain nodes)
        for lo, hi in zip(pauses, pauses[1:]):
            rel_live, peak = 0, 0
            for pos in range(lo + 1, hi + 1):
                rel, change = _chain_step(seg, chain[pos - 1], chain[pos])
                peak = max(peak, rel_live + rel)
                rel_live += change
            jobs.append((peak, rel_live, chain[lo + 1:hi + 1]))
            while (merge and len(jobs) >= 2
                   and job_priority(*jobs[-1][:2]) < job_priority(*jobs[-2][:2])):
                rise2, net2, nodes2 = jobs.pop()
                rise1, net1, nodes1 = jobs.pop()
                jobs.append((max(rise1, net1 + rise2), net1 + net2, nodes1 + nodes2))
        held = seg.sizes[start]
        residents.append([0, held])
        for rise, net, nodes in jobs:
            group_units[group].append(len(units))
            unit_group.append(group)
            units.append(Unit(tuple(nodes), sum(1 << v for v in nodes),
                              1 << seg.preds[nodes[0]][0], True, rise, net))
            held += net
            residents[-1].append(held)
    return Plan(units, unit_group, group_units, residents, group_end)


def apply_unit(seg: Segment, unit: Unit, done: int, live: int) -> tuple[int, int]:
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
