"""The .tflite reader: tensors, operators, options and the resource graph of small int8 models."""
import sys

import numpy as np
import pytest
from tiny_models import int8_tflite

from unas.errors import DataError, UnsupportedOperatorError
from tflm_runtime.tflite_model import parse_tflite, read_tflite, resource_graph


@pytest.fixture(scope="module")
def small_model_bytes():
    from unas.tfenv import keras
    rng = np.random.default_rng(7)
    inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inp)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(4)(x)
    return int8_tflite(keras.Model(inp, x), rng, samples=8)


def test_reader_does_not_import_tensorflow():
    # the reader module itself must be importable without TensorFlow
    import subprocess
    code = ("import sys, tflm_runtime.tflite_model as m; m._schema(); "
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_tensors_and_operators(small_model_bytes, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(small_model_bytes)
    model = read_tflite(path)
    assert [op.opcode for op in model.operators] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"]
    conv = model.operators[0]
    assert conv.options["padding"] == "SAME"
    assert (conv.options["stride_h"], conv.options["stride_w"]) == (2, 2)
    assert conv.options["fused_activation_function"] == "RELU"
    assert model.operators[1].options["fused_activation_function"] == "RELU6"
    assert model.operators[1].options["depth_multiplier"] == 1
    weights = model.tensor(conv.inputs[1])
    assert weights.shape == (6, 3, 3, 3) and weights.dtype == "int8"
    assert weights.data is not None and weights.data.shape == weights.shape
    assert len(weights.scales) == 6 and weights.quantized_dimension == 0  # per-channel
    bias = model.tensor(conv.inputs[2])
    assert bias.dtype == "int32" and bias.shape == (6,)
    dw_weights = model.tensor(model.operators[1].inputs[1])
    assert dw_weights.quantized_dimension == 3
    inp = model.tensor(model.inputs[0])
    assert inp.shape == (1, 10, 10, 3) and inp.dtype == "int8" and inp.data is None
    assert inp.scale > 0 and -128 <= inp.zero_point <= 127
    assert model.tensor(model.outputs[0]).shape == (1, 4)


def test_resource_graph(small_model_bytes):
    model = parse_tflite(small_model_bytes)
    g = resource_graph(model)
    ops = {n: d["op"] for n, d in g.nodes(data=True)}
    assert sorted(ops.values()) == sorted(
        ["INPUT", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"])
    conv = next(n for n, op in ops.items() if op == "CONV_2D")
    assert g.nodes[conv]["shape"] == (5, 5, 6)
    # taps inside the input: 10 -> 5 at stride 2 pads after the last column (5 * 3 - 1 = 14)
    assert g.nodes[conv]["macs"] == 14 * 14 * 6 * 3
    assert g.nodes[conv]["size_bytes"] == 6 * 3 * 3 * 3 + 4 * 6
    dw = next(n for n, op in ops.items() if op == "DEPTHWISE_CONV_2D")
    assert g.nodes[dw]["macs"] == 13 * 13 * 6  # 3x3 'same', stride 1: 5 * 3 - 2 inside per axis
    add = next(n for n, op in ops.items() if op == "ADD")
    assert {s for s, _ in g.in_edges(add)} == {conv, dw}
    assert g.graph["operator_index"][add] == 2
    assert all(g.nodes[n]["bytes"] == int(np.prod(g.nodes[n]["shape"])) for n in g)
    fc = next(n for n, op in ops.items() if op == "FULLY_CONNECTED")
    assert g.out_degree(fc) == 0 and g.nodes[fc]["macs"] == 6 * 4


def test_unsupported_operator_is_named(rng, tmp_path):
    from unas.tfenv import keras
    inp = keras.Input((6,))
    x = keras.layers.Dense(3, activation="tanh")(inp)
    path = tmp_path / "tanh.tflite"
    path.write_bytes(int8_tflite(keras.Model(inp, x), rng, samples=8))
    with pytest.raises(UnsupportedOperatorError, match=r"tanh\.tflite.*TANH"):
        resource_graph(read_tflite(path))


def test_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(DataError, match="bad.tflite"):
        read_tflite(path)
    with pytest.raises(DataError, match="missing.tflite"):
        read_tflite(tmp_path / "missing.tflite")


def _edited(blob: bytes, edit) -> bytes:
    from unas.export.flatbuffer import pack, unpack

    model_t = unpack(blob)
    edit(model_t)
    return pack(model_t)


def _first_constant(model_t):
    sub = model_t.subgraphs[0]
    return next(t for t in sub.tensors
                if model_t.buffers[t.buffer].data is not None and len(model_t.buffers[t.buffer].data))


@pytest.mark.parametrize("edit, message", [
    (lambda m: setattr(m.subgraphs[0].operators[0], "inputs", [0, 999]),
     r"operator 0 \(CONV_2D\) refers to tensor 999; the subgraph has \d+ tensors"),
    (lambda m: setattr(m.subgraphs[0], "outputs", [-5]), r"the subgraph's output list refers to tensor -5"),
    (lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 77),
     r"operator 0 has opcode index 77"),
    (lambda m: setattr(m.subgraphs[0].tensors[0], "buffer", 10 ** 6),
     r"tensor 0 refers to buffer 1000000"),
    (lambda m: setattr(m.subgraphs[0].tensors[0], "type", 99), r"tensor 0 has an unknown type"),
    (lambda m: setattr(m.subgraphs[0].tensors[0], "name", b"\xff\xfe"),
     r"the name of tensor 0 is not UTF-8"),
    (lambda m: setattr(_first_constant(m), "shape", [3, 1000]),
     r"tensor \d+ \(INT\w+, shape \(3, 1000\)\) needs \d+ bytes of data; its buffer \d+ holds"),
])
def test_inconsistent_models_are_one_data_error_naming_the_file(small_model_bytes, edit, message):
    """#23: fuzzed files gave IndexError/KeyError/ValueError/UnicodeDecodeError tracebacks."""
    with pytest.raises(DataError, match=r"^odd\.tflite: " + message):
        parse_tflite(_edited(small_model_bytes, edit), "odd.tflite")


def test_truncated_file_names_the_file(small_model_bytes):
    for cut in (5, 40, len(small_model_bytes) // 2, len(small_model_bytes) - 3):
        with pytest.raises(DataError, match=r"^cut\.tflite: "):
            parse_tflite(small_model_bytes[:cut], "cut.tflite")


def test_codegen_cli_on_a_corrupt_file_is_one_line_error(small_model_bytes, tmp_path, capsys):
    from tflm_runtime.codegen.__main__ import main

    bad = tmp_path / "flipped.tflite"
    bad.write_bytes(_edited(small_model_bytes,
                            lambda m: setattr(m.subgraphs[0].operators[1], "outputs", [4242])))
    assert main([str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: operator 1") and "\n" not in err
