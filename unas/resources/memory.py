"""The execution model: validation of a resource graph and the peak working set of one order.

Inputs (nodes without predecessors) are live from the start. Executing ``v`` needs every produced
tensor that still has an unexecuted consumer (``v`` included) or is a graph output, plus ``v``'s
own output. Afterwards tensors whose consumers have all run are freed; graph outputs never are.
In place (``inplace=True`` on ``v``, first input ``u``): when ``u`` has no other pending consumer
and is not a graph output, the working set of ``v`` is ``live - bytes(u) + max(bytes(u), bytes(v))``.

>>> from unas.resources.graph import new_graph, add_op
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (10,))
>>> _ = add_op(g, "a", "RELU", (10,), ["in"], inplace=True)
>>> _ = add_op(g, "b", "FULLY_CONNECTED", (4,), ["a"])
>>> peak_of_order(g, ["in", "a", "b"])
14
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from numbers import Integral

import networkx as nx

from unas.errors import ArchitectureError
from unas.resources.graph import first_input


def check_graph(graph: nx.DiGraph, size_attr: str = "bytes") -> None:
    """Raise :class:`ArchitectureError` unless ``graph`` is a DAG whose nodes all have a size."""
    if not isinstance(graph, nx.DiGraph):
        raise ArchitectureError(f"resource graph: expected a networkx.DiGraph, got {type(graph).__name__}")
    for node, data in graph.nodes(data=True):
        size = data.get(size_attr)
        if size is None:
            raise ArchitectureError(
                f"resource graph: node {node!r} has no {size_attr!r} attribute; expected an int >= 0")
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 0:
            raise ArchitectureError(
                f"resource graph: node {node!r} has {size_attr}={size!r}; expected an int >= 0")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = [edge[0] for edge in nx.find_cycle(graph)]
        path = " -> ".join(repr(n) for n in cycle + cycle[:1])
        raise ArchitectureError(f"resource graph has a cycle {path}; expected a DAG")


def step_cost(graph: nx.DiGraph, node: object, live: int, pending: dict, size_attr: str) -> int:
    """Working set while ``node`` runs, given ``live`` bytes and per-tensor pending-consumer counts."""
    size = int(graph.nodes[node][size_attr])
    if graph.nodes[node].get("inplace"):
        src = first_input(graph, node)
        if src is not None and pending[src] == 1:  # src has a consumer (node), so it is no output
            src_size = int(graph.nodes[src][size_attr])
            return live - src_size + max(src_size, size)
    return live + size


def order_profile(graph: nx.DiGraph, order: Iterable, size_attr: str = "bytes") -> list[int]:
    """Working set of every step of ``order`` (graph inputs: the live bytes at their step).

    Raises :class:`ArchitectureError` if ``order`` is not a topological order of all nodes.
    """
    check_graph(graph, size_attr)
    order = list(order)
    position: dict = {}
    for index, node in enumerate(order):
        if node not in graph:
            raise ArchitectureError(f"order: {node!r} is not a node of the resource graph")
        if node in position:
            raise ArchitectureError(f"order: {node!r} appears twice; expected every node once")
        position[node] = index
    if len(order) != graph.number_of_nodes():
        missing = next(n for n in graph if n not in position)
        raise ArchitectureError(f"order: node {missing!r} is missing; expected every node once")
    for src, dst in graph.edges:
        if position[src] > position[dst]:
            raise ArchitectureError(f"order: {dst!r} runs before its input {src!r}")
    pending = {n: graph.out_degree(n) for n in graph}
    live = sum(int(graph.nodes[n][size_attr]) for n in graph if graph.in_degree(n) == 0)
    profile = []
    for node in order:
        if graph.in_degree(node) == 0:
            profile.append(live)
            continue
        profile.append(step_cost(graph, node, live, pending, size_attr))
        live += int(graph.nodes[node][size_attr])
        for src in graph.predecessors(node):
            pending[src] -= 1
            if pending[src] == 0:
                live -= int(graph.nodes[src][size_attr])
    return profile


def peak_of_order(graph: nx.DiGraph, order: Iterable, size_attr: str = "bytes") -> int:
    """Peak working set (bytes) of executing ``graph`` in ``order`` (see the module docstring)."""
    profile = order_profile(graph, order, size_attr)
    return max(profile, default=0)


def first_last_use(steps: Sequence[tuple[Iterable, Iterable]], inputs: Iterable = (),
                   outputs: Iterable = (),
                   unproduced: Callable[[int, object], Exception] | None = None) -> dict:
    """``{tensor: (first, last)}``: the steps between which each tensor is live when ``steps``
    (one ``(reads, writes)`` pair per step) run in this order.

    Graph ``inputs`` are live from step 0, every other tensor from the step that writes it; a
    tensor stays live to the last step that reads it, graph ``outputs`` to the last step. A step
    reading a tensor that is neither an input nor written earlier raises ``unproduced(step,
    tensor)`` (default: :class:`ArchitectureError`). Both memory planners (TFLM's arena replay
    in :mod:`tflm_runtime.arena`, the code generator's in :mod:`tflm_runtime.codegen.planner`)
    take their lifetimes from here.

    >>> first_last_use([((), ["a"]), (["a"], ["b"]), (["a", "b"], ["c"])], outputs=["c"])
    {'a': (0, 2), 'b': (1, 2), 'c': (2, 2)}
    """
    first = {t: 0 for t in inputs}
    last = dict(first)
    count = 0
    for pos, (reads, writes) in enumerate(steps):
        count = pos + 1
        for t in reads:
            if t not in first:
                if unproduced is not None:
                    raise unproduced(pos, t)
                raise ArchitectureError(f"step {pos} reads {t!r} before it is produced")
            last[t] = max(last[t], pos)
        for t in writes:
            first.setdefault(t, pos)
            last[t] = max(last.get(t, pos), pos)
    for t in outputs:
        last[t] = count - 1
    return {t: (first[t], last[t]) for t in first}
