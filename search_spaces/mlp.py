"""A multi-layer-perceptron search space: a stack of dense layers on the flattened input.

``input -> [flatten] -> (dense [-> BN] [-> ReLU]) x N -> logits``; the flatten (a TFLite
RESHAPE) is only there for inputs of rank > 1. A hidden layer without ReLU is purely linear: no
bias and no BatchNorm (the next dense layer absorbs any affine offset; the TFLite converter
would move such offsets into the next layer's bias, pattern-dependently, so they are left out).

>>> import numpy as np
>>> space = MLPSpace()
>>> arch = space.random_architecture(np.random.default_rng(0))
>>> child = space.mutate(arch, np.random.default_rng(1))
>>> child != arch and space.contains(child)
True
>>> MLPArchitecture.from_json(child.to_json()) == child
True
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from search_spaces.base import Architecture, BoundedSearchSpace
from search_spaces.fields import check_range, fail, read_bool, read_int, read_list, require_keys
from search_spaces.morphisms import apply_random_morphism, pick, step_neighbours
from search_spaces.ops import (
    PlannedOp,
    dense_op,
    flatten_op,
    input_op,
    ops_to_graph,
    ops_to_keras,
)
from unas.errors import ArchitectureError, ConfigError

__all__ = ["DenseLayer", "MLPArchitecture", "MLPSpace"]
_LAYER_KEYS = ("units", "batch_norm", "relu")


@dataclass(frozen=True)
class DenseLayer:
    """A hidden dense layer: ``units`` outputs, optional BatchNorm, optional ReLU (in that order).

    BatchNorm needs the ReLU (a linear layer has neither bias nor BatchNorm).
    """

    units: int
    batch_norm: bool
    relu: bool

    def check(self, path: str) -> None:
        """Raise :class:`ArchitectureError` naming the field if the layer is malformed."""
        check_range(self.units, f"{path}.units", 1)
        if self.batch_norm and not self.relu:
            raise fail(f"{path}.batch_norm", "false for a layer without ReLU", True)

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _LAYER_KEYS}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> DenseLayer:
        require_keys(data, _LAYER_KEYS, path)
        return cls(units=read_int(data, "units", path),
                   batch_norm=read_bool(data, "batch_norm", path),
                   relu=read_bool(data, "relu", path))


@dataclass(frozen=True)
class MLPArchitecture(Architecture):
    """Hidden dense ``layers`` on the flattened input, then the logits layer."""

    space = "mlp"

    layers: tuple[DenseLayer, ...]

    model_name: ClassVar[str] = "unas_mlp"

    def __post_init__(self) -> None:
        if not self.layers:
            raise fail("layers", "at least one layer", [])
        for k, layer in enumerate(self.layers):
            layer.check(f"layers[{k}]")

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPArchitecture:
        require_keys(data, ("layers",), "")
        return cls(layers=tuple(DenseLayer.from_dict(layer, f"layers[{k}]")
                                for k, layer in enumerate(read_list(data, "layers", ""))))

    def plan(self, input_shape: tuple[int, ...], num_classes: int) -> list[PlannedOp]:
        """The operators of this network for ``input_shape`` (any rank)."""
        shape = tuple(input_shape)
        if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ArchitectureError(
                f"input_shape: expected a tuple of positive integers, got {shape!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ArchitectureError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        x = input_op(shape)
        ops = [x]
        if len(shape) > 1:
            x = flatten_op("flatten", x)
            ops.append(x)
        for k, layer in enumerate(self.layers):
            # a linear hidden layer feeds the next dense layer, which absorbs its bias
            x = dense_op(f"l{k}_dense", x, layer.units, relu=layer.relu,
                         batch_norm=layer.batch_norm, dropout_before=True, bias=layer.relu)
            ops.append(x)
        ops.append(dense_op("logits", x, num_classes, relu=False))
        return ops

    def build(self, input_shape: tuple[int, ...], num_classes: int, *, dropout: float = 0.0) -> Any:
        """A fresh ``tf_keras.Model`` outputting logits; ``dropout`` goes before hidden layers."""
        return ops_to_keras(self.plan(input_shape, num_classes), self.model_name, dropout)

    def resource_graph(self, input_shape: tuple[int, ...], num_classes: int) -> nx.DiGraph:
        """The resource graph, computed without TensorFlow."""
        return ops_to_graph(self.plan(input_shape, num_classes))


class MLPSpace(BoundedSearchSpace):
    """Samples and mutates :class:`MLPArchitecture`: 1..``max_layers`` layers of
    ``min_units``..``max_units`` units. Morphisms: insert/remove a layer, units ± 1/3/5,
    units x2 or /2 (clamped to the bounds), toggle BN (of a ReLU layer), toggle ReLU (of a layer
    without BN)."""

    name: ClassVar[str] = "mlp"

    def __init__(self, *, min_layers: int = 1, max_layers: int = 5, min_units: int = 10,
                 max_units: int = 512, unit_steps: tuple[int, ...] = (1, 3, 5)) -> None:
        for key, value in (("min_layers", min_layers), ("max_layers", max_layers),
                           ("min_units", min_units), ("max_units", max_units)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"search space mlp: {key}: expected an integer >= 1, "
                                  f"got {value!r}")
        if min_layers > max_layers or min_units > max_units:
            raise ConfigError(f"search space mlp: min_layers/min_units: expected <= the maximum, "
                              f"got {min_layers}..{max_layers} layers, "
                              f"{min_units}..{max_units} units")
        if (not isinstance(unit_steps, (list, tuple)) or not unit_steps
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in unit_steps)):
            raise ConfigError(f"search space mlp: unit_steps: expected a non-empty list of "
                              f"positive integers, got {unit_steps!r}")
        self.min_layers, self.max_layers = min_layers, max_layers
        self.min_units, self.max_units = min_units, max_units
        self.unit_steps = tuple(sorted(set(unit_steps)))
        self._morphisms = tuple(partial(m, self) for m in (
            _insert_layer, _remove_layer, _resize, _scale, _toggle_batch_norm, _toggle_relu))

    def __repr__(self) -> str:
        return (f"MLPSpace(min_layers={self.min_layers}, max_layers={self.max_layers}, "
                f"min_units={self.min_units}, max_units={self.max_units})")

    def random_layer(self, rng: np.random.Generator) -> DenseLayer:
        """A layer with uniformly drawn width and options (linear, ReLU, or BN + ReLU)."""
        batch_norm, relu = pick(rng, ((False, False), (False, True), (True, True)))
        return DenseLayer(units=int(rng.integers(self.min_units, self.max_units + 1)),
                          batch_norm=batch_norm, relu=relu)

    def random_architecture(self, rng: np.random.Generator) -> MLPArchitecture:
        """A uniform number of random layers."""
        count = int(rng.integers(self.min_layers, self.max_layers + 1))
        return MLPArchitecture(layers=tuple(self.random_layer(rng) for _ in range(count)))

    def check(self, arch: Architecture) -> None:
        """Raise :class:`ArchitectureError` naming the first field outside the bounds."""
        if not isinstance(arch, MLPArchitecture):
            raise ArchitectureError(f"space: expected an 'mlp' architecture, got {arch.space!r}")
        if not self.min_layers <= len(arch.layers) <= self.max_layers:
            raise ArchitectureError(f"layers: expected {self.min_layers}..{self.max_layers} "
                                    f"layers, got {len(arch.layers)}")
        for k, layer in enumerate(arch.layers):
            if not self.min_units <= layer.units <= self.max_units:
                raise ArchitectureError(f"layers[{k}].units: expected a value in "
                                        f"[{self.min_units}, {self.max_units}], got {layer.units}")

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> MLPArchitecture:
        """One random applicable morphism (each applicable kind equally likely)."""
        self.check(arch)
        return apply_random_morphism(arch, self._morphisms, rng)


Result = MLPArchitecture | None


def _set_layer(arch: MLPArchitecture, k: int, layer: DenseLayer) -> MLPArchitecture:
    return MLPArchitecture(layers=arch.layers[:k] + (layer,) + arch.layers[k + 1:])


def _insert_layer(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    if len(arch.layers) >= space.max_layers:
        return None
    layers = list(arch.layers)
    layers.insert(int(rng.integers(len(layers) + 1)), space.random_layer(rng))
    return MLPArchitecture(layers=tuple(layers))


def _remove_layer(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    if len(arch.layers) <= space.min_layers:
        return None
    k = int(rng.integers(len(arch.layers)))
    return MLPArchitecture(layers=arch.layers[:k] + arch.layers[k + 1:])


def _resize(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    sites = [(k, u) for k, layer in enumerate(arch.layers)
             for u in step_neighbours(layer.units, space.unit_steps, space.min_units,
                                      space.max_units)]
    if not sites:
        return None
    k, units = pick(rng, sites)
    return _set_layer(arch, k, replace(arch.layers[k], units=units))


def _scale(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    """Double or halve a layer's width, clamped to the bounds (only where that changes it)."""
    sites = [(k, u) for k, layer in enumerate(arch.layers)
             for u in {min(layer.units * 2, space.max_units),
                       max(layer.units // 2, space.min_units)}
             if u != layer.units]
    if not sites:
        return None
    k, units = pick(rng, sorted(sites))
    return _set_layer(arch, k, replace(arch.layers[k], units=units))


def _toggle_batch_norm(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    """Add or remove the BatchNorm of a layer that has a ReLU."""
    sites = [k for k, layer in enumerate(arch.layers) if layer.relu]
    if not sites:
        return None
    k = pick(rng, sites)
    return _set_layer(arch, k, replace(arch.layers[k], batch_norm=not arch.layers[k].batch_norm))


def _toggle_relu(space: MLPSpace, arch: MLPArchitecture, rng: np.random.Generator) -> Result:
    """Add or remove the ReLU of a layer without BatchNorm."""
    sites = [k for k, layer in enumerate(arch.layers) if not layer.batch_norm]
    if not sites:
        return None
    k = pick(rng, sites)
    return _set_layer(arch, k, replace(arch.layers[k], relu=not arch.layers[k].relu))
