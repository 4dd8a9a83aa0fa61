"""Engine view of a resource graph: in-place marks, scratch and the predicted peak SRAM."""
import pytest

from unas.errors import ConfigError
from unas.resources.engine import (engine_graph, peak_memory_bytes, runs_in_place,
                                   scratch_bytes)
from unas.resources.graph import add_op, new_graph
from unas.resources.schedule import min_peak_schedule


def _block():
    """MCUNet-style inverted residual block on a 10x10x4 input."""
    g = new_graph()
    add_op(g, "in", "INPUT", (10, 10, 4))
    add_op(g, "expand", "CONV_2D", (10, 10, 12), ["in"], macs=10 * 10 * 12 * 4)
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (10, 10, 12), ["expand"], macs=10 * 10 * 12 * 9)
    add_op(g, "project", "CONV_2D", (10, 10, 4), ["dw"], macs=10 * 10 * 4 * 12)
    add_op(g, "add", "ADD", (10, 10, 4), ["project", "in"])
    add_op(g, "conv3", "CONV_2D", (5, 5, 8), ["add"], macs=5 * 5 * 8 * 3 * 3 * 4)
    add_op(g, "dw_mult", "DEPTHWISE_CONV_2D", (5, 5, 16), ["conv3"], macs=5 * 5 * 16 * 9)
    add_op(g, "flat", "RESHAPE", (400,), ["dw_mult"])
    add_op(g, "fc", "FULLY_CONNECTED", (10,), ["flat"], macs=4000)
    return g


def test_tflm_runs_nothing_in_place():
    g = engine_graph(_block(), "tflm")
    assert not any(d.get("inplace") for _, d in g.nodes(data=True))
    assert scratch_bytes(g, "tflm") == 0
    assert peak_memory_bytes(_block(), "tflm") == min_peak_schedule(g).peak_bytes


def test_tflm_aligns_buffers_and_gives_mean_its_scratch_while_it_runs():
    g = new_graph()
    add_op(g, "in", "INPUT", (5, 5, 3))                      # 75 -> 80 bytes
    add_op(g, "conv", "CONV_2D", (5, 5, 9), ["in"], macs=5 * 5 * 9 * 3)  # 225 -> 240
    add_op(g, "mean", "MEAN", (9,), ["conv"])                # 9 -> 16
    add_op(g, "fc", "FULLY_CONNECTED", (2,), ["mean"], macs=18)
    # MEAN's scratch: 4 * 9 output elements -> 48, rank 4 -> 16, 2 axes -> 16
    assert peak_memory_bytes(g, "tflm") == max(80 + 240, 240 + 48 + 16 + 16 + 16)
    assert peak_memory_bytes(g, "codegen") == max(75 + 225, 225 + 9)


def test_codegen_in_place_operators():
    g = _block()
    marked = {n for n in g if runs_in_place(g, n, "codegen")}
    assert marked == {"dw", "add", "flat"}  # not dw_mult (depth multiplier 2), no conv
    eg = engine_graph(g, "codegen")
    assert {n for n, d in eg.nodes(data=True) if d.get("inplace")} == marked
    assert not any(d.get("inplace") for _, d in g.nodes(data=True))  # input graph untouched


def test_codegen_scratch_is_one_channel_of_the_largest_in_place_depthwise():
    g = _block()
    # in-place dw: one 10x10 channel = 100 bytes; convolutions and dw_mult (not in place): none
    assert scratch_bytes(g, "codegen") == 100
    add_op(g, "big_dw", "DEPTHWISE_CONV_2D", (12, 12, 2), ["in"], macs=12 * 12 * 2 * 9)
    assert scratch_bytes(g, "codegen") == 100  # 4 -> 2 channels: not in place, no scratch
    g.remove_nodes_from(["dw", "project", "add", "big_dw"])
    assert scratch_bytes(g, "codegen") == 0


def test_codegen_peak_is_smaller_and_consistent():
    g = _block()
    codegen = peak_memory_bytes(g, "codegen")
    assert codegen == min_peak_schedule(engine_graph(g, "codegen")).peak_bytes + 100
    # dw in place: never a second 1200-byte buffer; the peak is project's step (in+dw+project)
    assert min_peak_schedule(engine_graph(g, "codegen")).peak_bytes == 400 + 1200 + 400
    assert min_peak_schedule(g).peak_bytes == 400 + 1200 + 1200  # TFLM: expand + dw outputs
    assert codegen < peak_memory_bytes(g, "tflm")


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="target.engine"):
        peak_memory_bytes(_block(), "tvm")


def test_in_place_depthwise_only_where_it_lowers_peak_plus_scratch():
    g = new_graph()
    add_op(g, "in", "INPUT", (10, 10, 1))
    add_op(g, "wide", "CONV_2D", (10, 10, 64), ["in"], macs=6400)
    add_op(g, "narrow", "CONV_2D", (10, 10, 1), ["wide"], macs=6400)
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (10, 10, 1), ["narrow"], macs=900)
    # the peak (in + wide) is elsewhere: running dw in place would only add 100 bytes of scratch
    assert runs_in_place(g, "dw", "codegen")
    assert not engine_graph(g, "codegen").nodes["dw"].get("inplace")
    assert scratch_bytes(g, "codegen") == 0
    assert peak_memory_bytes(g, "codegen") == 6500
    assert peak_memory_bytes(g, "tflm") == 112 + 6400  # TFLM rounds the 100-byte input up to 16


@pytest.mark.slow
def test_tflm_engine_equals_the_tflm_view_of_the_converted_model():
    """The search's TFLM memory objective, from the architecture alone, equals the peak the
    export side computes from the real int8 .tflite (which TFLM's arena matches)."""
    import numpy as np

    from search_spaces import get_space
    from unas.export.quantize import keras_to_int8_tflite
    from unas.export.tflm_memory import optimal_operator_order

    rng = np.random.default_rng(3)
    for space, shape, bounds in (("cnn", (12, 12, 1), {"max_blocks": 4}),
                                 ("mbconv", (48, 48, 3), {"resolution": 48, "width_mult": 0.2})):
        arch = get_space(space, **bounds).random_architecture(rng)
        model = arch.build(shape, 5)
        for layer in model.layers:  # non-zero weights: the converter drops all-zero biases
            weights = layer.get_weights()
            if weights and "BatchNorm" not in type(layer).__name__:
                layer.set_weights([rng.normal(0, 0.3, w.shape) + 0.01 for w in weights])
        blob = keras_to_int8_tflite(model, rng.uniform(0, 1, (16, *shape)).astype(np.float32))
        expected = optimal_operator_order(blob)[1]
        assert peak_memory_bytes(arch.resource_graph(shape, 5), "tflm") == expected
