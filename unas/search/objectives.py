"""The four objectives and μNAS's random scalarisation of them (paper, Eq. 1).

``L^t(α) = max_i λ_i^t f_i(α)`` with ``1/λ_i ~ U[0, b_i]`` resampled every round. We use the
form of the μNAS reference code: objectives are divided by their bounds ``b_i`` (so 1.0 means
"at the bound"), capped at ``cap`` (one hugely oversized candidate must not dominate the scale),
and weighted by ``λ_i ~ U(0, 1)``.

>>> import numpy as np
>>> f = normalise((0.05, 1000, 2000, 10_000), bounds=(0.1, 2000, 2000, 20_000), cap=10.0)
>>> f.tolist()
[0.5, 0.5, 1.0, 0.5]
>>> float(scalarise(f, np.array([1.0, 1.0, 0.5, 1.0])))
0.5
>>> o = Objectives(0.2, 1000, 2000, 10_000)
>>> o.within_resource_bounds((0.1, 2000, 2000, 20_000)), o.within_all_bounds((0.1, 2000, 2000, 20_000))
(True, False)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OBJECTIVE_NAMES = ("error", "peak_memory_bytes", "model_size_bytes", "macs")
RESOURCE_NAMES = OBJECTIVE_NAMES[1:]


@dataclass(frozen=True)
class Objectives:
    """Objective values of one evaluated candidate (all minimised)."""

    error: float
    peak_memory_bytes: int
    model_size_bytes: int
    macs: int

    def as_tuple(self) -> tuple[float, float, float, float]:
        """Values in :data:`OBJECTIVE_NAMES` order."""
        return (float(self.error), float(self.peak_memory_bytes), float(self.model_size_bytes),
                float(self.macs))

    def to_dict(self) -> dict[str, float | int]:
        return {"error": float(self.error), "peak_memory_bytes": int(self.peak_memory_bytes),
                "model_size_bytes": int(self.model_size_bytes), "macs": int(self.macs)}

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> "Objectives":
        return cls(error=float(data["error"]), peak_memory_bytes=int(data["peak_memory_bytes"]),
                   model_size_bytes=int(data["model_size_bytes"]), macs=int(data["macs"]))

    def within_all_bounds(self, bounds: Sequence[float]) -> bool:
        """Every objective, validation error included, at or below its bound (``bounds`` in
        :data:`OBJECTIVE_NAMES` order): what ``pareto.csv``'s ``within_bounds`` column says."""
        return all(v <= b for v, b in zip(self.as_tuple(), bounds, strict=True))

    def within_resource_bounds(self, bounds: Sequence[float]) -> bool:
        """Peak memory, model size and MACs at or below their bounds (the error is not looked at;
        ``bounds`` in :data:`OBJECTIVE_NAMES` order): the model fits the MCU budget. The search's
        "best error within the resource bounds" is the lowest error among these."""
        return all(v <= b for v, b in zip(self.as_tuple()[1:], bounds[1:], strict=True))


def normalise(values: Sequence[float], bounds: Sequence[float], cap: float) -> np.ndarray:
    """``min(f_i / b_i, cap)`` for every objective (1.0 = exactly at the bound)."""
    ratio = np.asarray(values, dtype=float) / np.asarray(bounds, dtype=float)
    return np.minimum(ratio, cap)


def sample_weights(rng: np.random.Generator, count: int = len(OBJECTIVE_NAMES)) -> np.ndarray:
    """One round's scalarisation coefficients ``λ_i ~ U(0, 1)``."""
    return rng.uniform(0.0, 1.0, size=count)


def scalarise(normalised: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``max_i λ_i f_i`` over the last axis (works on one candidate or a stack of them)."""
    return np.max(np.asarray(normalised) * weights, axis=-1)
