"""`load_dataset`: one entry point that dispatches to the loader of each dataset."""
from __future__ import annotations

import importlib

import numpy as np

from unas.data.spec import DATASET_NAMES, DatasetSpec
from unas.data.splits import Splits
from unas.errors import DataError

# name -> (module, function); modules are imported on first use so `import unas.data` stays light.
LOADERS = {
    "digits": ("unas.data.digits", "load_digits"),
    "mnist": ("unas.data.mnist", "load_mnist"),
    "fashion_mnist": ("unas.data.mnist", "load_fashion_mnist"),
    "cifar10": ("unas.data.cifar", "load_cifar10"),
    "chars74k": ("unas.data.chars74k", "load_chars74k"),
    "speech_commands": ("unas.data.speech_commands", "load_speech_commands"),
}
assert tuple(LOADERS) == DATASET_NAMES


def load_dataset(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """Load ``spec``'s dataset as `Splits`; the validation split and any subsampling are drawn
    with ``rng`` (same seed → same split). Missing files raise `unas.errors.DataError`.

    >>> import numpy as np
    >>> s = load_dataset(DatasetSpec(name="digits"), np.random.default_rng(0))
    >>> s.input_shape, s.num_classes
    ((8, 8, 1), 10)
    """
    if spec.name not in LOADERS:
        raise DataError(f"dataset {spec.name!r}: unknown; expected one of {', '.join(LOADERS)}")
    module, function = LOADERS[spec.name]
    return getattr(importlib.import_module(module), function)(spec, rng)
