"""Engine view of a resource graph: in-place marks, scratch and the predicted peak SRAM."""
import pytest

from unas.errors import ConfigError
from unas.resources.engine import (FUSED_OP, SCRATCH_OP, conv_geometry, depthwise_plane_bytes,
                                   engine_graph, fusable_chains, fused_temp_bytes, in_place_nodes,
                                   peak_memory_bytes, runs_in_place)
from unas.resources.graph import add_op, new_graph
from unas.resources.schedule import min_peak_schedule


def _block(fusable: bool = True):
    """MCUNet-style inverted residual block on a 10x10x4 input; with ``fusable=False`` its
    depthwise conv is dilated, which the fused kernel does not do (same memory otherwise)."""
    g = new_graph()
    add_op(g, "in", "INPUT", (10, 10, 4))
    add_op(g, "expand", "CONV_2D", (10, 10, 12), ["in"], macs=10 * 10 * 12 * 4)
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (10, 10, 12), ["expand"], macs=10 * 10 * 12 * 9,
           kernel=(3, 3), stride=(1, 1), dilation=(1, 1) if fusable else (2, 2))
    add_op(g, "project", "CONV_2D", (10, 10, 4), ["dw"], macs=10 * 10 * 4 * 12)
    add_op(g, "add", "ADD", (10, 10, 4), ["project", "in"])
    add_op(g, "conv3", "CONV_2D", (5, 5, 8), ["add"], macs=5 * 5 * 8 * 3 * 3 * 4)
    add_op(g, "dw_mult", "DEPTHWISE_CONV_2D", (5, 5, 16), ["conv3"], macs=5 * 5 * 16 * 9)
    add_op(g, "flat", "RESHAPE", (400,), ["dw_mult"])
    add_op(g, "fc", "FULLY_CONNECTED", (10,), ["flat"], macs=4000)
    return g


def test_tflm_runs_nothing_in_place():
    g = engine_graph(_block(fusable=False), "tflm")
    assert not any(d.get("inplace") for _, d in g.nodes(data=True))
    assert peak_memory_bytes(_block(fusable=False), "tflm") == min_peak_schedule(g).peak_bytes


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
    g = _block(fusable=False)
    marked = {n for n in g if runs_in_place(g, n, "codegen")}
    assert marked == {"dw", "add", "flat"}  # not dw_mult (depth multiplier 2), no conv
    eg = engine_graph(g, "codegen")
    assert {n for n, d in eg.nodes(data=True) if d.get("inplace")} == marked
    assert not any(d.get("inplace") for _, d in g.nodes(data=True))  # input graph untouched


def test_codegen_depthwise_plane_is_an_arena_tensor_live_while_the_convolution_runs():
    g = _block(fusable=False)
    eg = engine_graph(g, "codegen")
    # in-place dw (3x3, dilation 2, 10x10 output): one channel padded to 14 x 14 rows x pitch,
    # + 1 byte the last row's 4-byte tap words may read; convolutions and dw_mult: none
    plane = eg.nodes["dw#plane"]
    assert (plane["op"], plane["bytes"]) == (SCRATCH_OP, 14 * 14 + 1)
    assert set(eg.predecessors("dw#plane")) == {"expand"} and set(eg.successors("dw#plane")) == {"dw"}
    assert not {n for n in eg if n.endswith("#plane")} - {"dw#plane"}
    add_op(g, "big_dw", "DEPTHWISE_CONV_2D", (12, 12, 2), ["in"], macs=12 * 12 * 2 * 9)
    assert "big_dw#plane" not in engine_graph(g, "codegen")  # 4 -> 2 channels: reads its input


def test_depthwise_plane_geometry():
    same = ((5, 5), (1, 1), (1, 1))
    assert depthwise_plane_bytes((28, 28, 8), (28, 28, 8), same, True) == 32 * 32 + 3
    # stride 2, 'same': the 14 x 14 outputs' windows span 2 * 13 + 7 = 33 rows and columns
    assert depthwise_plane_bytes((14, 14, 8), (28, 28, 8), ((7, 7), (2, 2), (1, 1)),
                                 True) == 33 * 33 + 1
    # 'valid' with an unused last input row/column: only the rows the outputs read
    assert depthwise_plane_bytes((3, 3, 8), (8, 8, 8), ((3, 3), (2, 2), (1, 1)), True) == 7 * 7 + 1
    # per element (1x1, stride 1): none, in place or not
    assert depthwise_plane_bytes((9, 9, 8), (9, 9, 8), ((1, 1), (1, 1), (1, 1)), True) == 0
    # not in place: only a one-channel, undilated one runs on a plane
    assert depthwise_plane_bytes((9, 9, 8), (9, 9, 8), same, False) == 0
    assert depthwise_plane_bytes((9, 9, 1), (9, 9, 1), same, False) == 13 * 13 + 3
    assert depthwise_plane_bytes((9, 9, 1), (9, 9, 1), ((3, 3), (1, 1), (2, 2)), False) == 0
    # depth multiplier 2: never
    assert depthwise_plane_bytes((9, 9, 2), (9, 9, 1), same, True) == 0
    # unknown geometry: one unpadded channel when in place
    assert depthwise_plane_bytes((9, 9, 4), (9, 9, 4), None, True) == 81


def test_single_channel_depthwise_has_its_plane_even_when_not_in_place():
    g = new_graph()
    add_op(g, "in", "INPUT", (10, 10, 1))
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (10, 10, 1), ["in"], macs=900)
    add_op(g, "add", "ADD", (10, 10, 1), ["dw", "in"])  # keeps "in" alive: dw not in place
    marked = engine_graph(g, "codegen")
    assert "dw" not in in_place_nodes(marked, min_peak_schedule(marked).order)
    assert marked.nodes["dw#plane"]["bytes"] == 12 * 12 + 1
    # in + plane + dw's output while dw runs, then in + dw + add's output
    assert peak_memory_bytes(g, "codegen") == 100 + 145 + 100


def test_codegen_peak_is_smaller_and_consistent():
    g = _block(fusable=False)
    codegen = peak_memory_bytes(g, "codegen")
    assert codegen == min_peak_schedule(engine_graph(g, "codegen")).peak_bytes
    # dw in place: never a second 1200-byte buffer, and its 197-byte plane (live while dw runs,
    # with in + expand) stays under project's step (in + dw + project)
    assert codegen == 400 + 1200 + 400
    assert min_peak_schedule(g).peak_bytes == 400 + 1200 + 1200  # TFLM: expand + dw outputs
    assert codegen < peak_memory_bytes(g, "tflm")


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="target.engine"):
        peak_memory_bytes(_block(), "tvm")


def test_in_place_depthwise_only_where_it_lowers_peak_plus_scratch():
    g = new_graph()
    add_op(g, "in", "INPUT", (10, 10, 1))
    add_op(g, "wide", "CONV_2D", (10, 10, 64), ["in"], macs=6400)
    add_op(g, "narrow", "CONV_2D", (10, 10, 2), ["wide"], macs=12800)
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (10, 10, 2), ["narrow"], macs=1800)
    # the peak (wide + narrow) is elsewhere: running dw in place would only add a plane of scratch
    assert runs_in_place(g, "dw", "codegen")
    assert not engine_graph(g, "codegen").nodes["dw"].get("inplace")
    assert peak_memory_bytes(g, "codegen") == 6400 + 200
    assert peak_memory_bytes(g, "tflm") == 6400 + 208  # TFLM rounds the 200-byte tensor up to 16


@pytest.mark.slow
def test_tflm_engine_equals_the_tflm_view_of_the_converted_model():
    """The search's TFLM memory objective, from the architecture alone, equals the peak the
    export side computes from the real int8 .tflite (which TFLM's arena matches)."""
    import numpy as np

    from search_spaces import get_space
    from unas.export.quantize import keras_to_int8_tflite
    from tflm_runtime.arena import optimal_operator_order
    from tflm_runtime.tflite_model import parse_tflite

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
        expected = optimal_operator_order(parse_tflite(blob))[1]
        assert peak_memory_bytes(arch.resource_graph(shape, 5), "tflm") == expected


def test_the_inverted_residual_block_is_one_fused_chain():
    (chain,) = fusable_chains(_block())
    assert (chain.source, chain.expand, chain.depthwise, chain.project, chain.add) == (
        "in", "expand", "dw", "project", "add")
    # 3 rows of the 10x12 expanded tensor, one 10x12 depthwise row, one 10x4 projection row
    assert (chain.ring_rows, chain.temp_bytes) == (3, 3 * 10 * 12 + 10 * 12 + 10 * 4)
    assert fusable_chains(_block(), "none") == []
    assert fusable_chains(_block(fusable=False)) == []  # dilated depthwise: not fused


def test_codegen_runs_the_fused_block_as_one_step_with_its_rows_in_the_arena():
    g = engine_graph(_block(), "codegen")
    assert g.nodes["add"]["op"] == FUSED_OP and g.nodes["add#temp"]["op"] == SCRATCH_OP
    assert not {"expand", "dw", "project"} & set(g)
    assert g.nodes["add#temp"]["bytes"] == 520
    # block input + step buffer + block output: the expanded tensors never exist
    assert min_peak_schedule(g).peak_bytes == 400 + 520 + 400
    assert peak_memory_bytes(_block(), "codegen") == 1320
    assert peak_memory_bytes(_block(fusable=False), "codegen") == 400 + 1200 + 400
    # the node totals are kept
    for key in ("macs", "params", "size_bytes"):
        assert g.nodes["add"][key] == sum(_block().nodes[n][key]
                                          for n in ("expand", "dw", "project", "add"))


def _pointwise_chain(expand: bool, residual: bool, extra_consumer: str | None = None):
    g = new_graph()
    add_op(g, "in", "INPUT", (12, 12, 8))
    src = "in"
    if expand:
        src = add_op(g, "expand", "CONV_2D", (12, 12, 32), ["in"], macs=144 * 8 * 32)
    channels = 32 if expand else 8
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (12, 12, channels), [src], macs=144 * channels * 25)
    add_op(g, "project", "CONV_2D", (12, 12, 8), ["dw"], macs=144 * channels * 8)
    last = "project"
    if residual:
        last = add_op(g, "add", "ADD", (12, 12, 8), ["in", "project"])
    if extra_consumer:
        add_op(g, "side", "MAX_POOL_2D", (6, 6, channels), [extra_consumer])
    add_op(g, "out", "MEAN", (8,), [last])
    return g


def test_chains_need_single_consumers_and_the_expansion_less_form_needs_policy_all():
    assert [c.nodes for c in fusable_chains(_pointwise_chain(True, True))] == [
        ("expand", "dw", "project", "add")]
    assert [c.nodes for c in fusable_chains(_pointwise_chain(True, False))] == [
        ("expand", "dw", "project")]
    # the expanded tensor used elsewhere: the depthwise -> project part alone may still fuse
    assert [c.nodes for c in fusable_chains(_pointwise_chain(True, True, "expand"))] == [
        ("dw", "project")]
    assert fusable_chains(_pointwise_chain(True, True, "expand"), "expand") == []
    assert fusable_chains(_pointwise_chain(True, True, "dw")) == []
    (chain,) = fusable_chains(_pointwise_chain(False, True))
    assert chain.nodes == ("dw", "project", "add") and chain.ring_rows == 0
    assert chain.temp_bytes == 12 * 8 + 12 * 8  # one depthwise row, one projection row


def test_a_chain_whose_rows_outweigh_the_tensor_it_avoids_is_not_fused():
    g = new_graph()
    add_op(g, "in", "INPUT", (1, 1, 4))
    add_op(g, "expand", "CONV_2D", (1, 1, 8), ["in"], macs=32)
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (1, 1, 8), ["expand"], macs=72)
    add_op(g, "project", "CONV_2D", (1, 1, 4), ["dw"], macs=32)
    # one ring row (8) + one depthwise row (8) >= the 8-byte expanded tensor
    assert fused_temp_bytes((1, 1, 4), 8, (1, 1, 4), 3, True, False) == (1, 16)
    assert fusable_chains(g) == []


def test_geometry_from_attributes_or_inferred_for_same_padding():
    g = new_graph()
    add_op(g, "in", "INPUT", (9, 9, 4))
    add_op(g, "dw", "DEPTHWISE_CONV_2D", (5, 5, 4), ["in"], macs=25 * 4 * 49)
    add_op(g, "c", "CONV_2D", (5, 5, 6), ["dw"], macs=25 * 6 * 4 * 9, kernel=(3, 3),
           stride=(1, 1), dilation=(2, 2))
    add_op(g, "odd", "CONV_2D", (5, 5, 6), ["c"], macs=7)
    assert conv_geometry(g, "dw") == ((7, 7), (2, 2), (1, 1))
    assert conv_geometry(g, "c") == ((3, 3), (1, 1), (2, 2))
    assert conv_geometry(g, "odd") is None  # macs are no square kernel's


def test_fusion_is_decided_against_the_unfused_alternatives():
    """Every fusion policy and depthwise cut-off is tried: the prediction is the best of them."""
    from unas.resources.engine import FUSION_POLICIES, _fuse, _marked, _with_planes

    g = _pointwise_chain(True, True)
    totals = []
    for policy in FUSION_POLICIES:
        fused = _fuse(g, fusable_chains(g, policy))
        for limit in (0, 144):
            marked = _with_planes(_marked(fused, "codegen", limit))
            totals.append(min_peak_schedule(marked).peak_bytes)
    assert peak_memory_bytes(g, "codegen") == min(totals)
    assert min(totals) < max(totals)
