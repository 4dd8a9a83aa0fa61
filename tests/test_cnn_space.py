"""The μNAS CNN space: bounds, morphisms, JSON, resource graph arithmetic and the Keras builder."""
import json
import math
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import architecture_from_json, get_space
from search_spaces import cnn_morphisms as cm
from search_spaces.cnn import CNNArchitecture, CNNSpace, ConvBlock, ConvLayer
from unas.errors import ArchitectureError, ConfigError

INPUT_SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (49, 10, 1)]
SEEDS = st.integers(0, 2**32 - 1)


def layer(type_="full", kernel=3, channels=8, stride=1, pre_pool=False, batch_norm=False,
          relu=True) -> ConvLayer:
    return ConvLayer(type_, kernel, None if type_ == "depthwise" else channels, stride, pre_pool,
                     batch_norm, relu)


def cnn(*blocks, pool_type="avg", pool_size=2, dense=(32,)) -> CNNArchitecture:
    return CNNArchitecture(blocks=tuple(ConvBlock(parallel, tuple(layers))
                                        for parallel, layers in blocks),
                           pool_type=pool_type, pool_size=pool_size, dense_units=tuple(dense))


def check_graph(arch, input_shape, num_classes=10):
    graph = arch.resource_graph(input_shape, num_classes)
    assert nx.is_directed_acyclic_graph(graph)
    assert [n for n in graph if graph.in_degree(n) == 0] == ["input"]
    assert [n for n in graph if graph.out_degree(n) == 0] == ["logits"]
    assert graph.nodes["logits"]["shape"] == (num_classes,)
    assert "SOFTMAX" not in {d["op"] for _, d in graph.nodes(data=True)}
    for _, data in graph.nodes(data=True):
        assert min(data["shape"]) >= 1 and data["bytes"] == math.prod(data["shape"])
    return graph


# -- defaults and bounds --------------------------------------------------------------------------
def test_default_bounds_are_table_1():
    space = get_space("cnn")
    assert isinstance(space, CNNSpace)
    assert (space.min_blocks, space.max_blocks, space.min_layers, space.max_layers) == (1, 10, 1, 3)
    assert space.kernel_sizes == (1, 3, 5, 7) and space.pool_sizes == (2, 4, 6)
    assert (space.min_channels, space.max_channels, space.channel_steps) == (1, 128, (1, 3, 5))
    assert (space.min_dense_layers, space.max_dense_layers) == (1, 3)
    assert (space.min_units, space.max_units, space.unit_steps) == (10, 256, (1, 3, 5))


@pytest.mark.parametrize("kwargs, field", [
    ({"max_blocks": 0}, "max_blocks"), ({"min_blocks": 4, "max_blocks": 3}, "min_blocks"),
    ({"kernel_sizes": (3, 4)}, "kernel_sizes"), ({"pool_sizes": []}, "pool_sizes"),
    ({"max_channels": "many"}, "max_channels"), ({"unit_steps": (0,)}, "unit_steps"),
])
def test_bad_bounds_raise_config_error_naming_the_argument(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        CNNSpace(**kwargs)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS)
def test_mutation_chains_stay_valid_different_and_within_bounds(seed):
    rng = np.random.default_rng(seed)
    space = CNNSpace()
    arch = space.random_architecture(rng)
    assert space.contains(arch)
    for step in range(25):
        child = space.mutate(arch, rng)
        assert child != arch
        space.check(child)
        assert architecture_from_json(child.to_json()) == child
        if step % 5 == 0:
            check_graph(child, INPUT_SHAPES[step % len(INPUT_SHAPES)])
        arch = child


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, max_blocks=st.integers(1, 3), max_layers=st.integers(1, 2),
       kernels=st.sampled_from([(3,), (1,), (1, 3), (3, 5, 7)]), max_channels=st.integers(1, 6))
def test_mutation_always_succeeds_in_tight_spaces(seed, max_blocks, max_layers, kernels,
                                                  max_channels):
    rng = np.random.default_rng(seed)
    space = CNNSpace(max_blocks=max_blocks, max_layers=max_layers, kernel_sizes=kernels,
                     max_channels=max_channels, pool_sizes=(2,), max_dense_layers=1, min_units=10,
                     max_units=10)
    arch = space.random_architecture(rng)
    for _ in range(10):
        child = space.mutate(arch, rng)
        assert child != arch and space.contains(child)
        arch = child


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS)
def test_json_round_trip_and_hash_equality(seed):
    arch = CNNSpace().random_architecture(np.random.default_rng(seed))
    text = arch.to_json()
    twin = CNNArchitecture.from_json(text)
    assert twin == arch and hash(twin) == hash(arch) and twin is not arch
    assert twin.to_json() == text
    assert json.loads(text)["space"] == "cnn"
    assert len({arch, twin}) == 1


def test_mutate_refuses_architectures_outside_the_bounds():
    arch = cnn((False, [layer(channels=100)]))
    with pytest.raises(ArchitectureError, match=r"blocks\[0\].layers\[0\].channels"):
        CNNSpace(max_channels=64).mutate(arch, np.random.default_rng(0))


# -- each morphism ----------------------------------------------------------------------------
def all_children(morphism, arch, space=None, draws=60):
    space = space or CNNSpace()
    rng = np.random.default_rng(7)
    return {morphism(space, arch, rng) for _ in range(draws)}


def test_kernel_morphism_steps_by_two_and_keeps_stride_1_for_1x1():
    arch = cnn((False, [layer(kernel=3, stride=2)]))
    assert {c.layers[0].kernel for c in all_children(cm.change_kernel, arch)} == {5}
    arch = cnn((False, [layer(kernel=3, stride=1)]))
    assert {c.layers[0].kernel for c in all_children(cm.change_kernel, arch)} == {1, 5}
    arch = cnn((False, [layer(kernel=7)]))
    assert {c.layers[0].kernel for c in all_children(cm.change_kernel, arch)} == {5}


def test_channel_and_unit_morphisms_step_by_1_3_5_within_bounds():
    arch = cnn((False, [layer(channels=4)]), dense=(254,))
    assert {c.layers[0].channels for c in all_children(cm.change_channels, arch)} == {
        1, 3, 5, 7, 9}
    assert {c.dense_units[0] for c in all_children(cm.change_units, arch)} == {
        249, 251, 253, 255}
    depthwise_only = cnn((False, [layer("depthwise")]))
    assert all_children(cm.change_channels, depthwise_only) == {None}


def test_stride_pool_and_type_morphisms():
    arch = cnn((False, [layer(kernel=1)]), pool_size=2)
    assert all_children(cm.change_stride, arch) == {None}
    arch = cnn((False, [layer(kernel=5, stride=1)]), pool_size=4)
    assert {c.layers[0].stride for c in all_children(cm.change_stride, arch)} == {2}
    assert {c.pool_size for c in all_children(cm.change_pool_size, arch)} == {2, 6}
    assert {c.pool_type for c in all_children(cm.toggle_pool_type, arch)} == {"max"}
    (child,) = all_children(cm.change_type, arch)
    assert child.layers[0].type == "depthwise" and child.layers[0].channels is None
    back = all_children(cm.change_type, child)
    assert {c.layers[0].type for c in back} == {"full"}
    assert all(1 <= c.layers[0].channels <= 128 for c in back)


@pytest.mark.parametrize("morphism, field", [(cm.toggle_pre_pool, "pre_pool"),
                                             (cm.toggle_batch_norm, "batch_norm"),
                                             (cm.toggle_relu, "relu")])
def test_toggle_morphisms_flip_one_flag(morphism, field):
    arch = cnn((False, [layer()]), (False, [layer(), layer(kernel=5)]))
    for child in all_children(morphism, arch):
        diffs = [(a, b) for a, b in zip(arch.layers, child.layers, strict=True) if a != b]
        assert len(diffs) == 1
        before, after = diffs[0]
        assert getattr(after, field) == (not getattr(before, field))


def test_structural_morphisms_respect_bounds_and_keep_block_0_serial():
    space = CNNSpace(max_blocks=2, max_layers=2, max_dense_layers=2)
    arch = cnn((False, [layer()]), (True, [layer(kernel=5), layer(kernel=7)]), dense=(20, 30))
    assert all_children(cm.append_block, arch, space) == {None}
    assert all_children(cm.insert_dense, arch, space) == {None}
    removed = all_children(cm.remove_block, arch, space)
    assert {len(c.blocks) for c in removed} == {1}
    assert all(not c.blocks[0].parallel for c in removed)
    assert {c.blocks[1].parallel for c in all_children(cm.toggle_parallel, arch, space)} == {False}
    assert {len(c.blocks[0].layers) for c in all_children(cm.insert_layer, arch, space)} == {2}
    assert {len(c.blocks[1].layers) for c in all_children(cm.remove_layer, arch, space)} == {1}
    assert {c.dense_units for c in all_children(cm.remove_dense, arch, space)} == {(20,), (30,)}
    single = cnn((False, [layer()]), dense=(20,))
    for morphism in (cm.remove_block, cm.toggle_parallel, cm.remove_layer, cm.remove_dense):
        assert all_children(morphism, single, space) == {None}


def test_mutation_uses_every_morphism_kind():
    space, rng = CNNSpace(), np.random.default_rng(3)
    seen = set()
    arch = cnn((False, [layer()]), (True, [layer(), layer("depthwise", kernel=5)]), dense=(40, 50))
    for _ in range(600):
        child = space.mutate(arch, rng)
        seen.add(describe_change(arch, child))
    assert seen >= {"blocks", "parallel", "layers", "pre_pool", "type", "kernel", "channels",
                    "stride", "batch_norm", "relu", "pool_type", "pool_size", "dense_count",
                    "dense_units"}


def describe_change(parent, child):
    """Name of the single degree of freedom that differs between parent and child."""
    if len(parent.blocks) != len(child.blocks):
        return "blocks"
    if parent.pool_type != child.pool_type:
        return "pool_type"
    if parent.pool_size != child.pool_size:
        return "pool_size"
    if len(parent.dense_units) != len(child.dense_units):
        return "dense_count"
    if parent.dense_units != child.dense_units:
        return "dense_units"
    for a, b in zip(parent.blocks, child.blocks, strict=True):
        if a.parallel != b.parallel:
            return "parallel"
        if len(a.layers) != len(b.layers):
            return "layers"
        for la, lb in zip(a.layers, b.layers, strict=True):
            for field in ("type", "kernel", "channels", "stride", "pre_pool", "batch_norm", "relu"):
                if getattr(la, field) != getattr(lb, field):
                    return field
    raise AssertionError("parent and child are equal")


# -- from_dict validation ---------------------------------------------------------------------
def good_dict():
    return json.loads(cnn((False, [layer()]), (True, [layer("depthwise")])).to_json())


def edited(path, value):
    data = good_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    (("blocks", 0, "layers", 0, "kernel"), 4, r"blocks\[0\]\.layers\[0\]\.kernel"),
    (("blocks", 0, "layers", 0, "kernel"), "3", r"blocks\[0\]\.layers\[0\]\.kernel"),
    (("blocks", 0, "layers", 0, "stride"), 3, r"blocks\[0\]\.layers\[0\]\.stride"),
    (("blocks", 0, "layers", 0, "type"), "separable", r"blocks\[0\]\.layers\[0\]\.type"),
    (("blocks", 0, "layers", 0, "channels"), None, r"blocks\[0\]\.layers\[0\]\.channels"),
    (("blocks", 0, "layers", 0, "channels"), True, r"blocks\[0\]\.layers\[0\]\.channels"),
    (("blocks", 1, "layers", 0, "channels"), 8, r"blocks\[1\]\.layers\[0\]\.channels"),
    (("blocks", 1, "layers", 0, "relu"), 1, r"blocks\[1\]\.layers\[0\]\.relu"),
    (("blocks", 1, "layers", 0, "batch_norm"), KeyError, r"blocks\[1\]\.layers\[0\]\.batch_norm"),
    (("blocks", 1, "layers"), [], r"blocks\[1\]\.layers"),
    (("blocks", 0, "parallel"), True, r"blocks\[0\]\.parallel"),
    (("blocks",), [], r"blocks"),
    (("pool_type",), "min", r"pool_type"),
    (("pool_size",), 0, r"pool_size"),
    (("dense_units",), [10, "x"], r"dense_units\[1\]"),
    (("dense_units",), 5, r"dense_units"),
    (("extra",), 1, r"extra"),
])
def test_from_dict_names_the_bad_field(path, value, message):
    with pytest.raises(ArchitectureError, match=message):
        architecture_from_json(edited(path, value))


GARBAGE = [None, "x", -1, 0, 1, 2, 4, 1.5, True, False, [], {}, [1], {"a": 1}]


def json_paths(value, prefix=()):
    """Every (path) into a decoded JSON value, containers included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_paths(item, prefix + (index,))


@settings(max_examples=150, deadline=None)
@given(seed=SEEDS, choice=st.integers(0, 10**6), garbage=st.sampled_from(GARBAGE))
def test_corrupted_json_gives_architecture_error_or_a_valid_architecture(seed, choice, garbage):
    data = json.loads(CNNSpace(max_blocks=3).random_architecture(
        np.random.default_rng(seed)).to_json())
    paths = [p for p in json_paths(data) if p and p[0] != "space"]
    path = paths[choice % len(paths)]
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = garbage
    try:
        arch = architecture_from_json(data)
    except ArchitectureError as error:
        assert "\n" not in str(error)
    else:
        assert architecture_from_json(arch.to_json()) == arch
        check_graph(arch, (16, 16, 1))


def test_stride_2_with_1x1_kernel_is_invalid():
    data = edited(("blocks", 0, "layers", 0, "kernel"), 1)
    data["blocks"][0]["layers"][0]["stride"] = 2
    with pytest.raises(ArchitectureError, match=r"blocks\[0\]\.layers\[0\]\.stride"):
        architecture_from_json(data)


def test_unknown_space_is_refused():
    with pytest.raises(ArchitectureError, match="unknown architecture space"):
        architecture_from_json({**good_dict(), "space": "transformer"})


def test_bad_input_shape_is_refused():
    with pytest.raises(ArchitectureError, match="input_shape"):
        cnn((False, [layer()])).resource_graph((28, 28), 10)
    with pytest.raises(ArchitectureError, match="num_classes"):
        cnn((False, [layer()])).resource_graph((28, 28, 1), 0)


# -- resource graph arithmetic ----------------------------------------------------------------
def test_resource_graph_of_a_branching_network_by_hand():
    arch = cnn((False, [layer(kernel=3, channels=8, stride=2, batch_norm=True)]),
               (True, [layer("depthwise", kernel=3, pre_pool=True)]),
               pool_type="avg", pool_size=4, dense=(32,))
    g = check_graph(arch, (28, 28, 1))
    assert list(nx.topological_sort(g)) == ["input", "b0_l0_conv", "b1_l0_prepool", "b1_l0_conv",
                                            "b1_join", "pool", "flatten", "d0_dense", "logits"]
    # MACs count the taps inside the input: 28 -> 14 at stride 2 pads one column at the end
    # (the last output's third tap is outside: 14 * 3 - 1 = 41 per axis); 14 -> 14 at stride 1
    # pads one on each side (14 * 3 - 2 = 40 per axis)
    expect = {  # name: (op, shape, macs, params, size_bytes)
        "input": ("INPUT", (28, 28, 1), 0, 0, 0),
        "b0_l0_conv": ("CONV_2D", (14, 14, 8), 41 * 41 * 8, 72 + 8, 72 + 32),
        "b1_l0_prepool": ("MAX_POOL_2D", (14, 14, 1), 0, 0, 0),
        "b1_l0_conv": ("DEPTHWISE_CONV_2D", (14, 14, 1), 40 * 40, 9 + 1, 9 + 4),
        "b1_join": ("CONCATENATION", (14, 14, 9), 0, 0, 0),
        "pool": ("AVERAGE_POOL_2D", (3, 3, 9), 0, 0, 0),
        "flatten": ("RESHAPE", (81,), 0, 0, 0),
        "d0_dense": ("FULLY_CONNECTED", (32,), 81 * 32, 81 * 32 + 32, 81 * 32 + 128),
        "logits": ("FULLY_CONNECTED", (10,), 320, 330, 320 + 40),
    }
    for name, (op, shape, macs, params, size) in expect.items():
        d = g.nodes[name]
        assert (d["op"], d["shape"], d["macs"], d["params"], d["size_bytes"]) == (
            op, shape, macs, params, size), name
    assert g.edges["b0_l0_conv", "b1_join"]["index"] == 0
    assert g.edges["b1_l0_conv", "b1_join"]["index"] == 1
    assert set(g.predecessors("b1_l0_prepool")) == {"input"}


def test_join_aligns_spatial_sizes_with_a_max_pool_then_adds():
    arch = cnn((False, [layer(channels=4, stride=2)]), (True, [layer(channels=4)]),
               (True, [layer(channels=4, pre_pool=True), layer(channels=4, stride=2)]))
    g = check_graph(arch, (7, 7, 1))
    # block 0: ceil(7/2) = 4; block 1: 7 -> aligned to 4 by a 4x4 window, stride 1
    assert g.nodes["b1_align"]["shape"] == (4, 4, 4)
    assert g.nodes["b1_join"]["op"] == "ADD"
    # block 2: prepool floor(7/2) = 3, then ceil(3/2) = 2; the running output 4 -> 2 (2x2 stride 2)
    assert g.nodes["b2_l1_conv"]["shape"] == (2, 2, 4)
    assert g.nodes["b2_align_prev"]["shape"] == (2, 2, 4)
    assert set(g.predecessors("b2_l0_prepool")) == {"input"}
    assert [u for u, _ in sorted(g.in_edges("b2_join"), key=lambda e: g.edges[e]["index"])] == [
        "b2_align_prev", "b2_l1_conv"]


def test_branches_pre_pooling_the_same_input_share_one_pool():
    arch = cnn((False, [layer(pre_pool=True)]), (True, [layer("depthwise", pre_pool=True)]),
               (True, [layer(pre_pool=True, channels=3)]))
    g = check_graph(arch, (8, 8, 1))
    assert "b1_l0_prepool" not in g and "b2_l0_prepool" not in g
    assert set(g.successors("b0_l0_prepool")) == {"b0_l0_conv", "b1_l0_conv", "b2_l0_conv"}
    model = arch.build((8, 8, 1), 10)
    assert [lay.name for lay in model.layers if "prepool" in lay.name] == ["b0_l0_prepool"]


def test_tiny_inputs_never_collapse():
    arch = cnn(*[(False, [layer(pre_pool=True, stride=2, kernel=7)]) for _ in range(4)],
               pool_size=6)
    g = check_graph(arch, (3, 2, 1))
    assert g.nodes["b0_l0_prepool"]["shape"] == (1, 1, 1)
    assert "b1_l0_prepool" not in g and "pool" not in g
    assert g.nodes["b3_l0_conv"]["shape"] == (1, 1, 8)
    g = check_graph(cnn((False, [layer()]), pool_size=6), (49, 10, 1))
    assert g.nodes["pool"]["shape"] == (8, 1, 8)  # window min(6, 49) x min(6, 10), stride = window


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, shape=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 3)))
def test_random_architectures_have_valid_graphs_for_any_input(seed, shape):
    check_graph(CNNSpace().random_architecture(np.random.default_rng(seed)), shape, 3)


def test_search_spaces_import_without_tensorflow():
    code = ("import sys, numpy as np; from search_spaces import get_space;"
            "a = get_space('cnn').random_architecture(np.random.default_rng(0));"
            "a.resource_graph((28, 28, 1), 10);"
            "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- Keras builder ----------------------------------------------------------------------------
def keras_output_shape(layer_):
    shape = layer_.output_shape
    if isinstance(shape, list):
        (shape,) = shape
    return tuple(shape[1:])


def test_keras_shapes_and_weights_match_the_resource_graph():
    rng = np.random.default_rng(2021)
    space = CNNSpace(max_blocks=5)
    for n in range(20):
        arch = space.random_architecture(rng)
        for _ in range(int(rng.integers(0, 4))):
            arch = space.mutate(arch, rng)
        input_shape = INPUT_SHAPES[n % len(INPUT_SHAPES)]
        graph = arch.resource_graph(input_shape, 10)
        model = arch.build(input_shape, 10)
        layers = {lay.name: lay for lay in model.layers}
        for name, data in graph.nodes(data=True):
            assert keras_output_shape(layers[name]) == data["shape"], (arch.to_json(), name)
        # BN folds into the conv: Keras stores 4 BN values per channel and no conv bias.
        bn_extra = sum(3 * data["shape"][-1] for name, data in graph.nodes(data=True)
                       if f"{name}_bn" in layers)
        folded = sum(d["params"] for _, d in graph.nodes(data=True))
        assert model.count_params() == folded + bn_extra
        assert tuple(model.output_shape[1:]) == (10,)


def test_built_layers_have_readable_names_and_bn_before_relu():
    arch = cnn((False, [layer(batch_norm=True, pre_pool=True)]),
               (True, [layer("depthwise", batch_norm=True)]), dense=(16,))
    model = arch.build((8, 8, 1), 4)
    names = [lay.name for lay in model.layers]
    assert names.index("b0_l0_conv") < names.index("b0_l0_conv_bn") < names.index("b0_l0_conv_relu")
    assert {"input", "b0_l0_prepool", "b1_l0_conv", "b1_join", "pool", "flatten", "d0_dense",
            "logits"} <= set(names)
    assert model.get_layer("logits").activation.__name__ == "linear"
    with_dropout = arch.build((8, 8, 1), 4, dropout=0.15)
    assert "d0_dense_dropout" in [lay.name for lay in with_dropout.layers]
    assert "logits_dropout" not in [lay.name for lay in with_dropout.layers]


def test_built_model_trains_one_step_with_finite_loss():
    from unas.tfenv import keras, tf

    tf.random.set_seed(0)
    arch = cnn((False, [layer(channels=4, batch_norm=True)]),
               (True, [layer("depthwise", pre_pool=True)]), dense=(12,))
    model = arch.build((8, 8, 1), 3)
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, size=8)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
