"""Small trained models the tests share (written by the tests themselves, never committed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


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
