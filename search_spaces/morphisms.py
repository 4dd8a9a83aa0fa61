"""Generic morphism machinery shared by the search spaces.

A *morphism* is a function ``(arch, rng) -> new_arch | None`` that returns ``None`` when it does
not apply to ``arch`` (e.g. "remove a block" on a one-block network). :func:`apply_random_morphism`
tries the morphisms in a random order and returns the first result, so every applicable kind of
change is equally likely and the child always differs from its parent.

>>> import numpy as np
>>> step_neighbours(7, (1, 3, 5), 1, 10)
(2, 4, 6, 8, 10)
>>> pick(np.random.default_rng(0), ("a", "b", "c")) in ("a", "b", "c")
True
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
A = TypeVar("A")

Morphism = Callable[[A, np.random.Generator], "A | None"]


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One element of ``items``, uniformly (``items`` must be non-empty)."""
    return items[int(rng.integers(len(items)))]


def step_neighbours(value: int, steps: Sequence[int], low: int, high: int) -> tuple[int, ...]:
    """The values ``value ± step`` (for each step) that lie in ``[low, high]``, sorted."""
    return tuple(sorted({value + sign * step for step in steps for sign in (-1, 1)
                         if step and low <= value + sign * step <= high}))


def choice_neighbours(value: int, choices: Sequence[int], step: int) -> tuple[int, ...]:
    """The values ``value ± step`` that are among ``choices`` (e.g. kernel 3 -> (1, 5))."""
    return tuple(v for v in (value - step, value + step) if v in choices)


def apply_random_morphism(arch: A,
                          morphisms: Sequence[Callable[[A, np.random.Generator], A | None]],
                          rng: np.random.Generator) -> A:
    """Apply one applicable morphism chosen uniformly among the applicable kinds.

    Raises ``ValueError`` if none applies (a space must always have one that does).
    """
    for index in rng.permutation(len(morphisms)):
        child = morphisms[int(index)](arch, rng)
        if child is not None and child != arch:
            return child
    raise ValueError(f"no morphism applies to {arch!r}")
