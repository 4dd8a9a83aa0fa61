"""Lowering of one TFLite operator to C: constant arrays, a literal parameter block, one call.

Each ``lower_<op>`` returns a :class:`LoweredOp`; the generator concatenates them into
``model.c``. Arena pointers are written ``A(offset)`` (a macro over the static arena; scratch
lives in it too). All numbers are literals computed here, exactly as TFLM computes them at Prepare. The
operators were validated first (:mod:`tflm_runtime.codegen.validate`: shapes, dtypes,
quantisation): only what this engine itself cannot do is refused here.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tflm_runtime.codegen import fixed_point as fp
from tflm_runtime.codegen import quantization as q
from tflm_runtime.tflite_model import Operator, Tensor, TfliteModel
from unas.errors import UnsupportedOperatorError
from unas.resources.engine import depthwise_plane_bytes


@dataclass
class LoweredOp:
    """C text of one operator: file-scope declarations and the statements of ``model_invoke``."""

    decls: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    const_bytes: int = 0  # Flash bytes of the constant data declared here
    kernel: str = ""      # the C function the body calls (the path chosen at generation time)

    def const_array(self, name: str, ctype: str, values: "np.ndarray | list[int]") -> str:
        """Declare ``static const ctype name[]`` (Flash) holding ``values``; returns ``name``."""
        text, size = c_array(name, ctype, values)
        self.decls.append(text)
        self.const_bytes += size
        return name


@dataclass(frozen=True)
class OpContext:
    """What lowering needs besides the operator: pointers of activation tensors, in-place flag."""

    model: TfliteModel
    op: Operator
    pointer: Callable[[int], str]  # tensor index -> C expression of its arena address
    in_place: bool                 # output is written over input 0 (the planner decided)
    plane: str | None = None       # arena address of the operator's depthwise plane, if any

    def tensor(self, position: int) -> Tensor:
        return self.model.tensors[self.op.inputs[position]]

    @property
    def output(self) -> Tensor:
        return self.model.tensors[self.op.outputs[0]]

    def fail(self, why: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            f"{self.model.path}: operator {self.op.index} ({self.op.opcode}): {why}")

    def call(self, kernel: str, params: str) -> str:
        """The C statement ``kernel(&params, input 0, output)`` (a one-input kernel's call)."""
        return (f"{kernel}(&{params}, {self.pointer(self.op.inputs[0])}, "
                f"{self.pointer(self.op.outputs[0])});")


_C_TYPES = {"int8": ("int8_t", 1), "int32": ("int32_t", 4)}


def c_array(name: str, ctype: str, values: np.ndarray | list[int]) -> tuple[str, int]:
    """``static const <ctype> name[n] = {...};`` and its size in bytes."""
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    size = {"int8_t": 1, "int32_t": 4}[ctype] * len(flat)
    rows = [", ".join(str(v) for v in flat[i:i + 24]) for i in range(0, len(flat), 24)]
    body = ",\n  ".join(rows) if rows else "0"
    return f"static const {ctype} {name}[{max(len(flat), 1)}] = {{\n  {body}\n}};", size


def _struct(ctype: str, name: str, fields: dict[str, object]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, (list, tuple)):
            return "{" + ", ".join(str(int(x)) for x in v) + "}"
        return str(v)
    inner = ",\n  ".join(f".{k} = {fmt(v)}" for k, v in fields.items())
    return f"static const {ctype} {name} = {{\n  {inner}\n}};"


def _nhwc(t: Tensor) -> tuple[int, int, int]:
    """H, W, C of a (1, H, W, C) tensor (:mod:`~tflm_runtime.codegen.validate` checked it)."""
    return t.shape[1], t.shape[2], t.shape[3]


def _padding(stride: int, dilation: int, in_size: int, k: int, out_size: int) -> int:
    """TFLM ``ComputePaddingHeightWidth``: the top/left share of the total padding."""
    effective = (k - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def _bias(ctx: OpContext, position: int, count: int) -> np.ndarray:
    if len(ctx.op.inputs) > position and ctx.op.inputs[position] >= 0:
        return ctx.tensor(position).data.astype(np.int64).reshape(-1)
    return np.zeros(count, dtype=np.int64)


def _folded_bias(ctx: OpContext, bias: np.ndarray, weights: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * sum(weights of the channel): lets kernels skip the input offset per MAC."""
    folded = bias - in_zp * weights.reshape(weights.shape[0], -1).astype(np.int64).sum(axis=1)
    if folded.min(initial=0) < -(1 << 31) or folded.max(initial=0) >= (1 << 31):
        raise ctx.fail("folded bias does not fit in int32")
    return folded


def bias_rows(bias: np.ndarray, weights: np.ndarray, in_zp: int) -> np.ndarray:
    """``unas_conv_params.bias_rows`` of a k x k filter ``[out_c][k_h][k_w][in_c]``:
    ``[k_h + 1][out_c]``, row j = bias - in_zp * (sum of filter rows 0 .. j - 1) per channel, so
    the direct kernel starts a pixel using filter rows [lo, hi) from row hi + row 0 - row lo."""
    row_sums = weights.astype(np.int64).reshape(*weights.shape[:2], -1).sum(axis=2).T
    prefix = np.vstack([np.zeros((1, weights.shape[0]), dtype=np.int64), row_sums.cumsum(axis=0)])
    return np.asarray(bias, dtype=np.int64)[None, :] - in_zp * prefix


def _weights(ctx: OpContext, position: int) -> Tensor:
    """The constant int8 filter at input ``position`` (zero point 0: validated)."""
    return ctx.tensor(position)


def _mult_arrays(prefix: str, pairs: list[tuple[int, int]], out: LoweredOp) -> tuple[str, str]:
    for suffix, values in (("mult", [m for m, _ in pairs]), ("shift", [s for _, s in pairs])):
        out.const_array(f"{prefix}_{suffix}", "int32_t", values)
    return f"{prefix}_mult", f"{prefix}_shift"


def _activation(ctx: OpContext) -> tuple[int, int]:
    act = ctx.op.options.get("fused_activation_function", "NONE")
    try:
        return q.activation_range(act, ctx.output)
    except ValueError:
        raise ctx.fail(f"fused activation {act} is not supported") from None


#: Largest right shift whose output zero point folds into unas_rqf's 64-bit constant.
_RQF_MAX_RIGHT_SHIFT = 22
#: Bytes of one gathered input window in unas_conv2d_patch_s8 (UNAS_PATCH_MAX in unas_kernels.h).
PATCH_MAX_BYTES = 128


def fast_requant_constants(pairs: list[tuple[int, int]],
                           out_zp: int) -> list[tuple[int, int, int, int]] | None:
    """Per channel ``(mult, lo, hi, shift)`` of ``unas_rqf`` (see unas_kernels.h): TFLM's
    ``out_zp + MultiplyByQuantizedMultiplier(acc, mult, s)`` as ``hi32(acc * mult + (hi:lo) -
    [acc < 0] 2^31) >> shift``, exact for every int32 ``acc``. ``None`` when some channel has a
    right shift outside [1, 22] (a left shift, or a scale so small that the zero point does not
    fold): the kernels then requantise generically."""
    constants = []
    for mult, shift in pairs:
        right = 1 if mult == 0 else -shift  # a zero multiplier gives 0 for any shift
        if not 1 <= right <= _RQF_MAX_RIGHT_SHIFT:
            return None
        k = (1 << 30) + (1 << (30 + right)) + out_zp * (1 << (31 + right))
        lo = k & 0xFFFFFFFF
        constants.append((mult, lo - (1 << 32) if lo >= 1 << 31 else lo, k >> 32, right - 1))
    return constants


def pack_channel_pairs(weights: np.ndarray) -> np.ndarray:
    """Filter ``[out_c][...]`` in the layout of ``unas_conv_params.packed``: channels 2j and 2j+1
    interleaved four taps at a time, taps zero-padded to a multiple of 4, a missing last channel
    zero. Returns int8 ``[ceil(out_c / 2)][K4 / 4][2][4]``."""
    flat = np.asarray(weights, dtype=np.int8).reshape(weights.shape[0], -1)
    out_c, k = flat.shape
    k4 = -(-k // 4) * 4
    padded = np.zeros((out_c + out_c % 2, k4), dtype=np.int8)
    padded[:out_c, :k] = flat
    return padded.reshape(-1, 2, k4 // 4, 4).transpose(0, 2, 1, 3).copy()


def pack_channel_pairs_int16(weights: np.ndarray) -> np.ndarray:
    """Filter ``[out_c][...]`` in the int16 layout of ``unas_conv_params.packed`` (what
    ``unas_expand_pair`` does to inputs): per channel pair and group of four taps, the words
    (t0, t2), (t1, t3) of channel 2j, then of 2j+1, each word low half first. Returns int32
    ``[ceil(out_c / 2)][K4 / 4][4]``."""
    pairs = pack_channel_pairs(weights).astype(np.int64)  # [pairs][groups][2][4]
    low = pairs[..., [0, 1]] & 0xFFFF                      # taps 0, 1
    high = pairs[..., [2, 3]] << 16                         # taps 2, 3
    words = (low | high).reshape(pairs.shape[0], pairs.shape[1], 4)
    return np.where(words >= 1 << 31, words - (1 << 32), words).astype(np.int32)


def pack_channel_pairs_window16(weights: np.ndarray) -> np.ndarray:
    """Filter ``[out_c][...]`` in the int16 layout ``unas_conv2d_patch_s8`` reads: per channel
    pair and group of four taps, the words (t0, t1), (t2, t3) of channel 2j, then of 2j+1 (taps
    in filter order, as the kernel gathers its windows), each word low half first. Returns int32
    ``[ceil(out_c / 2)][K4 / 4][4]``."""
    pairs = pack_channel_pairs(weights).astype(np.int64)  # [pairs][groups][2][4]
    low = pairs[..., [0, 2]] & 0xFFFF                      # taps 0, 2
    high = pairs[..., [1, 3]] << 16                         # taps 1, 3
    words = (low | high).reshape(pairs.shape[0], pairs.shape[1], 4)
    return np.where(words >= 1 << 31, words - (1 << 32), words).astype(np.int32)


def packed_filter(kernel: str, in_c: int, weights: np.ndarray) -> tuple[str, np.ndarray]:
    """The C type and contents of ``unas_conv_params.packed`` for a packed ``kernel``."""
    if kernel == "unas_conv2d_patch_s8":
        return "int32_t", pack_channel_pairs_window16(weights)
    if expanded_layout(kernel, in_c):
        return "int32_t", pack_channel_pairs_int16(weights)
    return "int8_t", pack_channel_pairs(weights)


def expanded_layout(kernel: str, in_c: int) -> bool:
    """Whether ``kernel`` reads ``packed`` as int16 words in SXTB16 order (see unas_kernels.h;
    the patch kernel's int16 words are in filter order: :func:`packed_filter`)."""
    return kernel == "unas_conv2d_1x1_expanded_s8" or (
        kernel == "unas_conv2d_1x1_s8" and in_c <= PATCH_MAX_BYTES)


def _rqf_array(name: str, constants: list[tuple[int, int, int, int]], out: LoweredOp) -> str:
    rows = ",\n  ".join("{" + ", ".join(str(v) for v in c) + "}" for c in constants)
    out.decls.append(f"static const unas_rqf {name}[{len(constants)}] = {{\n  {rows}\n}};")
    out.const_bytes += 16 * len(constants)
    return name


def conv_kernel(k_h: int, k_w: int, in_c: int, fast: bool) -> str:
    """The kernel function that runs a CONV_2D, chosen here so that only it is linked: for 1x1
    one multiply per output for a one-channel input (fast requantisation), the int16-expanded
    path (fast, in_c <= 128), the int8-packed one (fast, more input channels) or the generic one;
    a gathered-window (patch) kernel for small filters when the fast requantisation applies, else
    the direct k x k kernel."""
    if k_h * k_w == 1:
        if not fast:
            return "unas_conv2d_1x1_generic_s8"
        if in_c == 1:
            return "unas_conv2d_1x1_c1_s8"
        return "unas_conv2d_1x1_expanded_s8" if in_c <= PATCH_MAX_BYTES else \
            "unas_conv2d_1x1_packed_s8"
    if fast and -(-k_h * k_w * in_c // 4) * 4 <= PATCH_MAX_BYTES:
        return "unas_conv2d_patch_s8"
    return "unas_conv2d_s8"


def lower_conv(ctx: OpContext, name: str) -> LoweredOp:
    x, w, y = ctx.tensor(0), _weights(ctx, 1), ctx.output
    in_h, in_w, in_c = _nhwc(x)
    out_h, out_w, out_c = _nhwc(y)
    _, k_h, k_w, _ = w.shape
    o = ctx.op.options
    s_h, s_w = o.get("stride_h", 1), o.get("stride_w", 1)
    d_h, d_w = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    act_min, act_max = _activation(ctx)
    out = LoweredOp()
    multipliers = q.conv_multipliers(x, w, y, out_c)
    rq = fast_requant_constants(multipliers, y.zero_point)
    kernel = conv_kernel(k_h, k_w, in_c, rq is not None)
    packed = rq is not None and kernel not in ("unas_conv2d_s8", "unas_conv2d_1x1_c1_s8")
    weights = packed_name = rq_name = "0"
    if packed:  # replaces the plain filter
        ctype, filt = packed_filter(kernel, in_c, w.data)
        array = out.const_array(f"{name}_w{'x' if ctype == 'int32_t' else 'p'}", ctype, filt)
        packed_name = f"(const int8_t *){array}" if ctype == "int32_t" else array
    else:
        weights = out.const_array(f"{name}_w", "int8_t", w.data)
    if rq is not None:
        rq_name = _rqf_array(f"{name}_rq", rq, out)
    raw_bias = _bias(ctx, 2, out_c)
    folded = _folded_bias(ctx, raw_bias, w.data, x.zero_point)
    rows_name, bias_name = "0", f"{name}_b"
    if kernel == "unas_conv2d_s8":  # pixels whose window leaves the image use fewer filter rows
        rows = bias_rows(raw_bias, w.data, x.zero_point)
        if rows.min(initial=0) < -(1 << 31) or rows.max(initial=0) >= (1 << 31):
            raise ctx.fail("bias minus in_zp times filter row sums does not fit in int32")
        rows_name = out.const_array(f"{name}_brows", "int32_t", rows)
        bias_name = f"{rows_name} + {k_h * out_c}"  # the last row is the folded bias
    else:
        out.const_array(bias_name, "int32_t", folded)
    mult, shift = _mult_arrays(name, multipliers, out)
    fields = dict(in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                  k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w, dil_h=d_h, dil_w=d_w,
                  pad_t=_padding(s_h, d_h, in_h, k_h, out_h),
                  pad_l=_padding(s_w, d_w, in_w, k_w, out_w),
                  in_zp=x.zero_point, out_zp=y.zero_point, act_min=act_min, act_max=act_max,
                  weights=weights, bias=bias_name,
                  bias_rows=rows_name,
                  mult=mult, shift=shift, packed=packed_name, rq=rq_name)
    out.decls.append(_struct("unas_conv_params", f"{name}_p", fields))
    out.const_bytes += 4 * 18 + 4 * 7
    src, dst = ctx.pointer(ctx.op.inputs[0]), ctx.pointer(ctx.op.outputs[0])
    out.body.append(f"{kernel}(&{name}_p, {src}, {dst});")
    out.kernel = kernel
    return out


def _depthwise_layout(in_c: int, out_c: int, d_h: int, d_w: int, planes: bool) -> str:
    """Which precomputed kernel a depthwise convolution runs: GROUPS (four channels per input
    word), ROWS (one padded channel plane at a time: ``planes``, see
    :func:`unas.resources.engine.depthwise_plane_bytes`), or NONE."""
    if out_c != in_c or d_h != 1 or d_w != 1:
        return "NONE"
    if planes:
        return "ROWS"
    return "GROUPS" if in_c >= 4 else "NONE"


def _plane_kernel(k_h: int, k_w: int, s_w: int, out_w: int) -> str:
    """Suffix of the ``unas_dwconv_planes*_s8`` kernel with widened rows for a k_h x k_w filter
    with horizontal stride ``s_w`` (as ``unas_dwconv_planes_s8`` picks it): four outputs per step
    (``3s1`` ... ``7s2``: square 3/5/7 filters, stride 1 or 2, ``out_w >= 4``), else 3, 5, 7
    (output pairs) or ``_rows``."""
    if k_h == k_w and k_w in (3, 5, 7) and s_w in (1, 2) and out_w >= 4:
        return f"{k_w}s{s_w}"
    words = (k_w + 3) // 4
    return {(3, 1): "3", (5, 2): "5", (7, 2): "7"}.get((k_h, words), "_rows")


def _pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int32 words holding two int16 lanes (lo in bits 0-15), as SXTB16 lays them out."""
    word = ((hi.astype(np.int64) & 0xFFFF) << 16) | (lo.astype(np.int64) & 0xFFFF)
    return np.where(word >= 1 << 31, word - (1 << 32), word)


def _widen_groups(taps: np.ndarray) -> np.ndarray:
    """[k_h][k_w][C] taps -> [C // 4][k_h * k_w][even (c0, c2), odd (c1, c3)] int16 pairs."""
    k_h, k_w, c = taps.shape
    groups = taps.reshape(k_h * k_w, c)[:, :c - c % 4].reshape(k_h * k_w, c // 4, 4)
    groups = groups.transpose(1, 0, 2)  # [group][tap][lane]
    even = _pack16(groups[..., 0], groups[..., 2])
    odd = _pack16(groups[..., 1], groups[..., 3])
    return np.stack([even, odd], axis=-1)


def _widen_rows(taps: np.ndarray) -> np.ndarray:
    """[k_h][k_w][C] taps -> [C][k_h][ceil(k_w / 4)][even (t0, t2), odd (t1, t3)] int16 pairs,
    zero past k_w."""
    k_h, k_w, c = taps.shape
    words = (k_w + 3) // 4
    padded = np.zeros((c, k_h, 4 * words), dtype=np.int64)
    padded[:, :, :k_w] = taps.transpose(2, 0, 1)
    quads = padded.reshape(c, k_h, words, 4)
    even = _pack16(quads[..., 0], quads[..., 2])
    odd = _pack16(quads[..., 1], quads[..., 3])
    return np.stack([even, odd], axis=-1)


def _depthwise_requantization(pairs: list[tuple[int, int]], bias: np.ndarray,
                              folded: np.ndarray, taps: np.ndarray,
                              out_zp: int) -> list[int] | None:
    """Per-channel ``unas_dw_rq`` blocks when every channel's accumulator bound allows them
    (interior: folded bias + taps on int8 inputs; border: bias + taps on input - zero point)."""
    weight_l1 = np.abs(taps).sum(axis=0)
    blocks: list[int] = []
    for c, (mult, shift) in enumerate(pairs):
        bound = max(abs(int(folded[c])) + 128 * int(weight_l1[c]),
                    abs(int(bias[c])) + 255 * int(weight_l1[c]))
        rq = fp.fast_requantization(mult, shift, bound, out_zp)
        if rq is None:
            return None
        blocks.extend(rq)
    return blocks


def lower_depthwise(ctx: OpContext, name: str) -> LoweredOp:
    x, w, y = ctx.tensor(0), _weights(ctx, 1), ctx.output
    in_h, in_w, in_c = _nhwc(x)
    out_h, out_w, out_c = _nhwc(y)
    _, k_h, k_w, _ = w.shape
    o = ctx.op.options
    s_h, s_w = o.get("stride_h", 1), o.get("stride_w", 1)
    d_h, d_w = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    act_min, act_max = _activation(ctx)
    out = LoweredOp()
    bias = _bias(ctx, 2, out_c)
    out.const_array(f"{name}_b", "int32_t", bias)
    pairs = q.conv_multipliers(x, w, y, out_c)
    mult, shift = _mult_arrays(name, pairs, out)
    fields: dict[str, object] = dict(
        in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
        depth_mult=out_c // in_c, k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w,
        dil_h=d_h, dil_w=d_w, pad_t=_padding(s_h, d_h, in_h, k_h, out_h),
        pad_l=_padding(s_w, d_w, in_w, k_w, out_w),
        in_zp=x.zero_point, out_zp=y.zero_point, act_min=act_min, act_max=act_max,
        weights=f"{name}_w", bias=f"{name}_b", mult=mult, shift=shift)
    taps = w.data.reshape(k_h, k_w, out_c).astype(np.int64)
    folded = bias - x.zero_point * taps.reshape(-1, out_c).sum(axis=0)
    geometry = ((k_h, k_w), (s_h, s_w), (d_h, d_w))
    per_element = out_c == in_c and (k_h, k_w) == (1, 1) and (s_h, s_w) == (1, 1)
    planes = depthwise_plane_bytes((out_h, out_w, out_c), (in_h, in_w, in_c), geometry,
                                   ctx.in_place) > 0
    layout = "NONE" if per_element else _depthwise_layout(in_c, out_c, d_h, d_w, planes)
    if np.abs(folded).max(initial=0) >= 1 << 31:
        layout = "NONE"  # the general kernels apply the input offset per tap instead
    if layout != "NONE":
        fields["wide_layout"] = f"UNAS_DW_WIDE_{layout}"
        widened = _widen_groups(taps) if layout == "GROUPS" else _widen_rows(taps)
        fields["wide"] = out.const_array(f"{name}_wide", "int32_t", widened)
        fields["folded"] = out.const_array(f"{name}_fb", "int32_t", folded)
    if layout != "NONE" or per_element or planes:
        rq = _depthwise_requantization(pairs, bias, folded, taps.reshape(-1, out_c), y.zero_point)
        if rq is not None:
            fields["rq"] = out.const_array(f"{name}_rq", "int32_t", rq)
    if layout == "GROUPS" and in_c % 4 == 0:
        fields["weights"] = "0"  # every tap is read from the widened copy: no int8 copy in Flash
    else:
        out.const_array(f"{name}_w", "int8_t", w.data)
    out.decls.append(_struct("unas_dwconv_params", f"{name}_p", fields))
    out.const_bytes += 4 * 20 + 4 * 7
    src, dst = ctx.pointer(ctx.op.inputs[0]), ctx.pointer(ctx.op.outputs[0])
    note = "  /* in place */" if ctx.in_place else ""
    if per_element and "rq" in fields:
        out.body.append(f"unas_dwconv_1x1_s8(&{name}_p, {src}, {dst});{note}")
    elif per_element:  # accumulators too large for the fast requantisation
        out.body.append(f"unas_dwconv_ref_s8(&{name}_p, {src}, {dst});{note}")
    elif planes:
        kernel = (_plane_kernel(k_h, k_w, s_w, out_w) if layout == "ROWS" and "rq" in fields
                  else "_taps")
        if ctx.plane is None:
            raise ctx.fail("runs channel by channel but the memory plan has no plane for it")
        out.body.append(f"unas_dwconv_planes{kernel}_s8(&{name}_p, {src}, {dst}, {ctx.plane});"
                        f"{note}")
    else:
        groups = "3" if (k_h, k_w) == (3, 3) else "_any"
        kernel = f"unas_dwconv_groups{groups}_s8" if layout == "GROUPS" else "unas_dwconv_ref_s8"
        out.body.append(f"{kernel}(&{name}_p, {src}, {dst});")
    return out


def lower_fully_connected(ctx: OpContext, name: str) -> LoweredOp:
    x, w, y = ctx.tensor(0), _weights(ctx, 1), ctx.output
    units, depth = w.shape
    total = math.prod(x.shape)
    act_min, act_max = _activation(ctx)
    out = LoweredOp()
    out.const_array(f"{name}_w", "int8_t", w.data)
    bias = _folded_bias(ctx, _bias(ctx, 2, units), w.data, x.zero_point)
    out.const_array(f"{name}_b", "int32_t", bias)
    mult, shift = _mult_arrays(name, q.fc_multipliers(x, w, y, units), out)
    fields = dict(rows=total // depth, depth=depth, units=units, out_zp=y.zero_point,
                  act_min=act_min, act_max=act_max, weights=f"{name}_w", bias=f"{name}_b",
                  mult=mult, shift=shift)
    out.decls.append(_struct("unas_fc_params", f"{name}_p", fields))
    out.const_bytes += 4 * 6 + 4 * 4
    out.body.append(ctx.call("unas_fc_s8", f"{name}_p"))
    return out


def lower_pool(ctx: OpContext, name: str) -> LoweredOp:
    x, y = ctx.tensor(0), ctx.output
    in_h, in_w, c = _nhwc(x)
    out_h, out_w, _ = _nhwc(y)
    o = ctx.op.options
    f_h, f_w = o["filter_height"], o["filter_width"]
    s_h, s_w = o.get("stride_h", 1), o.get("stride_w", 1)
    act_min, act_max = _activation(ctx)
    fields = dict(in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w, f_h=f_h, f_w=f_w,
                  stride_h=s_h, stride_w=s_w, pad_t=_padding(s_h, 1, in_h, f_h, out_h),
                  pad_l=_padding(s_w, 1, in_w, f_w, out_w), act_min=act_min, act_max=act_max)
    full_2x2 = (f_h == f_w == 2 and fields["pad_t"] == fields["pad_l"] == 0
                and (out_h - 1) * s_h + 2 <= in_h and (out_w - 1) * s_w + 2 <= in_w)
    kernel = "unas_maxpool" if ctx.op.opcode == "MAX_POOL_2D" else "unas_avgpool"
    kernel += "_2x2_s8" if full_2x2 else "_s8"
    out = LoweredOp([_struct("unas_pool_params", f"{name}_p", fields)], [], 4 * 13, kernel)
    out.body.append(ctx.call(kernel, f"{name}_p"))
    return out


def _operand(ctx: OpContext, position: int, name: str, out: LoweredOp) -> str:
    """Pointer to input ``position``: an arena address, or a constant array declared here."""
    t = ctx.tensor(position)
    if t.data is None:
        return ctx.pointer(ctx.op.inputs[position])
    out.const_array(f"{name}_c{position}", "int8_t", t.data)
    return f"{name}_c{position}"


def _add_table(params: dict[str, int], which: int) -> list[int]:
    """Input ``which``'s rescaled value for every int8 x, indexed by ``(uint8_t)x``."""
    offset, mult, shift = (params[f"in{which}_{k}"] for k in ("offset", "mult", "shift"))
    table = [0] * 256
    for x in range(-128, 128):
        table[x & 0xFF] = fp.multiply_by_quantized_multiplier(
            (offset + x) << params["left_shift"], mult, shift)
    return table


def lower_add(ctx: OpContext, name: str) -> LoweredOp:
    a, b, y = ctx.tensor(0), ctx.tensor(1), ctx.output
    act_min, act_max = _activation(ctx)
    params = q.add_params(a, b, y)
    fields: dict[str, object] = dict(size=math.prod(y.shape), **params, act_min=act_min,
                                     act_max=act_max)
    out = LoweredOp()
    pa, pb = _operand(ctx, 0, name, out), _operand(ctx, 1, name, out)
    # Each input's rescaling depends on one int8 value: 256-entry tables (1 KB of Flash each,
    # one when both inputs share scale and zero point) replace two multiplies per element.
    tables = [_add_table(params, i) for i in (1, 2)]
    fields["table1"] = out.const_array(f"{name}_t1", "int32_t", tables[0])
    fields["table2"] = fields["table1"]
    if tables[1] != tables[0]:
        fields["table2"] = out.const_array(f"{name}_t2", "int32_t", tables[1])
    bound = max(map(abs, tables[0])) + max(map(abs, tables[1]))
    rq = fp.fast_requantization(params["out_mult"], params["out_shift"], bound,
                                params["out_offset"])
    if rq is not None:
        fields["out_rq"] = out.const_array(f"{name}_rq", "int32_t", list(rq))
    out.decls.append(_struct("unas_add_params", f"{name}_p", fields))
    out.const_bytes += 4 * 14 + 4 * 3
    note = "  /* in place */" if ctx.in_place else ""
    out.kernel = "unas_add_rq_s8" if rq is not None else "unas_add_generic_s8"
    out.body.append(f"{out.kernel}(&{name}_p, {pa}, {pb}, {ctx.pointer(ctx.op.outputs[0])});"
                    f"{note}")
    return out


def lower_concatenation(ctx: OpContext, name: str) -> LoweredOp:
    y = ctx.output
    inputs = [ctx.tensor(i) for i in range(len(ctx.op.inputs))]
    for t in inputs:
        if (t.scale, t.zero_point) != (y.scale, y.zero_point):
            raise ctx.fail(f"input {t.name!r} is quantised differently from the output "
                           "(requantising concatenation is not supported)")
    if ctx.op.options.get("fused_activation_function", "NONE") != "NONE":
        raise ctx.fail("fused activation on CONCATENATION is not supported")
    axis = ctx.op.options.get("axis", 0)
    axis = axis + len(y.shape) if axis < 0 else axis
    outer = math.prod(y.shape[:axis])
    sizes = [math.prod(t.shape[axis:]) for t in inputs]
    out = LoweredOp()
    ptrs = [_operand(ctx, i, name, out) for i in range(len(inputs))]
    out.body.append(
        f"unas_concat({ctx.pointer(ctx.op.outputs[0])}, {outer}, {len(inputs)}, "
        f"(const int8_t *const[]){{{', '.join(ptrs)}}}, "
        f"(const int32_t[]){{{', '.join(map(str, sizes))}}});")
    return out


def _as_4d(shape: tuple[int, ...]) -> list[int]:
    """``shape`` (rank <= 4: validated) padded with leading ones to rank 4."""
    return [1] * (4 - len(shape)) + list(shape)


def lower_mean(ctx: OpContext, name: str) -> LoweredOp:
    x, axes_t, y = ctx.tensor(0), ctx.tensor(1), ctx.output
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in axes_t.data.reshape(-1)})
    dims = _as_4d(x.shape)
    reduce = [0] * 4
    for a in axes:
        reduce[a + 4 - rank] = 1
    count = math.prod(x.shape[a] for a in axes)
    # the pinned TFLM runs every int8 MEAN (keep_dims or not) through QuantizedMeanOrSum
    mult, shift = q.mean_params(x, y, count)
    fields = dict(dims=dims, reduce=reduce, count=count, in_zp=x.zero_point, out_zp=y.zero_point,
                  mult=mult, shift=shift)
    hw = dims[0] == 1 and reduce == [0, 1, 1, 0]  # global average pooling
    kernel = "unas_mean_hw_s8" if hw else "unas_mean_box_s8"
    out = LoweredOp([_struct("unas_mean_params", f"{name}_p", fields)], [], 4 * 13, kernel)
    out.body.append(ctx.call(kernel, f"{name}_p"))
    return out


def lower_softmax(ctx: OpContext, name: str) -> LoweredOp:
    x = ctx.tensor(0)
    depth = x.shape[-1]
    mult, left_shift, diff_min = q.softmax_params(x, ctx.op.options["beta"])
    fields = dict(rows=math.prod(x.shape) // depth, depth=depth, input_mult=mult,
                  input_left_shift=left_shift, diff_min=diff_min)
    out = LoweredOp([_struct("unas_softmax_params", f"{name}_p", fields)], [], 4 * 5)
    out.body.append(ctx.call("unas_softmax_s8", f"{name}_p"))
    return out


def lower_pad(ctx: OpContext, name: str) -> LoweredOp:
    x, pads_t, y = ctx.tensor(0), ctx.tensor(1), ctx.output
    pads = pads_t.data.reshape(len(x.shape), 2).astype(int)
    before = [0] * (4 - len(x.shape)) + [int(p) for p in pads[:, 0]]
    fields = dict(in_dims=_as_4d(x.shape), out_dims=_as_4d(y.shape), before=before,
                  value=y.zero_point)
    out = LoweredOp([_struct("unas_pad_params", f"{name}_p", fields)], [], 4 * 13)
    out.body.append(ctx.call("unas_pad_s8", f"{name}_p"))
    return out


def lower_reshape(ctx: OpContext, name: str) -> LoweredOp:
    x, y = ctx.tensor(0), ctx.output
    if ctx.in_place:
        return LoweredOp([], [f"/* {name}: RESHAPE {x.shape} -> {y.shape} is an alias, no code */"])
    return LoweredOp([], [f"memcpy({ctx.pointer(ctx.op.outputs[0])}, "
                          f"{ctx.pointer(ctx.op.inputs[0])}, {x.nbytes});"])


def lower_quantize(ctx: OpContext, name: str) -> LoweredOp:
    x, y = ctx.tensor(0), ctx.output
    n = math.prod(y.shape)
    src, dst = ctx.pointer(ctx.op.inputs[0]), ctx.pointer(ctx.op.outputs[0])
    if x.dtype == "float32":  # else int8 -> int8 (validated)
        return LoweredOp([], [f"unas_quantize_f32_s8({n}, {float(y.scale)!r}, {y.zero_point}, "
                              f"{src}, {dst});"])
    mult, shift = q.quantize_multiplier(x.scale / y.scale)
    return LoweredOp([], [f"unas_requantize_s8({n}, {x.zero_point}, {y.zero_point}, {mult}, "
                          f"{shift}, {src}, {dst});"])


def lower_dequantize(ctx: OpContext, name: str) -> LoweredOp:
    x = ctx.tensor(0)
    return LoweredOp([], [f"unas_dequantize_s8_f32({math.prod(x.shape)}, {float(x.scale)!r}, "
                          f"{x.zero_point}, {ctx.pointer(ctx.op.inputs[0])}, "
                          f"{ctx.pointer(ctx.op.outputs[0])});"])


LOWERINGS: dict[str, Callable[[OpContext, str], LoweredOp]] = {
    "CONV_2D": lower_conv,
    "DEPTHWISE_CONV_2D": lower_depthwise,
    "FULLY_CONNECTED": lower_fully_connected,
    "MAX_POOL_2D": lower_pool,
    "AVERAGE_POOL_2D": lower_pool,
    "ADD": lower_add,
    "CONCATENATION": lower_concatenation,
    "MEAN": lower_mean,
    "SOFTMAX": lower_softmax,
    "PAD": lower_pad,
    "RESHAPE": lower_reshape,
    "QUANTIZE": lower_quantize,
    "DEQUANTIZE": lower_dequantize,
}
