"""Operator reordering and the offline memory plan, checked in TFLM."""
import networkx as nx
import numpy as np
import pytest

from unas.errors import DataError
from unas.export.flatbuffer import (operator_count, read_offline_plan, reorder_operators,
                                    with_offline_plan)
from unas.export.quantize import keras_to_int8_tflite
from unas.resources.memory import peak_of_order
from tflm_runtime.arena import (SIZE_ATTR, Lifetime, offline_plan, optimal_operator_order, plan_offsets,
                                     predicted_head, predicted_peak, tflm_graph)
from tflm_runtime.tflite_model import parse_tflite
from tflm_runtime.tflm import TflmRunner


@pytest.fixture(scope="module")
def branchy_tflite() -> bytes:
    """Two branches of very different sizes: running the big one first saves memory."""
    from unas.tfenv import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 2))
    wide = keras.layers.Conv2D(16, 1, activation="relu")(inp)        # 12x12x16 = 2304 bytes
    wide = keras.layers.MaxPool2D(4)(wide)                           # 3x3x16
    wide = keras.layers.Flatten()(wide)
    thin = keras.layers.Conv2D(4, 3, padding="same")(inp)            # 12x12x4
    thin = keras.layers.Flatten()(thin)
    out = keras.layers.Concatenate()([thin, wide])
    out = keras.layers.Dense(4)(out)
    model = keras.Model(inp, out)
    rep = np.random.default_rng(0).normal(size=(16, 12, 12, 2)).astype(np.float32)
    return keras_to_int8_tflite(model, rep)


def _inputs(blob: bytes, rng: np.random.Generator, n: int = 4) -> np.ndarray:
    shape = TflmRunner(blob).input_details["shape"][1:]
    return rng.integers(-128, 128, size=(n, *shape), dtype=np.int8)


def _worst_order(blob: bytes) -> list[int]:
    graph = tflm_graph(parse_tflite(blob))
    op_index = graph.graph["operator_index"]
    worst = max(nx.all_topological_sorts(graph),
                key=lambda order: peak_of_order(graph, order, size_attr=SIZE_ATTR))
    return [op_index[n] for n in worst if n in op_index]


def test_reordered_model_gives_identical_outputs_and_the_predicted_head(branchy_tflite, rng):
    # the converter already picks a good order here: start from the worst topological order
    bad = reorder_operators(branchy_tflite, _worst_order(branchy_tflite))
    order, peak = optimal_operator_order(parse_tflite(bad))
    reordered = reorder_operators(bad, order)
    x = _inputs(bad, rng)
    np.testing.assert_array_equal(TflmRunner(bad).run(x), TflmRunner(reordered).run(x))
    np.testing.assert_array_equal(TflmRunner(branchy_tflite).run(x), TflmRunner(bad).run(x))
    assert predicted_peak(parse_tflite(reordered)) == peak < predicted_peak(parse_tflite(bad))
    assert TflmRunner(reordered).arena_usage().nonpersistent_bytes == predicted_head(parse_tflite(reordered))
    assert TflmRunner(bad).arena_usage().nonpersistent_bytes == predicted_head(parse_tflite(bad))
    assert predicted_head(parse_tflite(reordered)) < predicted_head(parse_tflite(bad))


def test_every_topological_order_is_accepted_and_others_rejected(branchy_tflite):
    n = operator_count(branchy_tflite)
    with pytest.raises(DataError, match="permutation"):
        reorder_operators(branchy_tflite, list(range(n - 1)))
    with pytest.raises(DataError, match="runs before"):
        reorder_operators(branchy_tflite, list(reversed(range(n))))
    same = reorder_operators(branchy_tflite, list(range(n)))
    assert same[4:8] == b"TFL3" and operator_count(same) == n


def test_offline_plan_is_what_tflm_uses(branchy_tflite, rng):
    order, peak = optimal_operator_order(parse_tflite(branchy_tflite))
    reordered = reorder_operators(branchy_tflite, order)
    offsets, extent = offline_plan(parse_tflite(reordered))
    assert extent == peak
    planned = with_offline_plan(reordered, offsets)
    assert read_offline_plan(planned) == offsets
    assert predicted_head(parse_tflite(planned)) == extent
    x = _inputs(branchy_tflite, rng)
    np.testing.assert_array_equal(TflmRunner(planned).run(x), TflmRunner(reordered).run(x))
    assert TflmRunner(planned).arena_usage().nonpersistent_bytes == extent
    # a deliberately wasteful plan (everything shifted up by 1 KiB) must show in TFLM's head
    shifted = [o + 1024 if o >= 0 else o for o in offsets]
    assert TflmRunner(with_offline_plan(reordered, shifted)).arena_usage().nonpersistent_bytes \
        == extent + 1024


def test_offline_plan_length_is_checked(branchy_tflite):
    with pytest.raises(DataError, match="offline plan"):
        with_offline_plan(branchy_tflite, [0])


def test_mean_scratch_buffers_are_predicted(rng):
    from unas.tfenv import keras

    model = keras.Sequential([keras.Input((5, 5, 100)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3)])
    blob = keras_to_int8_tflite(model, rng.normal(size=(8, 5, 5, 100)).astype(np.float32))
    head = TflmRunner(blob).arena_usage().nonpersistent_bytes
    # input 2500 -> 2512, output 100 -> 112, scratch 400 + 16 + 16 while MEAN runs
    assert head == predicted_peak(parse_tflite(blob)) == predicted_head(parse_tflite(blob)) == 2512 + 112 + 432


def test_plan_offsets_never_overlaps_live_tensors():
    items = [Lifetime(0, 64, 0, 1), Lifetime(1, 32, 0, 2), Lifetime(2, 48, 2, 3),
             Lifetime(3, 16, 3, 3)]
    offsets, extent = plan_offsets(items)
    for a in items:
        for b in items:
            if a.tensor < b.tensor and a.first <= b.last and b.first <= a.last:
                lo_a, lo_b = offsets[a.tensor], offsets[b.tensor]
                assert lo_a + a.size <= lo_b or lo_b + b.size <= lo_a
    assert extent == max(sum(t.size for t in items if t.first <= step <= t.last)
                         for step in range(4))
