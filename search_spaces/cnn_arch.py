"""The μNAS CNN architecture value (Table 1 of Liberis et al., 2021) and how it is built.

An architecture is a series of convolutional blocks, a PxP pooling, a few dense layers and the
class layer (logits)::

    input -> block 0 -> block 1 -> ... -> PxP pool -> flatten -> dense* -> logits

A block is 1..3 layers, each: optional 2x2 max pool, full or depthwise KxK conv with stride S
(``'same'`` padding), optional BatchNorm, optional ReLU. A *parallel* block takes the same input
as the block before it and its output is joined with that block's output (see :func:`plan_cnn`
for the join rule), which gives Inception-like groups of branches.

>>> layer = ConvLayer("full", kernel=3, channels=8, stride=1, pre_pool=False, batch_norm=True,
...                   relu=True)
>>> arch = CNNArchitecture(blocks=(ConvBlock(False, (layer,)),), pool_type="avg", pool_size=2,
...                        dense_units=(32,))
>>> CNNArchitecture.from_json(arch.to_json()) == arch
True
>>> [n for n in arch.resource_graph((8, 8, 1), 10)]
['input', 'b0_l0_conv', 'pool', 'flatten', 'd0_dense', 'logits']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx

from search_spaces.base import Architecture
from search_spaces.fields import (
    check_range,
    fail,
    field_path,
    read_bool,
    read_choice,
    read_int,
    read_list,
    read_optional_int,
    require_keys,
)
from search_spaces.ops import (
    PlannedOp,
    conv_op,
    dense_op,
    flatten_op,
    input_op,
    join_op,
    ops_to_graph,
    ops_to_keras,
    pool_op,
)
from unas.errors import ArchitectureError

CONV_TYPES = ("full", "depthwise")
POOL_TYPES = ("avg", "max")
STRIDES = (1, 2)
_LAYER_KEYS = ("type", "kernel", "channels", "stride", "pre_pool", "batch_norm", "relu")


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer. ``channels`` is None for a depthwise conv (it keeps its input's channels)."""

    type: str
    kernel: int
    channels: int | None
    stride: int
    pre_pool: bool
    batch_norm: bool
    relu: bool

    def check(self, path: str) -> None:
        """Raise :class:`ArchitectureError` naming the field if the layer is malformed."""
        if self.type not in CONV_TYPES:
            raise fail(f"{path}.type", f"one of {list(CONV_TYPES)}", self.type)
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise fail(f"{path}.kernel", "an odd integer >= 1", self.kernel)
        if self.stride not in STRIDES:
            raise fail(f"{path}.stride", "1 or 2", self.stride)
        if self.kernel == 1 and self.stride != 1:
            raise fail(f"{path}.stride", "1 for a 1x1 convolution", self.stride)
        if self.type == "depthwise" and self.channels is not None:
            raise fail(f"{path}.channels", "null for a depthwise convolution", self.channels)
        if self.type == "full" and (self.channels is None or self.channels < 1):
            raise fail(f"{path}.channels", "an integer >= 1 for a full convolution", self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _LAYER_KEYS}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ConvLayer:
        require_keys(data, _LAYER_KEYS, path)
        layer = cls(type=read_choice(data, "type", path, CONV_TYPES),
                    kernel=read_int(data, "kernel", path),
                    channels=read_optional_int(data, "channels", path),
                    stride=read_int(data, "stride", path),
                    pre_pool=read_bool(data, "pre_pool", path),
                    batch_norm=read_bool(data, "batch_norm", path),
                    relu=read_bool(data, "relu", path))
        layer.check(path)
        return layer


@dataclass(frozen=True)
class ConvBlock:
    """Conv layers; ``parallel``: it shares the previous block's input (never for block 0)."""

    parallel: bool
    layers: tuple[ConvLayer, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"parallel": self.parallel, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ConvBlock:
        require_keys(data, ("parallel", "layers"), path)
        layers = read_list(data, "layers", path)
        return cls(parallel=read_bool(data, "parallel", path),
                   layers=tuple(ConvLayer.from_dict(layer, field_path(f"{path}.layers", j))
                                for j, layer in enumerate(layers)))


@dataclass(frozen=True)
class CNNArchitecture(Architecture):
    """A μNAS CNN: conv ``blocks``, a ``pool_size`` x ``pool_size`` ``pool_type`` pooling, hidden
    dense layers of ``dense_units`` units (each followed by ReLU), then the logits layer."""

    space = "cnn"

    blocks: tuple[ConvBlock, ...]
    pool_type: str
    pool_size: int
    dense_units: tuple[int, ...]

    model_name: ClassVar[str] = "unas_cnn"

    def __post_init__(self) -> None:
        if not self.blocks:
            raise fail("blocks", "at least one block", [])
        if self.blocks[0].parallel:
            raise fail("blocks[0].parallel", "false (the first block has no block to branch from)",
                       True)
        for i, block in enumerate(self.blocks):
            if not block.layers:
                raise fail(f"blocks[{i}].layers", "at least one layer", [])
            for j, layer in enumerate(block.layers):
                layer.check(f"blocks[{i}].layers[{j}]")
        if self.pool_type not in POOL_TYPES:
            raise fail("pool_type", f"one of {list(POOL_TYPES)}", self.pool_type)
        check_range(self.pool_size, "pool_size", 1)
        for k, units in enumerate(self.dense_units):
            check_range(units, f"dense_units[{k}]", 1)

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [block.to_dict() for block in self.blocks], "pool_type": self.pool_type,
                "pool_size": self.pool_size, "dense_units": list(self.dense_units)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CNNArchitecture:
        require_keys(data, ("blocks", "pool_type", "pool_size", "dense_units"), "")
        blocks = tuple(ConvBlock.from_dict(block, f"blocks[{i}]")
                       for i, block in enumerate(read_list(data, "blocks", "")))
        units = read_list(data, "dense_units", "")
        dense_units = tuple(read_int(dict(enumerate(units)), k, "dense_units")
                            for k in range(len(units)))
        return cls(blocks=blocks, pool_type=read_choice(data, "pool_type", "", POOL_TYPES),
                   pool_size=read_int(data, "pool_size", ""), dense_units=dense_units)

    @property
    def layers(self) -> tuple[ConvLayer, ...]:
        """All conv layers, block by block."""
        return tuple(layer for block in self.blocks for layer in block.layers)

    def plan(self, input_shape: tuple[int, ...], num_classes: int) -> list[PlannedOp]:
        """The operators of this network for ``input_shape`` (H, W, C); see :func:`plan_cnn`."""
        return plan_cnn(self, input_shape, num_classes)

    def build(self, input_shape: tuple[int, ...], num_classes: int, *, dropout: float = 0.0) -> Any:
        """A fresh ``tf_keras.Model`` outputting logits (train with ``from_logits=True``).

        ``dropout > 0`` inserts Dropout before every hidden dense layer (μNAS App. A.2.1).
        """
        return ops_to_keras(self.plan(input_shape, num_classes), self.model_name, dropout)

    def resource_graph(self, input_shape: tuple[int, ...], num_classes: int) -> nx.DiGraph:
        """The resource graph, computed without TensorFlow (no SOFTMAX: the output is logits)."""
        return ops_to_graph(self.plan(input_shape, num_classes))


def _check_io(input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                              for d in shape):
        raise ArchitectureError(
            f"input_shape: expected (height, width, channels) of positive integers, got {shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ArchitectureError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
    return shape  # type: ignore[return-value]


def _align(name: str, op: PlannedOp, height: int, width: int) -> PlannedOp:
    """A max pool shrinking ``op``'s output to exactly ``height`` x ``width`` (each <= its own).

    Per dimension ``n -> m``: stride ``s = n // m``, window ``p = n - (m - 1) * s`` (>= s), so
    ``(n - p) // s + 1 == m`` and the windows cover the whole input (32 -> 16: 2x2 stride 2).
    """
    h, w, _ = op.shape
    stride = (h // height, w // width)
    window = (h - (height - 1) * stride[0], w - (width - 1) * stride[1])
    return pool_op(name, op.name, op.shape, kind="max", pool=window, strides=stride)


def plan_cnn(arch: CNNArchitecture, input_shape: tuple[int, ...], num_classes: int
             ) -> list[PlannedOp]:
    """The operators of ``arch`` for ``input_shape``, in a valid execution order.

    Rules that keep every architecture buildable for every input shape (documented in
    docs/search_spaces.md):

    * convs use ``'same'`` padding: output ``ceil(H / S)``, never below 1;
    * a layer's 2x2 pre-pool becomes ``min(2, H) x min(2, W)`` and is left out at 1x1; blocks
      that pre-pool the same tensor (a parallel group's first layers) share one pool, named after
      its first user, as the TFLite converter would merge them anyway (common subexpressions);
    * the final PxP pool becomes ``min(P, H) x min(P, W)`` (stride = window, ``'valid'``) and is
      left out when that is 1x1;
    * joining a parallel block's output ``b`` to the running output ``a``: each is first max-pooled
      down to the smaller height and width of the two (:func:`_align`, only where it is larger),
      then ADD if the shapes are equal, else CONCATENATION of the channels (``a`` first).
    """
    height, width, channels = _check_io(input_shape, num_classes)
    ops = [input_op((height, width, channels))]
    output = ops[0]        # running output of the blocks so far
    block_input = ops[0]   # what the previous block consumed (a parallel block consumes it too)
    pre_pools: dict[tuple[str, tuple[int, int]], PlannedOp] = {}
    for i, block in enumerate(arch.blocks):
        source = block_input if block.parallel else output
        x = source
        for j, layer in enumerate(block.layers):
            if layer.pre_pool and x.shape[:2] != (1, 1):
                key = (x.name, (min(2, x.shape[0]), min(2, x.shape[1])))
                if key not in pre_pools:  # branches pre-pooling one input share one pool
                    pre_pools[key] = pool_op(f"b{i}_l{j}_prepool", x.name, x.shape, kind="max",
                                             pool=key[1], strides=key[1])
                    ops.append(pre_pools[key])
                x = pre_pools[key]
            x = conv_op(f"b{i}_l{j}_conv", x.name, x.shape, channels=layer.channels,
                        kernel=layer.kernel, stride=layer.stride, batch_norm=layer.batch_norm,
                        relu=layer.relu)
            ops.append(x)
        if block.parallel:
            height, width = min(output.shape[0], x.shape[0]), min(output.shape[1], x.shape[1])
            if output.shape[:2] != (height, width):
                output = _align(f"b{i}_align_prev", output, height, width)
                ops.append(output)
            if x.shape[:2] != (height, width):
                x = _align(f"b{i}_align", x, height, width)
                ops.append(x)
            x = join_op(f"b{i}_join", output, x)
            ops.append(x)
        block_input, output = source, x
    window = (min(arch.pool_size, output.shape[0]), min(arch.pool_size, output.shape[1]))
    if window != (1, 1):
        output = pool_op("pool", output.name, output.shape, kind=arch.pool_type, pool=window,
                         strides=window)
        ops.append(output)
    x = flatten_op("flatten", output)
    ops.append(x)
    for k, units in enumerate(arch.dense_units):
        x = dense_op(f"d{k}_dense", x, units, relu=True, dropout_before=True)
        ops.append(x)
    ops.append(dense_op("logits", x, num_classes, relu=False))
    return ops
