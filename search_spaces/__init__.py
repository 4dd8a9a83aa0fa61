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

from unas.errors import ConfigError

__all__ = ["Architecture", "SearchSpace", "UnknownBoundError", "architecture_from_json",
           "get_space", "space_bound_names"]


class UnknownBoundError(ConfigError):
    """A bound the space does not take (``key``; ``known`` lists the ones it takes)."""

    def __init__(self, space: str, key: str, known: list[str]) -> None:
        super().__init__(f"bounds.{key}: not a bound of the {space} space; known bounds: "
                         f"{', '.join(known)}")
        self.space, self.key, self.known = space, key, known


def space_bound_names(name: str) -> list[str] | None:
    """The bounds (keyword arguments) the space ``name`` takes; None for an unknown space.

    >>> space_bound_names("mlp")[:2]
    ['min_layers', 'max_layers']
    """
    import inspect

    from search_spaces.registry import SPACES

    if name not in SPACES:
        return None
    params = inspect.signature(SPACES[name].__init__).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name != "self"]


def get_space(name: str, **bounds: object) -> SearchSpace:
    """The search space called ``name`` (``cnn``, ``mlp``, ``mbconv``) with optional bounds."""
    from search_spaces.registry import SPACES

    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; expected one of {sorted(SPACES)}")
    known = space_bound_names(name) or []
    unknown = [key for key in bounds if key not in known]
    if unknown:
        raise UnknownBoundError(name, unknown[0], known)
    return SPACES[name](**bounds)
