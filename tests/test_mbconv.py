"""MBConv (MCUNet TinyNAS) space: values, morphisms, Keras builder and resource graph agree."""
import json
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces.registry import architecture_from_json
from search_spaces.mbconv import (DEPTHS, EXPANSIONS, KERNELS, RESOLUTIONS, STAGES, WIDTH_MULTS,
                                  WIDTH_SCALES, MBConvArchitecture, MBConvBlock, MBConvSpace,
                                  count_architectures, make_divisible)
from unas.errors import ArchitectureError, ConfigError

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _arch(seed: int, **bounds: object) -> MBConvArchitecture:
    return MBConvSpace(**bounds).random_architecture(np.random.default_rng(seed))


def test_grid_of_configurations_is_mcunets():
    assert len(WIDTH_MULTS) * len(RESOLUTIONS) == 108
    assert WIDTH_MULTS[0] == 0.2 and WIDTH_MULTS[-1] == 1.0 and 0.3 in WIDTH_MULTS
    assert RESOLUTIONS == (48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224)
    # MCUNet's appendix: 2e19 sub-networks without the per-block width scale.
    assert f"{count_architectures(with_width_scale=False):.1e}" == "2.2e+19"


@pytest.mark.parametrize("value,expected", [(32 * 0.2, 8), (32 * 0.35, 16), (24 * 0.3, 8),
                                            (160 * 0.75, 120), (96 * 0.5 * 0.5, 24), (1.0, 8)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_json_round_trip_eq_hash(seed):
    arch = _arch(seed)
    text = arch.to_json()
    again = architecture_from_json(text)
    assert again == arch and hash(again) == hash(arch)
    assert MBConvArchitecture.from_json(json.loads(text)) == arch
    assert json.loads(text)["space"] == "mbconv"


@settings(max_examples=60, deadline=None)
@given(seeds, st.booleans())
def test_mutate_gives_a_different_valid_architecture(seed, joint):
    bounds = {} if joint else {"width_mult": 0.4, "resolution": 96}
    space = MBConvSpace(**bounds)
    rng = np.random.default_rng(seed)
    arch = space.random_architecture(rng)
    for _ in range(5):
        child = space.mutate(arch, rng)
        assert child != arch
        assert architecture_from_json(child.to_json()) == child  # re-validates every field
        if not joint:
            assert (child.width_mult, child.resolution) == (0.4, 96)
        assert all(len(blocks) in DEPTHS for blocks in child.stages)
        arch = child


def test_mutation_reaches_every_kind_of_morphism():
    space = MBConvSpace()
    rng = np.random.default_rng(3)
    arch = space.random_architecture(rng)
    seen = set()
    for _ in range(300):
        child = space.mutate(arch, rng)
        if child.width_mult != arch.width_mult:
            seen.add("w")
        elif child.resolution != arch.resolution:
            seen.add("r")
        elif [len(s) for s in child.stages] != [len(s) for s in arch.stages]:
            seen.add("depth")
        else:
            changed = [(a, b) for sa, sb in zip(arch.stages, child.stages) for a, b in zip(sa, sb)
                       if a != b]
            assert len(changed) == 1
            a, b = changed[0]
            seen.add("kernel" if a.kernel != b.kernel else
                     "expand" if a.expand != b.expand else "width_scale")
    assert seen == {"w", "r", "depth", "kernel", "expand", "width_scale"}


def test_fixed_space_samples_only_its_configuration_and_all_choices():
    space = MBConvSpace(width_mult=0.3, resolution=64)
    rng = np.random.default_rng(0)
    archs = [space.random_architecture(rng) for _ in range(200)]
    assert {(a.width_mult, a.resolution) for a in archs} == {(0.3, 64)}
    blocks = [b for a in archs for s in a.stages for b in s]
    assert {b.kernel for b in blocks} == set(KERNELS)
    assert {b.expand for b in blocks} == set(EXPANSIONS)
    assert {b.width_scale for b in blocks} == set(WIDTH_SCALES)
    assert {len(s) for a in archs for s in a.stages} == set(DEPTHS)


def test_space_bounds_are_validated():
    assert MBConvSpace(width_mult=[0.30000000000000004, 0.5]).width_mults == (0.3, 0.5)
    with pytest.raises(ConfigError, match="width_mult"):
        MBConvSpace(width_mult=0.25)
    with pytest.raises(ConfigError, match="resolution"):
        MBConvSpace(resolution=[50])


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.update(width_mult=0.25), "width_mult"),
    (lambda d: d.update(resolution=100), "resolution"),
    (lambda d: d["stages"].pop(), "stages"),
    (lambda d: d["stages"][0].pop() and d["stages"][0].pop() and d["stages"][0].pop(), "stages"),
    (lambda d: d["stages"][1][0].update(kernel=4), "kernel"),
    (lambda d: d["stages"][1][0].update(expand=5), "expand"),
    (lambda d: d["stages"][1][0].update(width_scale=2), "width_scale"),
    (lambda d: d["stages"][1][0].pop("kernel"), "stages\\[1\\]\\[0\\]"),
    (lambda d: d.update(extra=1), "unexpected"),
])
def test_bad_json_raises_one_line_architecture_error(mutate, field):
    data = json.loads(_arch(7).to_json())
    # make stage 0 deep enough that popping three blocks leaves an invalid depth (1)
    data["stages"][0] = [data["stages"][0][0]] * 4
    mutate(data)
    with pytest.raises(ArchitectureError, match=field) as info:
        architecture_from_json(data)
    assert "\n" not in str(info.value)


def test_resource_graph_structure_and_formulas():
    block = MBConvBlock(5, 6, 1.0)
    arch = MBConvArchitecture(0.5, 64, tuple((block, block) for _ in STAGES))
    g = arch.resource_graph((1, 1, 3), 10)  # height and width are taken from r
    assert nx.is_directed_acyclic_graph(g)
    assert g.nodes["input"]["shape"] == (64, 64, 3)
    stem = g.nodes["stem"]
    assert stem["shape"] == (32, 32, 16)
    # MACs count taps inside the input: 64 -> 32 at stride 2 leaves the last output's third tap
    # on padding (32 * 3 - 1 = 95 per axis)
    assert stem["macs"] == 95 * 95 * 16 * 3 and stem["size_bytes"] == 9 * 3 * 16 + 4 * 16
    assert stem["kernel"] == (3, 3) and stem["stride"] == (2, 2)
    # stage 0 (base 24 -> 16 channels at w=0.5), first block stride 2: 16 -> 96 hidden
    assert g.nodes["s0b0_expand"]["shape"] == (16 * 2, 16 * 2, 48)
    dw = g.nodes["s0b0_dw"]
    assert dw["op"] == "DEPTHWISE_CONV_2D" and dw["shape"] == (16, 16, 48)
    # 5x5, 32 -> 16 at stride 2: one row of padding before, two after; outside per axis: the
    # first output's tap 0 and the last output's taps 3 and 4 (16 * 5 - 3 = 77 inside)
    assert dw["macs"] == 77 * 77 * 48 and dw["size_bytes"] == 25 * 48 + 4 * 48
    assert "s0b0_add" not in g and "s0b1_add" in g  # residual only at stride 1, in == out
    add = g.nodes["s0b1_add"]
    assert add["op"] == "ADD" and sorted(g.predecessors("s0b1_add")) == ["s0b0_project",
                                                                         "s0b1_project"]
    assert g.edges["s0b0_project", "s0b1_add"]["index"] == 0
    assert g.nodes["pool"]["op"] == "MEAN" and g.nodes["pool"]["shape"] == (160,)
    fc = g.nodes["classifier"]
    assert fc["op"] == "FULLY_CONNECTED" and fc["macs"] == 1600 and fc["size_bytes"] == 1640
    assert all(d["bytes"] == math.prod(d["shape"]) for _, d in g.nodes(data=True))
    # one chain with residual skips: the schedule is forced
    assert len(list(nx.all_topological_sorts(g))) == 1


def test_width_scales_change_channels_and_drop_residuals():
    stages = tuple((MBConvBlock(3, 3, 1.0), MBConvBlock(3, 3, 0.5)) for _ in STAGES)
    g = MBConvArchitecture(1.0, 48, stages).resource_graph((48, 48, 3), 5)
    assert g.nodes["s3b0_project"]["shape"][-1] == 96
    assert g.nodes["s3b1_project"]["shape"][-1] == 48
    assert not any(n.endswith("_add") and n.startswith("s") for n in g)
    assert "last_add" not in g and "first_add" not in g  # 32 -> 16 and 48 -> 320 channels
    # at w = 0.2 the stem and the first block both round up to 8 channels: a residual
    assert "first_add" in MBConvArchitecture(0.2, 48, stages).resource_graph((48, 48, 3), 5)


def _keras_layer_for(node: str) -> str:
    if node in ("input", "pool", "classifier") or node.endswith("_add"):
        return node
    return f"{node}_conv"


@pytest.mark.parametrize("seed,dropout", [(0, 0.0), (1, 0.2), (2, 0.0)])
def test_resource_graph_matches_keras_model(seed, dropout):
    arch = _arch(seed, width_mult=[0.2, 0.3, 0.5], resolution=[48, 64, 80])
    model = arch.build((32, 32, 1), 7, dropout=dropout)
    assert any(layer.name == "dropout" for layer in model.layers) == (dropout > 0)
    g = arch.resource_graph((32, 32, 1), 7)
    for node, data in g.nodes(data=True):
        layer = model.get_layer(_keras_layer_for(node))
        shape = layer.output.shape if node != "input" else model.input.shape
        assert tuple(shape[1:]) == data["shape"], node
        if data["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            # BN folded: the conv's kernel plus one bias per output channel
            assert layer.count_params() + data["shape"][-1] == data["params"], node
        if data["op"] == "FULLY_CONNECTED":
            assert layer.count_params() == data["params"]
    n_convs = sum(1 for l in model.layers if l.__class__.__name__ in ("Conv2D", "DepthwiseConv2D"))
    assert n_convs == sum(1 for _, d in g.nodes(data=True)
                          if d["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    assert model.output.shape[-1] == 7


def test_resource_graph_is_isomorphic_to_graph_from_keras():
    resources = pytest.importorskip("unas.resources")
    if not hasattr(resources, "graph_from_keras"):
        pytest.skip("unas.resources.graph_from_keras has not landed yet")
    match = nx.algorithms.isomorphism.categorical_node_match(
        ["op", "shape", "bytes", "macs", "size_bytes"], [None] * 5)
    for seed in (4, 5):
        arch = _arch(seed, width_mult=[0.2, 0.4], resolution=[48, 64])
        expected = arch.resource_graph((48, 48, 3), 10)
        actual = resources.graph_from_keras(arch.build((48, 48, 3), 10))
        assert nx.is_isomorphic(expected, actual, node_match=match)


@pytest.mark.slow
def test_resource_graph_matches_the_converted_int8_tflite_model(tmp_path):
    """The graph predicted without TensorFlow is the one TFLite actually runs (BN folded, ReLU6
    fused, SAME padding without PAD operators, MEAN and FULLY_CONNECTED head, int32 biases),
    and the predicted codegen SRAM is what the C code generator allocates."""
    from tflm_runtime.codegen.generator import generate
    from tflm_runtime.tflite_model import parse_tflite, resource_graph
    from unas.export.quantize import keras_to_int8_tflite
    from unas.space_opt.fast import operator_costs

    stages = ((MBConvBlock(3, 3, 1.0), MBConvBlock(5, 4, 1.0)),  # residual in stage 0
              (MBConvBlock(7, 6, 0.5), MBConvBlock(3, 3, 0.75)),
              (MBConvBlock(3, 4, 1.0), MBConvBlock(3, 3, 1.0)),
              (MBConvBlock(5, 3, 0.5), MBConvBlock(3, 3, 0.5)),
              (MBConvBlock(3, 3, 1.0), MBConvBlock(3, 6, 1.0)))
    arch = MBConvArchitecture(0.2, 48, stages)
    model = arch.build((48, 48, 3), 5, dropout=0.1)
    rng = np.random.default_rng(0)
    # as after training: the converter drops an all-zero Dense bias
    model.get_layer("classifier").bias.assign(rng.normal(size=5).astype(np.float32))
    samples = rng.uniform(-1, 1, size=(2, 48, 48, 3)).astype(np.float32)
    tflite = parse_tflite(keras_to_int8_tflite(model, samples))
    actual = resource_graph(tflite)
    expected = arch.resource_graph((48, 48, 3), 5)
    match = nx.algorithms.isomorphism.categorical_node_match(
        ["op", "shape", "bytes", "macs", "size_bytes"], [None] * 5)
    assert sorted(d["op"] for _, d in actual.nodes(data=True)) == sorted(
        d["op"] for _, d in expected.nodes(data=True))
    assert nx.is_isomorphic(expected, actual, node_match=match)
    generated = generate(tflite, tmp_path / "c")
    assert generated.sram_bytes == operator_costs(arch.operators((48, 48, 3), 5),
                                                  "codegen").peak_bytes


@pytest.mark.slow
def test_built_model_trains_a_step_on_tiny_data():
    from unas.tfenv import keras

    arch = _arch(3, width_mult=0.2, resolution=48)
    model = arch.build((48, 48, 3), 4, dropout=0.1)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(8, 48, 48, 3)).astype(np.float32)
    y = rng.integers(0, 4, size=8)
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    assert model.predict(x[:2], verbose=0).shape == (2, 4)
