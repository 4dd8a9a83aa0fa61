"""Helpers shared by the scheduler tests."""
from __future__ import annotations

import networkx as nx

from unas.resources import min_peak_schedule


def solved_segments(graph: nx.DiGraph) -> list:
    """The segments min_peak_schedule solves for ``graph`` (captured from its calls)."""
    import unas.resources.schedule as schedule
    seen = []
    original = schedule.solve_segment

    def capture(seg, refined=True, floor=0):
        seen.append(seg)
        return original(seg, refined, floor)

    schedule.solve_segment = capture
    try:
        min_peak_schedule(graph)
    finally:
        schedule.solve_segment = original
    return seen


def step_sequences(chains: list[tuple[int, list[tuple[int, int]]]]) -> list[list[tuple[int, int]]]:
    """Each chain (start bytes, [(bytes held after, extra bytes while running)]) as the
    (peak while running, bytes held after) steps the merge bounds take."""
    seqs = []
    for start, raw in chains:
        held, steps = start, []
        for after, extra in raw:
            steps.append((max(held, after) + extra, after))
            held = after
        seqs.append(steps)
    return seqs
