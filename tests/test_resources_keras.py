"""graph_from_keras: hand-computed bytes/MACs/size per layer kind, and a real TFLite conversion."""
import subprocess
import sys

import numpy as np
import pytest

from unas.errors import ArchitectureError
from unas.resources import graph_from_keras, graph_size_bytes, macs, model_size_bytes
from unas.tfenv import keras, tf

L = keras.layers


def nodes(model):
    g = graph_from_keras(model)
    return g, {n: (d["op"], d["shape"], d["bytes"], d["macs"], d["params"], d["size_bytes"])
               for n, d in g.nodes(data=True)}


def test_conv_bn_relu_is_one_conv_with_bias():
    inp = keras.Input((8, 8, 3), name="in")
    x = L.Conv2D(4, 3, strides=2, padding="same", use_bias=False, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    g, info = nodes(keras.Model(inp, x))
    assert list(g.nodes) == ["in", "conv"]
    # 4x4x4 output, 3x3x3 kernel per output value, but the last row's and column's third tap
    # falls on 'same' padding: 4 * 3 - 1 = 11 taps inside per axis (MACs count those);
    # weights 3*3*3*4 int8 + 4 int32 biases
    assert info["conv"] == ("CONV_2D", (4, 4, 4), 64, 11 * 11 * 3 * 4, 108 + 4, 108 + 16)
    assert info["in"] == ("INPUT", (8, 8, 3), 192, 0, 0, 0)


def test_depthwise_pool_pad_add_concat_mean_dense_softmax():
    inp = keras.Input((6, 6, 2), name="in")
    d = L.DepthwiseConv2D(3, padding="valid", activation="relu6", name="dw")(inp)     # 4x4x2
    p = L.MaxPooling2D(2, name="mp")(d)                                                # 2x2x2
    a = L.AveragePooling2D(2, strides=1, name="ap")(L.ZeroPadding2D(1, name="pad")(p))  # 3x3x2
    s = L.Add(name="add")([a, L.AveragePooling2D(2, strides=1, name="ap2")(d)])       # 3x3x2
    c = L.Concatenate(name="cat")([s, s])                                               # 3x3x4
    m = L.GlobalAveragePooling2D(name="gap")(c)
    f = L.Dense(5, activation="softmax", name="fc")(m)
    g, info = nodes(keras.Model(inp, f))
    assert info["dw"] == ("DEPTHWISE_CONV_2D", (4, 4, 2), 32, 32 * 9, 18 + 2, 18 + 8)
    assert info["mp"][:4] == ("MAX_POOL_2D", (2, 2, 2), 8, 0)
    assert info["pad"][:4] == ("PAD", (4, 4, 2), 32, 0)
    assert info["ap"][:4] == ("AVERAGE_POOL_2D", (3, 3, 2), 18, 0)
    assert info["ap2"][:2] == ("AVERAGE_POOL_2D", (3, 3, 2))
    assert info["add"][:4] == ("ADD", (3, 3, 2), 18, 0)
    assert info["cat"][:2] == ("CONCATENATION", (3, 3, 4))
    assert info["gap"][:4] == ("MEAN", (4,), 4, 0)
    assert info["fc"] == ("FULLY_CONNECTED", (5,), 5, 20, 25, 20 + 20)
    assert info["fc/softmax"][:2] == ("SOFTMAX", (5,))
    assert set(g.predecessors("add")) == {"ap", "ap2"}


def test_dense_bias_only_when_used_or_bn_folded():
    inp = keras.Input((4, 4, 1), name="in")
    f = L.Flatten(name="flat")(inp)
    a = L.Dense(3, use_bias=False, name="nobias")(f)
    b = L.BatchNormalization(name="bn")(L.Dense(2, use_bias=False, name="folded")(a))
    g, info = nodes(keras.Model(inp, b))
    assert info["flat"] == ("RESHAPE", (16,), 16, 0, 0, 0)
    assert info["nobias"] == ("FULLY_CONNECTED", (3,), 3, 48, 48, 48)
    assert info["folded"] == ("FULLY_CONNECTED", (2,), 2, 6, 8, 6 + 8)
    assert macs(keras.Model(inp, b)) == 54
    assert model_size_bytes(keras.Model(inp, b)) == 48 + 14 == graph_size_bytes(g)


def test_sequential_model():
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, activation="relu"), L.Dropout(0.5),
                              L.Dense(2)])
    g = graph_from_keras(model)
    assert [d["op"] for _, d in g.nodes(data=True)] == ["INPUT", "FULLY_CONNECTED",
                                                        "FULLY_CONNECTED"]
    assert macs(model) == 5 * 4 + 4 * 2


def test_standalone_batchnorm_is_rejected():
    inp = keras.Input((4, 4, 2))
    x = L.BatchNormalization(name="lonely_bn")(L.MaxPooling2D(2)(inp))
    with pytest.raises(ArchitectureError, match="'lonely_bn'.*BatchNormalization"):
        graph_from_keras(keras.Model(inp, x))


def test_unsupported_layer_is_named():
    inp = keras.Input((4, 4, 2))
    x = L.UpSampling2D(name="up")(inp)
    with pytest.raises(ArchitectureError, match="'up'.*UpSampling2D"):
        graph_from_keras(keras.Model(inp, x))


def test_relu_after_pool_is_rejected():
    inp = keras.Input((4, 4, 2))
    x = L.ReLU(name="late_relu")(L.MaxPooling2D(2)(inp))
    with pytest.raises(ArchitectureError, match="'late_relu'"):
        graph_from_keras(keras.Model(inp, x))


def test_import_does_not_load_tensorflow():
    code = "import sys, unas.resources; assert 'tensorflow' not in sys.modules, 'tf loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _branchy_model():
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    a = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    a = L.Conv2D(8, 1)(a)
    b = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.Add()([a, b])
    x = L.MaxPooling2D(2)(x)
    y = L.AveragePooling2D(2, padding="same")(x)
    y = L.Concatenate()([y, L.MaxPooling2D(2, padding="same")(x)])
    x = L.Flatten()(y)
    x = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, x)


def test_matches_tflite_conversion():
    model = _branchy_model()
    rng = np.random.default_rng(0)
    for layer in model.layers:  # trained-like weights: the converter drops an all-zero FC bias
        layer.set_weights([rng.normal(0.0, 0.1, w.shape) + (0.5 if w.ndim == 1 else 0.0)
                           for w in layer.get_weights()])

    def representative():
        for _ in range(3):
            yield [rng.normal(size=(1, 12, 12, 3)).astype("float32")]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()

    g = graph_from_keras(model)
    ours = sorted((d["op"], d["shape"]) for _, d in g.nodes(data=True) if d["op"] != "INPUT")
    theirs = sorted((op["op_name"], tuple(int(s) for s in details[op["outputs"][0]]["shape"][1:]))
                    for op in ops)
    assert ours == theirs
    # weight bytes: every constant tensor except RESHAPE's int32 shape operand
    activations = {o for op in ops for o in op["outputs"]}
    activations |= {t["index"] for t in interpreter.get_input_details()}
    shape_operands = {op["inputs"][1] for op in ops if op["op_name"] == "RESHAPE"}
    stored = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
                 for i, t in details.items() if i not in activations | shape_operands)
    assert graph_size_bytes(g) == stored
