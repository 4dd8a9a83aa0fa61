/* Row-streamed inverted-residual blocks (MCUNetV2-style, without recomputation).
 *
 * One call runs CONV_2D 1x1 (expand) -> DEPTHWISE_CONV_2D (k_h x k_w, any stride and padding,
 * depth multiplier 1, dilation 1) -> CONV_2D 1x1 (project) [-> ADD with the block input] without
 * materialising the expanded tensor or the depthwise output. The caller's temp buffer holds
 *
 *   ring:     ring_rows = min(k_h, in_h) rows of the expanded tensor, in_w * mid_c bytes each
 *             (row iy in slot iy % ring_rows; none without an expansion, where the depthwise
 *             reads the block input directly);
 *   dw row:   one depthwise output row, out_w * mid_c bytes;
 *   proj row: with a residual ADD, one projection output row, out_w * out_c bytes.
 *
 * For each output row the expanded rows it needs that are not yet in the ring are computed
 * (each once), then the depthwise row, then the projection of that row into the output (or into
 * proj row, then ADD with the block input's row into the output). Every element is computed
 * with the same integer arithmetic as the unfused kernels, so results are bit-exact with TFLM.
 * The depthwise row (dw_row_kernel: unas_fused_dw_row_3x3 / _5x5 / _7x7 with the filter rows
 * unrolled, or unas_fused_dw_row_any; the generator links only the one it picks) takes four
 * channels per input word (SXTB16 + SMLABB/SMLATT against the pre-widened dw_wide taps; the
 * input offset folded into the bias inside the image, subtracted in the lanes at the border)
 * and requantises with the proven-exact dw_rq blocks when present.
 * The 1x1 convolutions and the ADD are the kernel paths the generator chose (expand_kernel,
 * project_kernel, add_kernel; for the 1x1 convolutions unas_conv2d_1x1_rows_s8 in place of
 * unas_conv2d_1x1_expanded_s8) run on one row (a local copy of their parameter block with
 * in_h = out_h = 1, resp. size = one row); the expansion runs on all the missing rows that sit
 * in consecutive ring slots at once (in_h = out_h = their count).
 */
#ifndef UNAS_FUSED_H
#define UNAS_FUSED_H

#include <stdint.h>

#include "unas_kernels.h"

typedef struct unas_fused_params unas_fused_params;

/* One depthwise output row of a fused block from its input rows rows[ky_lo .. ky_hi) (rows[ky]
 * = the row of tap ky; taps of the other rows lie outside the image) into dst. */
typedef void (*unas_fused_row_fn)(const unas_fused_params *p, const int8_t *const *rows,
                                  int32_t ky_lo, int32_t ky_hi, int8_t *dst);

struct unas_fused_params {
  int32_t in_h, in_w, in_c;     /* block input */
  int32_t mid_c;                /* depthwise channels (== in_c without an expansion) */
  int32_t out_h, out_w, out_c;  /* block output */
  int32_t k_h, k_w, stride_h, stride_w, pad_t, pad_l;
  int32_t ring_rows;            /* expanded rows kept; 0 without an expansion */
  int32_t dw_in_zp, dw_out_zp, dw_act_min, dw_act_max;
  const int8_t *dw_weights;     /* [k_h][k_w][mid_c]; NULL when dw_wide covers every channel */
  const int32_t *dw_bias;       /* [mid_c], the model's bias (border pixels) */
  const int32_t *dw_bias_folded; /* bias - dw_in_zp * sum of the channel's taps (inner pixels) */
  const int32_t *dw_mult;
  const int32_t *dw_shift;
  /* Generation-time precomputation (NULL: the scalar path). dw_wide: the taps of channel groups
   * 4g..4g+3 widened to int16 pairs, [mid_c / 4][k_h * k_w][even (c0, c2), odd (c1, c3)] int32
   * (as UNAS_DW_WIDE_GROUPS in unas_kernels.h); channels past the last multiple of four use
   * dw_weights. dw_rq: per-channel unas_dw_rq blocks {mult, left + 1, nudge, right} with the output
   * zero point included, written only when the generator proved them exact for every channel. */
  const int32_t *dw_wide;
  const int32_t *dw_rq;
  const unas_conv_params *expand;  /* NULL without an expansion */
  const unas_conv_params *project;
  const unas_add_params *add;      /* NULL without a residual ADD */
  /* the kernel paths the generator chose for expand / project / add (NULL where the part is
   * missing): called directly, so the dispatchers and unused paths are not linked */
  unas_conv_fn expand_kernel;
  unas_conv_fn project_kernel;
  unas_add_fn add_kernel;
  int32_t block_is_add_in1;        /* 1: the block input is the ADD's first operand */
  /* the depthwise row the generator chose: unas_fused_dw_row_KxK for a K x K kernel (K = 3, 5,
   * 7) with dw_wide, unas_fused_dw_row_any otherwise */
  unas_fused_row_fn dw_row_kernel;
};

/* Run the block on in (NHWC, in_h x in_w x in_c) into out (out_h x out_w x out_c); temp holds
 * ring_rows * in_w * mid_c + out_w * mid_c (+ out_w * out_c with an ADD) bytes. out must not
 * overlap in or temp. */
void unas_fused_block_s8(const unas_fused_params *p, const int8_t *in, int8_t *out, int8_t *temp);

/* The depthwise rows: the kernel size unrolled (inside pixels), border pixels' windows gathered
 * with the zero point (unas_fused_dw_row_3x3 / _5x5 / _7x7), or any kernel size. */
void unas_fused_dw_row_3x3(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst);
void unas_fused_dw_row_5x5(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst);
void unas_fused_dw_row_7x7(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst);
void unas_fused_dw_row_any(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst);

#endif /* UNAS_FUSED_H */
