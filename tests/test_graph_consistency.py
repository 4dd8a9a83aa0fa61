"""The TF-free resource graphs of the CNN and MLP spaces equal the graphs of the real models.

Compared up to node naming (networkx isomorphism matching op, shape, bytes, macs, size_bytes):
against ``unas.resources.graph_from_keras(arch.build(...))``, and against the int8 ``.tflite`` the
TFLite converter makes of ``arch.build(...)`` (the truth the MCU runs).
"""
import networkx as nx
import numpy as np
import pytest

from search_spaces.cnn import CNNArchitecture, CNNSpace, ConvBlock, ConvLayer
from search_spaces.mlp import DenseLayer, MLPArchitecture, MLPSpace

MATCHED = ("op", "shape", "bytes", "macs", "size_bytes")
GEOMETRY = ("kernel", "stride", "dilation")  # optional: absent on ops without a filter
INPUT_SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (49, 10, 1)]


def same_graph(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    return nx.is_isomorphic(a, b, node_match=lambda x, y: all(x[k] == y[k] for k in MATCHED)
                            and all(x.get(k) == y.get(k) for k in GEOMETRY))


def describe(graph: nx.DiGraph) -> str:
    return "\n".join(f"  {name}: {[graph.nodes[name].get(k) for k in MATCHED + GEOMETRY]}"
                     for name in nx.topological_sort(graph))


def tflite_graph(arch, input_shape, num_classes, rng):
    """Resource graph of the int8 TFLite conversion of ``arch.build(...)``.

    Weights are set to non-zero values first: the converter drops an all-zero FC bias, which a
    trained model never has.
    """
    from tflm_runtime.tflite_model import parse_tflite, resource_graph
    from unas.export.quantize import keras_to_int8_tflite

    model = arch.build(input_shape, num_classes)
    for weight in model.weights:
        weight.assign(rng.uniform(0.5, 1.0, size=weight.shape))
    samples = rng.normal(size=(4, *input_shape)).astype("float32")
    return resource_graph(parse_tflite(keras_to_int8_tflite(model, samples, num_samples=4)))


def layer(type_, kernel, channels=None, stride=1, pre_pool=False, batch_norm=False, relu=False):
    return ConvLayer(type_, kernel, channels, stride, pre_pool, batch_norm, relu)


HANDMADE = [
    # equal branch shapes -> ADD of linear and BN convs; the last conv feeds the logits directly
    CNNArchitecture((ConvBlock(False, (layer("full", 3, 8),)),
                     ConvBlock(True, (layer("full", 1, 8, batch_norm=True),))), "avg", 6, ()),
    # three branches pre-pooling one input share the pool; spatial alignment; concatenation
    CNNArchitecture((ConvBlock(False, (layer("full", 3, 4, 2, pre_pool=True, relu=True),)),
                     ConvBlock(True, (layer("depthwise", 5, pre_pool=True),)),
                     ConvBlock(True, (layer("full", 3, 6, pre_pool=True, batch_norm=True),
                                      layer("depthwise", 3, stride=2, relu=True)))),
                    "max", 2, (12,)),
]


@pytest.mark.parametrize("index", range(len(HANDMADE)))
def test_handmade_cnn_graphs_equal_the_tflite_graph(index):
    rng = np.random.default_rng(index)
    arch = HANDMADE[index]
    mine = arch.resource_graph((9, 9, 2), 3)
    theirs = tflite_graph(arch, (9, 9, 2), 3, rng)
    assert same_graph(mine, theirs), f"{arch.to_json()}\nmine:\n{describe(mine)}\n" \
                                     f"tflite:\n{describe(theirs)}"


def test_random_cnn_graphs_equal_the_tflite_graph():
    rng = np.random.default_rng(11)
    space = CNNSpace(max_blocks=4, max_channels=16)
    for n in (1, 3):
        arch = space.random_architecture(rng)
        for _ in range(3):
            arch = space.mutate(arch, rng)
        shape = INPUT_SHAPES[n]
        mine, theirs = arch.resource_graph(shape, 10), tflite_graph(arch, shape, 10, rng)
        assert same_graph(mine, theirs), f"{arch.to_json()} on {shape}\nmine:\n{describe(mine)}" \
                                         f"\ntflite:\n{describe(theirs)}"


def test_mlp_graphs_equal_the_tflite_graph():
    rng = np.random.default_rng(5)
    arch = MLPArchitecture((DenseLayer(24, True, True), DenseLayer(16, False, False),
                            DenseLayer(12, False, False), DenseLayer(20, False, True)))
    mine, theirs = arch.resource_graph((6, 6, 1), 4), tflite_graph(arch, (6, 6, 1), 4, rng)
    assert same_graph(mine, theirs), f"mine:\n{describe(mine)}\ntflite:\n{describe(theirs)}"


def test_resource_graphs_equal_graph_from_keras():
    from unas.resources import graph_from_keras

    rng = np.random.default_rng(3)
    cases = [(arch, (9, 9, 2), 3) for arch in HANDMADE]
    cnn_space, mlp_space = CNNSpace(max_blocks=5), MLPSpace(max_units=64)
    for n in range(10):
        arch = cnn_space.random_architecture(rng)
        for _ in range(int(rng.integers(0, 4))):
            arch = cnn_space.mutate(arch, rng)
        cases.append((arch, INPUT_SHAPES[n % len(INPUT_SHAPES)], 10))
    for n in range(3):
        cases.append((mlp_space.random_architecture(rng), INPUT_SHAPES[n], 5))
    for arch, shape, classes in cases:
        mine = arch.resource_graph(shape, classes)
        theirs = graph_from_keras(arch.build(shape, classes, dropout=0.1))
        assert same_graph(mine, theirs), f"{arch.to_json()} on {shape}\nmine:\n{describe(mine)}" \
                                         f"\ngraph_from_keras:\n{describe(theirs)}"


def test_all_three_builders_record_filter_geometry():
    """Kernel, stride and dilation are set (not just equal because absent) by every builder."""
    from unas.resources import graph_from_keras

    rng = np.random.default_rng(0)
    arch = HANDMADE[1]
    graphs = [arch.resource_graph((9, 9, 2), 3), graph_from_keras(arch.build((9, 9, 2), 3)),
              tflite_graph(arch, (9, 9, 2), 3, rng)]
    for graph in graphs:
        geometry = sorted((d["op"], d["kernel"], d["stride"], d["dilation"])
                          for _, d in graph.nodes(data=True) if "kernel" in d)
        assert geometry == [("CONV_2D", (3, 3), (1, 1), (1, 1)),
                            ("CONV_2D", (3, 3), (2, 2), (1, 1)),
                            ("DEPTHWISE_CONV_2D", (3, 3), (2, 2), (1, 1)),
                            ("DEPTHWISE_CONV_2D", (5, 5), (1, 1), (1, 1))]
