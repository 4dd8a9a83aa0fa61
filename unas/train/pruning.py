"""Structured channel pruning during training, and materialising the pruned network.

What it does (μNAS section 3.6, done right):

* **Groups.** Every full convolution and every hidden dense layer produces a *channel group*
  (its output channels / units). Channels travel through depthwise convs, pools and flatten
  unchanged; the inputs of an ``ADD`` are one group (they share one mask); a ``CONCATENATION``
  lays its inputs' groups side by side. The graph input and the class layer are never pruned,
  and a group that an ``ADD`` would have to split unevenly (a concatenation added to a single
  layer's output) is left whole. A group always keeps at least one channel.
* **Masks.** The model trained is the candidate's own layers re-wired with a :class:`ChannelMask`
  after every conv, depthwise conv and hidden dense layer (after its BatchNorm and ReLU). So a
  pruned channel emits exactly zero: its bias and BN shift are masked too, and a depthwise conv
  after a pruned channel is masked as well (its bias would otherwise revive it).
* **Feedback.** A pruned channel's own weights keep receiving the gradient they would get if the
  channel were alive (the layer is applied a second time to a gradient-stopped input and only that
  copy carries the pruned channels' gradient), so the channel can come back when the masks are
  recomputed (Dynamic Model Pruning with Feedback, Lin et al. 2020). Earlier layers get gradient
  only through the kept channels, i.e. exactly the gradient of the network the forward pass
  computes. (A plain straight-through mask on the activation would leak gradient into earlier
  layers through pruned channels and makes training diverge.) The second application runs the
  layer's BatchNorm twice per step, so its moving statistics move as with momentum squared.
  No optimiser is patched and nothing is reset after validation.
* **Schedule.** tensorflow-model-optimization's ``PolynomialDecay`` (cubic, from 0 to the target)
  decides when masks are recomputed (every ``frequency`` steps, default twice an epoch) and to what
  sparsity, from the first step of ``start_epoch`` to the first step of ``end_epoch``; the masks
  are final from then on. A group of ``n`` channels keeps the ``max(1, round((1 - s) * n))``
  channels whose weight groups have the largest L2 norm (summed over all the layers in the group).
* **Per-layer, not global, threshold.** μNAS ranks all channels of the network against one global
  threshold. Here every group is pruned by the same fraction. Why: (1) the pruned architecture,
  and so its peak memory, size and MACs, is known *before* training (:func:`pruned_architecture`),
  which lets the search skip candidates that cannot fit even when pruned; (2) L2 norms are not
  comparable across layers of different fan-in, so a global threshold wipes out whole layers with
  small weights (down to the one-channel floor) for reasons of scale, not importance.
* **Materialise.** :func:`make_pruning`'s ``materialise()`` builds the smaller dense architecture
  (``arch`` with the kept channel counts), copies the kept weights into it, and returns the model
  and the architecture. Its outputs equal the masked network's (inference mode) to float precision.

Supports the ``cnn`` and ``mlp`` spaces (architectures with a ``plan()`` of
:class:`search_spaces.ops.PlannedOp`).

Example::

    model, callbacks, materialise = make_pruning(arch.build((8, 8, 1), 10), arch, 0.5,
                                                 start_epoch=1, end_epoch=3, steps_per_epoch=10)
    model.compile(...); model.fit(..., epochs=5, callbacks=callbacks)
    small_model, small_arch = materialise()
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.base import Architecture
from search_spaces.ops import PlannedOp
from unas.errors import ArchitectureError

__all__ = ["ChannelGroups", "find_groups", "make_pruning", "pruned_architecture", "keep_count"]

_PRODUCERS = ("conv", "dense")        # layer kinds that create a channel group
_MASKED = ("conv", "depthwise", "dense")  # layer kinds whose output gets a mask


def keep_count(size: int, sparsity: float) -> int:
    """Channels a group of ``size`` keeps at ``sparsity``: ``max(1, round((1 - s) * size))``."""
    return max(1, min(size, int(round((1.0 - sparsity) * size))))


@dataclass
class ChannelGroups:
    """Channel groups of a planned network.

    ``layout[op]`` is the list of ``(group, size)`` segments making up ``op``'s output channels
    (last axis), ``size[g]`` a group's channel count, ``producers[g]`` the ops creating it,
    ``frozen`` the groups that are never pruned.
    """

    layout: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    size: dict[int, int] = field(default_factory=dict)
    producers: dict[int, list[str]] = field(default_factory=dict)
    frozen: set[int] = field(default_factory=set)
    parent: dict[int, int] = field(default_factory=dict)

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def new(self, size: int, producer: str | None, frozen: bool = False) -> int:
        g = len(self.parent)
        self.parent[g], self.size[g] = g, size
        self.producers[g] = [producer] if producer else []
        if frozen:
            self.frozen.add(g)
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        self.parent[b] = a
        self.producers[a] += self.producers.pop(b)
        if b in self.frozen:
            self.frozen.add(a)

    def segments(self, op: str) -> list[tuple[int, int]]:
        """``op``'s output segments with groups resolved to their representatives."""
        return [(self.find(g), n) for g, n in self.layout[op]]

    def prunable(self) -> list[int]:
        """Representative ids of the groups pruning may shrink."""
        roots = {self.find(g) for g in self.parent}
        return sorted(g for g in roots if g not in self.frozen and self.size[g] > 1)


def find_groups(ops: list[PlannedOp]) -> ChannelGroups:
    """The channel groups of the planned operators ``ops`` (see the module docstring)."""
    groups = ChannelGroups()
    last = ops[-1].name
    for op in ops:
        if op.layer == "input":
            groups.layout[op.name] = [(groups.new(op.shape[-1], None, frozen=True), op.shape[-1])]
        elif op.layer in _PRODUCERS:
            frozen = op.name == last  # the class layer is never pruned
            groups.layout[op.name] = [(groups.new(op.channels, op.name, frozen), op.channels)]
        elif op.layer == "concat":
            groups.layout[op.name] = [s for src in op.inputs for s in groups.layout[src]]
        elif op.layer == "add":
            first = groups.segments(op.inputs[0])
            for src in op.inputs[1:]:
                other = groups.segments(src)
                if [n for _, n in first] == [n for _, n in other]:
                    for (a, _), (b, _) in zip(first, other):
                        groups.union(a, b)
                else:  # channels would have to be split unevenly: keep all of them
                    for g, _ in first + other:
                        groups.frozen.add(groups.find(g))
            groups.layout[op.name] = list(groups.layout[op.inputs[0]])
        else:  # depthwise, pools, flatten: channels pass through
            groups.layout[op.name] = list(groups.layout[op.inputs[0]])
    return groups


def _channel_index(groups: ChannelGroups, op: str, keep: dict[int, np.ndarray]) -> np.ndarray:
    """Original indices (along the last axis) of the channels of ``op`` that are kept."""
    parts, offset = [], 0
    for g, n in groups.segments(op):
        parts.append(offset + (keep[g] if g in keep else np.arange(n)))
        offset += n
    return np.concatenate(parts).astype(np.int64)


def _flat_index(shape: tuple[int, ...], channels: np.ndarray) -> np.ndarray:
    """Indices into Keras's row-major ``Flatten`` of an (H, W, C) tensor keeping ``channels``."""
    spatial = int(np.prod(shape[:-1]))
    return (np.arange(spatial)[:, None] * shape[-1] + channels[None, :]).reshape(-1)


# --- architectures -----------------------------------------------------------------------------

def _rewidth(arch: Architecture, widths: dict[str, int]) -> Architecture:
    """``arch`` with the output width of each named producer op replaced."""
    if arch.space == "cnn":
        blocks = []
        for i, block in enumerate(arch.blocks):  # type: ignore[attr-defined]
            layers = tuple(dataclasses.replace(layer, channels=widths.get(f"b{i}_l{j}_conv",
                                                                          layer.channels))
                           for j, layer in enumerate(block.layers))
            blocks.append(dataclasses.replace(block, layers=layers))
        units = tuple(widths.get(f"d{k}_dense", u)
                      for k, u in enumerate(arch.dense_units))  # type: ignore[attr-defined]
        return dataclasses.replace(arch, blocks=tuple(blocks), dense_units=units)
    if arch.space == "mlp":
        layers = tuple(dataclasses.replace(layer, units=widths.get(f"l{k}_dense", layer.units))
                       for k, layer in enumerate(arch.layers))  # type: ignore[attr-defined]
        return dataclasses.replace(arch, layers=layers)
    raise ArchitectureError(f"structured pruning supports the cnn and mlp spaces, not {arch.space!r}")


def _structure(ops: list[PlannedOp]) -> list[tuple[str, str]]:
    return [(op.name, op.layer) for op in ops]


def _final_architecture(arch: Architecture, ops: list[PlannedOp], groups: ChannelGroups,
                        counts: dict[int, int], input_shape: tuple[int, ...],
                        num_classes: int) -> tuple[Architecture, dict[int, int]]:
    """The architecture with ``counts`` channels per group, nudging counts by one where equal
    widths would turn a CONCATENATION into an ADD (which would change the network's wiring)."""
    counts = dict(counts)
    for _ in range(4 * len(counts) + 1):
        widths = {p: counts[g] for g in counts for p in groups.producers[g]}
        small = _rewidth(arch, widths)
        small_ops = small.plan(input_shape, num_classes)  # type: ignore[attr-defined]
        if _structure(small_ops) == _structure(ops):
            return small, counts
        changed = [s for s, o in zip(small_ops, ops) if (s.name, s.layer) != (o.name, o.layer)]
        join = next((o for o in ops if o.name == changed[0].name), None) if changed else None
        if join is None or join.layer != "concat":
            break
        g = groups.segments(join.inputs[1])[-1][0]  # widen or narrow the second input by one
        if g not in counts:
            g = groups.segments(join.inputs[0])[-1][0]
        if g not in counts:
            break
        counts[g] += 1 if counts[g] < groups.size[g] else -1
    raise ArchitectureError("structured pruning could not keep the network's wiring unchanged")


def pruned_architecture(arch: Architecture, input_shape: tuple[int, ...], num_classes: int,
                        sparsity: float) -> Architecture:
    """The architecture training with pruning target ``sparsity`` will materialise.

    Known before training because every group is pruned by the same fraction; the search uses it
    to measure a candidate's resources after pruning without training it.
    """
    ops = arch.plan(tuple(input_shape), int(num_classes))  # type: ignore[attr-defined]
    groups = find_groups(ops)
    counts = {g: keep_count(groups.size[g], sparsity) for g in groups.prunable()}
    return _final_architecture(arch, ops, groups, counts, tuple(input_shape), int(num_classes))[0]


# --- Keras side ----------------------------------------------------------------------------------

def _mask_layer_classes() -> tuple[type, type]:
    from unas.tfenv import keras, tf

    class ChannelMask(keras.layers.Layer):
        """Forward: ``m * y``. Backward: the kept channels pass their gradient to everything
        before them as usual; a pruned channel's gradient reaches only its *own* weights (through
        ``y_feedback``, the same layers applied to a gradient-stopped input), so its weights
        keep learning (feedback) without leaking gradient into earlier layers along a path the
        forward pass does not have.

        ``parts`` lists the output's channel segments in order: a mask variable (shared by every
        layer of that group) or ``None`` with the segment's size for channels never pruned.
        """

        def __init__(self, parts: list[tuple[Any, int]], **kwargs: Any) -> None:
            super().__init__(trainable=False, **kwargs)
            self._parts = [(var, int(n)) for var, n in parts]

        def call(self, inputs: Any) -> Any:
            y, y_feedback = inputs
            pieces = [tf.ones((n,), y.dtype) if var is None else tf.cast(var, y.dtype)
                      for var, n in self._parts]
            mask = pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=0)
            return mask * y + (1.0 - mask) * (y_feedback - tf.stop_gradient(y_feedback))

    class StopGradient(keras.layers.Layer):
        """Identity in the forward pass, no gradient backwards."""

        def call(self, x: Any) -> Any:
            return tf.stop_gradient(x)

    return ChannelMask, StopGradient


class _Pruner:
    """Owns the masked model, its masks and the rule that recomputes them."""

    def __init__(self, model: Any, arch: Architecture) -> None:
        from unas.tfenv import keras

        self.arch = arch
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        self.num_classes = int(model.output_shape[-1])
        self.ops = arch.plan(self.input_shape, self.num_classes)  # type: ignore[attr-defined]
        self.groups = find_groups(self.ops)
        self.base = model
        from unas.tfenv import tf

        self.masks: dict[int, Any] = {
            g: tf.Variable(tf.ones((self.groups.size[g],)), trainable=False, name=f"mask_g{g}")
            for g in self.groups.prunable()}
        self.keep: dict[int, np.ndarray] = {g: np.arange(self.groups.size[g]) for g in self.masks}
        mask_cls, stop_cls = _mask_layer_classes()
        layer_names = {layer.name for layer in model.layers}

        def chain(x: Any, op: PlannedOp) -> Any:
            for name in (op.name, f"{op.name}_bn", f"{op.name}_relu"):
                if name in layer_names:
                    x = model.get_layer(name)(x)
            return x

        tensors: dict[str, Any] = {}
        for op in self.ops:
            if op.layer == "input":
                tensors[op.name] = keras.Input(shape=op.shape, name=op.name)
                continue
            sources = [tensors[name] for name in op.inputs]
            x = sources if op.layer in ("add", "concat") else sources[0]
            if f"{op.name}_dropout" in layer_names:
                x = model.get_layer(f"{op.name}_dropout")(x)
            segments = self.groups.segments(op.name)
            if op.layer in _MASKED and any(g in self.masks for g, _ in segments):
                parts = [(self.masks.get(g), n) for g, n in segments]
                feedback = chain(stop_cls(name=f"{op.name}_stop")(x), op)
                x = mask_cls(parts, name=f"{op.name}_mask")([chain(x, op), feedback])
            else:
                x = chain(x, op)
            tensors[op.name] = x
        self.model = keras.Model(tensors[self.ops[0].name], tensors[self.ops[-1].name],
                                 name=f"{model.name}_masked")

    def norms(self, g: int) -> np.ndarray:
        """L2 norm of each channel's weights, summed over the layers producing group ``g``."""
        total = np.zeros(self.groups.size[g])
        for name in self.groups.producers[g]:
            kernel = np.asarray(self.base.get_layer(name).kernel.numpy())
            total += np.square(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
        return np.sqrt(total)

    def update(self, sparsity: float) -> None:
        """Recompute every mask from the current dense weights at ``sparsity``."""
        wanted = {g: keep_count(self.groups.size[g], sparsity) for g in self.masks}
        _, counts = _final_architecture(self.arch, self.ops, self.groups, wanted,
                                        self.input_shape, self.num_classes)
        for g, layer in self.masks.items():
            k = counts[g]
            order = np.argsort(-self.norms(g), kind="stable")
            self.keep[g] = np.sort(order[:k])
            mask = np.zeros(self.groups.size[g], dtype=np.float32)
            mask[self.keep[g]] = 1.0
            layer.assign(mask)

    def materialise(self) -> tuple[Any, Architecture]:
        """The smaller dense model with the kept weights, and its architecture."""
        counts = {g: len(keep) for g, keep in self.keep.items()}
        small_arch, final = _final_architecture(self.arch, self.ops, self.groups, counts,
                                                 self.input_shape, self.num_classes)
        assert final == counts, "masks are always computed with wiring-preserving counts"
        keep = self.keep
        small = small_arch.build(self.input_shape, self.num_classes)
        names = {layer.name for layer in small.layers}
        by_name = {o.name: o for o in self.ops}
        for op in self.ops:
            if op.layer not in _MASKED:
                continue
            out_idx = _channel_index(self.groups, op.name, keep)
            src = by_name[op.inputs[0]]
            in_idx = _channel_index(self.groups, src.name, keep)
            if src.layer == "flatten":
                pre = by_name[src.inputs[0]]
                in_idx = (_flat_index(pre.shape, _channel_index(self.groups, pre.name, keep))
                          if len(pre.shape) > 1 else _channel_index(self.groups, pre.name, keep))
            layer = self.base.get_layer(op.name)
            weights = [np.asarray(w) for w in layer.get_weights()]
            if op.layer == "conv":
                weights[0] = weights[0][:, :, in_idx][..., out_idx]
            elif op.layer == "depthwise":
                weights[0] = weights[0][:, :, out_idx]
            else:
                weights[0] = weights[0][in_idx][:, out_idx]
            weights[1:] = [w[out_idx] for w in weights[1:]]
            small.get_layer(op.name).set_weights(weights)
            if f"{op.name}_bn" in names:
                bn = [np.asarray(w)[out_idx] for w in self.base.get_layer(f"{op.name}_bn").get_weights()]
                small.get_layer(f"{op.name}_bn").set_weights(bn)
        return small, small_arch


def _callback(pruner: _Pruner, target: float, begin_step: int, end_step: int,
              frequency: int) -> Any:
    import tensorflow_model_optimization as tfmot

    from unas.tfenv import keras

    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target, begin_step=begin_step,
        end_step=max(end_step, begin_step + 1), power=3, frequency=frequency)

    class StructuredPruning(keras.callbacks.Callback):
        """Recomputes the channel masks on tfmot's polynomial schedule; final at ``end_step``."""

        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.final = False

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if self.final:
                return
            if self.step >= end_step:
                pruner.update(target)
                self.final = True
            else:
                should_prune, sparsity = schedule(self.step)
                if bool(should_prune):
                    pruner.update(float(sparsity))
            self.step += 1

        def on_train_end(self, logs: Any = None) -> None:
            if not self.final:  # training stopped before end_epoch: prune to the target now
                pruner.update(target)
                self.final = True

    return StructuredPruning()


def make_pruning(model: Any, arch: Architecture, target_sparsity: float, start_epoch: int,
                 end_epoch: int, steps_per_epoch: int, frequency: int | None = None
                 ) -> tuple[Any, list[Any], Callable[[], tuple[Any, Architecture]]]:
    """Set up structured pruning of ``model`` (freshly built from ``arch``).

    Returns ``(masked_model, callbacks, materialise)``: train ``masked_model`` (it shares
    ``model``'s layers and weights) with ``callbacks``; afterwards ``materialise()`` returns the
    smaller dense model and its architecture. Epochs count from 0; pruning starts at the first step
    of ``start_epoch`` and reaches ``target_sparsity`` at the first step of ``end_epoch``.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target_sparsity: expected a value in [0, 1), got {target_sparsity}")
    if not 0 <= start_epoch <= end_epoch:
        raise ValueError(f"pruning epochs: expected 0 <= start_epoch <= end_epoch, "
                         f"got {start_epoch}, {end_epoch}")
    pruner = _Pruner(model, arch)
    steps = max(1, int(steps_per_epoch))
    freq = frequency or max(1, steps // 2)
    callback = _callback(pruner, float(target_sparsity), start_epoch * steps, end_epoch * steps, freq)
    return pruner.model, [callback], pruner.materialise
