/* Row-streamed inverted-residual blocks: see unas_fused.h. Bit-exact with TFLite Micro. */
#include "unas_fused.h"

#include <string.h>

/* Sum of w[(ky * k_w + kx) * c_pitch] * rows[ky][kx * c_pitch] over a k_h x k_w window inside
 * the image (rows[ky] already points at the window's first column of this channel). Called with
 * literal kernel sizes so the compiler unrolls it. */
static inline int32_t unas_fused_window(const int8_t *const *rows, int32_t x_off, const int8_t *w,
                                        int32_t c_pitch, int32_t k_h, int32_t k_w) {
  int32_t acc = 0;
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int8_t *r = rows[ky] + x_off;
    const int8_t *wr = w + ky * k_w * c_pitch;
    for (int32_t kx = 0; kx < k_w; ++kx) acc += (int32_t)wr[kx * c_pitch] * r[kx * c_pitch];
  }
  return acc;
}

/* One depthwise output row from the input rows rows[ky_lo .. ky_hi) (rows[ky] = the row of
 * tap ky); taps outside the image are skipped, as TFLM does; pixels whose window lies inside
 * use the folded bias (the input offset summed over all taps once). */
static void unas_fused_dw_row(const unas_fused_params *p, const int8_t *const *rows,
                              int32_t ky_lo, int32_t ky_hi, int8_t *dst) {
  const int32_t c_count = p->mid_c, in_w = p->in_w;
  const int32_t rows_full = ky_lo == 0 && ky_hi == p->k_h;
  for (int32_t ox = 0; ox < p->out_w; ++ox, dst += c_count) {
    const int32_t ix0 = ox * p->stride_w - p->pad_l;
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t kx_hi = in_w - ix0 < p->k_w ? in_w - ix0 : p->k_w;
    if (rows_full && kx_lo == 0 && kx_hi == p->k_w) {
      const int32_t x_off = ix0 * c_count;
      for (int32_t c = 0; c < c_count; ++c) {
        const int8_t *w = p->dw_weights + c;
        int32_t acc;
        if (p->k_h == 3 && p->k_w == 3) {
          acc = unas_fused_window(rows, x_off + c, w, c_count, 3, 3);
        } else if (p->k_h == 5 && p->k_w == 5) {
          acc = unas_fused_window(rows, x_off + c, w, c_count, 5, 5);
        } else if (p->k_h == 7 && p->k_w == 7) {
          acc = unas_fused_window(rows, x_off + c, w, c_count, 7, 7);
        } else {
          acc = unas_fused_window(rows, x_off + c, w, c_count, p->k_h, p->k_w);
        }
        const int32_t v = unas_mbqm(acc + p->dw_bias_folded[c], p->dw_mult[c], p->dw_shift[c]);
        dst[c] = unas_clamp_s8(v + p->dw_out_zp, p->dw_act_min, p->dw_act_max);
      }
      continue;
    }
    for (int32_t c = 0; c < c_count; ++c) {
      int32_t acc = p->dw_bias[c];
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        const int8_t *r = rows[ky] + (ix0 + kx_lo) * c_count + c;  /* first tap inside */
        const int8_t *w = p->dw_weights + (ky * p->k_w + kx_lo) * c_count + c;
        for (int32_t kx = 0; kx < kx_hi - kx_lo; ++kx) {
          acc += (int32_t)w[kx * c_count] * ((int32_t)r[kx * c_count] - p->dw_in_zp);
        }
      }
      const int32_t v = unas_mbqm(acc, p->dw_mult[c], p->dw_shift[c]) + p->dw_out_zp;
      dst[c] = unas_clamp_s8(v, p->dw_act_min, p->dw_act_max);
    }
  }
}

void unas_fused_block_s8(const unas_fused_params *p, const int8_t *in, int8_t *out, int8_t *temp) {
  const int32_t in_pitch = p->in_w * p->in_c;        /* bytes of one block-input row */
  const int32_t mid_pitch = p->in_w * p->mid_c;      /* bytes of one expanded row */
  const int32_t out_pitch = p->out_w * p->out_c;     /* bytes of one output row */
  int8_t *const ring = temp;
  int8_t *const dw_row = temp + p->ring_rows * mid_pitch;
  int8_t *const proj_row = dw_row + p->out_w * p->mid_c;
  /* the 1x1 kernels and the ADD on one row: copies of their blocks with one row */
  unas_conv_params project = *p->project;
  project.in_h = project.out_h = 1;
  unas_conv_params expand = project;
  if (p->expand != NULL) {
    expand = *p->expand;
    expand.in_h = expand.out_h = 1;
  }
  unas_add_params add;
  memset(&add, 0, sizeof add);
  if (p->add != NULL) {
    add = *p->add;
    add.size = out_pitch;
  }
  const int8_t *rows[p->k_h];
  int32_t next = 0;  /* first expanded row not computed yet */
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
    const int32_t ky_hi = p->in_h - iy0 < p->k_h ? p->in_h - iy0 : p->k_h;
    if (p->expand != NULL) {
      int32_t iy = iy0 + ky_lo > next ? iy0 + ky_lo : next;
      for (; iy < iy0 + ky_hi; ++iy) {
        unas_conv2d_1x1_s8(&expand, in + iy * in_pitch, ring + (iy % p->ring_rows) * mid_pitch);
      }
      if (iy0 + ky_hi > next) next = iy0 + ky_hi;
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        rows[ky] = ring + ((iy0 + ky) % p->ring_rows) * mid_pitch;
      }
    } else {
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) rows[ky] = in + (iy0 + ky) * in_pitch;
    }
    unas_fused_dw_row(p, rows, ky_lo, ky_hi, dw_row);
    int8_t *dst = out + oy * out_pitch;
    if (p->add == NULL) {
      unas_conv2d_1x1_s8(&project, dw_row, dst);
      continue;
    }
    unas_conv2d_1x1_s8(&project, dw_row, proj_row);
    const int8_t *block_row = in + oy * in_pitch;
    if (p->block_is_add_in1) {
      unas_add_s8(&add, block_row, proj_row, dst);
    } else {
      unas_add_s8(&add, proj_row, block_row, dst);
    }
  }
}
