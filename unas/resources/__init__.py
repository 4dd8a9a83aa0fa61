"""Resource model: exact minimum peak memory, model size and MACs. Imports no TensorFlow.

>>> from unas.resources import new_graph, add_op, min_peak_schedule
>>> g = new_graph()
>>> _ = add_op(g, "in", "INPUT", (4, 4, 1))
>>> _ = add_op(g, "conv", "CONV_2D", (4, 4, 2), ["in"], macs=288, params=20, size_bytes=26)
>>> min_peak_schedule(g).peak_bytes, graph_macs(g), graph_size_bytes(g)
(48, 288, 26)
"""
from unas.resources.graph import Schedule, add_op, graph_inputs, graph_outputs, new_graph
from unas.resources.keras_graph import graph_from_keras, macs, model_size_bytes
from unas.resources.memory import peak_of_order
from unas.resources.schedule import min_peak_schedule
from unas.resources.totals import graph_macs, graph_params, graph_size_bytes

__all__ = ["Schedule", "add_op", "graph_from_keras", "graph_inputs", "graph_macs", "graph_outputs",
           "graph_params", "graph_size_bytes", "macs", "min_peak_schedule", "model_size_bytes",
           "new_graph", "peak_of_order"]
