"""The static memory planner: no two live tensors overlap, the arena meets the lower bound."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_runtime.codegen.planner import MemoryPlan, PlanError, TensorPlacement, plan_memory
from unas.resources.graph import add_op, new_graph
from unas.resources.memory import peak_of_order
from unas.resources.schedule import min_peak_schedule


@st.composite
def graphs(draw, chain: bool = False):
    g = new_graph()
    n = draw(st.integers(2, 14))
    add_op(g, "n0", "INPUT", (draw(st.integers(1, 64)),))
    for i in range(1, n):
        if chain:
            inputs = [f"n{i - 1}"]
            if draw(st.booleans()):  # same-size in place (ADD, RESHAPE): never fragments
                add_op(g, f"n{i}", "ADD", g.nodes[f"n{i - 1}"]["shape"], inputs, inplace=True)
                continue
            add_op(g, f"n{i}", "CONV_2D", (draw(st.integers(1, 64)),), inputs)
            continue
        else:
            k = draw(st.integers(1, min(2, i)))
            inputs = draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k, unique=True))
            inputs = [f"n{j}" for j in inputs]
        add_op(g, f"n{i}", "ADD", (draw(st.integers(1, 64)),), inputs,
               inplace=draw(st.booleans()))
    return g


def _independent_overlap_check(graph: nx.DiGraph, plan: MemoryPlan) -> None:
    """Recompute lifetimes from scratch and look for two live tensors sharing a byte."""
    order = plan.order
    pos = {n: i for i, n in enumerate(order)}
    alive = {}
    for n in order:
        first = 0 if graph.in_degree(n) == 0 else pos[n]
        last = max((pos[s] for s in graph.successors(n)), default=len(order) - 1)
        alive[n] = (first, last)
    for step in range(len(order)):
        live = [n for n in order if alive[n][0] <= step <= alive[n][1]]
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                ta, tb = plan.tensors[a], plan.tensors[b]
                if ta.in_place_of == b or tb.in_place_of == a:
                    assert ta.offset == tb.offset
                    continue
                assert ta.end <= tb.offset or tb.end <= ta.offset, (step, a, b)
                assert ta.size == graph.nodes[a]["bytes"]


@settings(max_examples=150, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_no_two_live_tensors_overlap(graph, random):
    order = list(nx.topological_sort(graph))
    if random.random() < 0.5:
        order = list(min_peak_schedule(graph).order)
    plan = plan_memory(graph, order, rng=np.random.default_rng(random.randint(0, 1000)))
    _independent_overlap_check(graph, plan)
    assert plan.lower_bound == peak_of_order(graph, order)
    assert plan.arena_bytes >= plan.lower_bound


@settings(max_examples=100, deadline=None)
@given(graphs(chain=True))
def test_chains_need_no_more_than_the_working_set(graph):
    """Exact for chains whose in-place outputs keep their input's size. (A shrinking in-place
    output can force fragmentation: 4->1, 4->2, 3->1 with 1+4 and 2+3 alive together needs 6
    bytes though the working set never exceeds 5.)"""
    order = list(min_peak_schedule(graph).order)
    plan = plan_memory(graph, order)
    _independent_overlap_check(graph, plan)
    assert plan.arena_bytes == plan.lower_bound == min_peak_schedule(graph).peak_bytes


def test_in_place_chain_shares_one_buffer():
    g = new_graph()
    add_op(g, "in", "INPUT", (10,))
    add_op(g, "a", "RESHAPE", (10,), ["in"], inplace=True)
    add_op(g, "b", "DEPTHWISE_CONV_2D", (10,), ["a"], inplace=True)
    plan = plan_memory(g, ["in", "a", "b"])
    assert plan.arena_bytes == 10
    assert plan.tensors["b"].in_place_of == "a" and plan.tensors["a"].in_place_of == "in"
    assert "in place of a" in plan.describe()


def test_input_with_another_consumer_is_not_overwritten():
    g = new_graph()
    add_op(g, "in", "INPUT", (10,))
    add_op(g, "a", "DEPTHWISE_CONV_2D", (10,), ["in"], inplace=True)
    add_op(g, "b", "ADD", (10,), ["a", "in"], inplace=True)
    plan = plan_memory(g, ["in", "a", "b"])
    assert plan.tensors["a"].in_place_of is None  # "in" is still needed by "b"
    assert plan.tensors["b"].in_place_of == "a"
    assert plan.arena_bytes == plan.lower_bound == 20


def test_shrinking_in_place_chain_may_fragment_but_never_overlaps():
    g = new_graph()
    add_op(g, "n0", "INPUT", (4,))
    for i, (size, inplace) in enumerate([(1, True), (4, False), (2, True), (3, False), (1, True)]):
        add_op(g, f"n{i + 1}", "DEPTHWISE_CONV_2D", (size,), [f"n{i}"], inplace=inplace)
    plan = plan_memory(g, [f"n{i}" for i in range(6)], rng=np.random.default_rng(0))
    _independent_overlap_check(g, plan)
    assert (plan.lower_bound, plan.arena_bytes) == (5, 6)  # the MILP proves 5 is impossible


def test_check_catches_overlap():
    tensors = {"x": TensorPlacement("x", 8, 0, 1, 0), "y": TensorPlacement("y", 8, 1, 2, 4)}
    with pytest.raises(PlanError, match="overlap"):
        MemoryPlan(("x", "y"), tensors, 12, 12).check()
    outside = {"x": TensorPlacement("x", 8, 0, 1, 8)}
    with pytest.raises(PlanError, match="outside"):
        MemoryPlan(("x",), outside, 12, 8).check()
