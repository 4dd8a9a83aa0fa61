/* Row-streamed inverted-residual blocks: see unas_fused.h. Bit-exact with TFLite Micro. */
#include "unas_fused.h"

#include <string.h>

/* One tap of four channels: input word v against the even (c0, c2) / odd (c1, c3) weight pairs. */
#define UNAS_FUSED_TAP4(e, o, we, wo)   \
  do {                                  \
    a0 = unas_dw_smlabb((e), (we), a0); \
    a2 = unas_dw_smlatt((e), (we), a2); \
    a1 = unas_dw_smlabb((o), (wo), a1); \
    a3 = unas_dw_smlatt((o), (wo), a3); \
  } while (0)

/* acc[0..3] += a whole k_h x K window of four channels (inside the image; the input offset is in
 * the folded bias): rows[ky] + x_off is the window's first tap of channel c in row ky, taps step
 * x_col bytes; w = the group's widened taps. K is a literal at the unrolled calls. On Thumb-2
 * DSP cores a tap is one asm block of nine instructions (LDR and step, LDRD of the widened pair,
 * two SXTB16, four SMLAxy): GCC kept the taps' offsets on the stack. */
__attribute__((always_inline)) static inline void unas_fused_window4(
    const int8_t *const *rows, int32_t x_off, int32_t x_col, const int32_t *w, int32_t k_h,
    int32_t K, int32_t *acc) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int8_t *x = rows[ky] + x_off;
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
#pragma GCC unroll 8
    for (int32_t kx = 0; kx < K; ++kx) {
      int32_t v, e, we, wo;
      __asm__("ldr %[v], [%[x]]\n\t"
              "add %[x], %[x], %[col]\n\t"
              "ldrd %[we], %[wo], [%[w]], #8\n\t"
              "sxtb16 %[e], %[v]\n\t"
              "sxtb16 %[v], %[v], ror #8\n\t"
              "smlabb %[a0], %[e], %[we], %[a0]\n\t"
              "smlatt %[a2], %[e], %[we], %[a2]\n\t"
              "smlabb %[a1], %[v], %[wo], %[a1]\n\t"
              "smlatt %[a3], %[v], %[wo], %[a3]"
              : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
                [w] "+r"(w), [v] "=&r"(v), [e] "=&r"(e), [we] "=&r"(we), [wo] "=&r"(wo)
              : [col] "r"(x_col)
              : "memory");
    }
#else
    for (int32_t kx = 0; kx < K; ++kx, w += 2) {
      const uint32_t v = unas_load4(x + kx * x_col);
      UNAS_FUSED_TAP4(unas_dw_even(v), unas_dw_odd(v), w[0], w[1]);
    }
#endif
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* Output of channel c from its accumulator: the proven-exact unas_dw_rq block when the generator
 * wrote them, else MultiplyByQuantizedMultiplier and the zero point; then the activation clamp. */
static inline int8_t unas_fused_out(const unas_fused_params *p, int32_t acc, int32_t c) {
  const int32_t v = p->dw_rq != NULL ? unas_dw_rq(acc, p->dw_rq + 4 * c)
                                     : unas_mbqm(acc, p->dw_mult[c], p->dw_shift[c]) + p->dw_out_zp;
  return unas_dw_clamp(v, p->dw_act_min, p->dw_act_max);
}

/* Outputs of channels c..c+3. Out of line: the tap loops need every register. */
__attribute__((noinline)) static void unas_fused_out4(const unas_fused_params *p,
                                                      const int32_t *acc, int32_t c, int8_t *o) {
  const int32_t *rq = p->dw_rq;
  if (rq == NULL) {
    for (int32_t j = 0; j < 4; ++j) o[j] = unas_fused_out(p, acc[j], c + j);
    return;
  }
  rq += 4 * c;
  const int32_t lo = p->dw_act_min, hi = p->dw_act_max;
  o[0] = unas_dw_clamp(unas_dw_rq(acc[0], rq), lo, hi);
  o[1] = unas_dw_clamp(unas_dw_rq(acc[1], rq + 4), lo, hi);
  o[2] = unas_dw_clamp(unas_dw_rq(acc[2], rq + 8), lo, hi);
  o[3] = unas_dw_clamp(unas_dw_rq(acc[3], rq + 12), lo, hi);
}

/* Sum of w[(ky * k_w + kx) * c_pitch] * rows[ky][kx * c_pitch] over a k_h x k_w window inside
 * the image (one channel; rows[ky] + x_off is its first tap in row ky). */
static int32_t unas_fused_window1(const int8_t *const *rows, int32_t x_off, const int8_t *w,
                                  int32_t c_pitch, int32_t k_h, int32_t k_w) {
  int32_t acc = 0;
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int8_t *r = rows[ky] + x_off;
    const int8_t *wr = w + ky * k_w * c_pitch;
    for (int32_t kx = 0; kx < k_w; ++kx) acc += (int32_t)wr[kx * c_pitch] * r[kx * c_pitch];
  }
  return acc;
}

/* Channels [c_lo, mid_c) of one output pixel one by one (the channels past the widened groups,
 * or all of them without dw_wide); full: the window lies inside the image. */
__attribute__((noinline)) static void unas_fused_scalar(const unas_fused_params *p,
                                                        const int8_t *const *rows, int32_t full,
                                                        int32_t ix0, int32_t ky_lo, int32_t ky_hi,
                                                        int32_t kx_lo, int32_t kx_hi, int32_t c_lo,
                                                        int8_t *dst) {
  const int32_t c_count = p->mid_c;
  for (int32_t c = c_lo; c < c_count; ++c) {
    int32_t acc;
    if (full) {
      acc = p->dw_bias_folded[c] +
            unas_fused_window1(rows, ix0 * c_count + c, p->dw_weights + c, c_count, p->k_h, p->k_w);
    } else {
      acc = p->dw_bias[c];
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        const int8_t *r = rows[ky] + (ix0 + kx_lo) * c_count + c;  /* first tap inside */
        const int8_t *w = p->dw_weights + (ky * p->k_w + kx_lo) * c_count + c;
        for (int32_t kx = 0; kx < kx_hi - kx_lo; ++kx) {
          acc += (int32_t)w[kx * c_count] * ((int32_t)r[kx * c_count] - p->dw_in_zp);
        }
      }
    }
    dst[c] = unas_fused_out(p, acc, c);
  }
}

/* The channel groups of output pixels [ox_lo, ox_hi) of a row whose windows lie inside the image,
 * the kernel size a literal (so each filter row unrolls). Group by group, so a group's taps,
 * folded biases and requantisation blocks stay at fixed addresses over the run; with dw_rq the
 * four outputs are requantised inline. */
__attribute__((always_inline)) static inline void unas_fused_run4(
    const unas_fused_params *p, const int8_t *const *rows, int32_t ox_lo, int32_t ox_hi,
    int8_t *dst, int32_t k_h, int32_t K) {
  const int32_t c_count = p->mid_c, tail = c_count & ~3, step = p->stride_w * c_count;
  const int32_t x_first = (ox_lo * p->stride_w - p->pad_l) * c_count;
  const int32_t lo = p->dw_act_min, hi = p->dw_act_max;
  const int32_t *w = p->dw_wide;
  for (int32_t c = 0; c < tail; c += 4, w += 2 * k_h * K) {
    const int32_t *bias = p->dw_bias_folded + c;
    const int32_t *rq = p->dw_rq != NULL ? p->dw_rq + 4 * c : NULL;
    int8_t *o = dst + ox_lo * c_count + c;
    int32_t x_off = x_first + c;
    for (int32_t ox = ox_lo; ox < ox_hi; ++ox, x_off += step, o += c_count) {
      int32_t acc[4] = {bias[0], bias[1], bias[2], bias[3]};
      unas_fused_window4(rows, x_off, c_count, w, k_h, K, acc);
      if (rq == NULL) {
        unas_fused_out4(p, acc, c, o);
        continue;
      }
      o[0] = unas_dw_clamp(unas_dw_rq(acc[0], rq), lo, hi);
      o[1] = unas_dw_clamp(unas_dw_rq(acc[1], rq + 4), lo, hi);
      o[2] = unas_dw_clamp(unas_dw_rq(acc[2], rq + 8), lo, hi);
      o[3] = unas_dw_clamp(unas_dw_rq(acc[3], rq + 12), lo, hi);
    }
  }
}

/* The channel groups of one output pixel whose window reaches outside the image: the in-image
 * taps (filter rows ky_lo .. ky_hi, columns kx_lo .. kx_hi) with the input zero point
 * subtracted in the lanes over the model's bias, as TFLM skips the others; the four outputs
 * requantised inline. */
__attribute__((noinline)) static void unas_fused_edge(const unas_fused_params *p,
                                                      const int8_t *const *rows, int32_t ky_lo,
                                                      int32_t ky_hi, int32_t ix0, int32_t kx_lo,
                                                      int32_t kx_hi, int8_t *dst) {
  const int32_t c_count = p->mid_c, tail = c_count & ~3, cols = kx_hi - kx_lo, k_w = p->k_w;
  const int32_t first = (ix0 + kx_lo) * c_count, lo = p->dw_act_min, hi = p->dw_act_max;
  const int32_t zp2 = (int32_t)(((uint32_t)p->dw_in_zp << 16) | ((uint32_t)p->dw_in_zp & 0xFFFFu));
  const int32_t group_step = 2 * p->k_h * k_w;
  const int32_t *w0 = p->dw_wide + 2 * (ky_lo * k_w + kx_lo);
  for (int32_t c = 0; c < tail; c += 4, w0 += group_step) {
    const int32_t *bias = p->dw_bias + c;
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    const int32_t *wr = w0;
    for (int32_t ky = ky_lo; ky < ky_hi; ++ky, wr += 2 * k_w) {
      const int8_t *x = rows[ky] + first + c;
      const int32_t *w = wr;
      for (int32_t kx = 0; kx < cols; ++kx, x += c_count, w += 2) {
        const uint32_t v = unas_load4(x);
        /* once each: the macro uses its arguments twice */
        const int32_t e = unas_dw_sub16(unas_dw_even(v), zp2);
        const int32_t od = unas_dw_sub16(unas_dw_odd(v), zp2);
        UNAS_FUSED_TAP4(e, od, w[0], w[1]);
      }
    }
    int8_t *o = dst + c;
    if (p->dw_rq == NULL) {
      const int32_t acc[4] = {a0, a1, a2, a3};
      unas_fused_out4(p, acc, c, o);
      continue;
    }
    const int32_t *rq = p->dw_rq + 4 * c;
    o[0] = unas_dw_clamp(unas_dw_rq(a0, rq), lo, hi);
    o[1] = unas_dw_clamp(unas_dw_rq(a1, rq + 4), lo, hi);
    o[2] = unas_dw_clamp(unas_dw_rq(a2, rq + 8), lo, hi);
    o[3] = unas_dw_clamp(unas_dw_rq(a3, rq + 12), lo, hi);
  }
}

/* One depthwise output row from the input rows rows[ky_lo .. ky_hi) (rows[ky] = the row of
 * tap ky); taps outside the image are skipped, as TFLM does; pixels whose window lies inside
 * use the folded bias (the input offset summed over all taps once). Channel groups of the
 * inside pixels run in one pass per row, the filter rows unrolled with K > 0 (a K x K kernel,
 * K a literal; K == 0: any kernel); border pixels' groups take their in-image taps
 * (unas_fused_edge). Channels past the groups go one by one. */
__attribute__((always_inline)) static inline void unas_fused_dw_row(
    const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo, int32_t ky_hi,
    int8_t *dst, int32_t K) {
  const int32_t c_count = p->mid_c, in_w = p->in_w, k_h = p->k_h, k_w = p->k_w;
  const int32_t s_w = p->stride_w, pad = p->pad_l;
  const int32_t rows_full = ky_lo == 0 && ky_hi == k_h;
  const int32_t tail = p->dw_wide != NULL ? c_count & ~3 : 0;
  /* output columns [in_lo, in_hi) have their whole window inside the row */
  int32_t in_lo = (pad + s_w - 1) / s_w;
  int32_t in_hi = in_w - k_w + pad < 0 ? 0 : (in_w - k_w + pad) / s_w + 1;
  in_hi = in_hi < p->out_w ? in_hi : p->out_w;
  in_lo = in_lo < in_hi ? in_lo : in_hi;
  if (!rows_full) in_lo = in_hi = 0;
  if (tail > 0 && in_lo < in_hi) {
    if (K > 0) {
      unas_fused_run4(p, rows, in_lo, in_hi, dst, K, K);
    } else {
      unas_fused_run4(p, rows, in_lo, in_hi, dst, k_h, k_w);
    }
  }
  for (int32_t ox = 0; ox < p->out_w; ++ox) {
    const int32_t ix0 = ox * s_w - pad;
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t kx_hi = in_w - ix0 < k_w ? in_w - ix0 : k_w;
    int8_t *o = dst + ox * c_count;
    const int32_t inside = ox >= in_lo && ox < in_hi;
    if (tail > 0 && !inside) unas_fused_edge(p, rows, ky_lo, ky_hi, ix0, kx_lo, kx_hi, o);
    if (tail < c_count) {
      const int32_t full = rows_full && kx_lo == 0 && kx_hi == k_w;
      unas_fused_scalar(p, rows, full, ix0, ky_lo, ky_hi, kx_lo, kx_hi, tail, o);
    }
  }
}

void unas_fused_dw_row_3x3(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst) {
  unas_fused_dw_row(p, rows, ky_lo, ky_hi, dst, 3);
}

void unas_fused_dw_row_5x5(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst) {
  unas_fused_dw_row(p, rows, ky_lo, ky_hi, dst, 5);
}

void unas_fused_dw_row_7x7(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst) {
  unas_fused_dw_row(p, rows, ky_lo, ky_hi, dst, 7);
}

void unas_fused_dw_row_any(const unas_fused_params *p, const int8_t *const *rows, int32_t ky_lo,
                           int32_t ky_hi, int8_t *dst) {
  unas_fused_dw_row(p, rows, ky_lo, ky_hi, dst, 0);
}

void unas_fused_block_s8(const unas_fused_params *p, const int8_t *in, int8_t *out, int8_t *temp) {
  const int32_t in_pitch = p->in_w * p->in_c;        /* bytes of one block-input row */
  const int32_t mid_pitch = p->in_w * p->mid_c;      /* bytes of one expanded row */
  const int32_t out_pitch = p->out_w * p->out_c;     /* bytes of one output row */
  int8_t *const ring = temp;
  int8_t *const dw_row = temp + p->ring_rows * mid_pitch;
  int8_t *const proj_row = dw_row + p->out_w * p->mid_c;
  /* the 1x1 kernels and the ADD on one row (the expansion: on the rows computed together):
   * copies of their blocks */
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
      while (iy < iy0 + ky_hi) {
        /* the missing rows up to the ring's wrap-around are consecutive in the ring: one call
         * (the 1x1 kernel pairs pixels across rows, so odd widths waste less) */
        const int32_t slot = iy % p->ring_rows;
        int32_t n = iy0 + ky_hi - iy;
        n = n < p->ring_rows - slot ? n : p->ring_rows - slot;
        expand.in_h = expand.out_h = n;
        p->expand_kernel(&expand, in + iy * in_pitch, ring + slot * mid_pitch);
        iy += n;
      }
      if (iy0 + ky_hi > next) next = iy0 + ky_hi;
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        rows[ky] = ring + ((iy0 + ky) % p->ring_rows) * mid_pitch;
      }
    } else {
      for (int32_t ky = ky_lo; ky < ky_hi; ++ky) rows[ky] = in + (iy0 + ky) * in_pitch;
    }
    p->dw_row_kernel(p, rows, ky_lo, ky_hi, dw_row);
    int8_t *dst = out + oy * out_pitch;
    if (p->add == NULL) {
      p->project_kernel(&project, dw_row, dst);
      continue;
    }
    p->project_kernel(&project, dw_row, proj_row);
    const int8_t *block_row = in + oy * in_pitch;
    if (p->block_is_add_in1) {
      p->add_kernel(&add, block_row, proj_row, dst);
    } else {
      p->add_kernel(&add, proj_row, block_row, dst);
    }
  }
}
