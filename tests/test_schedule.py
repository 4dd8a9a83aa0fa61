"""Exact min-peak scheduling: hand-computed cases and properties against brute force."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedule_helpers import step_sequences
from unas.errors import ArchitectureError
from unas.resources import Schedule, add_op, min_peak_schedule, new_graph, peak_of_order
from unas.resources.schedule.bounds import chain_jobs, merge_peak


def reference_peak(graph: nx.DiGraph, order: list) -> int:
    """The execution model of docs/architecture.md written as plainly as possible (sets)."""
    size = {n: graph.nodes[n]["bytes"] for n in graph}
    outputs = {n for n in graph if graph.out_degree(n) == 0}
    done = {n for n in graph if graph.in_degree(n) == 0}
    peak = sum(size[n] for n in done)
    for v in order:
        if graph.in_degree(v) == 0:
            continue
        needed = {t for t in done if t in outputs or any(c not in done for c in graph.successors(t))}
        live = sum(size[t] for t in needed)
        working = live + size[v]
        first = [u for u, _, i in graph.in_edges(v, data="index") if i == 0]
        if graph.nodes[v].get("inplace") and first:
            u = first[0]
            others = [c for c in graph.successors(u) if c != v and c not in done]
            if not others and u not in outputs:
                working = live - size[u] + max(size[u], size[v])
        peak = max(peak, working)
        done.add(v)
    return peak


def brute_force_peak(graph: nx.DiGraph) -> int:
    """Minimum over every topological order (peak_of_order is checked against the reference)."""
    return min(peak_of_order(graph, o) for o in nx.all_topological_sorts(graph))


@st.composite
def dags(draw, max_nodes: int = 8):
    """Random DAGs: several inputs and outputs, wide fan-out/fan-in, random in-place flags."""
    n = draw(st.integers(1, max_nodes))
    g = new_graph()
    for i in range(n):
        k = draw(st.integers(0, min(i, 4))) if i else 0
        ins = draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k, unique=True)) if k else []
        add_op(g, f"n{i}", "OP" if ins else "INPUT", (draw(st.integers(1, 40)),),
               [f"n{j}" for j in ins], inplace=draw(st.booleans()))
    return g


@st.composite
def fork_joins(draw):
    """A source, 2-3 parallel chains (maybe with a skip edge), and usually a join."""
    g = new_graph()
    size = st.integers(1, 40)
    add_op(g, "src", "INPUT", (draw(size),))
    branches = draw(st.integers(2, 3))
    ends = []
    for b in range(branches):
        prev = "src"
        for j in range(draw(st.integers(1, 7 // branches))):
            prev = add_op(g, f"b{b}_{j}", "OP", (draw(size),), [prev], inplace=draw(st.booleans()))
        ends.append(prev)
    if draw(st.booleans()):
        ends.append("src")
    if draw(st.integers(0, 4)):
        add_op(g, "join", "ADD", (draw(size),), ends, inplace=draw(st.booleans()))
    return g


def check_optimal(graph: nx.DiGraph) -> None:
    schedule = min_peak_schedule(graph)
    assert sorted(schedule.order) == sorted(graph.nodes)
    position = {n: i for i, n in enumerate(schedule.order)}
    assert all(position[u] < position[v] for u, v in graph.edges)
    assert peak_of_order(graph, schedule.order) == schedule.peak_bytes
    assert reference_peak(graph, list(schedule.order)) == schedule.peak_bytes
    assert schedule.peak_bytes == brute_force_peak(graph)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_optimal_on_random_dags(graph):
    check_optimal(graph)


@settings(max_examples=300, deadline=None)
@given(fork_joins())
def test_optimal_on_fork_joins(graph):
    check_optimal(graph)


@settings(max_examples=200, deadline=None)
@given(dags(max_nodes=8), st.randoms(use_true_random=False))
def test_peak_of_order_matches_reference(graph, random):
    order = list(nx.topological_sort(graph))
    random.shuffle(order)
    order = list(nx.lexicographical_topological_sort(graph, key=order.index))
    assert peak_of_order(graph, order) == reference_peak(graph, order)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.lists(
    st.tuples(st.integers(0, 15), st.integers(0, 9)), max_size=3)), min_size=1, max_size=3))
def test_merge_bound_is_best_interleaving(chains):
    """The fork-join bound's merge equals the best interleaving of independent sequences."""
    starts = [start for start, _ in chains]
    seqs = step_sequences(chains)

    def best(pos: tuple, held: tuple, peak: int) -> int:
        options = [peak]
        moves = [i for i in range(len(seqs)) if pos[i] < len(seqs[i])]
        if not moves:
            return peak
        results = []
        for i in moves:
            working, after = seqs[i][pos[i]]
            total = 5 + sum(held) - held[i]
            results.append(best(pos[:i] + (pos[i] + 1,) + pos[i + 1:],
                                held[:i] + (after,) + held[i + 1:], max(peak, total + working)))
        return min(results) if results else options[0]

    expected = best(tuple(0 for _ in seqs), tuple(starts), 5 + sum(starts))
    assert merge_peak(starts, [chain_jobs(s, q) for s, q in zip(starts, seqs)], 5) == expected


def branchy() -> nx.DiGraph:
    """μNAS Figure 1 idea: the default (layer) order runs the wide branch while a big tensor waits."""
    g = new_graph()
    add_op(g, "in", "INPUT", (10,))
    add_op(g, "wide", "CONV_2D", (50,), ["in"])            # default order runs this first
    add_op(g, "big", "CONV_2D", (100,), ["in"])
    add_op(g, "small", "CONV_2D", (1,), ["big"])
    add_op(g, "cat", "CONCATENATION", (51,), ["wide", "small"])
    return g


def test_branchy_graph_hand_computed():
    g = branchy()
    # default: wide (10+50), big (10+50+100=160), small (50+100+1), cat (50+1+51)
    assert peak_of_order(g, list(g.nodes)) == 160
    # optimal: big (10+100), small (10+100+1, `in` still waits for wide), wide (10+1+50),
    # cat (50+1+51)
    schedule = min_peak_schedule(g)
    assert schedule == Schedule(("in", "big", "small", "wide", "cat"), 111)


def test_inplace_rule_hand_computed():
    g = new_graph()
    add_op(g, "in", "INPUT", (30,))
    add_op(g, "a", "DEPTHWISE_CONV_2D", (30,), ["in"], inplace=True)
    add_op(g, "b", "ADD", (30,), ["a", "in"], inplace=True)
    # a cannot reuse `in` (b still needs it): 60; b reuses `a` (its first input): 60 - 30 + 30
    assert peak_of_order(g, ["in", "a", "b"]) == 60
    h = new_graph()
    add_op(h, "in", "INPUT", (30,))
    add_op(h, "a", "DEPTHWISE_CONV_2D", (20,), ["in"], inplace=True)
    add_op(h, "out", "RESHAPE", (20,), ["a"])
    assert peak_of_order(h, ["in", "a", "out"]) == 40  # a in place: 30; out: 20 + 20
    assert min_peak_schedule(h).peak_bytes == 40


def test_graph_outputs_stay_live():
    g = new_graph()
    add_op(g, "in", "INPUT", (5,))
    add_op(g, "out1", "FULLY_CONNECTED", (7,), ["in"])
    add_op(g, "x", "FULLY_CONNECTED", (3,), ["in"])
    add_op(g, "out2", "FULLY_CONNECTED", (2,), ["x"])
    assert peak_of_order(g, ["in", "out1", "x", "out2"]) == 12 + 3  # out1 kept during x
    assert min_peak_schedule(g).peak_bytes == brute_force_peak(g)


def test_long_chain_needs_no_recursion(rng):
    g = new_graph()
    add_op(g, "n0", "INPUT", (4,))
    sizes = rng.integers(1, 100, size=2000)
    for i in range(1, 2000):
        add_op(g, f"n{i}", "OP", (int(sizes[i]),), [f"n{i - 1}"])
    schedule = min_peak_schedule(g)
    assert schedule.order == tuple(g.nodes)
    assert schedule.peak_bytes == max(int(sizes[i - 1] if i > 1 else 4) + int(sizes[i])
                                      for i in range(1, 2000))


def test_six_parallel_branches(rng):
    g = new_graph()
    add_op(g, "in", "INPUT", (8, 8, 4))
    ends = []
    for b in range(6):
        prev = "in"
        for j in range(6):
            prev = add_op(g, f"b{b}_{j}", "CONV_2D", (8, 8, int(rng.integers(1, 16))), [prev])
        ends.append(prev)
    add_op(g, "cat", "CONCATENATION", (8, 8, 6), ends)
    schedule = min_peak_schedule(g)
    assert peak_of_order(g, schedule.order) == schedule.peak_bytes
    assert schedule.peak_bytes <= peak_of_order(g, list(g.nodes))


def test_empty_graph():
    assert min_peak_schedule(new_graph()) == Schedule((), 0)


def test_cycle_is_rejected():
    g = nx.DiGraph()
    g.add_node("a", bytes=1)
    g.add_node("b", bytes=1)
    g.add_edges_from([("a", "b"), ("b", "a")])
    with pytest.raises(ArchitectureError, match="cycle"):
        min_peak_schedule(g)


def test_missing_size_is_rejected():
    g = new_graph()
    add_op(g, "in", "INPUT", (3,))
    del g.nodes["in"]["bytes"]
    with pytest.raises(ArchitectureError, match="'in' has no 'bytes'"):
        min_peak_schedule(g)
    with pytest.raises(ArchitectureError, match="has no 'bytes'"):
        peak_of_order(g, ["in"])


def test_bad_orders_are_rejected():
    g = branchy()
    with pytest.raises(ArchitectureError, match="before its input"):
        peak_of_order(g, ["in", "small", "big", "wide", "cat"])
    with pytest.raises(ArchitectureError, match="missing"):
        peak_of_order(g, ["in", "big", "small", "wide"])
    with pytest.raises(ArchitectureError, match="twice"):
        peak_of_order(g, ["in", "big", "big", "small", "wide", "cat"])


def test_other_size_attribute():
    g = branchy()
    for n in g:
        g.nodes[n]["fp32"] = 4 * g.nodes[n]["bytes"]
    assert min_peak_schedule(g, size_attr="fp32").peak_bytes == 4 * 111
    assert np.isclose(peak_of_order(g, list(g.nodes), size_attr="fp32"), 4 * 160)
