"""MCUNet's TinyNAS space: MobileNetV2-like inverted-residual (MBConv) networks.

The space of MCUNet (Lin et al., 2020, section 3.1 and appendix) with MCUNetV2's per-block width
scale (Lin et al., 2021, section 3.3 and appendix B):

* a global width multiplier ``w`` in ``WIDTH_MULTS`` = {0.2, 0.3, ..., 1.0} and an input
  resolution ``r`` in ``RESOLUTIONS`` = {48, 64, ..., 224} (9 x 12 = 108 configurations);
* a fixed stem: 3x3 conv, stride 2, ``32 w`` channels, BN, ReLU6;
* MobileNetV2's fixed first bottleneck (expansion 1): 3x3 depthwise + ReLU6, 1x1 project to
  ``16 w`` channels;
* five searchable stages (``STAGES``: base channels 24, 32, 64, 96, 160 with strides 2, 2, 2, 1,
  2 -- MobileNetV2's layout), each of depth {2, 3, 4}; every block picks its depthwise kernel
  {3, 5, 7}, expansion ratio {3, 4, 6} and width scale {0.5, 0.75, 1.0};
* MobileNetV2's fixed last bottleneck: expansion 6, 3x3, ``320 w`` channels;
* global average pooling and a Dense classifier producing logits.

An inverted-residual block is 1x1 expand conv (``in x expand`` channels) + BN + ReLU6, KxK
depthwise conv (stride 2 in a stage's first block where the stage has stride 2) + BN + ReLU6,
1x1 project conv + BN (linear), and a residual ADD when the stride is 1 and the input and
output channel counts are equal. A block's output channel count is
``make_divisible(base * w * width_scale)`` (MobileNetV2's rounding to a multiple of 8, at least
8), so blocks of one stage with different width scales have no residual between them.

Without the per-block width scale each configuration holds (9^2 + 9^3 + 9^4)^5 = 2.2e19
sub-networks, MCUNet's figure; with it, (27^2 + 27^3 + 27^4)^5 = 5.1e28.

The architecture carries ``r``: :meth:`MBConvArchitecture.build` and
:meth:`MBConvArchitecture.resource_graph` use an ``(r, r, C)`` input where ``C`` is the last
entry of the ``input_shape`` they are given (its height and width are ignored).

>>> import numpy as np
>>> space = MBConvSpace(width_mult=0.5, resolution=96)
>>> arch = space.random_architecture(np.random.default_rng(0))
>>> (arch.width_mult, arch.resolution)
(0.5, 96)
>>> MBConvArchitecture.from_json(arch.to_json()) == arch
True
>>> g = arch.resource_graph((96, 96, 3), 10)
>>> g.nodes["classifier"]["shape"]
(10,)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from search_spaces.base import Architecture, SearchSpace
from unas.errors import ArchitectureError, ConfigError
from unas.resources.macs import conv_macs

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

WIDTH_MULTS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(2, 11))
RESOLUTIONS: tuple[int, ...] = tuple(range(48, 225, 16))
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANSIONS: tuple[int, ...] = (3, 4, 6)
WIDTH_SCALES: tuple[float, ...] = (0.5, 0.75, 1.0)
DEPTHS: tuple[int, ...] = (2, 3, 4)

STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
#: (base output channels, stride of the stage's first block) of the searchable stages.
STAGES: tuple[tuple[int, int], ...] = ((24, 2), (32, 2), (64, 2), (96, 1), (160, 2))
LAST_BLOCK_CHANNELS = 320
LAST_BLOCK_EXPAND = 6
LAST_BLOCK_KERNEL = 3


def make_divisible(value: float, divisor: int = 8, min_value: int = 8) -> int:
    """MobileNetV2's channel rounding: nearest multiple of ``divisor``, at least ``min_value``,
    and never more than 10% below ``value``.

    >>> make_divisible(32 * 0.35), make_divisible(24 * 0.2), make_divisible(160 * 0.75)
    (16, 8, 120)
    """
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class MBConvBlock:
    """One searchable inverted-residual block: depthwise kernel, expansion ratio, width scale."""

    kernel: int
    expand: int
    width_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "expand": self.expand, "width_scale": self.width_scale}


@dataclass(frozen=True)
class LayerSpec:
    """One inverted-residual block as built: channels, kernel, stride, residual or not."""

    name: str
    in_channels: int
    hidden_channels: int  # == in_channels when there is no expand conv
    out_channels: int
    kernel: int
    stride: int
    has_expand: bool

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


class Operator(NamedTuple):
    """One resource-graph node: the arguments of :func:`unas.resources.graph.add_op`."""

    name: str
    op: str
    shape: tuple[int, ...]
    inputs: tuple[str, ...]
    macs: int = 0
    params: int = 0
    size_bytes: int = 0
    #: square kernel side and stride of a conv / depthwise conv ('same' padding); 0 otherwise
    kernel: int = 0
    stride: int = 0

    def geometry(self) -> dict[str, tuple[int, int]]:
        """The node's ``kernel``/``stride``/``dilation`` attributes (empty for non-convs)."""
        if not self.kernel:
            return {}
        return dict(kernel=(self.kernel, self.kernel), stride=(self.stride, self.stride),
                    dilation=(1, 1))


@dataclass(frozen=True)
class MBConvArchitecture(Architecture):
    """A network of the MBConv space: ``(w, r)`` and the blocks of each searchable stage.

    ``stages[i]`` holds the blocks of stage ``i`` (its depth is ``len(stages[i])``).
    Invalid values raise :class:`unas.errors.ArchitectureError`.
    """

    space: ClassVar[str] = "mbconv"

    width_mult: float
    resolution: int
    stages: tuple[tuple[MBConvBlock, ...], ...]

    def __post_init__(self) -> None:
        _check_choice("width_mult", self.width_mult, WIDTH_MULTS)
        _check_choice("resolution", self.resolution, RESOLUTIONS)
        if len(self.stages) != len(STAGES):
            raise ArchitectureError(
                f"mbconv architecture: stages: expected {len(STAGES)} stages, "
                f"got {len(self.stages)}")
        for i, blocks in enumerate(self.stages):
            if len(blocks) not in DEPTHS:
                raise ArchitectureError(f"mbconv architecture: stages[{i}]: expected a depth in "
                                        f"{list(DEPTHS)}, got {len(blocks)}")
            for j, block in enumerate(blocks):
                where = f"stages[{i}][{j}]"
                if not isinstance(block, MBConvBlock):
                    raise ArchitectureError(f"mbconv architecture: {where}: expected an "
                                            f"MBConvBlock, got {type(block).__name__}")
                _check_choice(f"{where}.kernel", block.kernel, KERNELS)
                _check_choice(f"{where}.expand", block.expand, EXPANSIONS)
                _check_choice(f"{where}.width_scale", block.width_scale, WIDTH_SCALES)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"width_mult": self.width_mult, "resolution": self.resolution,
                "stages": [[b.to_dict() for b in blocks] for blocks in self.stages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MBConvArchitecture":
        if not isinstance(data, dict):
            raise ArchitectureError(f"mbconv architecture: expected an object, got {data!r}")
        missing = {"width_mult", "resolution", "stages"} - set(data)
        extra = set(data) - {"width_mult", "resolution", "stages"}
        if missing or extra:
            raise ArchitectureError(f"mbconv architecture: expected keys width_mult, "
                                    f"resolution, stages; missing {sorted(missing)}, "
                                    f"unexpected {sorted(extra)}")
        stages = data["stages"]
        if not isinstance(stages, list | tuple):
            raise ArchitectureError(f"mbconv architecture: stages: expected a list, got {stages!r}")
        parsed = []
        for i, blocks in enumerate(stages):
            if not isinstance(blocks, list | tuple):
                raise ArchitectureError(
                    f"mbconv architecture: stages[{i}]: expected a list of blocks, got {blocks!r}")
            row = []
            for j, block in enumerate(blocks):
                if not isinstance(block, dict) or set(block) != {"kernel", "expand", "width_scale"}:
                    raise ArchitectureError(f"mbconv architecture: stages[{i}][{j}]: expected "
                                            f"{{kernel, expand, width_scale}}, got {block!r}")
                row.append(MBConvBlock(block["kernel"], block["expand"], block["width_scale"]))
            parsed.append(tuple(row))
        return cls(data["width_mult"], data["resolution"], tuple(parsed))

    # ---- structure ------------------------------------------------------------------------
    def layer_specs(self) -> list[LayerSpec]:
        """Every inverted-residual block as built (fixed first and last blocks included)."""
        w = self.width_mult
        channels = make_divisible(STEM_CHANNELS * w)
        first_out = make_divisible(FIRST_BLOCK_CHANNELS * w)
        specs = [LayerSpec("first", channels, channels, first_out, 3, 1, False)]
        channels = first_out
        for i, ((base, stage_stride), blocks) in enumerate(zip(STAGES, self.stages)):
            for j, block in enumerate(blocks):
                out = make_divisible(base * w * block.width_scale)
                hidden = make_divisible(channels * block.expand)
                specs.append(LayerSpec(f"s{i}b{j}", channels, hidden, out, block.kernel,
                                       stage_stride if j == 0 else 1, True))
                channels = out
        specs.append(LayerSpec("last", channels, make_divisible(channels * LAST_BLOCK_EXPAND),
                               make_divisible(LAST_BLOCK_CHANNELS * w), LAST_BLOCK_KERNEL, 1, True))
        return specs

    def stem_channels(self) -> int:
        return make_divisible(STEM_CHANNELS * self.width_mult)

    # ---- Keras ----------------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.0) -> Any:
        """A tf_keras model on ``(r, r, input_shape[-1])`` inputs producing ``num_classes`` logits.

        Convolutions use ``same`` padding and no bias, each followed by BatchNormalization;
        ReLU6 is ``ReLU(max_value=6)``. ``dropout > 0`` adds Dropout before the classifier, as
        MobileNetV2 does (training only: it is no operator of the converted model).
        """
        if not 0.0 <= dropout < 1.0:
            raise ArchitectureError(f"mbconv architecture: dropout: expected a rate in [0, 1), "
                                    f"got {dropout!r}")
        from unas.tfenv import keras

        layers = keras.layers
        channels_in = _channels(input_shape)
        r = self.resolution
        inputs = keras.Input((r, r, channels_in), name="input")

        def conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str, relu: bool) -> Any:
            x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                              name=f"{name}_conv")(x)
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
            return layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if relu else x

        x = conv_bn(inputs, self.stem_channels(), 3, 2, "stem", relu=True)
        for spec in self.layer_specs():
            block_in = x
            if spec.has_expand:
                x = conv_bn(x, spec.hidden_channels, 1, 1, f"{spec.name}_expand", relu=True)
            x = layers.DepthwiseConv2D(spec.kernel, strides=spec.stride, padding="same",
                                       use_bias=False, name=f"{spec.name}_dw_conv")(x)
            x = layers.BatchNormalization(name=f"{spec.name}_dw_bn")(x)
            x = layers.ReLU(max_value=6.0, name=f"{spec.name}_dw_relu")(x)
            x = conv_bn(x, spec.out_channels, 1, 1, f"{spec.name}_project", relu=False)
            if spec.residual:
                x = layers.Add(name=f"{spec.name}_add")([block_in, x])
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="dropout")(x)
        outputs = layers.Dense(num_classes, name="classifier")(x)
        return keras.Model(inputs, outputs, name="mbconv")

    # ---- resources (no TensorFlow) --------------------------------------------------------
    def operators(self, input_shape: tuple[int, ...], num_classes: int) -> list[Operator]:
        """The operators of :meth:`build`'s model as TFLite runs them (BN folded, ReLU6 fused),
        in execution order (the only topological order: one chain with residual skips).

        :meth:`resource_graph` is exactly these operators passed to
        :func:`unas.resources.graph.add_op`; this plain list is what fast sweeps iterate over.
        """
        channels = _channels(input_shape)
        size = self.resolution
        ops = [Operator("input", "INPUT", (size, size, channels), ())]

        def conv(name: str, src: str, c_in: int, c_out: int, kernel: int, stride: int) -> str:
            nonlocal size
            in_size, size = size, -(-size // stride)  # "same" padding
            weights = kernel * kernel * c_in * c_out
            macs = conv_macs((in_size, in_size, c_in), (size, size, c_out), (kernel, kernel),
                             (stride, stride))
            ops.append(Operator(name, "CONV_2D", (size, size, c_out), (src,), macs,
                                weights + c_out, weights + 4 * c_out, kernel, stride))
            return name

        stem = self.stem_channels()
        prev = conv("stem", "input", channels, stem, 3, 2)
        channels = stem
        for spec in self.layer_specs():
            block_in = prev
            if spec.has_expand:
                prev = conv(f"{spec.name}_expand", prev, channels, spec.hidden_channels, 1, 1)
            hidden = spec.hidden_channels
            in_size, size = size, -(-size // spec.stride)
            weights = spec.kernel * spec.kernel * hidden
            macs = conv_macs((in_size, in_size, hidden), (size, size, hidden),
                             (spec.kernel, spec.kernel), (spec.stride, spec.stride),
                             depthwise=True)
            ops.append(Operator(f"{spec.name}_dw", "DEPTHWISE_CONV_2D", (size, size, hidden),
                                (prev,), macs, weights + hidden, weights + 4 * hidden,
                                spec.kernel, spec.stride))
            prev = conv(f"{spec.name}_project", f"{spec.name}_dw", hidden, spec.out_channels, 1, 1)
            if spec.residual:
                ops.append(Operator(f"{spec.name}_add", "ADD", (size, size, spec.out_channels),
                                    (block_in, prev)))
                prev = f"{spec.name}_add"
            channels = spec.out_channels
        ops.append(Operator("pool", "MEAN", (channels,), (prev,)))
        ops.append(Operator("classifier", "FULLY_CONNECTED", (num_classes,), ("pool",),
                            channels * num_classes, channels * num_classes + num_classes,
                            channels * num_classes + 4 * num_classes))
        return ops

    def resource_graph(self, input_shape: tuple[int, ...], num_classes: int) -> "nx.DiGraph":
        """The resource graph of :meth:`build`'s model as TFLite runs it (BN folded, ReLU6
        fused): :meth:`operators` added with :func:`unas.resources.graph.add_op`."""
        from unas.resources.graph import add_op, new_graph

        graph = new_graph()
        for op in self.operators(input_shape, num_classes):
            add_op(graph, op.name, op.op, op.shape, op.inputs, macs=op.macs, params=op.params,
                   size_bytes=op.size_bytes, **op.geometry())
        return graph


class MBConvSpace(SearchSpace):
    """Samples and mutates :class:`MBConvArchitecture` values.

    ``width_mult`` / ``resolution``: one value fixes it (TinyNAS's second stage after search
    space optimisation); a sequence of values, or None for all of ``WIDTH_MULTS`` /
    ``RESOLUTIONS``, makes it part of the search (MCUNetV2's joint space).

    >>> import numpy as np
    >>> space = MBConvSpace(width_mult=0.3, resolution=64)
    >>> rng = np.random.default_rng(1)
    >>> a = space.random_architecture(rng)
    >>> space.mutate(a, rng) != a
    True
    """

    name: ClassVar[str] = "mbconv"

    def __init__(self, width_mult: float | Sequence[float] | None = None,
                 resolution: int | Sequence[int] | None = None) -> None:
        self.width_mults = _choices("width_mult", width_mult, WIDTH_MULTS)
        self.resolutions = _choices("resolution", resolution, RESOLUTIONS)

    def random_architecture(self, rng: np.random.Generator) -> MBConvArchitecture:
        """Every choice drawn uniformly and independently (depths first, then each block)."""
        n_stages, most = len(STAGES), max(DEPTHS)
        draws = rng.integers(0, 3, size=n_stages * (1 + 3 * most)).tolist()
        stages = []
        for i in range(n_stages):
            row = []
            for j in range(DEPTHS[draws[i]]):
                k, e, s = draws[n_stages + 3 * (i * most + j): n_stages + 3 * (i * most + j) + 3]
                row.append(MBConvBlock(KERNELS[k], EXPANSIONS[e], WIDTH_SCALES[s]))
            stages.append(tuple(row))
        w = self.width_mults[int(rng.integers(len(self.width_mults)))]
        r = self.resolutions[int(rng.integers(len(self.resolutions)))]
        return MBConvArchitecture(w, r, tuple(stages))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> MBConvArchitecture:
        """One morphism: a block's kernel, expansion or width scale changes, a stage's depth
        changes by one (a new block is drawn at random, or the last one dropped), or -- when the
        space searches them -- ``w`` or ``r`` moves to another allowed value."""
        if not isinstance(arch, MBConvArchitecture):
            raise ArchitectureError(f"mbconv space cannot mutate a {type(arch).__name__}")
        moves = ["block", "depth"]
        if len(self.width_mults) > 1:
            moves.append("width_mult")
        if len(self.resolutions) > 1:
            moves.append("resolution")
        move = moves[int(rng.integers(len(moves)))]
        stages = list(arch.stages)
        if move == "width_mult":
            return MBConvArchitecture(_other(arch.width_mult, self.width_mults, rng),
                                      arch.resolution, arch.stages)
        if move == "resolution":
            return MBConvArchitecture(arch.width_mult,
                                      _other(arch.resolution, self.resolutions, rng), arch.stages)
        i = int(rng.integers(len(stages)))
        blocks = list(stages[i])
        if move == "depth":
            grow = len(blocks) == min(DEPTHS) or (len(blocks) < max(DEPTHS) and rng.random() < 0.5)
            if grow:
                blocks.append(MBConvBlock(KERNELS[int(rng.integers(3))],
                                          EXPANSIONS[int(rng.integers(3))],
                                          WIDTH_SCALES[int(rng.integers(3))]))
            else:
                blocks.pop()
        else:
            j = int(rng.integers(len(blocks)))
            block = blocks[j]
            field = ("kernel", "expand", "width_scale")[int(rng.integers(3))]
            if field == "kernel":
                block = MBConvBlock(_other(block.kernel, KERNELS, rng), block.expand,
                                    block.width_scale)
            elif field == "expand":
                block = MBConvBlock(block.kernel, _other(block.expand, EXPANSIONS, rng),
                                    block.width_scale)
            else:
                block = MBConvBlock(block.kernel, block.expand,
                                    _other(block.width_scale, WIDTH_SCALES, rng))
            blocks[j] = block
        stages[i] = tuple(blocks)
        return MBConvArchitecture(arch.width_mult, arch.resolution, tuple(stages))


def _channels(input_shape: Sequence[int]) -> int:
    try:
        channels = int(input_shape[-1])
    except (TypeError, IndexError, ValueError):
        raise ArchitectureError(
            f"mbconv architecture: input_shape: expected (H, W, C), got {input_shape!r}") from None
    if len(input_shape) != 3 or channels < 1:
        raise ArchitectureError(
            f"mbconv architecture: input_shape: expected (H, W, C) with C >= 1, "
            f"got {input_shape!r}")
    return channels


def _check_choice(field: str, value: Any, allowed: Sequence[Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in allowed:
        raise ArchitectureError(
            f"mbconv architecture: {field}: expected one of {list(allowed)}, got {value!r}")


def _choices(field: str, value: Any, allowed: tuple[Any, ...]) -> tuple[Any, ...]:
    if value is None:
        return allowed
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise ConfigError(f"mbconv space: {field}: expected at least one of {list(allowed)}")
    canonical = set()
    for v in values:
        match = [a for a in allowed if isinstance(v, int | float) and not isinstance(v, bool)
                 and abs(a - v) < 1e-9]
        if not match:
            raise ConfigError(
                f"mbconv space: {field}: expected values from {list(allowed)}, got {v!r}")
        canonical.add(match[0])  # 0.3 rather than 0.30000000000000004, so archs compare equal
    return tuple(sorted(canonical))


def _other(value: Any, allowed: Sequence[Any], rng: np.random.Generator) -> Any:
    others = [v for v in allowed if v != value]
    return others[int(rng.integers(len(others)))]


def count_architectures(with_width_scale: bool = True) -> int:
    """Sub-networks of one ``(w, r)`` configuration (``math.prod`` over the stages)."""
    per_block = len(KERNELS) * len(EXPANSIONS) * (len(WIDTH_SCALES) if with_width_scale else 1)
    per_stage = sum(per_block ** d for d in DEPTHS)
    return math.prod([per_stage] * len(STAGES))
