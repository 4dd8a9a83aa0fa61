"""int8 post-training quantisation: int8 everywhere, outputs close to the float model."""
import numpy as np
import pytest

from unas.errors import DataError
from tflm_runtime.tflite_model import quantize_input
from unas.export.quantize import keras_to_int8_tflite


def _small_model():
    from unas.tfenv import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(3),
    ])


def test_int8_model_has_int8_io_and_tracks_float_outputs(rng):
    from unas.tfenv import tf

    model = _small_model()
    rep = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
    blob = keras_to_int8_tflite(model, rep, num_samples=32)
    assert blob[4:8] == b"TFL3"
    interp = tf.lite.Interpreter(model_content=blob)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    for t in interp.get_tensor_details():
        assert t["dtype"] in (np.int8, np.int32), t["name"]
    x = rep[:4]
    s_in, z_in = inp["quantization"]
    s_out, z_out = out["quantization"]
    got = []
    for sample in x:
        interp.set_tensor(inp["index"], quantize_input(sample[None], s_in, z_in))
        interp.invoke()
        got.append((interp.get_tensor(out["index"]).astype(np.float32) - z_out) * s_out)
    want = model.predict(x, verbose=0)
    span = float(want.max() - want.min())
    assert np.max(np.abs(np.concatenate(got) - want)) < 0.1 * span + 4 * s_out


def test_wrong_representative_shape_is_one_line_error(rng):
    with pytest.raises(DataError, match="representative data"):
        keras_to_int8_tflite(_small_model(), rng.normal(size=(4, 9, 9, 1)))


def test_quantize_input_saturates():
    q = quantize_input(np.array([-1e6, 0.0, 1e6]), 0.5, 3)
    assert q.tolist() == [-128, 3, 127]
