"""Train one candidate: tf.data pipeline, optimiser, pruning hook, validation/test error.

The validation error is the search objective; the test error is reported alongside and never
used for selection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces.base import Architecture
from unas.config import PruningConfig, TrainingConfig
from unas.train.optim import make_optimizer
from unas.train.pruning_hook import pruning_for


@dataclass
class TrainOutcome:
    """A trained model, the architecture describing it (smaller than the proposed one if pruning
    materialised a smaller network), its errors and its per-epoch training curve."""

    model: Any
    arch: Architecture
    val_error: float
    test_error: float
    curve: dict[str, list[float]]


class DataPipeline:
    """The tf.data datasets of one loaded dataset, built once per worker process."""

    def __init__(self, splits: Any, spec: Any, batch_size: int, eval_batch_size: int = 1024) -> None:
        from unas.tfenv import tf

        self.splits = splits
        self.spec = spec
        self.batch_size = batch_size
        self.num_train = len(splits.y_train)
        self.steps_per_epoch = max(1, self.num_train // batch_size)
        self._train = tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train))
        self.val = tf.data.Dataset.from_tensor_slices(
            (splits.x_val, splits.y_val)).batch(eval_batch_size).cache()
        self.test = tf.data.Dataset.from_tensor_slices(
            (splits.x_test, splits.y_test)).batch(eval_batch_size).cache()

    def train_dataset(self, seed: int) -> Any:
        """Shuffled (and augmented, if the dataset asks for it) batches; same seed → same order."""
        from unas.data.augment import augment_fn
        from unas.tfenv import tf

        ds = self._train.shuffle(self.num_train, seed=seed, reshuffle_each_iteration=True)
        augment = augment_fn(self.spec, np.random.default_rng(seed))
        if augment is not None:
            ds = ds.map(augment)  # sequential: the augmentation generator is seeded
        # Whole batches only (one traced shape, no retracing for a short last batch); the
        # reshuffle puts every example into some epoch.
        drop = self.num_train >= self.batch_size
        return ds.batch(self.batch_size, drop_remainder=drop).prefetch(tf.data.AUTOTUNE)


def _outputs_logits(model: Any) -> bool:
    from unas.tfenv import keras

    last = model.layers[-1]
    return not (isinstance(last, keras.layers.Softmax)
                or getattr(last, "activation", None) is keras.activations.softmax)


def _compile(model: Any, optimizer: Any = None) -> None:
    from unas.tfenv import keras

    model.compile(optimizer=optimizer or "sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=_outputs_logits(model)),
                  metrics=["accuracy"])


def _error(model: Any, dataset: Any) -> float:
    scores = model.evaluate(dataset, verbose=0, return_dict=True)
    return float(1.0 - scores["accuracy"])


def train_candidate(arch: Architecture, data: DataPipeline, training: TrainingConfig,
                    pruning: PruningConfig, pruning_target: float | None, seed: int) -> TrainOutcome:
    """Build ``arch``, train it as ``training`` says (pruning towards ``pruning_target`` when
    enabled) and measure it. Raises FloatingPointError if the loss becomes NaN."""
    from unas.tfenv import keras

    keras.backend.clear_session()
    # Keras draws unseeded initialiser seeds from Python's `random`, so seed all of TF/Keras's
    # generators: the same task seed then gives the same initial weights and the same training.
    keras.utils.set_random_seed(seed)
    splits = data.splits
    build_kwargs = {"dropout": training.dropout} if training.dropout > 0 else {}
    model = arch.build(tuple(splits.input_shape), int(splits.num_classes), **build_kwargs)
    if training.batch_norm_momentum is not None:
        # short trainings (few hundred steps) need faster-moving BatchNorm statistics
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = training.batch_norm_momentum
    trained, callbacks, materialise = pruning_for(model, arch, pruning, pruning_target,
                                                  data.steps_per_epoch)
    _compile(trained, make_optimizer(training, data.steps_per_epoch))
    history = trained.fit(data.train_dataset(seed), epochs=training.epochs, validation_data=data.val,
                        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks], verbose=0)
    curve = {name: [float(v) for v in values] for name, values in history.history.items()}
    if not all(np.isfinite(curve.get("loss", [np.nan]))) or len(curve["loss"]) < training.epochs:
        raise FloatingPointError("training diverged (NaN or infinite loss)")
    final_model, final_arch = materialise()
    if final_model is trained:
        val_error = 1.0 - curve["val_accuracy"][-1]
    else:
        _compile(final_model)
        val_error = _error(final_model, data.val)
    return TrainOutcome(model=final_model, arch=final_arch, val_error=float(val_error),
                        test_error=_error(final_model, data.test), curve=curve)
