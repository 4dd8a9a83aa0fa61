"""The generator refuses models whose operators disagree with their tensors (issue #23, item 2):
each test builds a small valid int8 model, breaks one thing in its flatbuffer, and checks the
one-line refusal (file, operator index, opcode, what is wrong). The stride case also shows that
the C the generator used to emit for it differs from TFLM, so refusing is right."""
import re
import shutil

import numpy as np
import pytest
from tiny_models import int8_tflite

from tflm_runtime.codegen import generate
from tflm_runtime.codegen import validate as validate_module
from tflm_runtime.tflite_model import parse_tflite
from unas.errors import DataError, UnsupportedOperatorError
from unas.export.flatbuffer import pack, unpack


@pytest.fixture(scope="module")
def base():
    """Conv 3x3 same (8 channels, bias) -> 2x2 max pool -> depthwise 3x3 -> flatten -> dense 5,
    and one with pad / add / concatenation / mean / softmax: name -> int8 .tflite bytes."""
    from unas.tfenv import keras
    L = keras.layers
    rng = np.random.default_rng(0)
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(5)(x)
    blobs = {"chain": int8_tflite(keras.Model(inp, x), rng, randomise=True)}
    inp = keras.Input((6, 6, 3))
    y = L.ZeroPadding2D(((1, 2), (0, 1)))(inp)  # asymmetric: stays a PAD
    y = L.Conv2D(4, 3)(y)
    z = L.Add()([y, L.Conv2D(4, 1)(y)])
    z = L.Concatenate()([z, y])
    z = L.GlobalAveragePooling2D()(z)
    z = L.Softmax()(L.Dense(3)(z))
    blobs["misc"] = int8_tflite(keras.Model(inp, z), rng, randomise=True)
    return blobs


def _op(model_t, opcode):
    """The first operator with ``opcode`` and its index."""
    from tflm_runtime.tflite_model import _enum_names
    names = _enum_names("BuiltinOperator")
    for i, op in enumerate(model_t.subgraphs[0].operators):
        code = model_t.operatorCodes[op.opcodeIndex]
        if names[max(code.builtinCode, code.deprecatedBuiltinCode)] == opcode:
            return i, op
    raise AssertionError(f"no {opcode}")


def _broken(blob, edit):
    model_t = unpack(blob)
    edit(model_t)
    return pack(model_t)


def _refusal(tmp_path, blob, error=UnsupportedOperatorError):
    with pytest.raises(error) as info:
        generate(parse_tflite(blob, "broken.tflite"), tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message and message.startswith("broken.tflite: ")
    return message


def _set_stride(opcode, stride):
    def edit(model_t):
        _, op = _op(model_t, opcode)
        op.builtinOptions.strideH = op.builtinOptions.strideW = stride
    return edit


def test_valid_models_pass(base, tmp_path):
    for name, blob in base.items():
        generate(parse_tflite(blob, f"{name}.tflite"), tmp_path / name)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_pool_stride_mismatch_is_refused_and_tflm_disagrees(base, tmp_path, monkeypatch):
    blob = _broken(base["chain"], _set_stride("MAX_POOL_2D", 3))
    message = _refusal(tmp_path, blob)
    assert "operator 1 (MAX_POOL_2D)" in message and "stride (3, 3)" in message
    assert "gives output height, width (3, 3)" in message and "(1, 4, 4, 8)" in message
    # without the check, the C computes something else than TFLM: the refusal is right
    from tflm_runtime.codegen.verify import compare_with_tflm
    monkeypatch.setattr("tflm_runtime.codegen.generator.validate", lambda model: None)
    result = compare_with_tflm({"pool": blob}, tmp_path / "cmp", np.random.default_rng(1))
    assert not result["pool"].bit_exact


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_conv_stride_mismatch_is_refused_and_tflm_disagrees(base, tmp_path, monkeypatch):
    blob = _broken(base["chain"], _set_stride("CONV_2D", 2))
    message = _refusal(tmp_path, blob)
    assert "operator 0 (CONV_2D)" in message and "SAME padding" in message
    assert "gives output height, width (4, 4)" in message and "(1, 8, 8, 8)" in message
    from tflm_runtime.codegen.verify import compare_with_tflm
    monkeypatch.setattr("tflm_runtime.codegen.generator.validate", lambda model: None)
    result = compare_with_tflm({"conv": blob}, tmp_path / "cmp", np.random.default_rng(1))
    assert not result["conv"].bit_exact


def test_depthwise_zero_stride_is_refused(base, tmp_path):
    message = _refusal(tmp_path, _broken(base["chain"], _set_stride("DEPTHWISE_CONV_2D", 0)))
    assert "operator 2 (DEPTHWISE_CONV_2D): stride (0, 0) must be >= 1" in message


def _tensor_of(model_t, opcode, position=None, output=False):
    _, op = _op(model_t, opcode)
    index = op.outputs[0] if output else op.inputs[position]
    return model_t.subgraphs[0].tensors[index]


def test_reshape_element_count_is_refused(base, tmp_path):
    def edit(model_t):
        i, op = _op(model_t, "RESHAPE")
        model_t.subgraphs[0].tensors[op.outputs[0]].shape = np.array([53761, 31], np.int32)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 3 (RESHAPE)" in message and "(53761, 31) has 1666591" in message


def test_zero_point_outside_int8_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "MAX_POOL_2D", output=True).quantization.zeroPoint = \
            np.array([-4294967295], np.int64)
    message = _refusal(tmp_path, _broken(base["chain"], edit), DataError)  # the reader's
    assert re.search(r"tensor \d+ \(INT8\) has zero point -4294967295, outside \[-128, 127\]",
                     message)


def test_scale_count_other_than_channels_is_refused(base, tmp_path):
    def edit(model_t):
        q = _tensor_of(model_t, "CONV_2D", 1).quantization
        q.scale, q.zeroPoint = q.scale[:5], q.zeroPoint[:5]
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 0 (CONV_2D)" in message and "has 5 scales" in message


def test_activation_with_several_scales_is_refused(base, tmp_path):
    def edit(model_t):
        q = _tensor_of(model_t, "MAX_POOL_2D", output=True).quantization
        q.scale, q.zeroPoint = np.repeat(q.scale, 8), np.repeat(q.zeroPoint, 8)
        q.quantizedDimension = 3
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 1 (MAX_POOL_2D)" in message and "has 8 scales; an int8 activation" in message


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_scale_is_refused(base, tmp_path, scale):
    def edit(model_t):
        _tensor_of(model_t, "FULLY_CONNECTED", output=True).quantization.scale = \
            np.array([scale], np.float32)
    message = _refusal(tmp_path, _broken(base["chain"], edit), DataError)  # the reader's
    assert ("has a non-finite quantisation scale" in message if not scale == scale or
            scale == float("inf") else f"has quantisation scale {scale!r}; scales must be > 0"
            in message)


def test_huge_tensor_is_refused(base, tmp_path):
    def edit(model_t):  # 512 MiB: the reshape and the dense layer agree, so only the size is wrong
        _, reshape = _op(model_t, "RESHAPE")
        tensors = model_t.subgraphs[0].tensors
        for index in (reshape.inputs[0], reshape.outputs[0]):
            tensors[index].shape = np.array([1, 16384, 128, 256], np.int32)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "has 536870912 bytes; at most 67108864 (64 MiB)" in message


def test_constant_buffer_size_is_refused_when_read(base, tmp_path):
    def edit(model_t):
        w = _tensor_of(model_t, "FULLY_CONNECTED", 1)
        model_t.buffers[w.buffer].data = model_t.buffers[w.buffer].data[:-3]
    message = _refusal(tmp_path, _broken(base["chain"], edit), DataError)
    assert re.search(r"\(INT8, shape \(5, 128\)\) needs 640 bytes of data; its buffer \d+ holds 637", message)


def test_filter_shape_is_refused(base, tmp_path):
    def edit(model_t):  # a 3x3x3 filter said to be 3x9x1: same bytes, wrong input channels
        _tensor_of(model_t, "CONV_2D", 1).shape = np.array([8, 3, 9, 1], np.int32)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 0 (CONV_2D): filter shape (8, 3, 9, 1) does not match" in message


def test_depth_multiplier_is_refused(base, tmp_path):
    def edit(model_t):
        _op(model_t, "DEPTHWISE_CONV_2D")[1].builtinOptions.depthMultiplier = 2
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "depth_multiplier 2 but 8 input and 8 output channels" in message


def test_fully_connected_output_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "FULLY_CONNECTED", output=True).shape = np.array([1, 6], np.int32)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 4 (FULLY_CONNECTED): output" in message and "1 rows of 5 units" in message


def test_bias_dtype_is_refused(base, tmp_path):
    def edit(model_t):
        b = _tensor_of(model_t, "CONV_2D", 2)
        b.type = 9  # INT8: 8 bytes of its 32 kept, for its 8 values
        model_t.buffers[b.buffer].data = model_t.buffers[b.buffer].data[:8]
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 0 (CONV_2D): tensor" in message and "is int8; expected int32" in message


def test_operator_input_count_is_refused(base, tmp_path):
    def edit(model_t):
        _, op = _op(model_t, "MAX_POOL_2D")
        op.inputs = np.array([op.inputs[0], op.inputs[0]], np.int32)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 1 (MAX_POOL_2D): 2 inputs and 1 outputs; expected 1 inputs" in message


def test_pool_requantisation_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "MAX_POOL_2D", output=True).quantization.zeroPoint = \
            np.array([3], np.int64)
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "operator 1 (MAX_POOL_2D): input quantisation" in message
    assert "pools do not requantise" in message


def test_add_shapes_are_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "ADD", output=True).shape = np.array([1, 5, 7, 4], np.int32)
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(ADD): shapes" in message and "differ" in message


def test_concatenation_sizes_are_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "CONCATENATION", output=True).shape = np.array([1, 7, 5, 9],
                                                                            np.int32)
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(CONCATENATION): inputs" in message and "do not add up" in message


def test_pad_output_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "PAD", output=True).shape = np.array([1, 9, 8, 3], np.int32)
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(PAD): padding (1, 6, 6, 3)" in message and "gives (1, 9, 7, 3)" in message


def test_mean_output_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "MEAN", output=True).shape = np.array([1, 1, 8], np.int32)
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(MEAN): reducing (1, 7, 5, 8) over axes [1, 2] gives (1, 8)" in message


def test_softmax_output_quantisation_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "SOFTMAX", output=True).quantization.zeroPoint = \
            np.array([0], np.int64)
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(SOFTMAX): int8 softmax output must have scale 1/256 and zero point -128" in message


def test_max_tensor_bytes_is_documented():
    assert validate_module.MAX_TENSOR_BYTES == 64 << 20
    assert "MAX_TENSOR_BYTES" in validate_module.__doc__


# What the 2,000-mutant fuzz run (benchmarks/bench_fuzz.py) still found after the checks above:
# models TFLM aborts on or computes differently, which the generator accepted.

@pytest.mark.parametrize("beta", [0.0, 8.3e-39, None])
def test_softmax_beta_tflm_cannot_scale_is_refused(base, tmp_path, beta):
    def edit(model_t):
        _, op = _op(model_t, "SOFTMAX")
        if beta is None:  # no options: TFLM's parser leaves beta at 0
            op.builtinOptionsType, op.builtinOptions = 0, None
        else:
            op.builtinOptions.beta = beta
    message = _refusal(tmp_path, _broken(base["misc"], edit))
    assert "(SOFTMAX)" in message and "beta * input scale * 2^26 must be > 1" in message


def test_depth_multiplier_zero_is_refused(base, tmp_path):
    def edit(model_t):  # TFLM's reference loop over a zero multiplier writes no output
        _, op = _op(model_t, "DEPTHWISE_CONV_2D")
        op.builtinOptions.depthMultiplier = 0
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "(DEPTHWISE_CONV_2D)" in message and "depth_multiplier 0 but 8 input and 8 output" \
        in message


def test_variable_tensor_is_refused(base, tmp_path):
    def edit(model_t):
        _tensor_of(model_t, "MAX_POOL_2D", output=True).isVariable = True
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert "is a variable (state) tensor" in message


def test_scales_without_zero_points_are_refused_when_read(base, tmp_path):
    def edit(model_t):  # TFLM reads such a tensor as not quantised at all
        _tensor_of(model_t, "CONV_2D", 0).quantization.zeroPoint = None
    message = _refusal(tmp_path, _broken(base["chain"], edit), DataError)
    assert re.search(r"tensor \d+ has 1 quantisation scales but 0 zero points", message)


@pytest.mark.parametrize("opcode", ["CONV_2D", "MAX_POOL_2D"])
def test_window_operator_without_options_is_refused(base, tmp_path, opcode):
    def edit(model_t):
        _, op = _op(model_t, opcode)
        op.builtinOptionsType, op.builtinOptions = 0, None
    message = _refusal(tmp_path, _broken(base["chain"], edit))
    assert f"({opcode}): has no builtin options (strides, padding)" in message
