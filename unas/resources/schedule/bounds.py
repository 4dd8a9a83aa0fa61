"""Lower bounds on the peak of any completion of a partly executed segment.

The state of a segment is the position of every group (how many of its units have run). Three
admissible bounds are combined (the *tree* bound of :mod:`unas.resources.schedule.tree` orders the
sequences of :func:`_relaxed_sequences`, one per group of any segment, counting shared tensors
only at their consumers' steps, as a forest under the joins' precedence):

* *forced*: some remaining unit must still run, and while it runs every group whose last tensor it
  (or one of its descendants) consumes holds at least the smallest resident it can still reach;
* *merge* (fork-join segments only: chains that start from segment inputs and end in one join):
  dropping the inputs that only chain heads consume (they still count at the heads' own steps)
  leaves independent sequences, whose best interleaving is known exactly: cut each sequence into
  jobs (rise above its start, net change) and merge neighbours whose priority is out of order;
  run jobs that free memory first by increasing rise, then the others by decreasing
  rise − net (minimum maximum cumulative cost, Abdel-Wahab & Kameda, Oper. Res. 26(1), 1978;
  the hill-valley rule of Liu, ACM TOMS 12(3), 1986, for trees).
"""
from __future__ import annotations

from unas.resources.schedule.segment import Plan, Segment, job_priority as _priority
from unas.resources.schedule.tree import forest_peak, group_children


Job = tuple[tuple[int, int], int, int]  # (priority, rise above the start, net change)


def chain_jobs(start: int, steps: list[tuple[int, int]]) -> list[Job]:
    """Cut a sequence that holds ``start`` bytes and still has ``(working set, resident after)``
    steps into jobs whose priorities do not decrease (merging neighbours that are out of order).

    >>> chain_jobs(0, [(5, 1), (9, 4)])
    [((1, -5), 9, 4)]
    """
    stack: list[tuple[int, int]] = []
    held = start
    for working, after in steps:
        stack.append((working - held, after - held))
        held = after
        while len(stack) >= 2 and _priority(*stack[-1]) < _priority(*stack[-2]):
            rise2, net2 = stack.pop()
            rise1, net1 = stack.pop()
            stack.append((max(rise1, net1 + rise2), net1 + net2))
    return [(_priority(rise, net), rise, net) for rise, net in stack]


def merge_peak(held: list[int], jobs: list[list[Job]], base: int = 0) -> int:
    """Least peak of interleaving independent sequences that hold ``held`` bytes and still have
    ``jobs`` (from :func:`chain_jobs`) to run, on top of ``base`` bytes.

    >>> merge_peak([0, 0], [chain_jobs(0, [(10, 1)]), chain_jobs(0, [(4, 4)])])
    10
    """
    total = base + sum(held)
    peak = total
    for _, rise, net in sorted((job for chain in jobs for job in chain), key=lambda j: j[0]):
        peak = max(peak, total + rise)
        total += net
    return peak


class Bounds:
    """Precomputed data for :meth:`at`, the lower bound in a state given by group positions."""

    def __init__(self, seg: Segment, plan: Plan, refined: bool = True) -> None:
        """``refined=False`` leaves out what unstarted branches wait on (the plain forced bound);
        so do fork-join segments, whose merge bound already counts the inputs chain heads wait
        on."""
        self.merge = _fork_join(seg, plan)
        refined = refined and self.merge is None
        self.seg = seg
        self.plan = plan
        self.floor = [[min(r[j:]) for j in range(len(r))] for r in plan.residents]
        below = _descendants_or_self(seg)
        group_of_end = {e: g for g, e in enumerate(plan.group_end)}
        self.unit_own: list[int] = []
        self.unit_forced: list[tuple[int, ...]] = []
        self.unit_waiting: list[tuple[tuple[int, tuple[int, ...], tuple], ...]] = []
        self.after_start = [min(r[1:], default=0) for r in plan.residents]
        self.unit_cap: list[int] = []  # no state gives unit u a larger forced bound
        self.unit_counted: list[frozenset[int]] = []
        self.group_inputs = [tuple(dict.fromkeys(group_of_end[p] for p in self._head_inputs(g)))
                             if refined else () for g in range(len(plan.group_units))]
        for u, unit in enumerate(plan.units):
            group = plan.unit_group[u]
            first = unit.nodes[0]
            if unit.static:
                index = plan.group_units[group].index(u)
                own = plan.residents[group][index] + unit.rel_peak
                skip = {group}
            else:
                own = seg.sizes[first]
                src = seg.first_in[first]
                if seg.inplace[first] and src >= 0 and not seg.pinned[src]:
                    own = max(seg.sizes[src], own) - seg.sizes[src]
                skip = {group} | {group_of_end[p] for p in seg.preds[first]}
                own += sum(seg.sizes[plan.group_end[g]] for g in skip - {group})
            self.unit_own.append(own)
            forced = tuple(g for g, e in enumerate(plan.group_end)
                           if g not in skip and (seg.pinned[e] or seg.succ_mask[e] & below[first]))
            self.unit_forced.append(forced)
            counted = skip | set(forced)
            waiting = []
            for f in forced:
                inputs = tuple(group_of_end[p] for p in self._head_inputs(f)
                               if group_of_end[p] not in counted) if refined else ()
                waiting.append((f, inputs, tuple(
                    (h, tuple(group_of_end[p] for p in self._head_inputs(h)
                              if group_of_end[p] not in counted))
                    for h in inputs)))
            self.unit_waiting.append(tuple(waiting))
            self.unit_counted.append(frozenset(counted))
            self.unit_cap.append(own + sum(plan.residents[f][-1] for f in forced))
        self.unit_index = [plan.group_units[plan.unit_group[u]].index(u)
                           for u in range(len(plan.units))]
        self.by_cap = sorted(range(len(plan.units)), key=lambda u: -self.unit_cap[u])
        self.relaxed = _relaxed_sequences(seg, plan)
        self.children = group_children(seg, plan)

    def at(self, positions: tuple[int, ...], enough: int | None = None) -> int:
        """Lower bound (offset included) on the peak of every completion from ``positions``;
        with ``enough``, only the cheap (merge and tree) part when that is above it."""
        bound = self.cheap(positions)
        if enough is not None and bound > enough:
            return bound
        return self.forced(positions, bound)

    def cheap(self, positions: tuple[int, ...]) -> int:
        """The merge (fork-joins) and tree bounds (offset included)."""
        plan = self.plan
        bound = 0
        if self.merge is not None:
            base, groups, jobs = self.merge
            held = [plan.residents[g][positions[g]] for g in groups]
            rest = [jobs[i][positions[g]] for i, g in enumerate(groups)]
            bound = merge_peak(held, rest, base)
        base, held, jobs = self.relaxed
        bound = max(bound, forest_peak([held[g][j] for g, j in enumerate(positions)],
                                       [jobs[g][j] for g, j in enumerate(positions)],
                                       self.children, base))
        return bound + self.seg.offset

    def forced(self, positions: tuple[int, ...], bound: int) -> int:
        """The forced-resident bound (offset included), or ``bound`` when that is higher."""
        plan = self.plan
        bound -= self.seg.offset
        after_start, unit_group, unit_index = self.after_start, plan.unit_group, self.unit_index
        values = [self.floor[g][j] for g, j in enumerate(positions)]
        begun = [j > 0 or not units for j, units in zip(positions, plan.group_units)]
        for u in self.by_cap:  # most promising first; stop once no unit can raise the bound
            if self.unit_cap[u] <= bound:
                break
            if unit_index[u] < positions[unit_group[u]]:
                continue  # already run
            total = self.unit_own[u]
            waiting: dict[int, int] = {}  # begun group -> what its waiting consumers hold
            idle: dict[int, tuple[int, int]] = {}  # unstarted group -> (its begun input, held)
            deep: list[int] = []  # unstarted forced groups whose inputs have not started either
            for f, inputs, grand in self.unit_waiting[u]:
                if not begun[f]:
                    t = -1
                    for h in inputs:
                        if begun[h]:
                            t = h
                            break
                    if t >= 0:  # f has not started: t is still live, or f holds something
                        waiting[t] = waiting.get(t, 0) + after_start[f]
                        continue
                    for h, h_inputs in grand:  # f waits on h, which has not started either
                        if h in idle:
                            t = idle[h][0]
                        else:
                            t = -1
                            for k in h_inputs:
                                if begun[k]:
                                    t = k
                                    break
                        if t >= 0:
                            idle[h] = (t, idle.get(h, (t, 0))[1] + after_start[f])
                            break
                    else:
                        deep.append(f)
                    continue
                total += values[f]
            for h, (t, held) in idle.items():  # h started (and holds), or t is still live
                waiting[t] = waiting.get(t, 0) + min(after_start[h], held)
            if deep:
                seen = self.unit_counted[u] | waiting.keys() | idle.keys()
                for f in deep:
                    total += self._frontier(f, positions, values, seen)
            for t, waiting_held in waiting.items():
                total += min(values[t], waiting_held)
            if total > bound:
                bound = total
        return bound + self.seg.offset

    def _frontier(self, group: int, positions: tuple[int, ...], values: list[int],
                  seen: set[int]) -> int:
        """Least bytes held, while a unit runs, on behalf of ``group``, which has not started now
        and whose end is needed after that unit: the group has started (and holds at least its
        smallest later resident) or every input it waits for is held by its own producer group
        (recursively); groups in ``seen`` are counted elsewhere and add nothing (they are added
        to it)."""
        held = 0
        for k in self.group_inputs[group]:
            if k in seen:
                continue
            seen.add(k)
            if positions[k] > 0 or not self.plan.group_units[k]:
                held += values[k]
            else:
                held += self._frontier(k, positions, values, seen)
        return min(self.after_start[group], held)

    def _head_inputs(self, group: int) -> tuple[int, ...]:
        """The tensors the first operator of a chain group consumes (none for an input group)."""
        units = self.plan.group_units[group]
        return self.seg.preds[self.plan.units[units[0]].nodes[0]] if units else ()


def _descendants_or_self(seg: Segment) -> list[int]:
    """Bitmask of each tensor and everything that (transitively) consumes it."""
    below = [0] * len(seg.sizes)
    for v in reversed(range(len(seg.sizes))):
        mask = 1 << v
        rest = seg.succ_mask[v]
        while rest:
            low = rest & -rest
            mask |= below[low.bit_length() - 1]
            rest ^= low
        below[v] = mask
    return below


def _fork_join(seg: Segment, plan: Plan) -> tuple[int, list[int], list[list[list[Job]]]] | None:
    """For a fork-join segment: (bytes live throughout, chain groups, jobs of every suffix of
    every chain); None for any other shape."""
    n_in = seg.n_inputs
    chains = list(range(n_in, len(plan.group_units)))
    joins = [g for g in chains
             if any(p >= n_in for p in seg.preds[plan.units[plan.group_units[g][0]].nodes[0]])]
    if len(joins) > 1:
        return None
    join_node = plan.group_end[joins[0]] if joins else None
    if joins and len(plan.group_units[joins[0]]) != 1:
        return None
    allowed_succ = 0 if join_node is None else 1 << join_node
    chains = [g for g in chains if g not in joins]
    if any(seg.succ_mask[plan.group_end[g]] != allowed_succ for g in chains):
        return None  # with a join, every chain must end in it (so it runs last)
    kept = [t for t in range(n_in)
            if seg.pinned[t] or (join_node is not None and seg.succ_mask[t] >> join_node & 1)]
    base = sum(seg.sizes[t] for t in kept)
    jobs = []
    for g in chains:
        steps = []
        for j, u in enumerate(plan.group_units[g]):
            unit = plan.units[u]
            if unit.static:
                steps.append((plan.residents[g][j] + unit.rel_peak, plan.residents[g][j + 1]))
                continue
            head = unit.nodes[0]
            dropped = [p for p in seg.preds[head] if p not in kept]
            hill = sum(seg.sizes[p] for p in dropped) + seg.sizes[head]
            src = seg.first_in[head]
            if seg.inplace[head] and src in dropped and not seg.pinned[src]:
                hill += max(seg.sizes[src], seg.sizes[head]) - seg.sizes[src] - seg.sizes[head]
            steps.append((hill, seg.sizes[head]))
        residents = plan.residents[g]
        jobs.append([chain_jobs(residents[j], steps[j:]) for j in range(len(steps) + 1)])
    return base, chains, jobs


def _relaxed_sequences(seg: Segment, plan: Plan) -> tuple[int, list[list[int]], list[list[list[Job]]]]:
    """Every group as an independent sequence (any segment shape): a tensor with one consumer is
    counted from its producer's step to that consumer's step, a pinned one from its producer on;
    a tensor several operators consume is only counted at their own steps. Every real order is
    an interleaving of these sequences whose working sets are no larger, so the best interleaving
    (:func:`merge_peak`) is a lower bound. Returns (bytes counted at the start, per group the
    bytes it has counted after each position, per group and position the jobs left)."""
    n_in = seg.n_inputs
    counted = [seg.pinned[t] or seg.succ_mask[t].bit_count() == 1 for t in range(len(seg.sizes))]
    base = sum(seg.sizes[t] for t in range(n_in) if counted[t])
    held: list[list[int]] = []
    jobs: list[list[list[Job]]] = []
    for g, units in enumerate(plan.group_units):
        steps, total = [], 0
        for u in units:
            unit = plan.units[u]
            if unit.static:  # its chain tensors have one consumer; the last one may have more
                rise, net = unit.rel_peak, unit.delta
                if not counted[unit.nodes[-1]]:
                    net -= seg.sizes[unit.nodes[-1]]
            else:
                v = unit.nodes[0]
                dropped = sum(seg.sizes[p] for p in seg.preds[v] if not counted[p])
                rise = dropped + seg.sizes[v]
                src = seg.first_in[v]
                if seg.inplace[v] and src >= 0 and not seg.pinned[src]:
                    rise = min(rise, dropped + max(seg.sizes[src], seg.sizes[v]) - seg.sizes[src])
                net = (seg.sizes[v] if counted[v] else 0) - sum(
                    seg.sizes[p] for p in seg.preds[v] if counted[p] and not seg.pinned[p])
            steps.append((total + rise, total + net))
            total += net
        prefix = [0] + [after for _, after in steps]
        held.append(prefix)
        jobs.append([chain_jobs(prefix[j], steps[j:]) for j in range(len(steps) + 1)])
    return base, held, jobs
