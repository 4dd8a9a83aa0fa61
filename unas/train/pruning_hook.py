"""Where structured pruning plugs into training (see docs/search.md, "Pruning hook").

:func:`pruning_for` returns the model to train, the Keras callbacks to train it with and a
``materialise`` step run after training. With pruning off it is the identity: the model itself, no
callbacks, and ``materialise`` returns the trained model and its architecture unchanged. With
pruning on it calls::

    unas.train.pruning.make_pruning(model, arch, target_sparsity, start_epoch, end_epoch,
                                    steps_per_epoch) -> (masked_model, callbacks, materialise_fn)

where ``masked_model`` shares ``model``'s layers with channel masks wired in, and
``materialise_fn() -> (small_model, small_arch)`` returns the smaller dense model (with its
trained weights) and the architecture that describes it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_spaces.base import Architecture
from unas.config import PruningConfig

Materialise = Callable[[], tuple[Any, Architecture]]


def pruning_for(model: Any, arch: Architecture, pruning: PruningConfig, target: float | None,
                steps_per_epoch: int) -> tuple[Any, list[Any], Materialise]:
    """``(model_to_train, callbacks, materialise)`` for ``model`` (freshly built from ``arch``)."""
    if not pruning.enabled or not target:
        return model, [], lambda: (model, arch)
    from unas.train.pruning import make_pruning

    masked, callbacks, materialise = make_pruning(model, arch, float(target), pruning.start_epoch,
                                                  pruning.end_epoch, steps_per_epoch)
    return masked, list(callbacks), materialise
