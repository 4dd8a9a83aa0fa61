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
    assert peak_memory_bytes(_block(), "tflm") == min_peak_schedule(_block()).peak_bytes


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
    assert peak_memory_bytes(g, "codegen") == peak_memory_bytes(g, "tflm") == 6500
