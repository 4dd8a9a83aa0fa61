"""Resource graph of a tf_keras model, one node per operator as the int8 TFLite converter emits it.

TensorFlow is imported lazily (inside :func:`graph_from_keras`'s callers' models only: this module
never imports it), so ``unas.resources`` stays TF-free. Mapping (checked against
``TFLiteConverter`` full-integer int8 conversion):

==========================================  =================================================
Keras layer                                 TFLite operator
==========================================  =================================================
``Conv2D`` (+ ``BatchNormalization``)       ``CONV_2D``; int32 bias always stored
``DepthwiseConv2D`` (+ BN)                  ``DEPTHWISE_CONV_2D``; int32 bias always stored
``Dense`` (+ BN)                            ``FULLY_CONNECTED``; int32 bias if ``use_bias`` or BN
``ReLU``/``ReLU6``/``Activation``           fused into the conv / dense / ADD before it
``MaxPooling2D`` / ``AveragePooling2D``     ``MAX_POOL_2D`` / ``AVERAGE_POOL_2D``
``Add`` (two inputs) / ``Concatenate``      ``ADD`` / ``CONCATENATION``
``GlobalAveragePooling2D``                  ``MEAN``
``Flatten`` / ``Reshape``                   ``RESHAPE``
``Softmax`` (or ``activation="softmax"``)   ``SOFTMAX``
``ZeroPadding2D``                           ``PAD``
``Dropout``                                 nothing (identity at inference)
==========================================  =================================================

A ``BatchNormalization`` that does not directly follow a conv / dense layer (whose output nothing
else uses) is rejected: the converter lowers it to ``MUL`` and ``ADD`` with per-channel constants,
or to ``MUL`` alone when the shift happens to be zero, which depends on the trained values.
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx

from unas.errors import ArchitectureError
from unas.resources.graph import add_op, new_graph
from unas.resources.macs import conv_macs
from unas.resources.totals import graph_macs, graph_size_bytes

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_FUSES_ACTIVATION = _WEIGHTED + ("ADD",)
_ACTIVATIONS = {"linear": None, "relu": "relu", "relu6": "relu6", "softmax": "softmax"}


def graph_from_keras(model: Any) -> nx.DiGraph:
    """The resource graph of a built tf_keras ``model`` (nodes in the model's layer order).

    Raises :class:`ArchitectureError` naming the layer for anything TFLite would not run as
    modelled here (unsupported layer, unfoldable BatchNormalization, shared layers, ...).
    """
    builder = _Builder(model)
    for tensor in model.inputs:
        layer = tensor._keras_history.layer
        shape = _shape(tensor.shape, layer.name)
        builder.output_of[layer.name] = add_op(builder.graph, layer.name, "INPUT", shape)
    for layer in model.layers:
        if layer.name not in builder.output_of:
            builder.add_layer(layer)
    return builder.graph


def model_size_bytes(model: Any) -> int:
    """Bytes the int8 TFLite model stores for parameters (int8 weights + int32 biases)."""
    return graph_size_bytes(graph_from_keras(model))


def macs(model: Any) -> int:
    """Multiply-accumulates of one inference of ``model`` (see :func:`graph_from_keras`)."""
    return graph_macs(graph_from_keras(model))


def _shape(shape: Any, name: str) -> tuple[int, ...]:
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ArchitectureError(f"layer {name!r}: output shape {tuple(shape)} has an unknown "
                                "dimension; expected a fully defined input shape")
    return tuple(int(d) for d in dims)


def _geometry(layer: Any) -> dict[str, tuple[int, int]]:
    """Kernel, stride and dilation of a Keras conv layer (resource-graph attributes)."""
    return dict(kernel=tuple(layer.kernel_size), stride=tuple(layer.strides),
                dilation=tuple(layer.dilation_rate))


def _conv_macs(in_shape: tuple[int, ...], out: tuple[int, ...],
               geometry: dict[str, tuple[int, int]], depthwise: bool = False) -> int:
    """:func:`unas.resources.macs.conv_macs` of a conv layer (taps inside the input only)."""
    return conv_macs(in_shape, out, geometry["kernel"], geometry["stride"], geometry["dilation"],
                     depthwise=depthwise)


class _Builder:
    """Walks the layers, adding operators and fusing BatchNorm / activations into them."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.graph = new_graph()
        self.output_of: dict[str, str] = {}  # Keras layer name -> resource node holding its output
        self.fused: set[str] = set()  # resource nodes that already carry a fused activation
        self.consumers: dict[str, int] = {}
        for layer in model.layers:
            for src in self._inbound(layer):
                self.consumers[src.name] = self.consumers.get(src.name, 0) + 1

    def _inbound(self, layer: Any) -> list[Any]:
        nodes = [n for i, n in enumerate(layer._inbound_nodes)
                 if f"{layer.name}_ib-{i}" in self.model._network_nodes]
        if len(nodes) > 1:
            raise ArchitectureError(f"layer {layer.name!r} is used {len(nodes)} times; "
                                    "expected every layer to be called once")
        if not nodes:
            return []
        inbound = nodes[0].inbound_layers
        return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]

    def add_layer(self, layer: Any) -> None:
        kind = type(layer).__name__
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise ArchitectureError(f"layer {layer.name!r}: unsupported layer type {kind}")
        sources = self._inbound(layer)
        inputs = [self.output_of[s.name] for s in sources]
        handler(layer, inputs, sources)

    # ----------------------------------------------------------------- helpers
    def _out(self, layer: Any) -> tuple[int, ...]:
        return _shape(layer.output_shape, layer.name)

    def _in(self, node: str) -> tuple[int, ...]:
        return self.graph.nodes[node]["shape"]

    def _single(self, layer: Any, inputs: list[str]) -> str:
        if len(inputs) != 1:
            raise ArchitectureError(f"layer {layer.name!r}: expected one input, got {len(inputs)}")
        return inputs[0]

    def _op(self, layer: Any, op: str, inputs: list[str], **attrs: Any) -> str:
        node = add_op(self.graph, layer.name, op, self._out(layer), inputs, **attrs)
        self.output_of[layer.name] = node
        return node

    def _activation(self, layer: Any, node: str, name: str) -> None:
        """Fuse ``name`` (relu, relu6, linear) into ``node`` or add a SOFTMAX after it."""
        kind = _ACTIVATIONS.get(name)
        if name not in _ACTIVATIONS:
            raise ArchitectureError(f"layer {layer.name!r}: unsupported activation {name!r}; "
                                    f"expected one of {sorted(_ACTIVATIONS)}")
        if kind == "softmax":
            softmax = add_op(self.graph, f"{layer.name}/softmax", "SOFTMAX",
                             self.graph.nodes[node]["shape"], [node])
            self.output_of[layer.name] = softmax
        elif kind is not None:
            self.fused.add(node)

    def _fusable_producer(self, layer: Any, sources: list[Any], inputs: list[str],
                          ops: tuple[str, ...]) -> str | None:
        """The node ``layer`` can be fused into, or None."""
        node = self._single(layer, inputs)
        only_consumer = self.consumers.get(sources[0].name, 0) == 1
        if self.graph.nodes[node]["op"] in ops and only_consumer and node not in self.fused:
            return node
        return None

    # ----------------------------------------------------------------- layers
    def _InputLayer(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self.output_of[layer.name] = add_op(self.graph, layer.name, "INPUT", self._out(layer))

    def _Conv2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        src = self._single(layer, inputs)
        if getattr(layer, "groups", 1) != 1:
            raise ArchitectureError(f"layer {layer.name!r}: grouped convolution is not supported")
        out = self._out(layer)
        kh, kw = layer.kernel_size
        c_in = self._in(src)[-1]
        weights = kh * kw * c_in * out[-1]
        geometry = _geometry(layer)
        node = self._op(layer, "CONV_2D", [src], macs=_conv_macs(self._in(src), out, geometry),
                        params=weights + out[-1], size_bytes=weights + 4 * out[-1], **geometry)
        self._activation(layer, node, layer.activation.__name__)

    def _DepthwiseConv2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        src = self._single(layer, inputs)
        if layer.depth_multiplier != 1:
            raise ArchitectureError(f"layer {layer.name!r}: depth_multiplier "
                                    f"{layer.depth_multiplier}; expected 1")
        out = self._out(layer)
        kh, kw = layer.kernel_size
        weights = kh * kw * out[-1]
        geometry = _geometry(layer)
        node = self._op(layer, "DEPTHWISE_CONV_2D", [src],
                        macs=_conv_macs(self._in(src), out, geometry, depthwise=True),
                        params=weights + out[-1], size_bytes=weights + 4 * out[-1], **geometry)
        self._activation(layer, node, layer.activation.__name__)

    def _Dense(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        src = self._single(layer, inputs)
        if len(self._in(src)) != 1:
            raise ArchitectureError(f"layer {layer.name!r}: Dense on a {len(self._in(src))}-d "
                                    "input; expected a flat input (add Flatten first)")
        n_in, n_out = self._in(src)[0], self._out(layer)[-1]
        bias = n_out if layer.use_bias else 0
        node = self._op(layer, "FULLY_CONNECTED", [src], macs=n_in * n_out,
                        params=n_in * n_out + bias, size_bytes=n_in * n_out + 4 * bias)
        self._activation(layer, node, layer.activation.__name__)

    def _BatchNormalization(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        node = self._fusable_producer(layer, sources, inputs, _WEIGHTED)
        if node is None:
            raise ArchitectureError(
                f"layer {layer.name!r}: BatchNormalization must directly follow a Conv2D, "
                "DepthwiseConv2D or Dense layer (before its activation) whose output nothing "
                "else uses; elsewhere TFLite emits MUL/ADD ops this model does not represent")
        attrs = self.graph.nodes[node]
        if attrs["op"] == "FULLY_CONNECTED" and attrs["params"] == math.prod(self._in(
                next(iter(self.graph.predecessors(node))))) * attrs["shape"][-1]:
            attrs["params"] += attrs["shape"][-1]  # the folded shift becomes a bias
            attrs["size_bytes"] += 4 * attrs["shape"][-1]
        self.output_of[layer.name] = node

    def _activation_layer(self, layer: Any, inputs: list[str], sources: list[Any],
                          name: str) -> None:
        node = self._fusable_producer(layer, sources, inputs, _FUSES_ACTIVATION)
        if node is None:
            producer = self.graph.nodes[self._single(layer, inputs)]["op"]
            raise ArchitectureError(
                f"layer {layer.name!r}: a {name} activation is only supported right after a "
                f"conv, dense or Add layer whose output nothing else uses (found {producer})")
        self.output_of[layer.name] = node
        self._activation(layer, node, name)

    def _ReLU(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        max_value = layer.max_value
        if layer.negative_slope != 0 or layer.threshold != 0 or max_value not in (None, 6):
            raise ArchitectureError(f"layer {layer.name!r}: only ReLU and ReLU6 are supported")
        self._activation_layer(layer, inputs, sources, "relu" if max_value is None else "relu6")

    def _Activation(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        name = layer.activation.__name__
        if name == "softmax":
            self._Softmax(layer, inputs, sources)
        elif name == "linear":
            self.output_of[layer.name] = self._single(layer, inputs)
        else:
            if name not in _ACTIVATIONS:
                raise ArchitectureError(f"layer {layer.name!r}: unsupported activation {name!r}")
            self._activation_layer(layer, inputs, sources, name)

    def _Softmax(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "SOFTMAX", [self._single(layer, inputs)])

    def _MaxPooling2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "MAX_POOL_2D", [self._single(layer, inputs)])

    def _AveragePooling2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "AVERAGE_POOL_2D", [self._single(layer, inputs)])

    def _GlobalAveragePooling2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        if getattr(layer, "keepdims", False):
            raise ArchitectureError(f"layer {layer.name!r}: keepdims=True is not supported")
        self._op(layer, "MEAN", [self._single(layer, inputs)])

    def _Flatten(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "RESHAPE", [self._single(layer, inputs)])

    _Reshape = _Flatten

    def _ZeroPadding2D(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "PAD", [self._single(layer, inputs)])

    def _Dropout(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self.output_of[layer.name] = self._single(layer, inputs)

    def _Add(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        if len(inputs) != 2:
            raise ArchitectureError(f"layer {layer.name!r}: Add of {len(inputs)} tensors; "
                                    "expected 2")
        self._op(layer, "ADD", inputs)

    def _Concatenate(self, layer: Any, inputs: list[str], sources: list[Any]) -> None:
        self._op(layer, "CONCATENATION", inputs)
