"""Exact minimum-peak order of one segment (see :mod:`unas.resources.schedule.segment`).

A bottleneck A* search over downsets (bitmasks of executed operators; the live bytes are a
function of the downset) whose moves are the units of :func:`unas.resources.schedule.segment.build_plan`:

* the key of a state is ``max(peak so far, lower bound)``, so the first complete state popped is
  optimal; bounds come from :class:`unas.resources.schedule.bounds.Bounds` and are evaluated lazily
  (a child first inherits its parent's key; when it reaches the top it gets the cheap tree and
  merge bounds, and the forced one too when those do not beat its key, in the refined search
  only while that raises at least 1 in 3 such states); once the search has
  popped a few states, the min-cut (:mod:`unas.resources.schedule.cut`) and last-consumer
  (:mod:`unas.resources.schedule.last`) bounds of the start raise every key, and their critical
  parts are re-evaluated per state while that pays off;
* free moves: a unit whose working set is within the peak already paid and which does not grow the
  live bytes can always be run first (exchange argument), so such states get one successor;
* a greedy order gives an upper bound: states that cannot beat it are dropped, and when no state
  can, the greedy order is optimal;
* a ``floor`` (the peak the rest of the graph needs anyway) is paid from the start: the search
  then only has to find an order under it, or prove the segment needs more.
"""
from __future__ import annotations

import heapq

from unas.resources.schedule.segment import Plan, Segment, Unit, apply_unit, build_plan, single_unit
from unas.resources.schedule.bounds import Bounds
from unas.resources.schedule.cut import CutBound
from unas.resources.schedule.last import LastConsumerBound


CUT_AFTER = 100  # states popped before the min-cut bound is worth its cost (fork-joins)
CUT_AFTER_GENERAL = 10  # the same for other segments, where the cheap bounds are weaker


def _greedy(seg: Segment, units: list[Unit], start: int, live: int) -> tuple[int, list[Unit]]:
    """Repeatedly run the available unit with the smallest (working set, live after)."""
    done, peak, chosen = start, live + seg.offset, []
    remaining = list(units)
    while remaining:
        best = None
        for i, unit in enumerate(remaining):
            if unit.need & ~done:
                continue
            cost, new_live = apply_unit(seg, unit, done, live)
            if best is None or (cost, new_live) < best[0]:
                best = ((cost, new_live), i)
        (cost, live), i = best
        unit = remaining.pop(i)
        done |= unit.mask
        peak = max(peak, cost)
        chosen.append(unit)
    return peak, chosen


def _moves(seg: Segment, plan: Plan, positions: tuple[int, ...], done: int, live: int,
           limit: int, runs: bool = True) -> list[tuple[int, list[Unit], int, int]]:
    """Moves from a state as (group, units run back to back, working set, live after).

    ``limit`` is a lower bound on the peak of every completion of the state (the peak already paid
    or the state's lower bound). A *free* move is returned alone: some units of one group, run now,
    whose working sets all stay within ``limit`` and that leave the live bytes at their lowest point
    of the run and no higher than now (``runs=False``: single units only). Exchange argument: in
    an optimal completion, move those units to the front; every step they jump over sees at most
    the live bytes it saw before (a unit frees at least as much later as now, so the saving only
    grows), and in-place conditions can only become easier; the moved units cost at most
    ``limit``, which no completion beats.
    """
    moves = []
    for g, j in enumerate(positions):
        units = plan.group_units[g]
        if j == len(units):
            continue
        unit = plan.units[units[j]]
        if unit.need & ~done:
            continue
        cost, new_live = apply_unit(seg, unit, done, live)
        if cost <= limit:
            run, cur_done, cur_live, low, worst = [unit], done | unit.mask, new_live, new_live, cost
            k = j + 1
            while True:
                if cur_live <= live and cur_live <= low:
                    return [(g, run, worst, cur_live)]
                low = min(low, cur_live)
                if k == len(units) or not runs:
                    break
                nxt = plan.units[units[k]]
                if nxt.need & ~cur_done:
                    break
                step_cost, step_live = apply_unit(seg, nxt, cur_done, cur_live)
                if step_cost > limit:
                    break
                run.append(nxt)
                cur_done |= nxt.mask
                cur_live = step_live
                worst = max(worst, step_cost)
                k += 1
        moves.append((g, [unit], cost, new_live))
    return moves


def solve_segment(seg: Segment, refined: bool = True, floor: int = 0) -> tuple[int, list[int]]:
    """Minimum peak (including ``offset``) and an order of the segment's operators achieving it;
    when that minimum is below ``floor``, ``floor`` and an order whose peak is at most ``floor``
    (what the rest of the graph needs anyway).

    ``refined=False`` runs the plain search (free moves only within the peak already paid, forced
    bound without the tensors unstarted branches wait on): same result, slower; the tests compare
    the two.
    """
    start = (1 << seg.n_inputs) - 1
    start_live = sum(seg.sizes[:seg.n_inputs])
    start_peak = max(start_live + seg.offset, floor)
    if len(seg.sizes) - seg.n_inputs <= 1:  # nothing to choose (a chain of cuts ends up here)
        ops = list(range(seg.n_inputs, len(seg.sizes)))
        costs = [apply_unit(seg, single_unit(seg, v), start, start_live)[0] for v in ops]
        return max([start_peak, *costs]), ops
    plan = build_plan(seg, merge=refined)
    upper, greedy_units = _greedy(seg, plan.units, start, start_live)
    upper = max(upper, floor)
    greedy_order = [v for unit in greedy_units for v in unit.nodes]
    if len(plan.units) <= 1:
        return upper, greedy_order
    bounds = Bounds(seg, plan, refined)
    start_pos = tuple(0 for _ in plan.group_units)
    lower = max(start_peak, bounds.at(start_pos))
    if upper <= lower:
        return upper, greedy_order
    last = None  # the last-consumer bound, computed with the min-cut one
    forced_calls = forced_raised = 0  # second-stage evaluations, and how many beat the key
    cut = None  # the min-cut bound: exact far more often, but a max-flow per unit, so only
    pops = 0    # computed once the search has popped CUT_AFTER states without finishing
    best = {start: start_peak}
    parent: dict[int, tuple[int, list[Unit]]] = {}
    # (key, -depth, downset, peak, live, positions, bound evaluated: 0 no, 1 the cheap part, 2 all)
    heap = [(lower, 0, start, start_peak, start_live, start_pos, 2)]
    goal = (1 << len(seg.sizes)) - 1
    while heap:
        pops += 1
        if refined and pops == (CUT_AFTER if bounds.merge is not None else CUT_AFTER_GENERAL):
            cut = CutBound(seg, plan)
            lower = cut.at(start, heap[0][0])  # bounds every completion of every state
            last = LastConsumerBound(cut)
            lower = last.at(start, lower)
            if upper <= lower:
                return upper, greedy_order
            heap = [(max(lower, entry[0]),) + entry[1:] for entry in heap]
            heapq.heapify(heap)
        key, neg_depth, done, peak, live, positions, evaluated = heapq.heappop(heap)
        if peak > best[done]:
            continue  # superseded by a cheaper way to reach the same downset
        if evaluated < 2:  # the cheap bounds first, the forced one only if they do not beat the
            # key (in the refined search only while it pays off: the cut and last-consumer bounds
            # often do its job for less)
            forced = not refined or forced_calls < 20 or forced_raised * 3 >= forced_calls
            complete = evaluated == 1 or not forced  # nothing left for a later pop
            bound = bounds.cheap(positions) if evaluated == 0 else key
            if bound <= key and forced:  # only whether it beats the key matters from here on
                bound = bounds.forced(positions, key)
                complete = True
                forced_calls += 1
                forced_raised += bound > key
            if bound <= key and cut is not None:
                bound = cut.at_critical(done, bound)
            if bound <= key and last is not None:
                bound = max(bound, last.at_critical(done, key))
            if bound > key:
                if bound < upper:
                    heapq.heappush(heap, (bound, neg_depth, done, peak, live, positions,
                                          2 if complete else 1))
                continue
        if done == goal:
            order: list[int] = []
            while done != start:
                done, run = parent[done]
                order[:0] = [v for unit in run for v in unit.nodes]
            return peak, order
        for g, run, cost, new_live in _moves(seg, plan, positions, done, live,
                                                  max(key, peak) if refined else peak, refined):
            new_peak = max(peak, cost)
            nxt = done
            for unit in run:
                nxt |= unit.mask
            if new_peak >= best.get(nxt, upper):
                continue
            best[nxt] = new_peak
            parent[nxt] = (done, run)
            new_pos = positions[:g] + (positions[g] + len(run),) + positions[g + 1:]
            n_nodes = sum(len(unit.nodes) for unit in run)
            heapq.heappush(heap, (max(key, new_peak), neg_depth - n_nodes, nxt, new_peak,
                                  new_live, new_pos, 0))
    return upper, greedy_order
