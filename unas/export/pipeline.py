"""Keras model → deployable int8 ``.tflite``: quantise, reorder to the minimum-peak schedule,
attach an offline memory plan, and measure float vs int8 accuracy (the int8 figure from TFLM).

Example (a small model; ``x`` stands in for the training split)::

    >>> from unas.export.demo import small_int8_tflite
    >>> deployed = reorder_and_plan(small_int8_tflite())
    >>> deployed.head_bytes <= deployed.original_head_bytes
    True
    >>> deployed.order, deployed.head_bytes, deployed.peak_bytes
    ((0, 1, 2, 3), 208, 208)
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from typing import TYPE_CHECKING, Any

import numpy as np

from unas.errors import DataError
from unas.export.flatbuffer import reorder_operators, with_offline_plan
from unas.export.quantize import DEFAULT_NUM_SAMPLES, keras_to_int8_tflite
from tflm_runtime.arena import offline_plan, optimal_operator_order, predicted_head, predicted_peak
from tflm_runtime.tflite_model import parse_tflite

if TYPE_CHECKING:  # pragma: no cover
    from tflm_runtime.tflm import ArenaUsage, TflmRunner


@dataclass(frozen=True)
class DeployedModel:
    """A ``.tflite`` ready for TFLM and what the project predicts TFLM will need.

    ``tflite`` has its operators in ``order`` (indices of the converter's order) and carries an
    ``OfflineMemoryAllocation`` plan; ``head_bytes`` is the non-persistent arena TFLM will use
    with it (exact replay), ``peak_bytes`` the working-set peak of that order (lower bound), and
    ``original_head_bytes`` what TFLM would use for the converter's file as it was.
    """

    tflite: bytes
    order: tuple[int, ...]
    head_bytes: int
    peak_bytes: int
    original_head_bytes: int
    original_peak_bytes: int


def reorder_and_plan(model_bytes: bytes) -> DeployedModel:
    """Reorder ``model_bytes`` to the minimum-peak schedule and attach an offline plan.

    If the converter's own order with an offline plan needs a smaller head than the
    minimum-peak order (placement can matter more than the working set), that order is kept.
    """
    model = parse_tflite(model_bytes)
    best_order, _ = optimal_operator_order(model)
    identity = list(range(len(best_order)))
    candidates = []
    for order in ([best_order, identity] if best_order != identity else [identity]):
        if order == identity:
            reordered, parsed = model_bytes, model
        else:
            reordered = reorder_operators(model_bytes, order)
            parsed = parse_tflite(reordered)
        offsets, head = offline_plan(parsed)
        candidates.append((head, predicted_peak(parsed), order, reordered, offsets))
    head, peak, order, reordered, offsets = min(candidates, key=lambda c: (c[0], c[1]))
    return DeployedModel(tflite=with_offline_plan(reordered, offsets), order=tuple(order),
                         head_bytes=head, peak_bytes=peak,
                         original_head_bytes=predicted_head(model),
                         original_peak_bytes=predicted_peak(model))


def representative_samples(x_train: np.ndarray, rng: np.random.Generator,
                           num_samples: int = DEFAULT_NUM_SAMPLES) -> np.ndarray:
    """A random subset of the training split for calibrating the quantisation."""
    if len(x_train) == 0:
        raise DataError("training split: expected at least one example for calibration")
    take = rng.choice(len(x_train), size=min(num_samples, len(x_train)), replace=False)
    return np.asarray(x_train)[np.sort(take)]


def float_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model (logits or probabilities)."""
    predictions = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == np.asarray(y).reshape(-1)))


def int8_accuracy_tflm(model_bytes: bytes, x: np.ndarray, y: np.ndarray,
                       progress: Callable[[Iterator], Iterator] | None = None) -> float:
    """Top-1 accuracy of an int8 ``.tflite`` run in TFLM on float inputs ``x`` (quantised here
    with the model's input scale and zero point)."""
    from tflm_runtime.tflm import TflmRunner

    return _tflm_accuracy(TflmRunner(model_bytes), x, y, progress)


def _tflm_accuracy(runner: "TflmRunner", x: np.ndarray, y: np.ndarray,
                   progress: Callable[[Iterator], Iterator] | None = None) -> float:
    from tflm_runtime.tflm import quantize_float_inputs

    outputs = runner.run(quantize_float_inputs(runner, x), progress=progress)
    return float(np.mean(np.argmax(outputs.reshape(len(x), -1), axis=-1)
                         == np.asarray(y).reshape(-1)))


@dataclass(frozen=True)
class ExportResult:
    """An exported model, its float / int8 test accuracy (int8 measured in TFLM) and the arena
    figures of the TFLM interpreter that measured it."""

    deployed: DeployedModel
    float_accuracy: float
    int8_accuracy: float
    arena_usage: "ArenaUsage"

    @property
    def accuracy_drop(self) -> float:
        return self.float_accuracy - self.int8_accuracy


def export_keras(model: Any, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 rng: np.random.Generator, num_samples: int = DEFAULT_NUM_SAMPLES,
                 progress: Callable[[Iterator], Iterator] | None = None,
                 name: str = "the exported model") -> ExportResult:
    """Quantise ``model`` (calibrated on ``num_samples`` random training examples), reorder,
    plan, and measure float and int8 (TFLM) accuracy on the test split; ``name`` (the
    ``.tflite`` it will be written to) names the model in TFLM's errors."""
    blob = keras_to_int8_tflite(model, representative_samples(x_train, rng, num_samples),
                                num_samples)
    from tflm_runtime.tflm import TflmRunner

    deployed = reorder_and_plan(blob)
    runner = TflmRunner(deployed.tflite, path=name)
    int8 = _tflm_accuracy(runner, x_test, y_test, progress)
    return ExportResult(deployed, float_accuracy(model, x_test, y_test), int8,
                        runner.arena_usage())
