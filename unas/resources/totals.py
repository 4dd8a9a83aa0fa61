"""Whole-graph totals of a resource graph: stored bytes, multiply-accumulates, parameters."""
from __future__ import annotations

import networkx as nx


def graph_size_bytes(graph: nx.DiGraph) -> int:
    """Bytes of all stored parameters (int8 weights, int32 biases): the model's flash footprint."""
    return sum(int(data.get("size_bytes", 0)) for _, data in graph.nodes(data=True))


def graph_macs(graph: nx.DiGraph) -> int:
    """Multiply-accumulates of one inference (pooling, ADD, MEAN, ... count 0)."""
    return sum(int(data.get("macs", 0)) for _, data in graph.nodes(data=True))


def graph_params(graph: nx.DiGraph) -> int:
    """Number of stored parameters (weights + biases after BatchNorm folding)."""
    return sum(int(data.get("params", 0)) for _, data in graph.nodes(data=True))
