"""Search-space names (as written in the YAML config) and their classes.

Importing this module imports every architecture module, so each architecture class registers
itself for :func:`architecture_from_json`. To add a space, import its class here and
add one line to ``SPACES``.

>>> {"cnn", "mlp"} <= set(SPACES)
True
"""
from typing import Any

from search_spaces.base import Architecture, SearchSpace
from search_spaces.cnn import CNNSpace
from search_spaces.mbconv import MBConvSpace
from search_spaces.mlp import MLPSpace

SPACES: dict[str, type[SearchSpace]] = {
    "cnn": CNNSpace,
    "mbconv": MBConvSpace,
    "mlp": MLPSpace,
}


def architecture_from_json(text: str | dict[str, Any]) -> Architecture:
    """Decode an architecture of any space from its JSON text or dict (importing this module
    registered every space, also in a fresh worker process)."""
    return Architecture.from_json(text)
