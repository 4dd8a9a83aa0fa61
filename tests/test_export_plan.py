"""Properties of the offline placement (pure Python, no TFLM)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_runtime.arena import (Lifetime, align_up, plan_offsets, tflm_greedy_plan,
                                     working_set_peak)


@st.composite
def buffers(draw) -> list[Lifetime]:
    count = draw(st.integers(1, 12))
    items = []
    for index in range(count):
        first = draw(st.integers(0, 8))
        last = draw(st.integers(first, 9))
        items.append(Lifetime(index, align_up(draw(st.integers(1, 300))), first, last))
    return items


def _overlap_free(items: list[Lifetime], offsets: dict[int, int]) -> bool:
    for a in items:
        for b in items:
            if a.tensor < b.tensor and a.first <= b.last and b.first <= a.last:
                if offsets[a.tensor] < offsets[b.tensor] + b.size and \
                        offsets[b.tensor] < offsets[a.tensor] + a.size:
                    return False
    return True


@settings(max_examples=60, deadline=None)
@given(buffers())
def test_plan_is_valid_and_between_bound_and_tflm_greedy(items):
    offsets, extent = plan_offsets(items)
    assert _overlap_free(items, offsets)
    assert extent == max(offsets[t.tensor] + t.size for t in items)
    greedy_offsets, greedy_extent = tflm_greedy_plan(items)
    assert _overlap_free(items, greedy_offsets)
    assert working_set_peak(items) <= extent <= greedy_extent


@settings(max_examples=30, deadline=None)
@given(buffers())
def test_greedy_keeps_fixed_offsets(items):
    fixed = {items[0].tensor: 4096}
    offsets, extent = tflm_greedy_plan(items, fixed)
    assert offsets[items[0].tensor] == 4096 and extent >= 4096 + items[0].size
    assert _overlap_free(items, offsets)


def test_plan_reaches_the_bound_where_tflm_greedy_fragments():
    # lifetimes of a random CNN-space model in its minimum-peak order (fidelity run): TFLM's
    # largest-first placement leaves a hole; the 64-byte tensor 35 must sit between 32 and 36
    spans = [(0, 256, 0, 5), (33, 256, 0, 1), (34, 64, 1, 2), (35, 64, 2, 10), (30, 1024, 3, 4),
             (31, 1024, 4, 9), (26, 1792, 5, 6), (27, 448, 6, 7), (28, 2048, 7, 8),
             (29, 2048, 8, 9), (32, 3072, 9, 10), (36, 3136, 10, 11), (37, 784, 11, 12),
             (38, 784, 12, 13)]
    items = [Lifetime(*span) for span in spans]
    assert tflm_greedy_plan(items)[1] > working_set_peak(items) == 6272
    offsets, extent = plan_offsets(items)
    assert extent == 6272 and _overlap_free(items, offsets)
