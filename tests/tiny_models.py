"""Small models the tests share (written by the tests themselves, never committed): trained
Keras models, and any Keras model as an int8 ``.tflite``. Importing this module imports no
TensorFlow."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def randomise_weights(model, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Non-trivial weights and biases, drawn N(0, ``scale``) (biases of zero would hide bias
    bugs, and the converter drops an all-zero bias)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32")
                               for w in weights])


def int8_tflite(model, rng: np.random.Generator, samples: int = 16, randomise: bool = False,
                **kwargs) -> bytes:
    """``model`` as a full-integer int8 ``.tflite`` (``kwargs`` go to
    :func:`unas.export.quantize.keras_to_int8_tflite`), calibrated on ``samples`` standard-normal
    inputs drawn from ``rng``; with ``randomise``, :func:`randomise_weights` first (same
    generator)."""
    from unas.export.quantize import keras_to_int8_tflite

    if randomise:
        randomise_weights(model, rng)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return keras_to_int8_tflite(model, rng.normal(size=(samples, *shape)).astype("float32"),
                                **kwargs)


def train_digits_cnn(path: Path, channels: int, epochs: int) -> Path:
    """Conv(channels, 3x3, ReLU) -> 2x2 max pool -> flatten -> logits, trained ``epochs`` epochs
    on the digits training split (seeded) and saved as ``path`` (a ``.keras`` file)."""
    from unas.data import DatasetSpec, load_dataset
    from unas.tfenv import keras

    splits = load_dataset(DatasetSpec(name="digits", validation_split=0.2, augment=False),
                          np.random.default_rng(0))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(splits.input_shape),
        keras.layers.Conv2D(channels, 3, padding="same", activation="relu"),
        keras.layers.MaxPool2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(splits.num_classes),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(splits.x_train, splits.y_train, epochs=epochs, batch_size=64, verbose=0)
    model.save(path)
    return path
