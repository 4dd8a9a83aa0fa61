"""Last-consumer lower bound: a case split on which pending consumer of a shared tensor runs last.

A tensor ``t`` that several operators still need stays live until the last of them runs. For a
consumer ``u`` of ``t`` (the first operator of a unit) every order either runs ``u`` last, or some
other consumer ``L`` last:

* ``u`` last: while ``u`` runs, the executed downset already holds every other consumer of ``t``
  (and what they need), so the working set is at least the min-cut bound of ``u``
  (:meth:`unas.resources.segment_cut.CutBound.value_with`) with those consumers inside;
* ``L`` last (``L != u``): take a unit ``A`` that needs ``u``'s output (the next unit of ``u``'s
  chain, or a consumer of it). Either ``A`` runs before ``L`` (the cut bound of ``A`` with ``u``
  inside and ``L`` outside: ``t`` is still live) or after it (the cut bound of ``L`` with ``u`` and
  every other consumer inside and ``A`` outside: ``u``'s output is still held).

So ``min(u last, min over L of min(A before L, A after L))`` bounds every completion, for every
``u``, and the largest of these is the bound. This is what the CNN space's branchy blocks need:
all their branches start from one tensor, and a branch whose first operator produces a large
tensor must either run last (with every other branch parked) or run while that tensor is live.
"""
from __future__ import annotations

from unas.resources.segment import Unit
from unas.resources.segment_cut import IMPOSSIBLE, CutBound, _bits


class LastConsumerBound:
    """Precomputed consumers and follow-up units; :meth:`at` evaluates the bound for a downset."""

    def __init__(self, cut: CutBound) -> None:
        seg, plan = cut.seg, cut.plan
        self.cut = cut
        self.unit_of = {unit.nodes[0]: unit for unit in plan.units if not unit.static}
        self.shared = [t for t in range(len(seg.sizes))
                       if not seg.pinned[t] and seg.succ_mask[t].bit_count() >= 2
                       and all(c in self.unit_of for c in _bits(seg.succ_mask[t]))]
        self.after: dict[int, list[Unit]] = {}  # first operator -> units that need its output
        for u, unit in enumerate(plan.units):
            if unit.static:
                continue
            units = plan.group_units[plan.unit_group[u]]
            pos = units.index(u)
            if pos + 1 < len(units):
                self.after[unit.nodes[0]] = [plan.units[units[pos + 1]]]
            else:
                end = plan.group_end[plan.unit_group[u]]
                self.after[unit.nodes[0]] = [self.unit_of[c] for c in _bits(seg.succ_mask[end])
                                             if c in self.unit_of]

    def at(self, done: int, bound: int) -> int:
        """Lower bound (offset included) on every completion from downset ``done``, at least
        ``bound``."""
        seg = self.cut.seg
        for t in self.shared:
            pending = seg.succ_mask[t] & ~done
            if pending.bit_count() < 2:
                continue
            consumers = sorted(_bits(pending), key=lambda c: -seg.sizes[c])
            for u in consumers:
                bound = max(bound, self._case_split(u, consumers, done, bound))
        return bound

    def _case_split(self, u: int, consumers: list[int], done: int, bound: int) -> int:
        """min(``u`` last, some other consumer last), or ``bound`` when that cannot beat it."""
        cut, unit = self.cut, self.unit_of[u]
        others = sum(1 << c for c in consumers if c != u)
        value = cut.value_with(unit, done | others, 0, bound)
        if value is None:
            return bound
        best_after = bound
        for follow in self.after[u]:
            worst = value  # the least bound over the cases where some other consumer is last
            for last in consumers:
                if last == u:
                    continue
                before = cut.value_with(follow, done | unit.mask, 1 << last, bound)
                if before is None:
                    worst = None
                    break
                after = cut.value_with(self.unit_of[last], done | unit.mask | others & ~(1 << last)
                                       | (1 << u), follow.mask, bound)
                if after is None:
                    worst = None
                    break
                worst = min(worst, before, after)
            if worst is not None:
                best_after = max(best_after, worst)
        return min(value, best_after) if best_after > bound else bound
