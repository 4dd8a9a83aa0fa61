"""The MLP space: bounds, morphisms, JSON, resource graph arithmetic and the Keras builder."""
import json

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import architecture_from_json, get_space
from search_spaces.mlp import DenseLayer, MLPArchitecture, MLPSpace
from unas.errors import ArchitectureError, ConfigError

SEEDS = st.integers(0, 2**32 - 1)


def mlp(*layers) -> MLPArchitecture:
    return MLPArchitecture(layers=tuple(DenseLayer(u, bn, relu) for u, bn, relu in layers))


def test_defaults_and_registry():
    space = get_space("mlp")
    assert isinstance(space, MLPSpace)
    assert (space.min_layers, space.max_layers, space.min_units, space.max_units) == (1, 5, 10, 512)
    assert get_space("mlp", max_layers=2).max_layers == 2


@pytest.mark.parametrize("kwargs, field", [({"max_layers": 0}, "max_layers"),
                                           ({"min_units": 600}, "min_"),
                                           ({"unit_steps": ()}, "unit_steps")])
def test_bad_bounds_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        MLPSpace(**kwargs)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS)
def test_mutation_chains_stay_valid_different_and_within_bounds(seed):
    rng = np.random.default_rng(seed)
    space = MLPSpace()
    arch = space.random_architecture(rng)
    for _ in range(25):
        child = space.mutate(arch, rng)
        assert child != arch and space.contains(child)
        twin = architecture_from_json(child.to_json())
        assert twin == child and hash(twin) == hash(child)
        arch = child


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS)
def test_mutation_succeeds_in_a_one_point_width_space(seed):
    space = MLPSpace(max_layers=1, min_units=10, max_units=10)
    rng = np.random.default_rng(seed)
    arch = space.random_architecture(rng)
    child = space.mutate(arch, rng)
    assert child != arch and space.contains(child)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS)
def test_toggles_keep_batch_norm_only_on_relu_layers(seed):
    space, rng = MLPSpace(max_layers=2, min_units=10, max_units=11), np.random.default_rng(seed)
    arch = space.random_architecture(rng)
    seen = set()
    for _ in range(30):
        arch = space.mutate(arch, rng)
        seen |= {(layer.batch_norm, layer.relu) for layer in arch.layers}
    assert (True, False) not in seen


def test_resize_morphisms_step_and_scale_within_bounds():
    space, rng = MLPSpace(max_layers=1, max_units=300), np.random.default_rng(0)
    arch = mlp((200, False, True))
    widths = {space.mutate(arch, rng).layers[0].units for _ in range(300)}
    assert widths - {200} == {195, 197, 199, 201, 203, 205, 100, 300}


def test_mutate_refuses_out_of_bounds_architectures():
    with pytest.raises(ArchitectureError, match=r"layers\[0\]\.units"):
        MLPSpace(max_units=64).mutate(mlp((100, False, True)), np.random.default_rng(0))


@pytest.mark.parametrize("data, field", [
    ({"layers": []}, "layers"),
    ({"layers": [{"units": 0, "batch_norm": False, "relu": True}]}, r"layers\[0\]\.units"),
    ({"layers": [{"units": 12, "batch_norm": "no", "relu": True}]}, r"layers\[0\]\.batch_norm"),
    ({"layers": [{"units": 12, "relu": True}]}, r"layers\[0\]\.batch_norm"),
    ({"layers": [{"units": 12, "batch_norm": False, "relu": True, "x": 1}]}, r"layers\[0\]\.x"),
    ({"layers": 3}, "layers"),
    ({}, "layers"),
    ({"layers": [{"units": 12, "batch_norm": True, "relu": False}]}, r"layers\[0\]\.batch_norm"),
])
def test_from_dict_names_the_bad_field(data, field):
    with pytest.raises(ArchitectureError, match=field):
        architecture_from_json({"space": "mlp", **data})


def test_resource_graph_by_hand():
    g = mlp((20, True, True), (16, False, False)).resource_graph((4, 4, 2), 3)
    assert list(nx.topological_sort(g)) == ["input", "flatten", "l0_dense", "l1_dense", "logits"]
    assert g.nodes["flatten"]["op"] == "RESHAPE" and g.nodes["flatten"]["shape"] == (32,)
    assert (g.nodes["l0_dense"]["macs"], g.nodes["l0_dense"]["params"],
            g.nodes["l0_dense"]["size_bytes"]) == (640, 660, 640 + 80)
    assert g.nodes["logits"]["shape"] == (3,) and g.nodes["logits"]["size_bytes"] == 48 + 12
    # a linear hidden layer has no bias: the next layer absorbs it
    assert (g.nodes["l1_dense"]["params"], g.nodes["l1_dense"]["size_bytes"]) == (320, 320)
    flat = mlp((20, False, True)).resource_graph((784,), 10)
    assert list(flat) == ["input", "l0_dense", "logits"]


def test_keras_model_matches_graph_and_trains_one_step():
    from unas.tfenv import keras, tf

    tf.random.set_seed(0)
    arch = mlp((24, True, True), (12, False, True), (10, False, False))
    graph = arch.resource_graph((6, 6, 1), 4)
    model = arch.build((6, 6, 1), 4, dropout=0.1)
    layers = {lay.name: lay for lay in model.layers}
    for name, data in graph.nodes(data=True):
        shape = layers[name].output_shape
        shape = shape[0] if isinstance(shape, list) else shape
        assert tuple(shape[1:]) == data["shape"], name
    assert model.count_params() == sum(d["params"] for _, d in graph.nodes(data=True)) + 3 * 24
    names = [lay.name for lay in model.layers]
    assert names.index("l0_dense") < names.index("l0_dense_bn") < names.index("l0_dense_relu")
    assert "l0_dense_dropout" in names and "logits_dropout" not in names
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    history = model.fit(rng.normal(size=(8, 6, 6, 1)).astype("float32"),
                        rng.integers(0, 4, size=8), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_json_format():
    arch = mlp((32, False, True))
    assert json.loads(arch.to_json()) == {
        "space": "mlp", "layers": [{"units": 32, "batch_norm": False, "relu": True}]}
