"""Consistency checks of a model before code generation, the ones TFLM's Prepare functions make.

The generated C trusts every shape, dtype and quantisation parameter the ``.tflite`` declares: a
stride that does not produce the declared output shape, or a RESHAPE that changes the element
count, would compile and silently compute something else than TFLM (or write past the arena).
:func:`validate` refuses such a model with one :class:`~unas.errors.UnsupportedOperatorError`
line naming the file, the operator index and opcode, and what is inconsistent. It runs in
:func:`tflm_runtime.codegen.generate` before anything is planned or lowered; the lowering may
then assume every rule below holds. (A constant buffer whose size differs from its tensor's
shape is refused when the file is read: :func:`tflm_runtime.tflite_model.parse_tflite`.)

Rules (TFLM's ``Prepare`` in brackets):

* every tensor an operator touches: positive dimensions, at most :data:`MAX_TENSOR_BYTES`;
  quantised: one scale, or one per channel of ``quantized_dimension`` (``affine_quantization``
  checks; the counts, ranges and signs of scales and zero points are checked when the file is
  read, :func:`tflm_runtime.tflite_model.parse_tflite`);
* operator arity: input and output counts (``NumInputs``/``NumOutputs``);
* dtypes: int8 activations (QUANTIZE from float32, DEQUANTIZE to float32), int8 constant filters
  with zero point 0, int32 constant biases of one value per output channel;
* activations have exactly one scale; conv/depthwise filters one or one per output channel;
* pools: input and output quantised alike (TFLite's ``GenericPrepare``: no requantisation);
* CONV_2D / DEPTHWISE_CONV_2D / pools: NHWC batch 1, strides / dilations / pool sizes >= 1,
  output height and width as ``ComputeOutSize`` gives them for the padding, channels of the
  filter = input (conv) and output channels, depthwise ``depth_multiplier`` = out / in channels;
* FULLY_CONNECTED: 2-D filter, input elements a multiple of its depth, output = rows x units;
* ADD: inputs and output of one shape (no broadcasting); CONCATENATION: axis in range, the other
  dimensions equal, the axis sizes adding up; MEAN: constant in-range axes, output the reduced
  shape; PAD: constant non-negative (rank, 2) paddings, output = input + paddings, rank <= 4;
  RESHAPE / QUANTIZE / DEQUANTIZE: same element count; SOFTMAX: same shape, output scale 1/256
  and zero point -128 (``SoftmaxPrepare``).
"""
from __future__ import annotations

import math

import numpy as np

from tflm_runtime.tflite_model import Operator, Tensor, TfliteModel
from unas.errors import UnsupportedOperatorError

#: Largest tensor (bytes) the generator accepts: far above any microcontroller's memory, and
#: every byte offset and element count then fits in the C kernels' int32.
MAX_TENSOR_BYTES = 64 << 20

#: (min, max) inputs and the number of outputs per operator.
_ARITY = {
    "CONV_2D": (2, 3), "DEPTHWISE_CONV_2D": (2, 3), "FULLY_CONNECTED": (2, 3),
    "MAX_POOL_2D": (1, 1), "AVERAGE_POOL_2D": (1, 1), "ADD": (2, 2),
    "CONCATENATION": (1, 1 << 16), "MEAN": (2, 2), "RESHAPE": (1, 2), "SOFTMAX": (1, 1),
    "PAD": (2, 2), "QUANTIZE": (1, 1), "DEQUANTIZE": (1, 1),
}


class _Check:
    """One operator under validation: its tensors and a ``fail`` that names it."""

    def __init__(self, model: TfliteModel, op: Operator) -> None:
        self.model, self.op = model, op

    def fail(self, why: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            f"{self.model.path}: operator {self.op.index} ({self.op.opcode}): {why}")

    def input(self, position: int) -> Tensor:
        return self.model.tensors[self.op.inputs[position]]

    def has_input(self, position: int) -> bool:
        return len(self.op.inputs) > position and self.op.inputs[position] >= 0

    @property
    def output(self) -> Tensor:
        return self.model.tensors[self.op.outputs[0]]

    def dtype(self, t: Tensor, *allowed: str) -> None:
        if t.dtype not in allowed:
            raise self.fail(f"tensor {t.name!r} is {t.dtype}; expected {' or '.join(allowed)}")

    def int8_activation(self, *tensors: Tensor) -> None:
        for t in tensors:
            self.dtype(t, "int8")
            if len(t.scales) != 1:
                raise self.fail(f"tensor {t.name!r} has {len(t.scales)} scales; an int8 "
                                "activation needs exactly 1")

    def constant(self, t: Tensor, what: str) -> np.ndarray:
        if t.data is None:
            raise self.fail(f"{what} {t.name!r} must be a constant tensor")
        return t.data

    def nhwc(self, t: Tensor) -> tuple[int, int, int]:
        if len(t.shape) != 4 or t.shape[0] != 1:
            raise self.fail(f"tensor {t.name!r} has shape {t.shape}; expected (1, H, W, C)")
        return t.shape[1], t.shape[2], t.shape[3]

    def same_count(self, a: Tensor, b: Tensor) -> None:
        if math.prod(a.shape) != math.prod(b.shape):
            raise self.fail(f"input {a.name!r} {a.shape} has {math.prod(a.shape)} elements, "
                            f"output {b.name!r} {b.shape} has {math.prod(b.shape)}")


def out_size(padding: str, in_size: int, k: int, stride: int, dilation: int) -> int:
    """TFLM ``ComputeOutSize``: the output length of a window sweep (0 when nothing fits)."""
    effective = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return max((in_size - effective + stride) // stride, 0)


def _tensor(c: _Check, t: Tensor) -> None:
    if t.is_variable:
        raise c.fail(f"tensor {t.name!r} is a variable (state) tensor; the generated code keeps "
                     "no state between invocations")
    if any(d < 1 for d in t.shape):
        raise c.fail(f"tensor {t.name!r} has shape {t.shape}; every dimension must be >= 1")
    if t.nbytes > MAX_TENSOR_BYTES:
        raise c.fail(f"tensor {t.name!r} {t.shape} {t.dtype} has {t.nbytes} bytes; at most "
                     f"{MAX_TENSOR_BYTES} (64 MiB) are supported")
    if not t.scales:
        return
    # the counts, ranges and signs of scales and zero points are the reader's (parse_tflite)
    if len(t.scales) > 1:
        dim = t.quantized_dimension
        if not 0 <= dim < len(t.shape) or t.shape[dim] != len(t.scales):
            raise c.fail(f"tensor {t.name!r} {t.shape} has {len(t.scales)} scales; expected 1 "
                         f"or one per channel of its quantized dimension {dim}")


def _filter(c: _Check, position: int, channels: int, channel_dim: int) -> Tensor:
    """Constant int8 filter, zero point 0, one scale or one per output channel."""
    w = c.input(position)
    c.dtype(w, "int8")
    c.constant(w, "filter")
    if not w.scales:
        raise c.fail(f"filter {w.name!r} is not quantised")
    if any(z != 0 for z in w.zero_points):
        raise c.fail(f"filter {w.name!r} has a non-zero zero point")
    if len(w.scales) not in (1, channels) or (len(w.scales) > 1
                                              and w.quantized_dimension != channel_dim):
        raise c.fail(f"filter {w.name!r} has {len(w.scales)} scales (quantized dimension "
                     f"{w.quantized_dimension}); expected 1 or {channels} along dimension "
                     f"{channel_dim}")
    return w


def _bias(c: _Check, position: int, channels: int) -> None:
    if not c.has_input(position):
        return
    b = c.input(position)
    c.dtype(b, "int32")
    c.constant(b, "bias")
    if math.prod(b.shape) != channels:
        raise c.fail(f"bias {b.name!r} has shape {b.shape}; expected {channels} values")


def _window(c: _Check, x: Tensor, y: Tensor, k: tuple[int, int], what: str) -> None:
    """Strides, dilations and the output height / width the padding implies."""
    o = c.op.options
    if not o:  # TFLM's parser leaves stride, padding (and dilation) at 0 and runs something else
        raise c.fail("has no builtin options (strides, padding)")
    stride = (o.get("stride_h", 1), o.get("stride_w", 1))
    dilation = (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1))
    padding = o.get("padding", "VALID")
    if padding not in ("SAME", "VALID"):
        raise c.fail(f"padding {padding} is not supported")
    for name, pair in (("stride", stride), ("dilation", dilation), (what, k)):
        if min(pair) < 1:
            raise c.fail(f"{name} {pair} must be >= 1")
    expected = tuple(out_size(padding, x.shape[1 + i], k[i], stride[i], dilation[i])
                     for i in (0, 1))
    if expected != tuple(y.shape[1:3]) or min(expected) < 1:
        raise c.fail(f"{padding} padding, {what} {k}, stride {stride}, dilation {dilation} on "
                     f"input {x.shape} gives output height, width {expected}; the output "
                     f"{y.name!r} is {y.shape}")


def _conv(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    _, _, in_c = c.nhwc(x)
    _, _, out_c = c.nhwc(y)
    w = _filter(c, 1, out_c, 0)
    if len(w.shape) != 4 or w.shape[0] != out_c or w.shape[3] != in_c:
        raise c.fail(f"filter shape {w.shape} does not match input {x.shape} / output {y.shape} "
                     "(expected (out_c, kh, kw, in_c))")
    _window(c, x, y, w.shape[1:3], "filter")
    _bias(c, 2, out_c)


def _depthwise(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    _, _, in_c = c.nhwc(x)
    _, _, out_c = c.nhwc(y)
    w = _filter(c, 1, out_c, 3)
    if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != out_c or out_c % in_c:
        raise c.fail(f"filter shape {w.shape} does not match input {x.shape} / output {y.shape} "
                     "(expected (1, kh, kw, out_c), out_c a multiple of in_c)")
    multiplier = c.op.options.get("depth_multiplier", 0)  # TFLM loops over it: 0 writes nothing
    if multiplier != out_c // in_c:
        raise c.fail(f"depth_multiplier {multiplier} but {in_c} input and {out_c} output "
                     "channels")
    _window(c, x, y, w.shape[1:3], "filter")
    _bias(c, 2, out_c)


def _fully_connected(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    w = c.input(1)
    if len(w.shape) != 2:
        raise c.fail(f"filter shape {w.shape}; expected (units, depth)")
    units, depth = w.shape
    _filter(c, 1, units, 0)
    total = math.prod(x.shape)
    if total % depth:
        raise c.fail(f"input {x.shape} of {total} elements is not a multiple of depth {depth}")
    if y.shape[-1:] != (units,) or math.prod(y.shape) != total // depth * units:
        raise c.fail(f"output {y.name!r} is {y.shape}; {total // depth} rows of {units} units "
                     "expected")
    _bias(c, 2, units)


def _pool(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    _, _, channels = c.nhwc(x)
    c.nhwc(y)
    if y.shape[3] != channels:
        raise c.fail(f"output {y.name!r} {y.shape} has other channels than input {x.shape}")
    if abs(x.scale - y.scale) > 1e-6 or x.zero_point != y.zero_point:
        raise c.fail(f"input quantisation ({x.scale!r}, {x.zero_point}) differs from the "
                     f"output's ({y.scale!r}, {y.zero_point}); pools do not requantise")
    o = c.op.options
    _window(c, x, y, (o.get("filter_height", 0), o.get("filter_width", 0)), "pool size")


def _add(c: _Check) -> None:
    a, b, y = c.input(0), c.input(1), c.output
    c.int8_activation(a, b, y)
    if not a.shape == b.shape == y.shape:
        raise c.fail(f"shapes {a.shape} + {b.shape} -> {y.shape} differ (broadcasting is not "
                     "supported)")


def _concatenation(c: _Check) -> None:
    y = c.output
    inputs = [c.input(i) for i in range(len(c.op.inputs))]
    c.int8_activation(y, *inputs)
    rank = len(y.shape)
    axis = c.op.options.get("axis", 0)
    if not -rank <= axis < rank:
        raise c.fail(f"axis {axis} is outside rank {rank}")
    axis %= rank
    for t in inputs:
        if len(t.shape) != rank or any(t.shape[d] != y.shape[d] for d in range(rank)
                                       if d != axis):
            raise c.fail(f"input {t.name!r} {t.shape} does not fit output {y.shape} "
                         f"along axis {axis}")
    if sum(t.shape[axis] for t in inputs) != y.shape[axis]:
        raise c.fail(f"inputs {[t.shape for t in inputs]} do not add up to output {y.shape} "
                     f"along axis {axis}")


def _rank4(c: _Check, *tensors: Tensor) -> None:
    for t in tensors:
        if len(t.shape) > 4:
            raise c.fail(f"tensor {t.name!r} has rank {len(t.shape)}; at most 4 is supported")


def _mean(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    _rank4(c, x, y)
    axes_t = c.input(1)
    c.dtype(axes_t, "int32")
    rank = len(x.shape)
    raw = [int(a) for a in c.constant(axes_t, "the reduction axes").reshape(-1)]
    if any(not -rank <= a < rank for a in raw):
        raise c.fail(f"reduction axes {raw} are outside rank {rank}")
    axes = {a % rank for a in raw}
    if c.op.options.get("keep_dims"):
        expected = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    else:
        expected = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    if expected != y.shape:
        raise c.fail(f"reducing {x.shape} over axes {sorted(axes)} gives {expected}; the "
                     f"output {y.name!r} is {y.shape}")


def _pad(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    _rank4(c, x, y)
    p = c.input(1)
    c.dtype(p, "int32", "int64")
    pads = c.constant(p, "the paddings")
    if pads.shape != (len(x.shape), 2) or pads.min(initial=0) < 0:
        raise c.fail(f"paddings {pads.tolist()} must be non-negative of shape "
                     f"({len(x.shape)}, 2)")
    expected = tuple(int(n + a + b) for n, (a, b) in zip(x.shape, pads))
    if expected != y.shape:
        raise c.fail(f"padding {x.shape} by {pads.tolist()} gives {expected}; the output "
                     f"{y.name!r} is {y.shape}")


def _reshape(c: _Check) -> None:
    x, y = c.input(0), c.output
    if x.dtype != y.dtype:
        raise c.fail(f"input is {x.dtype} but output {y.dtype}")
    c.same_count(x, y)


def _softmax(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x, y)
    if x.shape != y.shape or not x.shape:
        raise c.fail(f"input {x.shape} and output {y.shape} differ")
    if y.zero_point != -128 or abs(y.scale - 1 / 256) > 1e-9:
        raise c.fail("int8 softmax output must have scale 1/256 and zero point -128")
    # SoftmaxPrepare's PreprocessSoftmaxScaling needs beta * input scale * 2^26 > 1
    # (QuantizeMultiplierGreaterThanOne; TFLM aborts otherwise). Without options beta is 0.
    beta = float(np.float32(c.op.options.get("beta", 0.0)))
    if not beta * x.scale * (1 << 26) > 1:
        raise c.fail(f"beta {beta!r} with input scale {x.scale!r}: beta * input scale * 2^26 "
                     "must be > 1")


def _quantize(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.dtype(x, "float32", "int8")
    c.int8_activation(y)
    if x.dtype == "int8":
        c.int8_activation(x)
    c.same_count(x, y)


def _dequantize(c: _Check) -> None:
    x, y = c.input(0), c.output
    c.int8_activation(x)
    c.dtype(y, "float32")
    c.same_count(x, y)


_RULES = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool, "AVERAGE_POOL_2D": _pool, "ADD": _add,
    "CONCATENATION": _concatenation, "MEAN": _mean, "PAD": _pad, "RESHAPE": _reshape,
    "SOFTMAX": _softmax, "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
}


def validate_operator(model: TfliteModel, op: Operator) -> None:
    """Raise :class:`UnsupportedOperatorError` if ``op`` disagrees with its tensors (module
    docstring); ``op.opcode`` must be one the generator supports."""
    c = _Check(model, op)
    low, high = _ARITY[op.opcode]
    if not low <= len(op.inputs) <= high or len(op.outputs) != 1:
        raise c.fail(f"{len(op.inputs)} inputs and {len(op.outputs)} outputs; expected "
                     f"{low}{'' if low == high else f' to {high}'} inputs and 1 output")
    optional = {2} if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else set()
    for position, index in [*enumerate(op.inputs), *((None, i) for i in op.outputs)]:
        if index == -1 and position in optional:
            continue
        if not 0 <= index < len(model.tensors):
            raise c.fail(f"tensor index {index} is outside the model's {len(model.tensors)} "
                         "tensors")
        _tensor(c, model.tensors[index])
    _RULES[op.opcode](c)


def validate(model: TfliteModel) -> None:
    """Check every operator of ``model`` (all supported, see
    :func:`tflm_runtime.tflite_model.check_supported`) the way TFLM's Prepare would."""
    for op in model.operators:
        validate_operator(model, op)
