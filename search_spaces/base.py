"""What every search space and architecture provides (the search only talks to these).

An :class:`Architecture` is a small immutable value (a frozen dataclass of tuples): equal
architectures compare and hash equal, and ``Architecture.from_json(a.to_json()) == a``.
A :class:`SearchSpace` samples and mutates architectures, only ever drawing randomness from the
``numpy.random.Generator`` it is given.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

_REGISTRY: dict[str, type["Architecture"]] = {}


class Architecture(ABC):
    """Base class of architectures. Subclasses are frozen dataclasses and set ``space``."""

    space: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "space" in cls.__dict__:
            _REGISTRY[cls.space] = cls

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able description (without the ``space`` tag)."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        """Inverse of :meth:`to_dict`; raises :class:`unas.errors.ArchitectureError` on bad input."""

    def to_json(self) -> str:
        """Canonical JSON text: ``{"space": ..., ...}`` with sorted keys."""
        return json.dumps({"space": self.space, **self.to_dict()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> "Architecture":
        """Parse :meth:`to_json` output (text or already-decoded dict) of any space whose module is
        imported (:func:`search_spaces.registry.architecture_from_json` imports them all)."""
        from unas.errors import ArchitectureError

        data = json.loads(text) if isinstance(text, str) else dict(text)
        space = data.pop("space", None)
        if space not in _REGISTRY:
            raise ArchitectureError(
                f"unknown architecture space {space!r}; known: {sorted(_REGISTRY)}")
        return _REGISTRY[space].from_dict(data)

    @abstractmethod
    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """A fresh, trainable ``tf_keras.Model`` (logits or softmax output, see the space)."""

    @abstractmethod
    def resource_graph(self, input_shape: tuple[int, ...], num_classes: int) -> "nx.DiGraph":
        """The resource graph (see :mod:`unas.resources.graph`) computed without TensorFlow."""


class SearchSpace(ABC):
    """Samples and mutates architectures of one family."""

    name: ClassVar[str]

    @abstractmethod
    def random_architecture(self, rng: np.random.Generator) -> Architecture:
        """A uniformly-drawn-by-construction valid architecture."""

    @abstractmethod
    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A valid architecture different from ``arch``, one random morphism away."""


class BoundedSearchSpace(SearchSpace):
    """A space whose bounds can be checked field by field (the CNN and MLP spaces)."""

    @abstractmethod
    def check(self, arch: Architecture) -> None:
        """Raise :class:`unas.errors.ArchitectureError` naming the first field out of bounds."""

    def contains(self, arch: Architecture) -> bool:
        """Whether ``arch`` belongs to this space and lies within its bounds."""
        from unas.errors import ArchitectureError

        try:
            self.check(arch)
        except ArchitectureError:
            return False
        return True
