"""The refined search (free runs up to the lower bound, waiting-input bound) against the plain one
and against brute force, on the shapes it was made for: branches from early shared tensors joined
by a cascade of concatenations/adds (the CNN search space)."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import get_space
from schedule_helpers import solved_segments
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


@st.composite
def dags(draw):
    """Random DAGs of up to 8 nodes: several inputs and outputs, random in-place flags."""
    g = new_graph()
    for i in range(draw(st.integers(1, 8))):
        ins = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 3), unique=True)) if i else []
        add_op(g, f"n{i}", "OP" if ins else "INPUT", (draw(st.integers(1, 40)),),
               [f"n{j}" for j in ins], inplace=draw(st.booleans()))
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


def _least_live(seg, inside: int, outside: int) -> int:
    """Least live bytes over every downset containing ``inside`` and avoiding ``outside``."""
    n = len(seg.sizes)
    best = None
    for mask in range(1 << n):
        if mask & inside != inside or mask & outside:
            continue
        if any(mask >> v & 1 and any(not mask >> p & 1 for p in seg.preds[v]) for v in range(n)):
            continue
        live = sum(seg.sizes[t] for t in range(n) if mask >> t & 1
                   and (seg.pinned[t] or seg.succ_mask[t] & ~mask))
        best = live if best is None else min(best, live)
    return best


@settings(max_examples=150, deadline=None)
@given(st.one_of(cascades(), dags()))
def test_cut_is_least_live_downset_and_bounds_the_peak(graph):
    """The max-flow equals enumeration over downsets, and the cut bound never exceeds the
    optimum of the segment."""
    from unas.resources.schedule.segment import build_plan
    from unas.resources.schedule.cut import CutBound
    from unas.resources.schedule.search import solve_segment
    for seg in solved_segments(graph):
        if len(seg.sizes) - seg.n_inputs <= 1:
            continue
        plan = build_plan(seg)
        cut = CutBound(seg, plan)
        start = (1 << seg.n_inputs) - 1
        for unit in plan.units:
            x = unit.nodes[0]
            inside, outside = start | cut.ancestors[x], cut.below[x] | unit.mask
            assert cut._min_live(inside, outside) == _least_live(seg, inside, outside)
        assert cut.at(start, 0) <= solve_segment(seg, refined=False)[0]


@pytest.mark.parametrize("shape", [(8, 8, 1), (6, 6, 3)])
def test_search_with_early_cut_matches_plain_search(shape, monkeypatch):
    """With the min-cut bound switched on from the first state (normally after 50 or 100)."""
    import unas.resources.schedule.search as segment_search
    monkeypatch.setattr(segment_search, "CUT_AFTER", 1)
    monkeypatch.setattr(segment_search, "CUT_AFTER_GENERAL", 1)
    space = get_space("cnn")
    rng = np.random.default_rng(7 + sum(shape))
    for _ in range(60):
        graph = space.random_architecture(rng).resource_graph(shape, 10)
        refined = min_peak_schedule(graph)
        assert refined.peak_bytes == min_peak_schedule(graph, refined=False).peak_bytes
        assert peak_of_order(graph, refined.order) == refined.peak_bytes


@settings(max_examples=100, deadline=None)
@given(st.one_of(cascades(), dags()))
def test_search_with_early_cut_is_optimal(graph):
    import unas.resources.schedule.search as segment_search
    saved = segment_search.CUT_AFTER, segment_search.CUT_AFTER_GENERAL
    segment_search.CUT_AFTER = segment_search.CUT_AFTER_GENERAL = 1
    try:
        schedule = min_peak_schedule(graph)
    finally:
        segment_search.CUT_AFTER, segment_search.CUT_AFTER_GENERAL = saved
    assert peak_of_order(graph, schedule.order) == schedule.peak_bytes
    assert schedule.peak_bytes == brute_force_peak(graph)
