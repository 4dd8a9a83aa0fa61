"""Lowering of a fused inverted-residual chain to one ``unas_fused_block_s8`` call.

The chain (:class:`unas.resources.engine.FusedChain`, chosen by
:func:`unas.resources.engine.fusable_chains`) is ``CONV_2D 1x1 -> DEPTHWISE_CONV_2D ->
CONV_2D 1x1 [-> ADD]`` or the same without the expansion. The 1x1 convolutions and the ADD keep
the parameter blocks and constant arrays of their ordinary lowerings
(:func:`tflm_runtime.codegen.lowering.lower_conv` / ``lower_add``; their kernel calls are
dropped); the depthwise conv gets its own weights, raw and folded biases and multipliers, plus
the standalone depthwise kernel's generation-time precomputation: its taps widened to int16 pairs
for four-channel groups and, when proven exact, the fast ``unas_dw_rq`` requantisation blocks.
The C side is ``c/unas_fused.c``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tflm_runtime.codegen import quantization as q
from tflm_runtime.codegen.lowering import (LoweredOp, OpContext, _activation, _bias,
                                           _depthwise_requantization, _nhwc, _padding,
                                           _struct, _weights, _widen_groups,
                                           lower_add, lower_conv)
from tflm_runtime.tflite_model import Operator, TfliteModel
from unas.resources.engine import FusedChain, fused_temp_bytes

#: bytes of the ``unas_fused_params`` block: 19 int32 fields and 14 pointers (32-bit MCU)
FUSED_PARAMS_BYTES = 4 * 19 + 4 * 14

#: square kernel sides with their own depthwise row (inside pixels unrolled, border pixels'
#: windows gathered with the zero point); any other kernel takes ``unas_fused_dw_row_any``
UNROLLED_DW_SIDES = (3, 5, 7)


#: 1x1 paths swapped for the fused step's own: the same filter and arithmetic, each channel
#: pair's four outputs requantised and stored in one block (cheaper on the few-channel rows)
_ROW_KERNELS = {"unas_conv2d_1x1_expanded_s8": "unas_conv2d_1x1_rows_s8"}


@dataclass(frozen=True)
class FusedPlacement:
    """Arena addresses (C expressions) of the chain's block input, output and step buffer."""

    source: str
    output: str
    temp: str
    temp_bytes: int


def _unplaced(tensor_index: int) -> str:
    """Pointer of a tensor the fused step never materialises (only in dropped kernel calls)."""
    return "NULL"


def _parameters_only(ctx: OpContext, name: str, lowering) -> LoweredOp:
    low = lowering(ctx, name)
    return LoweredOp(list(low.decls), [], low.const_bytes, low.kernel)


def _dw_row_kernel(k_h: int, k_w: int, mid_c: int) -> str:
    """The depthwise row function of a fused block: the unrolled one of a square 3/5/7 kernel
    when there are four-channel groups (``dw_wide``), else the general one."""
    if k_h == k_w and k_h in UNROLLED_DW_SIDES and mid_c >= 4:
        return f"unas_fused_dw_row_{k_h}x{k_w}"
    return "unas_fused_dw_row_any"


def lower_fused_block(model: TfliteModel, chain: FusedChain, operators: Mapping[str, Operator],
                      where: FusedPlacement, name: str) -> LoweredOp:
    """Constant data and the one call of a fused chain; ``operators`` maps the chain's resource
    nodes to the model's operators."""
    dw_op = operators[chain.depthwise]
    ctx = OpContext(model, dw_op, _unplaced, False)
    x, w, y = ctx.tensor(0), _weights(ctx, 1), ctx.output
    mid_h, mid_w, mid_c = _nhwc(x)
    out_h, out_w, out_c = _nhwc(y)
    _, k_h, k_w, w_out = w.shape
    o = dw_op.options
    if w_out != mid_c or out_c != mid_c:
        raise ctx.fail(f"filter shape {w.shape}: a fused depthwise conv needs depth multiplier 1")
    if (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)) != (1, 1):
        raise ctx.fail("a fused depthwise conv needs dilation 1")
    s_h, s_w = o.get("stride_h", 1), o.get("stride_w", 1)
    out = LoweredOp()
    bias = _bias(ctx, 2, mid_c)
    taps = w.data.reshape(k_h * k_w, mid_c).astype(np.int64).sum(axis=0)
    folded = bias - x.zero_point * taps
    if folded.min(initial=0) < -(1 << 31) or folded.max(initial=0) >= (1 << 31):
        raise ctx.fail("folded bias does not fit in int32")
    out.const_array(f"{name}_dw_b", "int32_t", bias)
    out.const_array(f"{name}_dw_bf", "int32_t", folded)
    pairs = q.conv_multipliers(x, w, y, mid_c)
    out.const_array(f"{name}_dw_mult", "int32_t", [m for m, _ in pairs])
    out.const_array(f"{name}_dw_shift", "int32_t", [s for _, s in pairs])
    act_min, act_max = _activation(ctx)
    taps3 = w.data.reshape(k_h, k_w, mid_c).astype(np.int64)
    wide = rq = "NULL"
    if mid_c >= 4:
        wide = out.const_array(f"{name}_dw_wide", "int32_t", _widen_groups(taps3))
    weights = "NULL"  # every tap is read from the widened copy: no int8 copy in Flash
    if mid_c % 4:  # channels past the last group (or all of them) go one by one
        weights = out.const_array(f"{name}_dw_w", "int8_t", w.data)
    blocks = _depthwise_requantization(pairs, bias, folded, taps3.reshape(-1, mid_c),
                                       y.zero_point)
    if blocks is not None:
        rq = out.const_array(f"{name}_dw_rq", "int32_t", blocks)

    def part(node: str | None, suffix: str, lowering) -> tuple[str, str]:
        """Parameter block and kernel function (the path its own lowering chose) of one of the
        chain's other operators."""
        if node is None:
            return "NULL", "NULL"
        sub = OpContext(model, operators[node], _unplaced, False)
        low = _parameters_only(sub, f"{name}_{suffix}", lowering)
        out.decls.extend(low.decls)
        out.const_bytes += low.const_bytes
        return f"&{name}_{suffix}_p", _ROW_KERNELS.get(low.kernel, low.kernel)

    expand, expand_kernel = part(chain.expand, "e", lower_conv)
    project, project_kernel = part(chain.project, "p", lower_conv)
    add, add_kernel = part(chain.add, "a", lower_add)
    source_op = operators[chain.expand] if chain.expand else dw_op
    block = model.tensors[source_op.inputs[0]]
    block_h, block_w, block_c = _nhwc(block)
    final = model.tensors[operators[chain.output].outputs[0]]
    _, _, final_c = _nhwc(final)
    block_is_in1 = int(chain.add is not None
                       and operators[chain.add].inputs[0] == source_op.inputs[0])
    rows, temp = fused_temp_bytes((block_h, block_w, block_c), mid_c, (out_h, out_w, final_c),
                                  k_h, chain.expand is not None, chain.add is not None)
    if (rows, temp) != (chain.ring_rows, chain.temp_bytes) or temp != where.temp_bytes:
        raise ctx.fail(f"step buffer of {temp} bytes ({rows} ring rows) differs from the "
                       f"engine's {chain.temp_bytes} ({chain.ring_rows}) / planned "
                       f"{where.temp_bytes}")
    fields = dict(in_h=block_h, in_w=block_w, in_c=block_c, mid_c=mid_c, out_h=out_h,
                  out_w=out_w, out_c=final_c, k_h=k_h, k_w=k_w, stride_h=s_h, stride_w=s_w,
                  pad_t=_padding(s_h, 1, mid_h, k_h, out_h),
                  pad_l=_padding(s_w, 1, mid_w, k_w, out_w), ring_rows=rows,
                  dw_in_zp=x.zero_point, dw_out_zp=y.zero_point, dw_act_min=act_min,
                  dw_act_max=act_max, dw_weights=weights, dw_bias=f"{name}_dw_b",
                  dw_bias_folded=f"{name}_dw_bf", dw_mult=f"{name}_dw_mult",
                  dw_shift=f"{name}_dw_shift", dw_wide=wide, dw_rq=rq, expand=expand,
                  project=project, add=add,
                  expand_kernel=expand_kernel, project_kernel=project_kernel,
                  add_kernel=add_kernel, block_is_add_in1=block_is_in1,
                  dw_row_kernel=_dw_row_kernel(k_h, k_w, mid_c))
    out.decls.append(_struct("unas_fused_params", f"{name}_p", fields))
    out.const_bytes += FUSED_PARAMS_BYTES
    out.body.append(f"unas_fused_block_s8(&{name}_p, {where.source}, {where.output}, "
                    f"{where.temp});  /* temp: {temp} bytes */")
    return out
