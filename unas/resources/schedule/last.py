"""Last-consumer lower bound: a case split on which pending consumer of a shared tensor runs last.

A tensor ``t`` that several operators still need stays live until the last of them runs. Every
order runs exactly one of its pending consumers ``C`` last; for each candidate ``L`` in ``C`` a
lower bound ``V(L)`` on the orders that run ``L`` last is the largest of

* the min-cut bound of ``L`` (:meth:`unas.resources.schedule.cut.CutBound.value_with`) with every
  other consumer already executed (``L`` runs last, so the others and what they need are done),
  and the same for the units that need ``L``'s output;
* for every other consumer ``x`` and a unit ``A`` that needs ``x``'s output (the next unit of
  ``x``'s chain, or a consumer of it): ``min(A before L, A after L)``, where *A before L* is the
  cut bound of ``A`` with ``x`` executed and ``L`` not (so ``t`` is still live), and *A after L*
  is the cut bound of ``L`` with ``x`` and the other consumers executed and ``A`` not (so ``x``'s
  output is still held) and the cut bound of ``A`` with every consumer executed.

``min over L of V(L)`` bounds every completion. At the start of a search the ``L`` that gives the
minimum is split once more, by which of the largest other consumers shrink their output before
``L`` runs (:meth:`LastConsumerBound._subsets`), until the minimum stops rising. This is what
the CNN space's branchy blocks need: all their branches start from one tensor, and a branch whose
first operator produces a large tensor must either run last (with every other branch parked) or
shrink its output while that tensor is live, or hold it while the last branch starts.
"""
from __future__ import annotations

from unas.resources.schedule.segment import Unit
from unas.resources.schedule.cut import CutBound, _bits


class LastConsumerBound:
    """Consumers of shared tensors and the units that follow them; :meth:`at` evaluates the
    bound for a downset, :meth:`at_critical` for the tensor that gave it last time."""

    def __init__(self, cut: CutBound) -> None:
        seg, plan = cut.seg, cut.plan
        self.cut = cut
        self.critical: int | None = None  # the shared tensor that raised the last :meth:`at`
        self.calls = self.raised = 0  # uses of :meth:`at_critical`, and how many raised the bound
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
        ``bound``; remembers the tensor that raised it most for :meth:`at_critical`.

        Here the candidate that gives the minimum is also split further (:meth:`_subsets`)
        until the minimum stops rising."""
        self.critical = None
        seg = self.cut.seg
        for t in self.shared:
            pending = seg.succ_mask[t] & ~done
            if pending.bit_count() < 2:
                continue
            values = {}
            for last in _bits(pending):
                values[last] = self._case(last, pending, done, bound, exact=True, cap=None)
                if values[last] <= bound:
                    break
            else:
                refined: set[int] = set()
                while True:
                    last = min(values, key=values.__getitem__)
                    if last in refined:
                        break
                    refined.add(last)
                    values[last] = max(values[last], self._subsets(last, pending, done, bound))
                value = min(values.values())
                if value > bound:
                    bound, self.critical = value, t
        return bound

    def at_critical(self, done: int, bound: int) -> int:
        """Whether the split of the tensor that raised :meth:`at` most beats ``bound`` (the
        search passes the state's key): a value above ``bound`` if so, else ``bound``. Used
        while it keeps paying off (raising at least 1 in 3 states, once 8 have been tried)."""
        if self.critical is None or self.calls >= 8 and self.raised * 3 < self.calls:
            return bound
        self.calls += 1
        seg = self.cut.seg
        pending = seg.succ_mask[self.critical] & ~done
        value = bound
        if pending.bit_count() >= 2:
            result = None
            for last in sorted(_bits(pending), key=lambda c: seg.sizes[c]):
                worst = self._case(last, pending, done, bound, exact=False, cap=result)
                if worst <= bound:
                    result = None
                    break
                result = worst if result is None else min(result, worst)
            value = bound if result is None else result
        self.raised += value > bound
        return value

    def _case(self, last: int, pending: int, done: int, bound: int, exact: bool,
              cap: int | None) -> int:
        """A lower bound on the orders that run ``last`` after every other consumer in
        ``pending``: V(last) of the module docstring, or ``bound`` when that is no higher.
        ``exact=False`` stops at the first term above ``bound``; any term at least ``cap`` also
        stops it (the caller's minimum cannot drop)."""
        cut = self.cut
        everyone = done | pending
        others = pending & ~(1 << last)
        unit = self.unit_of[last]
        worst = bound
        for candidate, inside in [(unit, done | others)] + [
                (follow, everyone) for follow in self.after[last]]:
            value = cut.value_with(candidate, inside, 0, worst)  # None: at most worst
            if value is not None:
                worst = value
        if not exact and worst > bound or cap is not None and worst >= cap:
            return worst
        for x in _bits(others):
            for follow in self.after[x]:
                before = cut.value_with(follow, done | 1 << x, 1 << last, worst)
                if before is None:
                    continue
                late = cut.value_with(unit, done | others, follow.mask, worst)
                held = cut.value_with(follow, everyone, 0, worst if late is None else late)
                late = held if held is not None else late  # A after L: every consumer ran
                if late is None:
                    continue
                worst = min(before, late)
                if not exact:
                    break
            if not exact and worst > bound or cap is not None and worst >= cap:
                break
        return worst

    def _subsets(self, last: int, pending: int, done: int, bound: int) -> int:
        """V(last) split by which of the (at most 3) largest other consumers ``x`` run their
        follow-up unit ``A_x`` before ``last``: for such a set ``B``, while ``last`` runs the
        follow-ups in ``B`` have run and the others have not; and the last follow-up of ``B``
        runs with every head of ``B`` and the other follow-ups of ``B`` done and ``last`` not."""
        seg, cut = self.cut.seg, self.cut
        others = pending & ~(1 << last)
        big = sorted((x for x in _bits(others) if self.after[x]), key=lambda x: -seg.sizes[x])[:3]
        if len(big) < 2:
            return bound
        follow = {x: self.after[x][0] for x in big}
        unit = self.unit_of[last]
        result = None
        for choice in range(1 << len(big)):
            before = [x for i, x in enumerate(big) if choice >> i & 1]
            ran = waits = 0  # follow-ups run before ``last``, and those after it
            for x in big:
                if x in before:
                    ran |= follow[x].mask
                else:
                    waits |= follow[x].mask
            value = cut.value_with(unit, done | others | ran, waits, bound)
            value = bound if value is None else value
            if before and (result is None or value < result):
                heads = sum(1 << x for x in before)
                last_follow = None
                for x in before:
                    term = cut.value_with(follow[x], done | heads | ran & ~follow[x].mask,
                                          1 << last, value)
                    term = value if term is None else term
                    last_follow = term if last_follow is None else min(last_follow, term)
                    if last_follow <= value:
                        break
                value = max(value, last_follow)
            result = value if result is None else min(result, value)
            if result <= bound:
                return bound
        return bound if result is None else result
