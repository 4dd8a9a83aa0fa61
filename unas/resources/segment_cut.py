"""Min-cut lower bound on the peak of a partly executed segment.

While unit ``u`` (first operator ``x``) runs, the executed operators form a downset ``D`` that holds
everything already run and every ancestor of ``x``, and none of ``x``'s descendants or ``u``'s own
operators. Its live bytes are the tensors in ``D`` with a consumer outside ``D`` (or pinned). The
least live bytes over all such ``D`` is a minimum closure problem, solved exactly as a minimum
s-t cut (``scipy.sparse.csgraph.maximum_flow``): one vertex ``X_t`` per tensor (source side: ``t``
in ``D``), one ``Y_t`` (source side: ``t`` freed), an edge ``X_t -> Y_t`` of capacity
``bytes(t)`` (paid when ``t`` is in ``D`` but not freed), and infinite edges for the constraints
(``Y_t -> X_c`` for every consumer ``c``: freed only once every consumer ran; ``X_c -> X_p``:
downsets are closed under predecessors; pinned tensors are never freed; the fixed members and
non-members of ``D`` are tied to the source or the sink). The bound for ``u`` is that minimum plus
``u``'s own working-set increase; it counts shared tensors wherever a downset must hold them, which
the cheaper bounds of :mod:`unas.resources.segment_bounds` cannot.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_flow

from unas.resources.segment import Plan, Segment


def _bits(mask: int) -> list[int]:
    """Positions of the set bits of ``mask``, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class CutBound:
    """Precomputed flow network of a segment; :meth:`at` evaluates the bound for a downset."""

    def __init__(self, seg: Segment, plan: Plan) -> None:
        n = len(seg.sizes)
        self.seg, self.plan, self.n = seg, plan, n
        self.critical = None  # the unit whose cut set the last bound of :meth:`at`
        self.usable = sum(seg.sizes) < 1 << 30  # capacities must fit the solver's int32
        self.inf = sum(seg.sizes) + 1
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
        sink = 2 * n + 1
        rows, cols, caps = [], [], []
        for t in range(n):
            rows.append(t), cols.append(n + t), caps.append(seg.sizes[t])
            if seg.pinned[t]:
                rows.append(n + t), cols.append(sink), caps.append(self.inf)
            for c in _bits(seg.succ_mask[t]):
                rows.extend((n + t, c)), cols.extend((c, t)), caps.extend((self.inf, self.inf))
        self.rows = np.array(rows, dtype=np.int64)
        self.cols = np.array(cols, dtype=np.int64)
        self.caps = np.array(caps, dtype=np.int32)

    def _live(self, done: int) -> int:
        """Live bytes of downset ``done``."""
        seg = self.seg
        return sum(seg.sizes[t] for t in _bits(done)
                   if seg.pinned[t] or seg.succ_mask[t] & ~done)

    def _min_live(self, inside: int, outside: int) -> int:
        """Least live bytes of a downset containing ``inside`` and disjoint from ``outside``."""
        n = self.n
        one, zero = _bits(inside), _bits(outside)
        rows = np.concatenate([self.rows, np.full(len(one), 2 * n), np.array(zero, dtype=np.int64)])
        cols = np.concatenate([self.cols, np.array(one, dtype=np.int64), np.full(len(zero), 2 * n + 1)])
        caps = np.concatenate([self.caps, np.full(len(one) + len(zero), self.inf, dtype=np.int32)])
        graph = csr_array((caps, (rows, cols)), shape=(2 * n + 2, 2 * n + 2))
        return int(maximum_flow(graph, 2 * n, 2 * n + 1).flow_value)

    def at(self, done: int, bound: int) -> int:
        """Lower bound (offset included) on every completion from downset ``done``, at least
        ``bound``; units that cannot beat ``bound`` are skipped."""
        if not self.usable:
            return bound
        seg = self.seg
        for unit in self.plan.units:
            if unit.mask & done:
                continue
            x = unit.nodes[0]
            inside = done | self.ancestors[x]
            if unit.static:
                rel = unit.rel_peak
            else:
                rel = seg.sizes[x]
                src = seg.first_in[x]
                if seg.inplace[x] and src >= 0 and not seg.pinned[src]:
                    rel = max(seg.sizes[src], rel) - seg.sizes[src]
            if rel + self._live(inside) + seg.offset <= bound:
                continue  # the cut is at most the live bytes of ``inside`` itself
            value = rel + self._min_live(inside, self.below[x] | unit.mask) + seg.offset
            if value > bound:
                bound = value
                self.critical = unit
        return bound

    def at_critical(self, done: int, bound: int) -> int:
        """The bound of :meth:`at` for the unit that set the last bound only (one max-flow)."""
        unit = self.critical
        if unit is None or unit.mask & done or not self.usable:
            return bound
        x = unit.nodes[0]
        inside = done | self.ancestors[x]
        seg = self.seg
        if unit.static:
            rel = unit.rel_peak
        else:
            rel = seg.sizes[x]
            src = seg.first_in[x]
            if seg.inplace[x] and src >= 0 and not seg.pinned[src]:
                rel = max(seg.sizes[src], rel) - seg.sizes[src]
        if rel + self._live(inside) + seg.offset <= bound:
            return bound
        return max(bound, rel + self._min_live(inside, self.below[x] | unit.mask) + seg.offset)
