"""The refined search (free runs up to the lower bound, waiting-input bound) against the plain one
and against brute force, on the shapes it was made for: branches from early shared tensors joined
by a cascade of concatenations/adds (the CNN search space)."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import get_space
from unas.resources import add_op, min_peak_schedule, new_graph, peak_of_order


@st.composite
def cascades(draw):
    """An input, an optional shared stem, 2-3 branches (chains of 1-2 ops) that start from the
    input or the stem, joined one after the other (the first branch is the cascade's start)."""
    size = st.integers(1, 60)
    g = new_graph()
    add_op(g, "in", "INPUT", (draw(size),))
    starts = ["in"]
    if draw(st.booleans()):
        starts.append(add_op(g, "stem", "OP", (draw(size),), ["in"], inplace=draw(st.booleans())))
    acc = None
    for b in range(draw(st.integers(2, 3))):
        prev = draw(st.sampled_from(starts))
        for j in range(draw(st.integers(1, 2))):
            prev = add_op(g, f"b{b}_{j}", "OP", (draw(size),), [prev], inplace=draw(st.booleans()))
        acc = prev if acc is None else add_op(g, f"join{b}", "ADD", (draw(size),), [acc, prev],
                                              inplace=draw(st.booleans()))
    return g


def brute_force_peak(graph: nx.DiGraph) -> int:
    return min(peak_of_order(graph, o) for o in nx.all_topological_sorts(graph))


@settings(max_examples=150, deadline=None)
@given(cascades())
def test_refined_is_optimal_on_cascades(graph):
    schedule = min_peak_schedule(graph)
    assert peak_of_order(graph, schedule.order) == schedule.peak_bytes
    assert schedule.peak_bytes == brute_force_peak(graph)
    assert min_peak_schedule(graph, refined=False).peak_bytes == schedule.peak_bytes


@pytest.mark.parametrize("shape", [(8, 8, 1), (5, 5, 2), (6, 6, 3), (12, 12, 1)])
def test_refined_matches_plain_search_on_cnn_space(shape):
    """Same optimal peak as the plain search on random CNN-space graphs (150 per input shape)."""
    space = get_space("cnn")
    rng = np.random.default_rng(sum(shape))
    for _ in range(150):
        graph = space.random_architecture(rng).resource_graph(shape, 10)
        refined = min_peak_schedule(graph)
        plain = min_peak_schedule(graph, refined=False)
        assert refined.peak_bytes == plain.peak_bytes
        assert peak_of_order(graph, refined.order) == refined.peak_bytes
