"""Where structured pruning plugs into training (see docs/search.md, "Pruning hook").

:func:`pruning_for` returns the Keras callbacks to train with and a ``materialise`` step run after
training. With pruning off it is the identity: no callbacks, and ``materialise`` returns the
trained model and its architecture unchanged. With pruning on it calls::

    unas.train.pruning.make_pruning(model, arch, target_sparsity, start_epoch, end_epoch,
                                    steps_per_epoch) -> (callbacks, materialise_fn)

where ``materialise_fn() -> (small_model, small_arch)`` returns the smaller dense model (with its
trained weights) and the architecture that describes it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_spaces.base import Architecture
from unas.config import PruningConfig

Materialise = Callable[[], tuple[Any, Architecture]]


def pruning_for(model: Any, arch: Architecture, pruning: PruningConfig, target: float | None,
                steps_per_epoch: int) -> tuple[list[Any], Materialise]:
    """``(callbacks, materialise)`` for training ``model`` (built from ``arch``)."""
    if not pruning.enabled or not target:
        return [], lambda: (model, arch)
    from unas.train.pruning import make_pruning

    callbacks, materialise = make_pruning(model, arch, float(target), pruning.start_epoch,
                                          pruning.end_epoch, steps_per_epoch)
    return list(callbacks), materialise
