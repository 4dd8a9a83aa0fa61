"""Search spaces: architecture values, morphisms, Keras builders and TF-free resource graphs.

>>> import numpy as np
>>> from search_spaces import get_space
>>> space = get_space("cnn")
>>> arch = space.random_architecture(np.random.default_rng(0))
>>> child = space.mutate(arch, np.random.default_rng(1))
>>> child != arch
True
"""
from search_spaces.base import Architecture, SearchSpace
from search_spaces.registry import architecture_from_json

__all__ = ["Architecture", "SearchSpace", "architecture_from_json", "get_space"]


def get_space(name: str, **bounds: object) -> SearchSpace:
    """The search space called ``name`` (``cnn``, ``mlp``, ``mbconv``) with optional bounds."""
    from search_spaces.registry import SPACES
    from unas.errors import ConfigError

    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; expected one of {sorted(SPACES)}")
    return SPACES[name](**bounds)
