"""Generated C vs TFLM, byte for byte, on hand-written int8 models covering every supported op,
stride, padding, kernel size 1/3/5/7, depthwise (in place and not), per-channel quantisation.

All models are generated, then compiled in one parallel batch with
``gcc -std=c99 -Wall -Wextra -Werror -fsanitize=address,undefined`` and run on random inputs.
"""
import re
import shutil
import subprocess

import numpy as np
import pytest
from tiny_models import int8_tflite, randomise_weights

from tflm_runtime.codegen import generate
from tflm_runtime.tflite_model import parse_tflite
from unas.errors import UnsupportedOperatorError

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _models():
    """name -> (keras model, input shape)."""
    from unas.tfenv import keras
    L = keras.layers
    models = {}

    def add(name, shape, body):
        inp = keras.Input(shape)
        models[name] = (keras.Model(inp, body(inp)), shape)

    add("conv1x1_relu", (6, 6, 5), lambda x: L.Conv2D(7, 1, activation="relu")(x))
    add("conv1x1_s2", (7, 7, 4), lambda x: L.Conv2D(3, 1, strides=2)(x))
    add("conv3_s2_same_relu6", (9, 9, 3),
        lambda x: L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x))
    add("conv5_valid", (10, 9, 2), lambda x: L.Conv2D(5, 5, padding="valid")(x))
    add("conv7_s2_same", (11, 11, 3), lambda x: L.Conv2D(4, 7, strides=2, padding="same")(x))
    add("conv3_s1_same_odd", (5, 8, 13), lambda x: L.Conv2D(9, 3, padding="same")(x))
    add("dw3_inplace_relu", (8, 8, 3),
        lambda x: L.DepthwiseConv2D(3, padding="same", activation="relu")(
            L.Conv2D(6, 1)(x)))
    add("dw5_s2_same", (9, 9, 5), lambda x: L.DepthwiseConv2D(5, strides=2, padding="same")(
        L.Conv2D(5, 1)(x)))
    add("dw7_valid", (9, 9, 3), lambda x: L.DepthwiseConv2D(7, padding="valid")(x))
    add("dw3_mult2", (6, 6, 3), lambda x: L.DepthwiseConv2D(3, depth_multiplier=2,
                                                            padding="same")(x))
    add("maxpool3_s2_same", (8, 8, 3), lambda x: L.MaxPooling2D(3, strides=2, padding="same")(
        L.Conv2D(3, 1)(x)))
    add("maxpool2_valid", (8, 7, 3), lambda x: L.MaxPooling2D(2)(x))
    add("avgpool3_same", (7, 7, 4), lambda x: L.AveragePooling2D(3, strides=1, padding="same")(
        L.Conv2D(4, 1)(x)))
    add("avgpool2_valid", (8, 8, 3), lambda x: L.AveragePooling2D(2)(x))

    def residual(x):
        y = L.Conv2D(6, 3, padding="same", activation="relu")(x)
        z = L.Conv2D(6, 3, padding="same")(y)
        return L.Add()([y, z])
    add("add_residual", (6, 6, 3), residual)

    def concat(x):
        a = L.Conv2D(3, 1, activation="relu")(x)
        b = L.Conv2D(5, 3, padding="same")(x)
        return L.Concatenate()([a, b])
    add("concatenation", (6, 6, 2), concat)
    add("mean_gap", (5, 5, 7), lambda x: L.GlobalAveragePooling2D()(L.Conv2D(7, 1)(x)))
    add("mean_keepdims", (4, 6, 3), lambda x: L.GlobalAveragePooling2D(keepdims=True)(
        L.Conv2D(5, 1)(x)))
    add("flatten_dense_softmax", (4, 4, 2), lambda x: L.Softmax()(L.Dense(10)(L.Flatten()(x))))
    add("dense_relu_softmax_wide", (40,), lambda x: L.Softmax()(
        L.Dense(37)(L.Dense(23, activation="relu")(x))))
    add("pad", (5, 5, 3), lambda x: L.Conv2D(4, 3)(L.ZeroPadding2D(((1, 2), (2, 1)))(x)))

    def inverted_residual(x):
        x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
        y = L.Conv2D(24, 1, activation="relu6")(x)
        y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
        y = L.Conv2D(8, 1)(y)
        x = L.Add()([x, y])
        y = L.Conv2D(16, 1, activation="relu6")(x)
        y = L.DepthwiseConv2D(5, strides=2, padding="same", activation="relu6")(y)
        y = L.Conv2D(12, 1)(y)
        y = L.GlobalAveragePooling2D()(y)
        return L.Softmax()(L.Dense(5)(y))
    add("inverted_residual", (16, 16, 3), inverted_residual)
    return models


def _convert_float_io(model, shape, rng):
    from unas.tfenv import tf
    randomise_weights(model, rng)
    data = rng.normal(size=(16, *shape)).astype("float32")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([d[None]] for d in data)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


#: (seed, samples) of the random inputs conftest's ``comparisons`` runs ``blobs`` on
COMPARISON_INPUTS = (5, 6)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(2024)
    blobs = {name: int8_tflite(m, rng, randomise=True) for name, (m, _) in _models().items()}
    from unas.tfenv import keras
    inp = keras.Input((6, 6, 2))
    float_model = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(inp))
    blobs["float_io_quantize_dequantize"] = _convert_float_io(float_model, (6, 6, 2), rng)
    return blobs


def test_zoo_covers_every_supported_operator(blobs):
    seen = {op.opcode for blob in blobs.values() for op in parse_tflite(blob).operators}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D",
            "ADD", "CONCATENATION", "MEAN", "RESHAPE", "SOFTMAX", "PAD", "QUANTIZE",
            "DEQUANTIZE"} <= seen


def test_generated_code_is_bit_exact_with_tflm(comparisons):
    failures = {n: c.first_difference for n, c in comparisons.items() if not c.bit_exact}
    assert not failures


def test_arena_equals_predicted_working_set(comparisons):
    for name, c in comparisons.items():
        assert c.generated.arena_bytes == c.generated.predicted_arena_bytes, name


def test_depthwise_runs_in_place(comparisons):
    gen = comparisons["dw3_inplace_relu"].generated
    source = (gen.out_dir / "model.c").read_text()
    call = re.search(r"unas_dwconv_planes3s1_s8\(&(\w+), (A\(\d+\)), \2, A\((\d+)\)\);  "
                     r"/\* in place", source)
    assert call
    # in place: one input channel padded for the 3x3 window (10 x 10, + 1 byte the last row's
    # tap words may read) in the arena while the depthwise conv runs, where the network input
    # was (dead by then): the arena is input + conv output only, no scratch beside it; TFLM would
    # hold the conv output and the depthwise output at once (2 * 384 bytes)
    plane = int(call.group(3))
    conv_out = int(call.group(2)[2:-1])
    assert plane + 10 * 10 + 1 <= conv_out or conv_out + 8 * 8 * 6 <= plane
    assert gen.arena_bytes == 8 * 8 * 3 + 8 * 8 * 6


def test_header_api_and_manifest(comparisons):
    gen = comparisons["conv3_s2_same_relu6"].generated
    header = (gen.out_dir / "model.h").read_text()
    for name in ("int8_t *model_input(void);", "int8_t *model_output(void);",
                 "void model_invoke(void);", "MODEL_INPUT_BYTES 243", "MODEL_OUTPUT_BYTES 200",
                 f"MODEL_ARENA_BYTES {gen.arena_bytes}"):
        assert name in header
    import json
    manifest = json.loads((gen.out_dir / "manifest.json").read_text())
    assert manifest["sources"] == ["model.c", "unas_kernels.c", "unas_fused.c"]
    assert all((gen.out_dir / f).exists() for f in manifest["sources"] + manifest["headers"])
    source = (gen.out_dir / "model.c").read_text()
    assert "malloc" not in source  # the filter: plain int8, or packed for the SMLAD kernels
    assert any(f"static const {t} op0_{n}[" in source
               for t, n in (("int8_t", "w"), ("int8_t", "wp"), ("int32_t", "wx")))


def test_cli_verbose_plan_and_unsupported_operator(blobs, tmp_path, rng):
    import sys
    path = tmp_path / "m.tflite"
    path.write_bytes(blobs["add_residual"])
    proc = subprocess.run([sys.executable, "-m", "tflm_runtime.codegen", str(path), "-o",
                           str(tmp_path / "out"), "--verbose"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lower bound" in proc.stdout and "in place of" in proc.stdout
    from unas.tfenv import keras
    inp = keras.Input((8,))
    bad = keras.Model(inp, keras.layers.Dense(4, activation="sigmoid")(inp))
    bad_path = tmp_path / "sigmoid.tflite"
    bad_path.write_bytes(int8_tflite(bad, rng, randomise=True))
    with pytest.raises(UnsupportedOperatorError, match="LOGISTIC"):
        generate(bad_path, tmp_path / "bad")
    proc = subprocess.run([sys.executable, "-m", "tflm_runtime.codegen", str(bad_path), "-o",
                           str(tmp_path / "bad2")], capture_output=True, text=True)
    assert proc.returncode == 2 and "LOGISTIC" in proc.stderr and "sigmoid.tflite" in proc.stderr
