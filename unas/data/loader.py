"""`load_dataset`: one entry point that dispatches to the loader of each dataset."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unas.data.spec import DatasetSpec
from unas.data.splits import Splits
from unas.errors import DataError


def _loaders() -> dict[str, Callable[[DatasetSpec, np.random.Generator], Splits]]:
    from unas.data.digits import load_digits

    loaders: dict[str, Callable[[DatasetSpec, np.random.Generator], Splits]] = {"digits": load_digits}
    try:
        from unas.data.mnist import load_fashion_mnist, load_mnist
        loaders.update(mnist=load_mnist, fashion_mnist=load_fashion_mnist)
    except ImportError:
        pass
    try:
        from unas.data.cifar import load_cifar10
        loaders["cifar10"] = load_cifar10
    except ImportError:
        pass
    try:
        from unas.data.chars74k import load_chars74k
        loaders["chars74k"] = load_chars74k
    except ImportError:
        pass
    try:
        from unas.data.speech_commands import load_speech_commands
        loaders["speech_commands"] = load_speech_commands
    except ImportError:
        pass
    return loaders


def load_dataset(spec: DatasetSpec, rng: np.random.Generator) -> Splits:
    """Load ``spec``'s dataset as `Splits`; the validation split and any subsampling are drawn
    with ``rng`` (same seed → same split). Missing files raise `unas.errors.DataError`.

    >>> import numpy as np
    >>> s = load_dataset(DatasetSpec(name="digits"), np.random.default_rng(0))
    >>> s.input_shape, s.num_classes
    ((8, 8, 1), 10)
    """
    loaders = _loaders()
    if spec.name not in loaders:
        raise DataError(f"dataset {spec.name!r}: unknown or not available here; known: {', '.join(loaders)}")
    return loaders[spec.name](spec, rng)
