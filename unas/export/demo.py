"""A small int8 model for the documentation's examples (conv, depthwise conv, global average
pooling, dense on an 8x8 single-channel input), built and quantised with a fixed seed.

>>> blob = small_int8_tflite()
>>> blob[4:8]
b'TFL3'
"""
from __future__ import annotations

import numpy as np

from unas.export.quantize import keras_to_int8_tflite


def small_int8_tflite(seed: int = 0) -> bytes:
    """The example model as int8 ``.tflite`` bytes (initial weights and calibration data drawn
    from ``seed``)."""
    from unas.tfenv import keras

    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.DepthwiseConv2D(3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    model.set_weights([rng.normal(0.0, 0.3, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    x = rng.normal(size=(16, 8, 8, 1)).astype("float32")
    return keras_to_int8_tflite(model, x)
