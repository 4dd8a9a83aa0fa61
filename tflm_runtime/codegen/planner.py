"""Static memory planner: an offset in one arena for every activation tensor.

Given a resource graph (with ``inplace`` marks, see :mod:`unas.resources.engine`) and an execution
order, every tensor lives from the step that produces it (graph inputs: from step 0) to the step of
its last consumer (graph outputs: to the end). An operator marked in place whose first input has no
other pending consumer shares that input's offset. The planner places the tensors as rectangles
(lifetime x bytes) at the lowest offsets it can find, trying several placement orders, and stops at
the first plan whose arena equals the lower bound: the peak working set of the order
(:func:`unas.resources.memory.peak_of_order`), which no placement can beat. When no greedy order
gets there, an exact mixed-integer program (``scipy.optimize.milp``: one offset per buffer, one
binary per pair of buffers alive together, arena fixed to the bound) looks for a placement that
does; only if it proves there is none (or runs out of its time limit) does the arena exceed the
bound, by the best greedy plan's fragmentation.

Every plan is checked (:meth:`MemoryPlan.check`) before it is returned: two tensors alive at the
same step never overlap unless one is written in place over the other.

>>> from unas.resources.graph import new_graph, add_op
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (100,))
>>> _ = add_op(g, "a", "FULLY_CONNECTED", (50,), ["in"])
>>> _ = add_op(g, "b", "FULLY_CONNECTED", (100,), ["a"])
>>> plan = plan_memory(g, ["in", "a", "b"])
>>> plan.arena_bytes, plan.lower_bound
(150, 150)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from unas.resources.graph import first_input
from unas.resources.memory import first_last_use, peak_of_order


class PlanError(RuntimeError):
    """The planner produced an inconsistent plan (a bug, never a user error)."""


@dataclass(frozen=True)
class TensorPlacement:
    """One activation tensor: bytes, lifetime [first, last] (step indices), arena offset."""

    name: str
    size: int
    first: int
    last: int
    offset: int
    in_place_of: str | None = None  # the input whose buffer this tensor overwrites

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets of all activation tensors for one execution order."""

    order: tuple[str, ...]
    tensors: dict[str, TensorPlacement]
    arena_bytes: int
    lower_bound: int  # peak working set of ``order``: no placement needs less

    def check(self) -> None:
        """Raise :class:`PlanError` if two tensors alive at the same step overlap in the arena."""
        items = list(self.tensors.values())
        for i, a in enumerate(items):
            if a.offset < 0 or a.end > self.arena_bytes:
                raise PlanError(f"tensor {a.name!r} [{a.offset}, {a.end}) outside the arena "
                                f"of {self.arena_bytes} bytes")
            for b in items[i + 1:]:
                if a.last < b.first or b.last < a.first:
                    continue
                if a.in_place_of == b.name or b.in_place_of == a.name:
                    if a.offset != b.offset:
                        raise PlanError(f"in-place pair {a.name!r}/{b.name!r} at different offsets")
                    continue
                if a.offset < b.end and b.offset < a.end:
                    raise PlanError(
                        f"tensors {a.name!r} [{a.offset}, {a.end}) steps {a.first}-{a.last} and "
                        f"{b.name!r} [{b.offset}, {b.end}) steps {b.first}-{b.last} overlap")

    def describe(self) -> str:
        """A readable table of the plan (``--verbose``)."""
        lines = [f"arena {self.arena_bytes} bytes (lower bound {self.lower_bound}); "
                 f"{len(self.order)} steps",
                 f"{'step':>4} {'offset':>8} {'bytes':>8} {'alive':>9}  tensor"]
        position = {n: i for i, n in enumerate(self.order)}
        for t in sorted(self.tensors.values(), key=lambda t: position[t.name]):
            note = f"  (in place of {t.in_place_of})" if t.in_place_of else ""
            lines.append(f"{position[t.name]:>4} {t.offset:>8} {t.size:>8} "
                         f"{t.first:>4}-{t.last:<4}  {t.name}{note}")
        return "\n".join(lines)


def lifetimes(graph: nx.DiGraph, order: Sequence[str], size_attr: str = "bytes"
              ) -> tuple[dict[str, tuple[int, int, int]], dict[str, str]]:
    """``{tensor: (size, first, last)}`` and ``{tensor: input it is written over}`` for ``order``."""
    pending = {n: graph.out_degree(n) for n in graph}
    in_place: dict[str, str] = {}
    for node in order:
        if graph.in_degree(node) > 0 and graph.nodes[node].get("inplace"):
            src = first_input(graph, node)
            if src is not None and pending[src] == 1:
                in_place[node] = src
        for src in graph.predecessors(node):
            pending[src] -= 1
    sources = [n for n in order if graph.in_degree(n) == 0]
    use = first_last_use([(list(graph.predecessors(n)), [n] if graph.in_degree(n) else [])
                          for n in order],
                         inputs=sources, outputs=[n for n in order if graph.out_degree(n) == 0])
    spans = {node: (int(graph.nodes[node][size_attr]), *use[node]) for node in order}
    return spans, in_place


def _groups(order: Sequence[str], in_place: dict[str, str]) -> list[list[str]]:
    root: dict[str, str] = {}
    for node in order:
        root[node] = root[in_place[node]] if node in in_place else node
    groups: dict[str, list[str]] = {}
    for node in order:
        groups.setdefault(root[node], []).append(node)
    return list(groups.values())


def _place(groups: list[list[str]], spans: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    placed: list[tuple[int, int, int, int]] = []  # (first, last, offset, end)
    offsets: dict[str, int] = {}
    for group in groups:
        forbidden = []
        for member in group:
            size, first, last = spans[member]
            for p_first, p_last, p_off, p_end in placed:
                if p_last < first or last < p_first:
                    continue
                forbidden.append((p_off - size + 1, p_end))  # offset x with x+size>p_off, x<p_end
        offset = 0
        for lo, hi in sorted(forbidden):
            if offset >= lo and offset < hi:
                offset = hi
        # a later interval may start below the new offset: repeat until stable
        changed = True
        while changed:
            changed = False
            for lo, hi in forbidden:
                if lo <= offset < hi:
                    offset, changed = hi, True
        for member in group:
            size, first, last = spans[member]
            offsets[member] = offset
            placed.append((first, last, offset, offset + size))
    return offsets


def _place_exact(groups: list[list[str]], spans: dict[str, tuple[int, int, int]], arena: int,
                 time_limit_s: float) -> dict[str, int] | None:
    """Offsets that fit every buffer into ``arena`` bytes (exact MILP), or None if none found."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(groups)
    height = [max(spans[m][0] for m in g) for g in groups]
    pairs = []  # (g, h, bytes g needs below h, bytes h needs below g)
    for g in range(n):
        for h in range(g + 1, n):
            need_g = need_h = 0
            for a in groups[g]:
                for b in groups[h]:
                    sa, fa, la = spans[a]
                    sb, fb, lb = spans[b]
                    if fa <= lb and fb <= la:
                        need_g, need_h = max(need_g, sa), max(need_h, sb)
            if need_g:
                pairs.append((g, h, need_g, need_h))
    if any(hgt > arena for hgt in height):
        return None
    nvar = n + len(pairs)
    rows, lo, hi = [], [], []
    for k, (g, h, need_g, need_h) in enumerate(pairs):
        z = n + k
        row = np.zeros(nvar)  # z=1: x_g + need_g <= x_h  ->  x_g - x_h + M z <= M - need_g
        row[g], row[h], row[z] = 1, -1, arena
        rows.append(row), lo.append(-np.inf), hi.append(arena - need_g)
        row = np.zeros(nvar)  # z=0: x_h + need_h <= x_g  ->  x_h - x_g - M z <= -need_h
        row[h], row[g], row[z] = 1, -1, -arena
        rows.append(row), lo.append(-np.inf), hi.append(-need_h)
    upper = np.array([arena - hgt for hgt in height] + [1] * len(pairs), dtype=float)
    result = milp(np.zeros(nvar), integrality=np.ones(nvar),
                  bounds=Bounds(np.zeros(nvar), upper),
                  constraints=[LinearConstraint(np.array(rows), lo, hi)] if rows else [],
                  options={"time_limit": time_limit_s})
    if result.x is None or result.status not in (0,):
        return None
    offsets = {}
    for g, group in enumerate(groups):
        for member in group:
            offsets[member] = int(round(result.x[g]))
    return offsets


def plan_memory(graph: nx.DiGraph, order: Sequence[str], size_attr: str = "bytes",
                rng: np.random.Generator | None = None, random_tries: int = 64,
                milp_time_limit_s: float = 20.0) -> MemoryPlan:
    """Place every tensor of ``graph`` executed in ``order``; the result passed :meth:`check`.

    Deterministic placement orders come first; if none reaches the lower bound and ``rng`` is
    given, up to ``random_tries`` shuffled orders follow. The best plan found is returned.
    """
    order = tuple(order)
    spans, in_place = lifetimes(graph, order, size_attr)
    bound = peak_of_order(graph, order, size_attr)
    groups = _groups(order, in_place)

    def group_size(g: list[str]) -> int:
        return max(spans[m][0] for m in g)

    def group_span(g: list[str]) -> int:
        return max(spans[m][2] for m in g) - min(spans[m][1] for m in g)

    candidates = [
        sorted(groups, key=lambda g: (-group_size(g), spans[g[0]][1])),
        sorted(groups, key=lambda g: (-group_size(g) * (group_span(g) + 1), spans[g[0]][1])),
        sorted(groups, key=lambda g: (-group_span(g), -group_size(g))),
        sorted(groups, key=lambda g: spans[g[0]][1]),
    ]
    best: dict[str, int] | None = None
    best_arena = None

    def consider(ordering: list[list[str]]) -> bool:
        nonlocal best, best_arena
        offsets = _place(ordering, spans)
        arena = max((offsets[n] + spans[n][0] for n in offsets), default=0)
        if best_arena is None or arena < best_arena:
            best, best_arena = offsets, arena
        return arena <= bound

    done = any(consider(c) for c in candidates)
    if not done and rng is not None:
        for _ in range(random_tries):
            perm = rng.permutation(len(groups))
            if consider([groups[i] for i in perm]):
                done = True
                break
    if not done:
        exact = _place_exact(groups, spans, bound, milp_time_limit_s)
        if exact is not None:
            best, best_arena = exact, bound
    assert best is not None and best_arena is not None
    tensors = {n: TensorPlacement(n, spans[n][0], spans[n][1], spans[n][2], best[n],
                                  in_place.get(n)) for n in order}
    plan = MemoryPlan(order, tensors, best_arena, bound)
    plan.check()
    return plan
