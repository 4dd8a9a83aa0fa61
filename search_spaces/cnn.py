"""The μNAS CNN search space (Table 1 of Liberis et al., 2021).

>>> import numpy as np
>>> space = CNNSpace()
>>> arch = space.random_architecture(np.random.default_rng(0))
>>> space.contains(arch)
True
>>> child = space.mutate(arch, np.random.default_rng(1))
>>> child != arch and space.contains(child)
True
>>> graph = child.resource_graph((32, 32, 3), 10)   # no TensorFlow needed
"""
from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np

from search_spaces.base import Architecture, BoundedSearchSpace
from search_spaces.cnn_arch import CONV_TYPES, POOL_TYPES, CNNArchitecture, ConvBlock, ConvLayer
from search_spaces.cnn_morphisms import CNN_MORPHISMS
from search_spaces.morphisms import apply_random_morphism, pick
from unas.errors import ArchitectureError, ConfigError

__all__ = ["CNNArchitecture", "CNNSpace", "ConvBlock", "ConvLayer"]


def _positive_ints(name: str, values: Any) -> tuple[int, ...]:
    if (not isinstance(values, (list, tuple)) or not values
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)):
        raise ConfigError(f"search space cnn: {name}: expected a non-empty list of positive "
                          f"integers, got {values!r}")
    return tuple(sorted(set(values)))


def _bounds(name: str, low: Any, high: Any, floor: int) -> tuple[int, int]:
    for key, value in ((f"min_{name}", low), (f"max_{name}", high)):
        if isinstance(value, bool) or not isinstance(value, int) or value < floor:
            raise ConfigError(f"search space cnn: {key}: expected an integer >= {floor}, "
                              f"got {value!r}")
    if low > high:
        raise ConfigError(f"search space cnn: min_{name}: expected <= max_{name} ({high}), "
                          f"got {low}")
    return low, high


class CNNSpace(BoundedSearchSpace):
    """Samples and mutates :class:`CNNArchitecture` within bounds (defaults = μNAS Table 1).

    Random architectures draw every free variable uniformly: the number of blocks, layers and
    dense layers, each layer's type, kernel, channels, stride (1 for 1x1), and each yes/no option.
    """

    name: ClassVar[str] = "cnn"

    def __init__(self, *, min_blocks: int = 1, max_blocks: int = 10, min_layers: int = 1,
                 max_layers: int = 3, kernel_sizes: tuple[int, ...] = (1, 3, 5, 7),
                 min_channels: int = 1, max_channels: int = 128,
                 channel_steps: tuple[int, ...] = (1, 3, 5),
                 pool_sizes: tuple[int, ...] = (2, 4, 6),
                 min_dense_layers: int = 1, max_dense_layers: int = 3, min_units: int = 10,
                 max_units: int = 256, unit_steps: tuple[int, ...] = (1, 3, 5)) -> None:
        self.min_blocks, self.max_blocks = _bounds("blocks", min_blocks, max_blocks, 1)
        self.min_layers, self.max_layers = _bounds("layers", min_layers, max_layers, 1)
        self.min_channels, self.max_channels = _bounds("channels", min_channels, max_channels, 1)
        self.min_dense_layers, self.max_dense_layers = _bounds(
            "dense_layers", min_dense_layers, max_dense_layers, 0)
        self.min_units, self.max_units = _bounds("units", min_units, max_units, 1)
        self.kernel_sizes = _positive_ints("kernel_sizes", kernel_sizes)
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigError(f"search space cnn: kernel_sizes: expected odd sizes, "
                              f"got {list(kernel_sizes)}")
        self.pool_sizes = _positive_ints("pool_sizes", pool_sizes)
        self.channel_steps = _positive_ints("channel_steps", channel_steps)
        self.unit_steps = _positive_ints("unit_steps", unit_steps)
        self._morphisms = tuple(partial(m, self) for m in CNN_MORPHISMS)

    def __repr__(self) -> str:
        keys = ("min_blocks", "max_blocks", "min_layers", "max_layers", "kernel_sizes",
                "min_channels", "max_channels", "pool_sizes", "min_dense_layers",
                "max_dense_layers", "min_units", "max_units")
        return "CNNSpace(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"

    # -- sampling ---------------------------------------------------------------------------
    def random_channels(self, rng: np.random.Generator) -> int:
        """A channel count drawn uniformly from the bounds."""
        return int(rng.integers(self.min_channels, self.max_channels + 1))

    def random_units(self, rng: np.random.Generator) -> int:
        """A dense-layer width drawn uniformly from the bounds."""
        return int(rng.integers(self.min_units, self.max_units + 1))

    def random_layer(self, rng: np.random.Generator) -> ConvLayer:
        """A conv layer with every free variable drawn uniformly (stride 1 for 1x1 kernels)."""
        conv_type = pick(rng, CONV_TYPES)
        kernel = int(pick(rng, self.kernel_sizes))
        stride = 1 if kernel == 1 else int(rng.integers(1, 3))
        flags = rng.integers(0, 2, size=3)
        return ConvLayer(type=conv_type, kernel=kernel,
                         channels=self.random_channels(rng) if conv_type == "full" else None,
                         stride=stride, pre_pool=bool(flags[0]), batch_norm=bool(flags[1]),
                         relu=bool(flags[2]))

    def random_block(self, rng: np.random.Generator, *, first: bool) -> ConvBlock:
        """A block of a uniform number of random layers; serial if ``first``, else either."""
        count = int(rng.integers(self.min_layers, self.max_layers + 1))
        parallel = False if first else bool(rng.integers(0, 2))
        return ConvBlock(parallel=parallel, layers=tuple(self.random_layer(rng)
                                                         for _ in range(count)))

    def random_architecture(self, rng: np.random.Generator) -> CNNArchitecture:
        """A random architecture within the bounds."""
        count = int(rng.integers(self.min_blocks, self.max_blocks + 1))
        blocks = tuple(self.random_block(rng, first=i == 0) for i in range(count))
        dense = int(rng.integers(self.min_dense_layers, self.max_dense_layers + 1))
        return CNNArchitecture(blocks=blocks, pool_type=pick(rng, POOL_TYPES),
                               pool_size=int(pick(rng, self.pool_sizes)),
                               dense_units=tuple(self.random_units(rng) for _ in range(dense)))

    # -- bounds -----------------------------------------------------------------------------
    def check(self, arch: Architecture) -> None:
        """Raise :class:`ArchitectureError` naming the first field outside this space's bounds."""
        if not isinstance(arch, CNNArchitecture):
            raise ArchitectureError(f"space: expected a 'cnn' architecture, got {arch.space!r}")

        def within(path: str, value: int, low: int, high: int) -> None:
            if not low <= value <= high:
                raise ArchitectureError(f"{path}: expected a value in [{low}, {high}], got {value}")

        def member(path: str, value: int, allowed: tuple[int, ...]) -> None:
            if value not in allowed:
                raise ArchitectureError(f"{path}: expected one of {list(allowed)}, got {value}")

        within("blocks", len(arch.blocks), self.min_blocks, self.max_blocks)
        for i, block in enumerate(arch.blocks):
            within(f"blocks[{i}].layers", len(block.layers), self.min_layers, self.max_layers)
            for j, layer in enumerate(block.layers):
                path = f"blocks[{i}].layers[{j}]"
                member(f"{path}.kernel", layer.kernel, self.kernel_sizes)
                if layer.channels is not None:
                    within(f"{path}.channels", layer.channels, self.min_channels,
                           self.max_channels)
        member("pool_size", arch.pool_size, self.pool_sizes)
        within("dense_units", len(arch.dense_units), self.min_dense_layers, self.max_dense_layers)
        for k, units in enumerate(arch.dense_units):
            within(f"dense_units[{k}]", units, self.min_units, self.max_units)

    # -- morphisms --------------------------------------------------------------------------
    def mutate(self, arch: Architecture, rng: np.random.Generator) -> CNNArchitecture:
        """Apply one random applicable Table 1 morphism; the child differs and is within bounds.

        Each applicable kind of morphism is equally likely, then its target (layer, step) is drawn
        uniformly among those that stay within bounds.
        """
        self.check(arch)
        return apply_random_morphism(arch, self._morphisms, rng)
