"""Full-integer int8 post-training quantisation of a tf_keras model to a ``.tflite`` flatbuffer.

Every tensor (activations and weights) is int8, biases int32, and the model's input and output
are int8 too, so the result runs under TFLM's int8 kernels with no float anywhere::

    >>> import numpy as np
    >>> from unas.tfenv import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3)])
    >>> rep = np.random.default_rng(0).normal(size=(8, 4, 4, 1)).astype("float32")
    >>> blob = keras_to_int8_tflite(model, rep)
    >>> blob[4:8]
    b'TFL3'
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from unas.errors import DataError

DEFAULT_NUM_SAMPLES = 200


def keras_to_int8_tflite(model: Any, representative: np.ndarray,
                         num_samples: int = DEFAULT_NUM_SAMPLES) -> bytes:
    """Convert ``model`` to a full-integer int8 ``.tflite`` (int8 input and output).

    ``representative`` holds float input samples (batch first, same preprocessing as training,
    drawn from the training split); the first ``num_samples`` calibrate the activation ranges.
    """
    from unas.tfenv import tf

    samples = np.asarray(representative, dtype=np.float32)
    expected = tuple(int(d) for d in model.inputs[0].shape[1:])
    if samples.ndim != len(expected) + 1 or tuple(samples.shape[1:]) != expected:
        raise DataError(f"representative data: expected shape (N, {', '.join(map(str, expected))})"
                        f" matching the model input, got {samples.shape}")
    if len(samples) == 0 or num_samples < 1:
        raise DataError("representative data: expected at least one calibration sample")
    samples = samples[:num_samples]

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())
