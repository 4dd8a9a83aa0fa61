"""Tree-relaxation lower bound: the relaxed sequences of :mod:`unas.resources.schedule.bounds` with
the precedence of joins kept, solved exactly by generalized tree pebbling.

Every group (chain or segment input) is a sequence of jobs (rise above what it holds, change of
what it holds). In the relaxation a tensor several operators consume is counted only at their own
steps, so the only tensors that link groups are group ends with a single consumer: that consumer
(the first operator of a *parent* group, e.g. a join) runs after the whole *child* group. The
groups then form a forest, and the best order of a forest of sequences is known exactly (Liu, "An
application of generalized tree pebbling to sparse matrix factorization", SIAM J. Algebraic
Discrete Methods 8(3), 1987): bottom-up, merge the children's optimal job lists by the rule for
independent sequences (:func:`unas.resources.schedule.bounds.merge_peak`: Abdel-Wahab & Kameda),
append the parent's own jobs, and merge neighbours whose priority is out of order again. Every
real order is an order of the relaxation with no larger working sets, so its best peak is a lower
bound; unlike the independent-sequences bound it cannot run a join before the branches it joins.
"""
from __future__ import annotations

from unas.resources.schedule.segment import Plan, Segment, job_priority

Job = tuple[tuple[int, int], int, int]  # (priority, rise above the start, net change)


def canonical(jobs: list[Job], start: list[Job] | None = None) -> list[Job]:
    """Jobs run in this order, with neighbours whose priority is out of order merged into one
    (rise ``max(r1, n1 + r2)``, net ``n1 + n2``), so the priorities no longer decrease; ``start``
    is a canonical list run before them (extended in place).

    >>> canonical([((1, -5), 9, 4), ((0, 2), 2, -4)])
    [((0, 9), 9, 0)]
    """
    stack = [] if start is None else start
    for job in jobs:
        while stack and job[0] < stack[-1][0]:
            _, rise1, net1 = stack.pop()
            rise, net = max(rise1, net1 + job[1]), net1 + job[2]
            job = (job_priority(rise, net), rise, net)
        stack.append(job)
    return stack


def forest_peak(held: list[int], jobs: list[list[Job]], children: list[list[int]],
                base: int = 0) -> int:
    """Least peak over the orders of a forest of sequences: sequence ``g`` holds ``held[g]`` and
    still has ``jobs[g]`` (canonical), and runs after every sequence in ``children[g]`` (children
    have smaller numbers than their parent); ``base`` bytes are held throughout.

    >>> forest_peak([0, 0, 0], [[((1, -9), 10, 1)], [((1, 0), 5, 5)], [((0, 0), 0, -6)]],
    ...             [[], [], [0, 1]])
    10
    """
    merged: list[list[Job]] = []
    for g, own in enumerate(jobs):
        kids = [job for c in children[g] for job in merged[c]]
        if kids:
            kids.sort(key=lambda job: job[0])  # canonical: every child's list is in order
            merged.append(canonical(own, kids) if own else kids)
        else:
            merged.append(own)
    has_parent = {c for kids in children for c in kids}
    top = sorted((job for g, seq in enumerate(merged) if g not in has_parent for job in seq),
                 key=lambda job: job[0])
    total = base + sum(held)
    peak = total
    for _, rise, net in top:
        peak = max(peak, total + rise)
        total += net
    return peak


def group_children(seg: Segment, plan: Plan) -> list[list[int]]:
    """For every group, the groups whose end has its first operator as only consumer."""
    group_of_end = {end: g for g, end in enumerate(plan.group_end)}
    children: list[list[int]] = []
    for units in plan.group_units:
        kids = []
        if units:
            head = plan.units[units[0]].nodes[0]
            for p in seg.preds[head]:
                g = group_of_end.get(p)
                if g is not None and seg.succ_mask[p].bit_count() == 1:
                    kids.append(g)
        children.append(kids)
    return children
