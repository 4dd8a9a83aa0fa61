"""Resource model: exact minimum peak memory, model size and MACs. Imports no TensorFlow."""
from unas.resources.graph import Schedule, add_op, graph_inputs, graph_outputs, new_graph

__all__ = ["Schedule", "add_op", "graph_inputs", "graph_outputs", "new_graph"]
