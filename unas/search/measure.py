"""The resource objectives of an architecture, from its resource graph (no TensorFlow).

>>> import numpy as np
>>> from search_spaces import get_space
>>> arch = get_space("cnn").random_architecture(np.random.default_rng(0))
>>> peak, size, macs = ResourceMeter((8, 8, 1), 10, "codegen")(arch)
>>> peak > 0 and size > 0 and macs > 0
True
"""
from __future__ import annotations

from dataclasses import dataclass

from search_spaces.base import Architecture


@dataclass(frozen=True)
class ResourceMeter:
    """``meter(arch) -> (peak_memory_bytes, model_size_bytes, macs)`` for one input shape,
    class count and inference engine (``codegen`` or ``tflm``, see :mod:`unas.resources.engine`).

    Peak memory is the exact minimum over execution orders under the engine's memory model;
    model size sums the int8 weights and int32 biases, MACs sum over operators."""

    input_shape: tuple[int, ...]
    num_classes: int
    engine: str = "codegen"

    def __call__(self, arch: Architecture) -> tuple[int, int, int]:
        from unas.resources.engine import peak_memory_bytes

        graph = arch.resource_graph(tuple(self.input_shape), int(self.num_classes))
        size = sum(int(d.get("size_bytes", 0)) for _, d in graph.nodes(data=True))
        macs = sum(int(d.get("macs", 0)) for _, d in graph.nodes(data=True))
        return int(peak_memory_bytes(graph, self.engine)), size, macs
