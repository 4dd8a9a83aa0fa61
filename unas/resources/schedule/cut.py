"""Min-cut lower bound on the peak of a partly executed segment.

While unit ``u`` (first operator ``x``) runs, the executed operators form a downset ``D`` that holds
everything already run and every ancestor of ``x``, and none of ``x``'s descendants or ``u``'s own
operators. Its live bytes are the tensors in ``D`` with a consumer outside ``D`` (or pinned). The
least live bytes over all such ``D`` is a minimum closure problem, solved exactly as a minimum
s-t cut (shortest augmenting paths, on the tensors not already decided): one vertex ``X_t`` per
tensor (source side: ``t`` in ``D``), one ``Y_t`` (source side: ``t`` freed), an edge
``X_t -> Y_t`` of capacity ``bytes(t)`` (paid when ``t`` is in ``D`` but not freed), and infinite
edges for the constraints (``Y_t -> X_c`` for every consumer ``c``: freed only once every consumer
ran; ``X_c -> X_p``: downsets are closed under predecessors; pinned tensors are never freed; the
fixed members and non-members of ``D`` are tied to the source or the sink). The bound for ``u``
is that minimum plus
``u``'s own working-set increase; it counts shared tensors wherever a downset must hold them, which
the cheaper bounds of :mod:`unas.resources.schedule.bounds` cannot.
"""
from __future__ import annotations

from unas.resources.schedule.segment import Plan, Segment, Unit

IMPOSSIBLE = 1 << 62  # the value of a case that no order can meet


def _bits(mask: int) -> list[int]:
    """Positions of the set bits of ``mask``, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class CutBound:
    """Ancestors and descendants of a segment's operators; :meth:`at` evaluates the bound for a
    downset."""

    def __init__(self, seg: Segment, plan: Plan, keep: int = 1) -> None:
        n = len(seg.sizes)
        self.seg, self.plan, self.n = seg, plan, n
        self.keep = keep
        self.calls = self.raised = 0  # uses of :meth:`at_critical`, and how many raised the bound
        self.critical: list[Unit] = []  # the units with the largest cuts in the last :meth:`at`
        self.inf = sum(seg.sizes) + 1
        self.memo: dict[tuple[int, int], int] = {}  # (inside, outside) -> least live bytes
        self.closed: dict[tuple[int, int, int], tuple[int, int, int, int] | None] = {}
        self.ancestors = [0] * n
        for v in range(n):
            mask = 0
            for p in seg.preds[v]:
                mask |= self.ancestors[p] | (1 << p)
            self.ancestors[v] = mask
        self.below = [0] * n
        for v in reversed(range(n)):
            mask = 1 << v
            for s in _bits(seg.succ_mask[v]):
                mask |= self.below[s]
            self.below[v] = mask

    def _live(self, done: int) -> int:
        """Live bytes of downset ``done``."""
        seg = self.seg
        return sum(seg.sizes[t] for t in _bits(done)
                   if seg.pinned[t] or seg.succ_mask[t] & ~done)

    def _min_live(self, inside: int, outside: int) -> int:
        """Least live bytes of a downset containing ``inside`` and disjoint from ``outside``: the
        minimum cut of the network reduced to the undecided tensors (tensors inside with no
        undecided consumer cost a constant or nothing), by shortest augmenting paths.

        Vertices: 0 = source, 1 = sink, ``2 + t`` = "t executed", ``2 + n + t`` = "t freed"."""
        key = (inside, outside)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = value = self._max_flow(inside, outside)
        return value

    def _max_flow(self, inside: int, outside: int) -> int:
        """:meth:`_min_live` without the memo."""
        seg, n, inf = self.seg, self.n, self.inf
        free = ((1 << n) - 1) & ~inside & ~outside
        constant = 0
        adj: list[list[int]] = [[] for _ in range(2 + 2 * n)]
        head: list[int] = []  # edge e goes to head[e]; e ^ 1 is its reverse
        cap: list[int] = []

        def edge(a: int, b: int, c: int) -> None:
            adj[a].append(len(head))
            head.append(b)
            cap.append(c)
            adj[b].append(len(head))
            head.append(a)
            cap.append(0)

        for t in _bits(inside | free):
            size, succ = seg.sizes[t], seg.succ_mask[t]
            if not size:
                continue
            if seg.pinned[t] or succ & outside:  # paid whenever t is in the downset
                if inside >> t & 1:
                    constant += size
                else:
                    edge(2 + t, 1, size)
                continue
            if not succ & free:
                continue  # every consumer already in the downset: freed at no cost
            edge(0 if inside >> t & 1 else 2 + t, 2 + n + t, size)
            for c in _bits(succ & free):
                edge(2 + n + t, 2 + c, inf)
        for c in _bits(free):
            for p in seg.preds[c]:
                if free >> p & 1:
                    edge(2 + c, 2 + p, inf)
        flow = 0
        while True:  # shortest augmenting paths (Edmonds-Karp)
            via = [-1] * len(adj)
            via[0] = -2
            queue = [0]
            for node in queue:
                for e in adj[node]:
                    nxt = head[e]
                    if via[nxt] == -1 and cap[e] > 0:
                        via[nxt] = e
                        queue.append(nxt)
                if via[1] != -1:
                    break
            if via[1] == -1:
                return constant + flow
            push, node = inf, 1
            while node:
                e = via[node]
                push = min(push, cap[e])
                node = head[e ^ 1]
            node = 1
            while node:
                e = via[node]
                cap[e] -= push
                cap[e ^ 1] += push
                node = head[e ^ 1]
            flow += push

    def at(self, done: int, bound: int) -> int:
        """Lower bound (offset included) on every completion from downset ``done``, at least
        ``bound``; remembers the ``keep`` units with the largest cuts for :meth:`at_critical`."""
        values: list[tuple[int, int, Unit]] = []
        for i, unit in enumerate(self.plan.units):
            if not unit.mask & done:
                value = self._cut_value(unit, done, bound)
                if value is not None:
                    values.append((value, i, unit))
                    bound = max(bound, value)
        self.critical = [unit for _, _, unit in sorted(values, reverse=True)[:self.keep]]
        return bound

    def at_critical(self, done: int, bound: int) -> int:
        """The bound of :meth:`at` for the units with the largest cuts in the last call of
        :meth:`at` only (at most ``keep`` max-flows)."""
        if self.calls >= 20 and self.raised * 10 < self.calls:
            return bound  # it rarely helps on this segment: not worth a max-flow per state
        self.calls += 1
        start = bound
        for unit in self.critical:
            if not unit.mask & done:
                value = self._cut_value(unit, done, bound)
                if value is not None:
                    bound = max(bound, value)
        self.raised += bound > start
        return bound

    def _cut_value(self, unit: Unit, done: int, bound: int) -> int | None:
        """The cut bound of ``unit`` (not yet run) from downset ``done``, or None when it cannot
        beat ``bound`` (the cut is at most the live bytes of ``done`` plus ``unit``'s ancestors)."""
        return self.value_with(unit, done, 0, bound)

    def _close(self, unit: Unit, inside: int, outside: int) -> tuple[int, int, int, int] | None:
        """(working-set increase of ``unit``, closed inside, closed outside, live bytes of the
        closed inside) for :meth:`value_with`, or None when the two sets meet."""
        seg = self.seg
        x = unit.nodes[0]
        inside |= self.ancestors[x]
        outside |= unit.mask
        for v in _bits(inside):
            inside |= self.ancestors[v]
        for v in _bits(outside | self.below[x]):
            outside |= self.below[v]
        if inside & outside:
            return None
        if unit.static:
            rel = unit.rel_peak
        else:
            rel = seg.sizes[x]
            src = seg.first_in[x]
            if seg.inplace[x] and src >= 0 and not seg.pinned[src]:
                rel = max(seg.sizes[src], rel) - seg.sizes[src]
        return rel, inside, outside, self._live(inside)

    def value_with(self, unit: Unit, inside: int, outside: int, bound: int) -> int | None:
        """Least working set (offset included) while ``unit`` runs from a downset that contains
        ``inside`` and none of ``outside`` (both closed here: ancestors join ``inside``, and
        ``unit`` with every descendant joins ``outside``), or None when that is at most ``bound``;
        :data:`IMPOSSIBLE` when no such downset exists (no order runs ``unit`` there)."""
        key = (unit.mask, inside, outside)
        if key not in self.closed:
            self.closed[key] = self._close(unit, inside, outside)
        closed = self.closed[key]
        if closed is None:
            return IMPOSSIBLE
        rel, inside, outside, live = closed
        if rel + live + self.seg.offset <= bound:
            return None
        seg = self.seg
        value = rel + self._min_live(inside, outside) + seg.offset
        return value if value > bound else None
