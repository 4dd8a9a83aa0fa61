"""Planned operators: one description of a network that both the resource graph and the Keras
builder are made from, so the two can never disagree.

A space turns an architecture plus an input shape into a list of :class:`PlannedOp` (pure Python
shape arithmetic, exactly Keras's: ``ceil(H / S)`` for a ``'same'`` convolution,
``floor((H - P) / S) + 1`` for a ``'valid'`` pooling). :func:`ops_to_graph` turns the list into a
resource graph (one node per TFLite operator, see :mod:`unas.resources.graph`);
:func:`ops_to_keras` into a ``tf_keras.Model`` (conv -> BatchNorm -> ReLU, so the BN always
folds into the conv and the ReLU always fuses).

>>> ops = [input_op((4, 4, 1)), conv_op("c", "input", (4, 4, 1), channels=2, kernel=3, stride=2,
...                                         batch_norm=False, relu=True)]
>>> ops[1].shape, ops[1].macs, ops[1].size_bytes  # MACs: taps inside the input (5 x 5 x 2)
((2, 2, 2), 50, 26)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

from unas.resources.graph import add_op, new_graph
from unas.resources.macs import conv_macs


@dataclass(slots=True)
class PlannedOp:
    """One operator as TFLite executes it, with what Keras needs to build it.

    ``layer`` is the Keras-side kind: ``input``, ``conv``, ``depthwise``, ``max_pool``,
    ``avg_pool``, ``add``, ``concat``, ``flatten``, ``dense``.
    """

    name: str
    op: str
    layer: str
    shape: tuple[int, ...]
    inputs: tuple[str, ...] = ()
    macs: int = 0
    params: int = 0
    size_bytes: int = 0
    channels: int = 0
    kernel: int = 1
    stride: int = 1
    pool: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    batch_norm: bool = False
    relu: bool = False
    dropout_before: bool = False
    bias: bool = True


def input_op(shape: tuple[int, ...], name: str = "input") -> PlannedOp:
    """The graph input (live from the start)."""
    return PlannedOp(name, "INPUT", "input", tuple(shape))


def conv_op(name: str, source: str, in_shape: tuple[int, ...], *, channels: int | None, kernel: int,
            stride: int, batch_norm: bool, relu: bool) -> PlannedOp:
    """A ``'same'``-padded KxK convolution; ``channels=None`` means depthwise (multiplier 1).

    The int32 bias is always stored (TFLite gives every conv one; BN folds into it).
    """
    height, width, cin = in_shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    out = (out_h, out_w, cin if channels is None else channels)
    macs = conv_macs(in_shape, out, (kernel, kernel), (stride, stride), depthwise=channels is None)
    if channels is None:
        weights = kernel * kernel * cin
        return PlannedOp(name, "DEPTHWISE_CONV_2D", "depthwise", out, (source,),
                         macs=macs, params=weights + cin,
                         size_bytes=weights + 4 * cin, channels=cin, kernel=kernel, stride=stride,
                         batch_norm=batch_norm, relu=relu)
    weights = kernel * kernel * cin * channels
    return PlannedOp(name, "CONV_2D", "conv", out, (source,),
                     macs=macs, params=weights + channels,
                     size_bytes=weights + 4 * channels, channels=channels, kernel=kernel,
                     stride=stride, batch_norm=batch_norm, relu=relu)


def pool_op(name: str, source: str, in_shape: tuple[int, ...], *, kind: str, pool: tuple[int, int],
            strides: tuple[int, int]) -> PlannedOp:
    """A ``'valid'`` max (``kind='max'``) or average (``'avg'``) pooling."""
    height, width, channels = in_shape
    out_h = (height - pool[0]) // strides[0] + 1
    out_w = (width - pool[1]) // strides[1] + 1
    op = "MAX_POOL_2D" if kind == "max" else "AVERAGE_POOL_2D"
    return PlannedOp(name, op, f"{kind}_pool", (out_h, out_w, channels), (source,), pool=pool,
                     strides=strides)


def join_op(name: str, first: PlannedOp, second: PlannedOp) -> PlannedOp:
    """ADD when the shapes are equal, otherwise CONCATENATION along channels (same H, W)."""
    if first.shape == second.shape:
        return PlannedOp(name, "ADD", "add", first.shape, (first.name, second.name))
    shape = (*first.shape[:-1], first.shape[-1] + second.shape[-1])
    return PlannedOp(name, "CONCATENATION", "concat", shape, (first.name, second.name))


def flatten_op(name: str, source: PlannedOp) -> PlannedOp:
    """Keras ``Flatten`` (a TFLite RESHAPE)."""
    return PlannedOp(name, "RESHAPE", "flatten", (math.prod(source.shape),), (source.name,))


def dense_op(name: str, source: PlannedOp, units: int, *, relu: bool, batch_norm: bool = False,
             dropout_before: bool = False, bias: bool = True) -> PlannedOp:
    """A fully-connected layer; with ``bias`` it stores one (a BN after it folds into that bias).

    ``bias=False`` is for a linear layer (no ReLU) that feeds another fully-connected layer: its
    bias would be redundant, and the TFLite converter folds it into the next layer's bias anyway.
    """
    (in_units,) = source.shape
    weights = in_units * units
    biases = units if bias else 0
    return PlannedOp(name, "FULLY_CONNECTED", "dense", (units,), (source.name,), macs=weights,
                     params=weights + biases, size_bytes=weights + 4 * biases, channels=units,
                     batch_norm=batch_norm, relu=relu, dropout_before=dropout_before, bias=bias)


def ops_to_graph(ops: list[PlannedOp]) -> nx.DiGraph:
    """The resource graph of the planned operators (node names = operator names)."""
    graph = new_graph()
    for op in ops:
        geometry = {}
        if op.layer in ("conv", "depthwise"):
            geometry = dict(kernel=(op.kernel, op.kernel), stride=(op.stride, op.stride),
                            dilation=(1, 1))
        add_op(graph, op.name, op.op, op.shape, op.inputs, macs=op.macs, params=op.params,
               size_bytes=op.size_bytes, **geometry)
    return graph


def ops_to_keras(ops: list[PlannedOp], model_name: str, dropout: float = 0.0) -> Any:
    """A fresh ``tf_keras.Model`` built from the planned operators (last op = output).

    Layers are named after the operators; a conv's BatchNorm and ReLU are ``<name>_bn`` and
    ``<name>_relu``; ``dropout > 0`` puts a ``Dropout`` (``<name>_dropout``) before every
    operator planned with ``dropout_before``.
    """
    from unas.tfenv import keras

    layers = keras.layers
    tensors: dict[str, Any] = {}
    model_inputs = []
    for op in ops:
        if op.layer == "input":
            tensors[op.name] = keras.Input(shape=op.shape, name=op.name)
            model_inputs.append(tensors[op.name])
            continue
        sources = [tensors[name] for name in op.inputs]
        x = sources[0]
        if op.layer == "conv":
            x = layers.Conv2D(op.channels, op.kernel, strides=op.stride, padding="same",
                              use_bias=not op.batch_norm, name=op.name)(x)
        elif op.layer == "depthwise":
            x = layers.DepthwiseConv2D(op.kernel, strides=op.stride, padding="same",
                                       depth_multiplier=1, use_bias=not op.batch_norm,
                                       name=op.name)(x)
        elif op.layer == "max_pool":
            x = layers.MaxPooling2D(op.pool, strides=op.strides, padding="valid", name=op.name)(x)
        elif op.layer == "avg_pool":
            x = layers.AveragePooling2D(op.pool, strides=op.strides, padding="valid",
                                        name=op.name)(x)
        elif op.layer == "add":
            x = layers.Add(name=op.name)(sources)
        elif op.layer == "concat":
            x = layers.Concatenate(axis=-1, name=op.name)(sources)
        elif op.layer == "flatten":
            x = layers.Flatten(name=op.name)(x)
        elif op.layer == "dense":
            if op.dropout_before and dropout > 0:
                x = layers.Dropout(dropout, name=f"{op.name}_dropout")(x)
            fused = "relu" if op.relu and not op.batch_norm else None
            x = layers.Dense(op.channels, activation=fused, use_bias=op.bias and not op.batch_norm,
                             name=op.name)(x)
        else:  # pragma: no cover - the planners only emit the kinds above
            raise ValueError(f"unknown planned layer kind {op.layer!r}")
        if op.batch_norm:
            x = layers.BatchNormalization(name=f"{op.name}_bn")(x)
        if op.relu and (op.layer != "dense" or op.batch_norm):
            x = layers.ReLU(name=f"{op.name}_relu")(x)
        tensors[op.name] = x
    return keras.Model(inputs=model_inputs, outputs=tensors[ops[-1].name], name=model_name)
