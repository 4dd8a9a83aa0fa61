"""The scheduler's newer pieces against brute force: the tree-relaxation merge (generalized tree
pebbling), the last-consumer bound on every reachable state, job merging inside chains, the
floor that segments under the graph's peak get, and the whole optimiser on random
series-parallel graphs with fan-out from shared tensors, cascades of joins and in-place nodes."""
import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from schedule_helpers import solved_segments, step_sequences
from unas.resources import add_op, min_peak_schedule, new_graph, peak_of_order
from unas.resources.schedule.segment import apply_unit, build_plan, single_unit
from unas.resources.schedule.bounds import chain_jobs
from unas.resources.schedule.cut import CutBound
from unas.resources.schedule.last import LastConsumerBound
from unas.resources.schedule.search import solve_segment
from unas.resources.schedule.tree import forest_peak, group_children


def brute_force_peak(graph: nx.DiGraph) -> int:
    return min(peak_of_order(graph, o) for o in nx.all_topological_sorts(graph))


@st.composite
def branchy(draw, max_ops: int = 8):
    """Series-parallel-like graphs as the CNN space builds them: a source, blocks whose branches
    (chains of 1-3 operators) start from a shared tensor (the source, a shared pool of it, or the
    running output), joined one after the other (ADD/CONCATENATION, maybe in place), random
    in-place flags on chain operators; at most ``max_ops`` operators."""
    size = st.integers(1, 60)
    g = new_graph()
    add_op(g, "in", "INPUT", (draw(size),))
    starts, acc, ops = ["in"], "in", 0
    if draw(st.booleans()):
        starts.append(add_op(g, "pool", "MAX_POOL_2D", (draw(size),), ["in"]))
        ops += 1
    block = 0
    while ops < max_ops - 1:
        source = draw(st.sampled_from(starts + [acc]))
        prev = source
        for j in range(draw(st.integers(1, min(3, max_ops - 1 - ops)))):
            prev = add_op(g, f"b{block}_{j}", "OP", (draw(size),), [prev],
                          inplace=draw(st.booleans()))
            ops += 1
        if acc == "in" or ops >= max_ops:
            acc = prev
        else:
            acc = add_op(g, f"join{block}", draw(st.sampled_from(["ADD", "CONCATENATION"])),
                         (draw(size),), [acc, prev], inplace=draw(st.booleans()))
            ops += 1
        block += 1
        if draw(st.integers(0, 3)) == 0:
            break
    return g


def _completion_peaks(seg) -> dict[int, int]:
    """For every downset of the segment (bitmask, inputs included), the least peak over the
    operator-by-operator completions from it (offset included), by memoised enumeration."""
    n, start = len(seg.sizes), (1 << seg.n_inputs) - 1
    goal = (1 << n) - 1
    memo: dict[int, int] = {}

    def live_of(done: int) -> int:
        return sum(seg.sizes[t] for t in range(n) if done >> t & 1
                   and (seg.pinned[t] or seg.succ_mask[t] & ~done))

    def best(done: int) -> int:
        if done == goal:
            return 0
        if done not in memo:
            live = live_of(done)
            options = []
            for v in range(seg.n_inputs, n):
                if done >> v & 1 or any(not done >> p & 1 for p in seg.preds[v]):
                    continue
                cost, _ = apply_unit(seg, single_unit(seg, v), done, live)
                options.append(max(cost, best(done | 1 << v)))
            memo[done] = min(options)
        return memo[done]

    best(start)
    return memo


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.lists(
    st.tuples(st.integers(0, 15), st.integers(0, 9)), max_size=3)), min_size=1, max_size=4),
    st.randoms(use_true_random=False))
def test_forest_merge_is_best_order_of_a_forest(chains, random):
    """forest_peak equals the best order of sequences where a parent runs after its children."""
    starts = [start for start, _ in chains]
    seqs = step_sequences(chains)
    children = [[] for _ in chains]
    for child in range(len(chains) - 1):
        parent = random.randint(child + 1, len(chains))  # len(chains): no parent
        if parent < len(chains):
            children[parent].append(child)
    below = [set() for _ in chains]  # a parent waits for its children's whole subtrees
    for g, kids in enumerate(children):
        for c in kids:
            below[g] |= {c} | below[c]
    memo = {}

    def best(pos: tuple, held: tuple) -> int:
        if all(p == len(s) for p, s in zip(pos, seqs)):
            return 3 + sum(held)
        if (pos, held) not in memo:
            results = []
            for i, seq in enumerate(seqs):
                if pos[i] == len(seq) or any(pos[c] < len(seqs[c]) for c in below[i]):
                    continue
                working, after = seq[pos[i]]
                here = 3 + sum(held) - held[i] + working
                results.append(max(here, 3 + sum(held), best(
                    pos[:i] + (pos[i] + 1,) + pos[i + 1:], held[:i] + (after,) + held[i + 1:])))
            memo[(pos, held)] = min(results)
        return memo[(pos, held)]

    expected = best(tuple(0 for _ in seqs), tuple(starts))
    jobs = [chain_jobs(start, steps) for start, steps in zip(starts, seqs)]
    assert forest_peak(starts, jobs, children, 3) == expected


@settings(max_examples=120, deadline=None)
@given(st.one_of(branchy(), branchy(max_ops=7)))
def test_bounds_never_exceed_the_best_completion(graph):
    """Cut, last-consumer (both evaluations) and tree bounds on every state the search can
    reach (downsets of whole units) are at most the best completion found by enumeration."""
    from unas.resources.schedule.bounds import Bounds
    for seg in solved_segments(graph):
        if len(seg.sizes) - seg.n_inputs <= 1:
            continue
        plan = build_plan(seg)
        best = _completion_peaks(seg)
        cut = CutBound(seg, plan)
        last = LastConsumerBound(cut)
        bounds = Bounds(seg, plan)
        start = (1 << seg.n_inputs) - 1
        seen, frontier = {start: tuple(0 for _ in plan.group_units)}, [start]
        while frontier:  # every downset reachable by unit moves, with its group positions
            done = frontier.pop()
            positions = seen[done]
            if done not in best:
                continue  # the goal: nothing left to bound
            assert cut.at(done, 0) <= best[done]
            assert last.at(done, 0) <= best[done]
            assert last.at_critical(done, 0) <= best[done]
            assert bounds.at(positions) <= best[done]
            for g, j in enumerate(positions):
                units = plan.group_units[g]
                if j < len(units) and not plan.units[units[j]].need & ~done:
                    nxt = done | plan.units[units[j]].mask
                    if nxt not in seen:
                        seen[nxt] = positions[:g] + (j + 1,) + positions[g + 1:]
                        frontier.append(nxt)


@settings(max_examples=200, deadline=None)
@given(branchy())
def test_optimal_on_branchy_graphs(graph):
    schedule = min_peak_schedule(graph)
    assert sorted(schedule.order) == sorted(graph.nodes)
    assert peak_of_order(graph, schedule.order) == schedule.peak_bytes
    assert schedule.peak_bytes == brute_force_peak(graph)


@settings(max_examples=40, deadline=None)
@given(branchy(max_ops=22))
def test_refined_matches_plain_search_on_larger_branchy_graphs(graph):
    """Against the plain search (no job merging, floor, tree, cut or last-consumer bounds)."""
    refined = min_peak_schedule(graph)
    assert peak_of_order(graph, refined.order) == refined.peak_bytes
    assert refined.peak_bytes == min_peak_schedule(graph, refined=False).peak_bytes


@settings(max_examples=150, deadline=None)
@given(branchy(), st.integers(0, 200))
def test_floor_is_met_or_the_optimum_kept(graph, floor):
    """With a floor a segment returns max(floor, its optimum) and an order within that."""
    for seg in solved_segments(graph):
        optimum, _ = solve_segment(seg, refined=False)
        peak, order = solve_segment(seg, floor=floor)
        assert peak == max(floor, optimum)
        done = (1 << seg.n_inputs) - 1
        live = sum(seg.sizes[:seg.n_inputs])
        worst = live + seg.offset
        for v in order:
            cost, live = apply_unit(seg, single_unit(seg, v), done, live)
            done |= 1 << v
            worst = max(worst, cost)
        assert worst <= peak


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=9), st.lists(st.booleans(), min_size=9,
                                                                       max_size=9))
def test_chain_jobs_merged_by_priority_keep_the_optimum(sizes, inplace):
    """A source feeding a long chain and a one-operator branch joined at the end: merging the
    chain's out-of-order jobs must not lose the optimum."""
    g = new_graph()
    add_op(g, "in", "INPUT", (sizes[0],))
    prev = "in"
    for i, size in enumerate(sizes[1:]):
        prev = add_op(g, f"c{i}", "OP", (size,), [prev], inplace=inplace[i])
    side = add_op(g, "side", "OP", (sizes[-1],), ["in"])
    add_op(g, "join", "ADD", (sizes[0],), [prev, side], inplace=inplace[-1])
    assert min_peak_schedule(g).peak_bytes == brute_force_peak(g)


def test_group_children_link_joins_to_the_branches_they_end():
    g = new_graph()
    add_op(g, "in", "INPUT", (4,))
    add_op(g, "a", "OP", (5,), ["in"])
    add_op(g, "b", "OP", (6,), ["in"])
    add_op(g, "j", "ADD", (7,), ["a", "b"])
    add_op(g, "k", "OP", (8,), ["j"])
    add_op(g, "c", "OP", (9,), ["in"])
    add_op(g, "out", "CONCATENATION", (2,), ["k", "c"])
    (seg,) = [s for s in solved_segments(g) if len(s.sizes) - s.n_inputs > 1]
    plan = build_plan(seg)
    children = group_children(seg, plan)
    end_of = {g: plan.group_end[g] for g in range(len(plan.group_units))}
    by_end = {seg.sizes[end]: g for g, end in end_of.items()}
    # the join's group (j, k) has the branches a and b below it; out has (j, k) and c
    assert sorted(seg.sizes[end_of[c]] for c in children[by_end[8]]) == [5, 6]
    assert sorted(seg.sizes[end_of[c]] for c in children[by_end[2]]) == [8, 9]
    assert children[by_end[4]] == []  # the input is shared: no parent in the relaxation
