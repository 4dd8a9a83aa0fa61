"""The morphisms of Table 1 (μNAS) on :class:`CNNArchitecture`, each ``(space, arch, rng)``.

Each returns a new architecture within the space's bounds, or ``None`` when it does not apply.
Where a morphism has several targets (which layer, +1 or -3 channels...), one is drawn uniformly
among those that keep the architecture valid and within bounds.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from search_spaces.cnn_arch import CNNArchitecture, ConvBlock, ConvLayer
from search_spaces.morphisms import choice_neighbours, pick, step_neighbours

if TYPE_CHECKING:  # pragma: no cover
    from search_spaces.cnn import CNNSpace

Result = CNNArchitecture | None


def _with_blocks(arch: CNNArchitecture, blocks: list[ConvBlock]) -> CNNArchitecture:
    if blocks[0].parallel:  # the first block has nothing to branch from: it becomes serial
        blocks[0] = replace(blocks[0], parallel=False)
    return replace(arch, blocks=tuple(blocks))


def _with_layer(arch: CNNArchitecture, i: int, j: int, layer: ConvLayer) -> CNNArchitecture:
    block = arch.blocks[i]
    layers = block.layers[:j] + (layer,) + block.layers[j + 1:]
    return replace(arch, blocks=arch.blocks[:i] + (replace(block, layers=layers),)
                   + arch.blocks[i + 1:])


def _layer_sites(arch: CNNArchitecture) -> list[tuple[int, int, ConvLayer]]:
    return [(i, j, layer) for i, block in enumerate(arch.blocks)
            for j, layer in enumerate(block.layers)]


def append_block(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Append a random block (series or parallel) after the last one."""
    if len(arch.blocks) >= space.max_blocks:
        return None
    return _with_blocks(arch, [*arch.blocks, space.random_block(rng, first=False)])


def remove_block(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Remove a random block (a new first block becomes serial)."""
    if len(arch.blocks) <= space.min_blocks:
        return None
    i = int(rng.integers(len(arch.blocks)))
    return _with_blocks(arch, [b for k, b in enumerate(arch.blocks) if k != i])


def toggle_parallel(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Switch a block (not the first) between serial and parallel."""
    if len(arch.blocks) < 2:
        return None
    i = 1 + int(rng.integers(len(arch.blocks) - 1))
    blocks = list(arch.blocks)
    blocks[i] = replace(blocks[i], parallel=not blocks[i].parallel)
    return _with_blocks(arch, blocks)


def insert_layer(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Insert a random layer at a random position of a block that has room."""
    sites = [i for i, block in enumerate(arch.blocks) if len(block.layers) < space.max_layers]
    if not sites:
        return None
    i = pick(rng, sites)
    layers = list(arch.blocks[i].layers)
    layers.insert(int(rng.integers(len(layers) + 1)), space.random_layer(rng))
    blocks = list(arch.blocks)
    blocks[i] = replace(blocks[i], layers=tuple(layers))
    return _with_blocks(arch, blocks)


def remove_layer(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Remove a random layer from a block that has more than the minimum."""
    sites = [(i, j) for i, j, _ in _layer_sites(arch)
             if len(arch.blocks[i].layers) > space.min_layers]
    if not sites:
        return None
    i, j = pick(rng, sites)
    blocks = list(arch.blocks)
    blocks[i] = replace(blocks[i], layers=blocks[i].layers[:j] + blocks[i].layers[j + 1:])
    return _with_blocks(arch, blocks)


def _toggle(field: str):
    def toggle(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
        i, j, layer = pick(rng, _layer_sites(arch))
        return _with_layer(arch, i, j, replace(layer, **{field: not getattr(layer, field)}))

    toggle.__name__ = f"toggle_{field}"
    toggle.__doc__ = f"Flip ``{field}`` of a random layer."
    return toggle


toggle_pre_pool = _toggle("pre_pool")
toggle_batch_norm = _toggle("batch_norm")
toggle_relu = _toggle("relu")


def change_type(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Full <-> depthwise conv of a random layer (a new full conv draws its channel count)."""
    i, j, layer = pick(rng, _layer_sites(arch))
    if layer.type == "full":
        return _with_layer(arch, i, j, replace(layer, type="depthwise", channels=None))
    return _with_layer(arch, i, j, replace(layer, type="full", channels=space.random_channels(rng)))


def change_kernel(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """K ± 2 (within the allowed kernel sizes; K = 1 only for stride 1)."""
    sites = [(i, j, layer, k) for i, j, layer in _layer_sites(arch)
             for k in choice_neighbours(layer.kernel, space.kernel_sizes, 2)
             if k > 1 or layer.stride == 1]
    if not sites:
        return None
    i, j, layer, kernel = pick(rng, sites)
    return _with_layer(arch, i, j, replace(layer, kernel=kernel))


def change_channels(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """C ± 1, 3 or 5 of a random full conv (within [min_channels, max_channels])."""
    sites = [(i, j, layer, c) for i, j, layer in _layer_sites(arch) if layer.type == "full"
             for c in step_neighbours(layer.channels, space.channel_steps, space.min_channels,
                                      space.max_channels)]
    if not sites:
        return None
    i, j, layer, channels = pick(rng, sites)
    return _with_layer(arch, i, j, replace(layer, channels=channels))


def change_stride(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """S ± 1 (1 <-> 2) of a random layer whose kernel is larger than 1x1."""
    sites = [(i, j, layer) for i, j, layer in _layer_sites(arch) if layer.kernel > 1]
    if not sites:
        return None
    i, j, layer = pick(rng, sites)
    return _with_layer(arch, i, j, replace(layer, stride=3 - layer.stride))


def toggle_pool_type(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Average <-> max final pooling."""
    return replace(arch, pool_type="max" if arch.pool_type == "avg" else "avg")


def change_pool_size(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """P ± 2 (within the allowed pool sizes)."""
    sizes = choice_neighbours(arch.pool_size, space.pool_sizes, 2)
    return replace(arch, pool_size=pick(rng, sizes)) if sizes else None


def insert_dense(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Insert a random-width dense layer at a random position."""
    if len(arch.dense_units) >= space.max_dense_layers:
        return None
    units = list(arch.dense_units)
    units.insert(int(rng.integers(len(units) + 1)), space.random_units(rng))
    return replace(arch, dense_units=tuple(units))


def remove_dense(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """Remove a random dense layer."""
    if len(arch.dense_units) <= space.min_dense_layers:
        return None
    k = int(rng.integers(len(arch.dense_units)))
    return replace(arch, dense_units=arch.dense_units[:k] + arch.dense_units[k + 1:])


def change_units(space: CNNSpace, arch: CNNArchitecture, rng: np.random.Generator) -> Result:
    """U ± 1, 3 or 5 of a random dense layer (within [min_units, max_units])."""
    sites = [(k, u) for k, units in enumerate(arch.dense_units)
             for u in step_neighbours(units, space.unit_steps, space.min_units, space.max_units)]
    if not sites:
        return None
    k, units = pick(rng, sites)
    return replace(arch, dense_units=arch.dense_units[:k] + (units,) + arch.dense_units[k + 1:])


CNN_MORPHISMS = (
    append_block, remove_block, toggle_parallel, insert_layer, remove_layer, toggle_pre_pool,
    change_type, change_kernel, change_channels, change_stride, toggle_batch_norm, toggle_relu,
    toggle_pool_type, change_pool_size, insert_dense, remove_dense, change_units,
)
