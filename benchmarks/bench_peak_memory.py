"""Speed of the exact min-peak scheduler against brute-force enumeration of topological orders.

    python benchmarks/bench_peak_memory.py --archs 500 --wide 50 --brute-graphs 50 --cap 0.5

(a) random architectures of the CNN search space (their resource graphs for a ``--input-shape``
input, 28x28x1 by default, and 10 classes), (b) synthetic wide graphs (a stem, 4-8 parallel
branches of convolutions with random channel counts, a concatenation; 30-80 nodes), (c) the same
with 6 branches of 6 convolutions. For each set: median and maximum optimiser time per graph (CPU
time of the process, which a loaded machine disturbs less than wall time, and wall time; with
``--repeat R`` the least of R runs of each graph), and, on the first ``--brute-graphs`` graphs, the
time of a brute-force enumeration of all topological orders in the same process, capped at
``--cap`` seconds per graph (a capped run only gives a lower bound on the speed ratio; cap hits
are counted).
"""
from __future__ import annotations

import argparse
import sys
import time

import networkx as nx
import numpy as np
from tqdm import tqdm

from unas.resources import add_op, min_peak_schedule, new_graph, peak_of_order


class _CapHit(Exception):
    pass


def brute_force_peak(graph: nx.DiGraph, deadline: float) -> int:
    """Minimum peak over all topological orders by plain enumeration (raises _CapHit at deadline)."""
    nodes = list(graph)
    size = {n: graph.nodes[n]["bytes"] for n in nodes}
    succ_count = {n: graph.out_degree(n) for n in nodes}
    indeg = {n: graph.in_degree(n) for n in nodes}
    ready = [n for n in nodes if indeg[n] == 0]
    best = [1 << 62]
    steps = [0]

    def visit(ready: list, pending: dict, live: int, peak: int, left: int) -> None:
        steps[0] += 1
        if steps[0] % 1000 == 0 and time.perf_counter() > deadline:
            raise _CapHit
        if left == 0:
            best[0] = min(best[0], peak)
            return
        for i, v in enumerate(ready):
            rest = ready[:i] + ready[i + 1:]
            preds = list(graph.predecessors(v))
            cost = live + size[v] if preds else live
            if preds and graph.nodes[v].get("inplace"):
                src = next(u for u, _, k in graph.in_edges(v, data="index") if k == 0)
                if pending[src] == 1:
                    cost = live - size[src] + max(size[src], size[v])
            new_live = live + (size[v] if preds else 0)
            new_pending = dict(pending)
            for u in preds:
                new_pending[u] -= 1
                if new_pending[u] == 0:
                    new_live -= size[u]
            newly = []
            for w in graph.successors(v):
                indeg[w] -= 1
                if indeg[w] == 0:
                    newly.append(w)
            visit(rest + newly, new_pending, new_live, max(peak, cost), left - 1)
            for w in graph.successors(v):
                indeg[w] += 1

    start_live = sum(size[n] for n in ready)
    visit(ready, succ_count, start_live, start_live, len(nodes))
    return best[0]


def wide_graph(rng: np.random.Generator, branches: int = 0, length: int = 0) -> nx.DiGraph:
    """A stem, parallel conv branches with random widths, a concatenation: by default 4-8
    branches and 30-80 nodes, or ``branches`` branches of ``length`` convolutions."""
    if branches:
        lengths = np.full(branches, length)
    else:
        branches = int(rng.integers(4, 9))
        total = int(rng.integers(max(30, branches + 3), 81))
        lengths = np.full(branches, (total - 3) // branches)
        lengths[: (total - 3) % branches] += 1
    g = new_graph()
    add_op(g, "input", "INPUT", (16, 16, 3))
    add_op(g, "stem", "CONV_2D", (16, 16, 16), ["input"])
    ends = []
    for b, length in enumerate(lengths):
        prev = "stem"
        for j in range(int(length)):
            prev = add_op(g, f"b{b}_{j}", "CONV_2D", (16, 16, int(rng.integers(2, 33))), [prev])
        ends.append(prev)
    add_op(g, "concat", "CONCATENATION", (16, 16, 8 * branches), ends)
    return g


def cnn_graphs(count: int, rng: np.random.Generator,
               input_shape: tuple[int, int, int] = (28, 28, 1)) -> list[nx.DiGraph] | None:
    try:
        from search_spaces import get_space
        space = get_space("cnn")
    except Exception as err:  # the space may not exist yet
        print(f"CNN space unavailable ({err}); skipping set (a)", file=sys.stderr)
        return None
    return [space.random_architecture(rng).resource_graph(input_shape, 10)
            for _ in tqdm(range(count), desc="sampling CNN architectures", file=sys.stderr)]


def measure(name: str, graphs: list[nx.DiGraph], brute_graphs: int, cap: float,
            repeat: int = 1, peaks: list[str] | None = None) -> str:
    """One table row for ``graphs``; appends ``name<TAB>index<TAB>peak`` lines to ``peaks``."""
    times, cpu_times, ratios, hits, savings = [], [], [], 0, 0
    for i, graph in enumerate(tqdm(graphs, desc=name, file=sys.stderr)):
        best_cpu = best_wall = None
        for _ in range(repeat):  # the least of `repeat` runs: what the load adds is noise
            start, cpu_start = time.perf_counter(), time.process_time()
            schedule = min_peak_schedule(graph)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
            best_wall = elapsed if best_wall is None else min(best_wall, elapsed)
        elapsed = best_wall
        if peaks is not None:
            peaks.append(f"{name}\t{i}\t{schedule.peak_bytes}")
        cpu_times.append(best_cpu)
        times.append(elapsed)
        savings += schedule.peak_bytes < peak_of_order(graph, list(graph))
        if i < brute_graphs:
            start = time.perf_counter()
            try:
                peak = brute_force_peak(graph, start + cap)
                if peak != schedule.peak_bytes:
                    raise AssertionError(f"{name} graph {i}: brute force {peak} != {schedule.peak_bytes}")
            except _CapHit:
                hits += 1
            ratios.append((time.perf_counter() - start) / elapsed)
    speedup = f"{float(np.median(ratios)):.0f}x" if ratios else "-"
    nodes = [g.number_of_nodes() for g in graphs]
    slow = sum(t > 0.05 for t in cpu_times)
    over_20 = sum(t > 0.02 for t in cpu_times)
    return (f"| {name} | {len(graphs)} | {min(nodes)}-{max(nodes)} | "
            f"{1000 * float(np.median(cpu_times)):.2f} | {1000 * max(cpu_times):.1f} | "
            f"{over_20} | {slow} | "
            f"{1000 * float(np.median(times)):.2f} | {1000 * max(times):.1f} | "
            f"{savings} | {len(ratios)} | {speedup} | {hits} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", type=int, default=500, help="random CNN architectures")
    parser.add_argument("--wide", type=int, default=50, help="synthetic wide graphs")
    parser.add_argument("--six", type=int, default=20, help="graphs of 6 branches of 6 convs")
    parser.add_argument("--brute-graphs", type=int, default=50,
                        help="graphs per set also solved by brute force")
    parser.add_argument("--cap", type=float, default=0.5, help="brute-force seconds per graph")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-shape", default="28,28,1",
                        help="H,W,C of the CNN-space graphs (set a)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="solve every graph this many times and keep the least time")
    parser.add_argument("--peaks", default=None,
                        help="write every graph's optimal peak to this file (set, index, peak)")
    args = parser.parse_args()
    try:
        shape = tuple(int(d) for d in args.input_shape.split(","))
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError
    except ValueError:
        print(f"--input-shape: expected three positive integers H,W,C, got {args.input_shape!r}",
              file=sys.stderr)
        sys.exit(2)
    rng = np.random.default_rng(args.seed)
    rows = ["| set | graphs | nodes | median CPU ms | max CPU ms | > 20 CPU ms | > 50 CPU ms | "
            "median wall ms | max wall ms | optimal < default order | brute-forced | "
            "median speed-up (capped runs: at least) | cap hits |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    peaks: list[str] = []
    cnn = cnn_graphs(args.archs, rng, shape)
    if cnn:
        rows.append(measure(f"CNN space {'x'.join(map(str, shape))} (seed {args.seed})", cnn,
                            args.brute_graphs, args.cap, args.repeat, peaks))
    wide = [wide_graph(rng) for _ in range(args.wide)]
    if wide:
        rows.append(measure("wide 4-8 branches", wide, args.brute_graphs, args.cap, args.repeat,
                            peaks))
    six = [wide_graph(rng, 6, 6) for _ in range(args.six)]
    if six:
        rows.append(measure("6 branches x 6 convs", six, args.brute_graphs, args.cap,
                            args.repeat, peaks))
    print("\n".join(rows))
    if args.peaks:
        from unas.files import atomic_write_text
        atomic_write_text(args.peaks, "".join(line + "\n" for line in peaks))


if __name__ == "__main__":
    main()
