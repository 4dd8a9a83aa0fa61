/* unas int8 kernels: see unas_kernels.h. Bit-exact with TFLite Micro's reference kernels. */
#include "unas_kernels.h"

#include <math.h>

/* First and one-past-last filter tap (along one axis) that lands inside [0, size). */
static inline void unas_tap_range(int32_t origin, int32_t dil, int32_t taps, int32_t size,
                                  int32_t *lo, int32_t *hi) {
  int32_t first = origin >= 0 ? 0 : (-origin + dil - 1) / dil;
  int32_t last = size - origin <= 0 ? 0 : (size - origin + dil - 1) / dil;
  *lo = first;
  *hi = last < taps ? last : taps;
}

/* ---- dot-product blocks ---- */

/* The 2 x 2 block's step on the accumulators s00 (pixel 0, weight row 0), s01, s10, s11 in
 * scope: UNAS_SMLAD2X2 takes four taps as words (pixels a, b; weight rows c, d: four int8
 * each, split into int16 pairs by SXTB16), UNAS_MAC2X2 one tap of each. */
#define UNAS_SMLAD2X2(a, b, c, d)                                    \
  do {                                                               \
    const int32_t ce = unas_even16(c), co = unas_odd16(c);           \
    const int32_t ae = unas_even16(a), ao = unas_odd16(a);           \
    s00 = __smlad(ae, ce, s00);                                      \
    s00 = __smlad(ao, co, s00);                                      \
    const int32_t be = unas_even16(b), bo = unas_odd16(b);           \
    s10 = __smlad(be, ce, s10);                                      \
    s10 = __smlad(bo, co, s10);                                      \
    const int32_t de = unas_even16(d), dd = unas_odd16(d);           \
    s01 = __smlad(ae, de, s01);                                      \
    s01 = __smlad(ao, dd, s01);                                      \
    s11 = __smlad(be, de, s11);                                      \
    s11 = __smlad(bo, dd, s11);                                      \
  } while (0)

#define UNAS_MAC2X2(a, b, c, d)                                                     \
  do {                                                                              \
    const int32_t a_ = (a), b_ = (b), c_ = (c), d_ = (d);                           \
    s00 += a_ * c_;                                                                 \
    s01 += a_ * d_;                                                                 \
    s10 += b_ * c_;                                                                 \
    s11 += b_ * d_;                                                                 \
  } while (0)

__attribute__((always_inline)) static inline void unas_dot2x2_body(
    const int8_t *x0, int32_t x_pitch, const int8_t *w0, int32_t w_pitch, int32_t n,
    int32_t *acc) {
  int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
  /* Four post-incremented pointers, six temporaries and the accumulators fill the registers, so
   * the end pointer is read from the stack where the temporaries are free: per four taps 4 LDR,
   * 8 SXTB16, 8 SMLAD and the loop's LDR, CMP, BNE (GCC's own code spilled the pitches). */
  const int8_t *x1 = x0 + x_pitch, *w1 = w0 + w_pitch;
  const int8_t *const end = x0 + (n & ~3);
  if (x0 != end) {
    uint32_t a, b, c, d, e, f;
    __asm__(
        "1:\n\t"
        "ldr %[c], [%[w0]], #4\n\t"
        "ldr %[d], [%[w1]], #4\n\t"
        "sxtb16 %[e], %[c], ror #8\n\t"
        "sxtb16 %[c], %[c]\n\t"
        "sxtb16 %[f], %[d], ror #8\n\t"
        "sxtb16 %[d], %[d]\n\t"
        "ldr %[a], [%[x0]], #4\n\t"
        "sxtb16 %[b], %[a]\n\t"
        "sxtb16 %[a], %[a], ror #8\n\t"
        "smlad %[s00], %[b], %[c], %[s00]\n\t"
        "smlad %[s00], %[a], %[e], %[s00]\n\t"
        "smlad %[s01], %[b], %[d], %[s01]\n\t"
        "smlad %[s01], %[a], %[f], %[s01]\n\t"
        "ldr %[a], [%[x1]], #4\n\t"
        "sxtb16 %[b], %[a]\n\t"
        "sxtb16 %[a], %[a], ror #8\n\t"
        "smlad %[s10], %[b], %[c], %[s10]\n\t"
        "smlad %[s10], %[a], %[e], %[s10]\n\t"
        "smlad %[s11], %[b], %[d], %[s11]\n\t"
        "smlad %[s11], %[a], %[f], %[s11]\n\t"
        "ldr %[b], %[end]\n\t"
        "cmp %[x0], %[b]\n\t"
        "bne 1b"
        : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11),
          [x0] "+r"(x0), [x1] "+r"(x1), [w0] "+r"(w0), [w1] "+r"(w1), [a] "=&r"(a),
          [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [e] "=&r"(e), [f] "=&r"(f)
        : [end] "m"(end)
        : "cc", "memory");
  }
  n &= 3;
#elif defined(__ARM_FEATURE_DSP)
  /* walk x0 and w0 only; the second input and weight row are reached through the pitches */
  const int8_t *const end = x0 + (n & ~3);
  while (x0 != end) {
    const uint32_t c = unas_load4(w0), d = unas_load4(w0 + w_pitch);
    const uint32_t a = unas_load4(x0), b = unas_load4(x0 + x_pitch);
    x0 += 4;
    w0 += 4;
    UNAS_SMLAD2X2(a, b, c, d);
  }
  n &= 3;
  const int8_t *x1 = x0 + x_pitch, *w1 = w0 + w_pitch;
#else
  const int8_t *x1 = x0 + x_pitch, *w1 = w0 + w_pitch;
#endif
  int32_t i = 0;
  for (; i < n; ++i) {
    UNAS_MAC2X2(x0[i], x1[i], w0[i], w1[i]);
  }
  acc[0] = s00;
  acc[1] = s01;
  acc[2] = s10;
  acc[3] = s11;
}

/* Without the DSP extension (the host build) the tail loop above is the whole dot product;
 * GCC vectorises it (SSE2 widening multiply-adds on x86-64) only when asked, which -O2 does
 * not do for loops of unknown length. Integer arithmetic: the result is identical either way. */
#if !defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
void unas_dot2x2_s8(const int8_t *x0, int32_t x_pitch, const int8_t *w0, int32_t w_pitch,
                    int32_t n, int32_t *acc) {
  unas_dot2x2_body(x0, x_pitch, w0, w_pitch, n, acc);
}

static inline int8_t unas_requant(int32_t acc, const unas_conv_params *p, int32_t oc) {
  const int32_t v = unas_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_zp;
  return unas_clamp_s8(v, p->act_min, p->act_max);
}

/* One output channel's requantisation with its shifts and rounding mask worked out once:
 * unas_rq_apply(r, acc) == unas_clamp_s8(unas_mbqm(acc, mult, shift) + out_zp, min, max). */
typedef struct {
  int32_t mult, left, right, mask, half, out_zp, act_min, act_max;
} unas_rq;

static inline void unas_rq_init(unas_rq *r, const unas_conv_params *p, int32_t oc) {
  const int32_t shift = p->shift[oc];
  r->mult = p->mult[oc];
  r->left = shift > 0 ? shift : 0;
  r->right = shift > 0 ? 0 : -shift;
  r->mask = (int32_t)((1u << r->right) - 1u);
  r->half = r->mask >> 1;
  r->out_zp = p->out_zp;
  r->act_min = p->act_min;
  r->act_max = p->act_max;
}

static inline int8_t unas_rq_apply(const unas_rq *r, int32_t acc) {
  const int32_t hi = unas_srdhm_nosat((int32_t)((uint32_t)acc << r->left), r->mult);
  const int32_t threshold = r->half + (hi < 0 ? 1 : 0);  /* unas_rdbypot, mask precomputed */
  const int32_t v = (hi >> r->right) + ((hi & r->mask) > threshold ? 1 : 0) + r->out_zp;
  return unas_clamp_s8(v, r->act_min, r->act_max);
}

/* ---- convolution ---- */

/* Requantises accumulators a (stored at oa) and b (at ob) of one channel with constants r,
 * clamped to [lo, hi]: the constants are loaded once for both (two LDRD on Cortex-M). */
__attribute__((always_inline)) static inline void unas_rqf_store2(
    const unas_rqf *r, int32_t a, int32_t b, int32_t lo, int32_t hi, int8_t *oa, int8_t *ob) {
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
  int32_t m, klo, khi, sh, t, h;
  __asm__(
      "ldrd %[m], %[klo], [%[r]]\n\t"
      "ldrd %[khi], %[sh], [%[r], #8]\n\t"
      "and %[t], %[a], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[a], asr #31\n\t"
      "smlal %[t], %[h], %[a], %[m]\n\t"
      "asr %[a], %[h], %[sh]\n\t"
      "and %[t], %[b], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[b], asr #31\n\t"
      "smlal %[t], %[h], %[b], %[m]\n\t"
      "asr %[b], %[h], %[sh]"
      : [a] "+&r"(a), [b] "+&r"(b), [m] "=&r"(m), [klo] "=&r"(klo), [khi] "=&r"(khi),
        [sh] "=&r"(sh), [t] "=&r"(t), [h] "=&r"(h)
      : [r] "r"(r)
      : "cc", "memory");
#else
  a = unas_rqf_apply(r, a);
  b = unas_rqf_apply(r, b);
#endif
  a = a > lo ? a : lo;
  b = b > lo ? b : lo;
  *oa = (int8_t)(a < hi ? a : hi);
  *ob = (int8_t)(b < hi ? b : hi);
}

/* Sum of n int8 values (filter taps a pixel pair does not run through the 2 x 2 block). On
 * Cortex-M two SXTAB16 per word add its bytes into two int16 lanes (at most 512 bytes at a
 * time, so a lane stays within 256 * 128), which one SMLAD then adds up. */
__attribute__((noinline)) static int32_t unas_sum_s8(const int8_t *w, int32_t n) {
  int32_t sum = 0;
  const int8_t *const end = w + n;
#if defined(__ARM_FEATURE_DSP)
  while (end - w >= 4) {
    const int8_t *const stop = w + ((end - w < 512 ? end - w : 512) & ~3);
    int32_t lanes = 0;
    for (; w != stop; w += 4) {
      const uint32_t v = unas_load4(w);
      lanes = __sxtab16(lanes, (int32_t)v);
      __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(lanes) : "r"(v));
    }
    sum = __smlad(lanes, 0x00010001, sum);
  }
#endif
  for (; w != end; ++w) sum += *w;
  return sum;
}

/* Output channels whose accumulators one pixel pair keeps at a time (on the stack); bytes of a
 * window gathered per pixel at a time; filter rows shorter than UNAS_CONV_IN_PLACE bytes are
 * gathered even where the pair could read the input in place, whole rows back to back, so one
 * dot product call covers several rows (a call costs about 35 instructions). */
#define UNAS_CONV_BLOCK 16
#define UNAS_CONV_SEGMENT 176
#define UNAS_CONV_IN_PLACE 64

/* Where an output pixel's window starts in the input, and the filter rows [ky_lo, ky_hi) and
 * columns [kx_lo, kx_hi) that land inside the image (hi >= lo). */
typedef struct {
  int32_t iy, ix, ky_lo, ky_hi, kx_lo, kx_hi;
} unas_window;

__attribute__((noinline)) static void unas_conv_window(const unas_conv_params *p, int32_t pixel,
                                                       unas_window *w) {
  const int32_t oy = pixel / p->out_w, ox = pixel - oy * p->out_w;
  w->iy = oy * p->stride_h - p->pad_t;
  w->ix = ox * p->stride_w - p->pad_l;
  unas_tap_range(w->iy, p->dil_h, p->k_h, p->in_h, &w->ky_lo, &w->ky_hi);
  unas_tap_range(w->ix, p->dil_w, p->k_w, p->in_w, &w->kx_lo, &w->kx_hi);
  w->ky_hi = w->ky_hi > w->ky_lo ? w->ky_hi : w->ky_lo;
  w->kx_hi = w->kx_hi > w->kx_lo ? w->kx_hi : w->kx_lo;
}

/* Bytes [a, a + n) of one pixel's window (filter order: k_h rows of k_w taps x in_c) into dst;
 * taps outside the image read in_zp, which the pair's starting bias accounts for (TFLM skips
 * those taps). Inside taps of a row are copied in one run when dilation is 1. */
__attribute__((noinline)) static void unas_conv_gather(const unas_conv_params *p,
                                                       const int8_t *in, const unas_window *w,
                                                       int32_t a, int32_t n, int8_t *dst) {
  const int32_t c_in = p->in_c, row_w = p->k_w * c_in, end = a + n;
  while (a < end) {
    const int32_t ky = a / row_w, kx = (a - ky * row_w) / c_in;
    const int32_t rows = ky >= w->ky_lo && ky < w->ky_hi;
    const int32_t lo = rows ? w->kx_lo : 0, hi = rows ? w->kx_hi : 0;
    const int32_t inside = kx >= lo && kx < hi;
    int32_t stop = ky * row_w +
                   (inside ? (p->dil_w == 1 ? hi : kx + 1) * c_in : kx < lo ? lo * c_in : row_w);
    stop = stop < end ? stop : end;
    if (inside) {
      const int32_t pixel = (w->iy + ky * p->dil_h) * p->in_w + w->ix + kx * p->dil_w;
      memcpy(dst, in + (pixel * c_in + a - ky * row_w - kx * c_in), (size_t)(stop - a));
    } else {
      memset(dst, p->in_zp, (size_t)(stop - a));
    }
    dst += stop - a;
    a = stop;
  }
}

/* Direct convolution, no im2col buffer. Output pixels go in pairs in raster order (the last
 * one of an odd count pairs with itself), each pair through the int8 2 x 2 block (two pixels x
 * two output channels) filter row by filter row, UNAS_CONV_BLOCK channels at a time, over the
 * rows [lo, hi) and columns [cl, ch) that either pixel uses (TFLM skips taps outside the image,
 * so the rest adds nothing). When both pixels use the same taps (dilation 1, rows of at least
 * UNAS_CONV_IN_PLACE bytes) the block reads the input in place (a filter row's taps are one
 * contiguous run in NHWC); otherwise each pixel's window is gathered into a stack buffer with
 * its outside taps reading in_zp (whole rows back to back when every column runs).
 * Starting value of both pixels: bias minus in_zp times the weights run (the outside taps then
 * add exactly nothing): from bias_rows for whole rows, with in_zp times the columns left out
 * added; or, when fewer than half the columns run, the model's bias minus in_zp times the
 * columns run. */
void unas_conv2d_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  int8_t seg[2 * UNAS_CONV_SEGMENT] __attribute__((aligned(4)));
  int32_t acc[2 * UNAS_CONV_BLOCK];
  const int32_t c_in = p->in_c, out_c = p->out_c, row_w = p->k_w * c_in, k = p->k_h * row_w;
  const int32_t pixels = p->out_h * p->out_w, line = p->in_w * c_in;
  const int32_t *const raw = p->bias_rows;
  for (int32_t px = 0; px < pixels; px += 2, out += 2 * out_c) {
    unas_window uv[2];
    const int32_t two = px + 1 < pixels;
    for (int32_t t = 0; t < 2; ++t) unas_conv_window(p, px + (t & two), &uv[t]);
    const unas_window u = uv[0], v = uv[1];
    int8_t *const out1 = two ? out + out_c : out;
    const int32_t lo = u.ky_lo < v.ky_lo ? u.ky_lo : v.ky_lo;
    const int32_t hi = u.ky_hi > v.ky_hi ? u.ky_hi : v.ky_hi;
    const int32_t cl = u.kx_lo < v.kx_lo ? u.kx_lo : v.kx_lo;
    const int32_t ch = u.kx_hi > v.kx_hi ? u.kx_hi : v.kx_hi;
    const int32_t b0 = cl * c_in, b1 = ch * c_in;
    const int32_t in_place = p->dil_w == 1 && row_w >= UNAS_CONV_IN_PLACE &&
                             u.ky_lo == v.ky_lo && u.ky_hi == v.ky_hi &&
                             u.kx_lo == v.kx_lo && u.kx_hi == v.kx_hi;
    const int32_t part = ch - cl < p->k_w, inner = 2 * (ch - cl) < p->k_w;
    const int32_t merge = !in_place && !part;  /* whole rows: gathered back to back */
    const int32_t zp = inner ? -p->in_zp : p->in_zp;
    const int32_t step = in_place ? row_w : UNAS_CONV_SEGMENT;
    const int32_t pitch = in_place ? (v.iy - u.iy) * line + (v.ix - u.ix) * c_in
                                   : two * UNAS_CONV_SEGMENT;
    /* start: raw + b_hi - b_lo (rows [lo, hi)), or raw alone when the columns run are summed */
    const int32_t *const b_hi = raw + (inner ? 0 : hi * out_c);
    const int32_t *const b_lo = raw + (inner ? 0 : lo * out_c);
    for (int32_t oc0 = 0; oc0 < out_c; oc0 += UNAS_CONV_BLOCK) {
      const int32_t nb = out_c - oc0 < UNAS_CONV_BLOCK ? out_c - oc0 : UNAS_CONV_BLOCK;
      for (int32_t j = 0; j < nb; j += 2) {  /* an odd last channel partners itself */
        const int32_t c = oc0 + j, d = c + (j + 1 < nb);
        int32_t *const s = acc + 2 * j;
        s[0] = s[2] = b_hi[c] + raw[c] - b_lo[c];
        s[1] = s[3] = b_hi[d] + raw[d] - b_lo[d];
      }
      for (int32_t ky = lo; ky < hi; ky += merge ? hi - lo : 1) {
        const int32_t last = merge ? hi * row_w : ky * row_w + b1;
        for (int32_t a = ky * row_w + b0; a < last; a += step) {
          const int32_t n = last - a < step ? last - a : step;
          const int8_t *x = seg;
          if (in_place) {
            x = in + ((u.iy + ky * p->dil_h) * line + u.ix * c_in + a - ky * row_w);
          } else {
            for (int32_t t = 0; t <= two; ++t) {
              unas_conv_gather(p, in, &uv[t], a, n, seg + t * UNAS_CONV_SEGMENT);
            }
          }
          for (int32_t j = 0; j < nb; j += 2) {
            unas_dot2x2_s8(x, pitch, p->weights + (oc0 + j) * k + a, j + 1 < nb ? k : 0, n,
                           acc + 2 * j);
          }
        }
        for (int32_t j = 0; part && j < nb; ++j) {  /* in_zp times the columns left out / run */
          const int8_t *const wr = p->weights + (oc0 + j) * k + ky * row_w;
          const int32_t sum = inner ? unas_sum_s8(wr + b0, b1 - b0)
                                    : unas_sum_s8(wr, b0) + unas_sum_s8(wr + b1, row_w - b1);
          int32_t *const s = acc + 2 * (j & ~1) + (j & 1);
          s[0] += zp * sum;
          s[2] += zp * sum;
        }
      }
      for (int32_t j = 0; j < nb; ++j) {
        const int32_t c = oc0 + j, *const s = acc + 2 * (j & ~1) + (j & 1);
        if (p->rq) {
          unas_rqf_store2(p->rq + c, s[0], s[2], p->act_min, p->act_max, out + c, out1 + c);
        } else {
          for (int32_t t = 0; t < 2; ++t) (t ? out1 : out)[c] = unas_requant(s[2 * t], p, c);
        }
      }
    }
  }
}

/* ---- packed 2 x 2 block (p->packed, p->rq) ---- */

/* acc[0] += x0.w0, acc[1] += x0.w1, acc[2] += x1.w0, acc[3] += x1.w1 over n4 bytes (a multiple
 * of 4), x1 = x0 + x_pitch, w packed: four taps of channel 0, then the same four of channel 1.
 * One pointer walks both weight rows, so the loop body is 4 loads, 8 SXTB16 and 8 SMLAD. */
__attribute__((always_inline)) static inline void unas_packed2x2(
    const int8_t *x0, int32_t x_pitch, const int8_t *w, int32_t n4, int32_t *acc) {
  int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
  const int8_t *const end = x0 + n4;
#if defined(__ARM_FEATURE_DSP)
  while (x0 != end) {
    const uint32_t b = unas_load4(x0 + x_pitch), a = unas_load4(x0);
    const uint32_t c = unas_load4(w), d = unas_load4(w + 4);
    x0 += 4;
    w += 8;
    UNAS_SMLAD2X2(a, b, c, d);
  }
#else
  for (; x0 != end; x0 += 4, w += 8) {
    for (int32_t i = 0; i < 4; ++i) {
      UNAS_MAC2X2(x0[i], x0[x_pitch + i], w[i], w[4 + i]);
    }
  }
#endif
  acc[0] = s00;
  acc[1] = s01;
  acc[2] = s10;
  acc[3] = s11;
}

/* ---- int16-expanded pixel pairs ---- */

/* Two pixels' taps sign-extended once, then reused by every channel pair: for each group of four
 * taps, four words: taps (0, 2) and (1, 3) of pixel a as int16 pairs (what SXTB16 gives), then
 * the same of pixel b. Taps n .. n4 - 1 of the last group are zero. */
static inline int32_t unas_pack16(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

static void unas_expand_pair(const int8_t *a, const int8_t *b, int32_t n, int32_t *dst) {
  const int32_t n4 = n & ~3;
  int32_t i = 0;
  for (; i < n4; i += 4, dst += 4) {
#if defined(__ARM_FEATURE_DSP)
    const uint32_t wa = unas_load4(a + i), wb = unas_load4(b + i);
    dst[0] = unas_even16(wa);
    dst[1] = unas_odd16(wa);
    dst[2] = unas_even16(wb);
    dst[3] = unas_odd16(wb);
#else
    dst[0] = unas_pack16(a[i], a[i + 2]);
    dst[1] = unas_pack16(a[i + 1], a[i + 3]);
    dst[2] = unas_pack16(b[i], b[i + 2]);
    dst[3] = unas_pack16(b[i + 1], b[i + 3]);
#endif
  }
  if (i < n) {
    int32_t ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};
    for (int32_t j = 0; i + j < n; ++j) {
      ta[j] = a[i + j];
      tb[j] = b[i + j];
    }
    dst[0] = unas_pack16(ta[0], ta[2]);
    dst[1] = unas_pack16(ta[1], ta[3]);
    dst[2] = unas_pack16(tb[0], tb[2]);
    dst[3] = unas_pack16(tb[1], tb[3]);
  }
}

/* SMLAD: acc + lo16(x) * lo16(y) + hi16(x) * hi16(y). */
static inline int32_t unas_smlad16(int32_t x, int32_t y, int32_t acc) {
#if defined(__ARM_FEATURE_DSP)
  return __smlad(x, y, acc);
#else
  return acc + (int16_t)x * (int16_t)y + (x >> 16) * (y >> 16);
#endif
}

/* acc[0] += a.w0, acc[1] += a.w1, acc[2] += b.w0, acc[3] += b.w1 over `groups` groups of four
 * taps, each pixel's taps as two words of int16 pairs per group: pixel a's at x (then x + STEP
 * bytes for the next group), pixel b's B_OFF bytes after pixel a's; we per group: words
 * (t0, t1), (t2, t3) of channel 2j, then of 2j + 1. Per group 4 LDRD and 8 SMLAD (14
 * instructions: GCC would load the words one at a time). A macro, as both offsets must be
 * assembler immediates: unas_expanded2x2 (interleaved pairs) and unas_window2x2 (windows
 * UNAS_PATCH_MAX taps apart) are its two layouts. The portable loop reads the same words
 * (little-endian: an int16 pair in memory is the word pack16(first, second)). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
#define UNAS_BLOCK2X2(NAME, B_OFF, STEP)                                                        \
  __attribute__((always_inline)) static inline void NAME(const void *x, const int32_t *we,    \
                                                         int32_t groups, int32_t *acc) {      \
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];                           \
    const char *xa = (const char *)x, *const end = xa + (STEP) * groups;                      \
    if (groups > 0) {                                                                          \
      int32_t ae, ao, be, bo, t, u;                                                            \
      __asm__ volatile(                                                                        \
          "1:\n\t"                                                                             \
          "ldrd %[be], %[bo], [%[xa], %[off]]\n\t"                                             \
          "ldrd %[ae], %[ao], [%[xa]], %[step]\n\t"                                            \
          "ldrd %[t], %[u], [%[we]], #8\n\t"                                                   \
          "smlad %[s00], %[ae], %[t], %[s00]\n\t"                                              \
          "smlad %[s00], %[ao], %[u], %[s00]\n\t"                                              \
          "smlad %[s10], %[be], %[t], %[s10]\n\t"                                              \
          "smlad %[s10], %[bo], %[u], %[s10]\n\t"                                              \
          "ldrd %[t], %[u], [%[we]], #8\n\t"                                                   \
          "smlad %[s01], %[ae], %[t], %[s01]\n\t"                                              \
          "smlad %[s01], %[ao], %[u], %[s01]\n\t"                                              \
          "smlad %[s11], %[be], %[t], %[s11]\n\t"                                              \
          "smlad %[s11], %[bo], %[u], %[s11]\n\t"                                              \
          "cmp %[xa], %[end]\n\t"                                                              \
          "bne 1b"                                                                             \
          : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11),               \
            [xa] "+r"(xa), [we] "+r"(we), [ae] "=&r"(ae), [ao] "=&r"(ao), [be] "=&r"(be),     \
            [bo] "=&r"(bo), [t] "=&r"(t), [u] "=&r"(u)                                         \
          : [end] "r"(end), [off] "i"(B_OFF), [step] "i"(STEP)                                 \
          : "cc", "memory");                                                                   \
    }                                                                                          \
    acc[0] = s00;                                                                              \
    acc[1] = s01;                                                                              \
    acc[2] = s10;                                                                              \
    acc[3] = s11;                                                                              \
  }
#else
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the portable 2 x 2 block reads int16 pairs as little-endian words"
#endif
#define UNAS_BLOCK2X2(NAME, B_OFF, STEP)                                                        \
  __attribute__((always_inline)) static inline void NAME(const void *x, const int32_t *we,    \
                                                         int32_t groups, int32_t *acc) {      \
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];                           \
    const char *xa = (const char *)x;                                                          \
    for (int32_t g = 0; g < groups; ++g, xa += (STEP), we += 4) {                              \
      int32_t a[2], b[2];                                                                      \
      memcpy(a, xa, sizeof a);                                                                 \
      memcpy(b, xa + (B_OFF), sizeof b);                                                       \
      s00 = unas_smlad16(a[1], we[1], unas_smlad16(a[0], we[0], s00));                         \
      s10 = unas_smlad16(b[1], we[1], unas_smlad16(b[0], we[0], s10));                         \
      s01 = unas_smlad16(a[1], we[3], unas_smlad16(a[0], we[2], s01));                         \
      s11 = unas_smlad16(b[1], we[3], unas_smlad16(b[0], we[2], s11));                         \
    }                                                                                          \
    acc[0] = s00;                                                                              \
    acc[1] = s01;                                                                              \
    acc[2] = s10;                                                                              \
    acc[3] = s11;                                                                              \
  }
#endif

/* xe from unas_expand_pair (per group a's two words, then b's), we the channel pair expanded
 * the same way by the generator. */
UNAS_BLOCK2X2(unas_expanded2x2, 8, 16)

/* Requantised output of channel constants r for accumulator acc, clamped to [lo, hi]. */
static inline int32_t unas_rqf_act(const unas_rqf *r, int32_t acc, int32_t lo, int32_t hi) {
  const int32_t v = unas_rqf_apply(r, acc);
  const int32_t above = v > lo ? v : lo;
  return above < hi ? above : hi;
}

/* Every channel pair against one expanded pixel pair; channel c of pixel a goes to oa[c], of
 * pixel b to ob[c]. For a single last pixel the caller passes the same pixel twice and oa == ob
 * (both results are equal, so the second store repeats the first). */
static void unas_channel_pairs(const unas_conv_params *p, const int32_t *xe, int32_t groups,
                               int8_t *oa, int8_t *ob) {
  const int32_t *w = (const int32_t *)(const void *)p->packed;
  const int32_t *bias = p->bias;
  const unas_rqf *r = p->rq;
  const int32_t lo = p->act_min, hi = p->act_max, pairs = p->out_c >> 1;
  for (int32_t j = 0; j < pairs; ++j, w += 4 * groups, bias += 2, r += 2, oa += 2, ob += 2) {
    int32_t acc[4] = {bias[0], bias[1], bias[0], bias[1]};
    unas_expanded2x2(xe, w, groups, acc);
    unas_rqf_store2(r, acc[0], acc[2], lo, hi, oa, ob);
    unas_rqf_store2(r + 1, acc[1], acc[3], lo, hi, oa + 1, ob + 1);
  }
  if (p->out_c & 1) {  /* the last channel: its packed partner is zeros */
    int32_t acc[4] = {bias[0], 0, bias[0], 0};
    unas_expanded2x2(xe, w, groups, acc);
    unas_rqf_store2(r, acc[0], acc[2], lo, hi, oa, ob);
  }
}

/* 1x1 convolution with packed int8 weights (in_c > UNAS_PATCH_MAX): channel pairs outermost,
 * pixels two at a time (x pitch = stride_w * in_c); with stride 1 the whole image is one row of
 * out_h * out_w pixels. The last in_c % 4 taps are read byte by byte (the input row may end
 * there). */
void unas_conv2d_1x1_packed_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  const int32_t k = p->in_c, k4 = k & ~3, tail = k & 3, out_c = p->out_c;
  const int32_t pair_bytes = 2 * ((k + 3) & ~3);
  const int32_t flat = p->stride_h == 1 && p->stride_w == 1 && p->in_w == p->out_w;
  const int32_t rows = flat ? 1 : p->out_h;
  const int32_t cols = flat ? p->out_h * p->out_w : p->out_w;
  const int32_t x_pitch = p->stride_w * k;
  const int32_t row_pitch = p->stride_h * p->in_w * k;
  const int8_t *w = p->packed;
  for (int32_t oc = 0; oc < out_c; oc += 2, w += pair_bytes) {
    const int32_t two_ch = oc + 1 < out_c;
    const int32_t b0 = p->bias[oc], b1 = two_ch ? p->bias[oc + 1] : 0;
    for (int32_t oy = 0; oy < rows; ++oy) {
      const int8_t *x = in + oy * row_pitch;
      int8_t *o = out + oy * cols * out_c + oc;
      for (int32_t ox = 0; ox < cols; ox += 2, x += 2 * x_pitch, o += 2 * out_c) {
        const int32_t two_px = ox + 1 < cols;
        const int32_t pitch = two_px ? x_pitch : 0;
        int32_t acc[4] = {b0, b1, b0, b1};
        unas_packed2x2(x, pitch, w, k4, acc);
        for (int32_t i = 0; i < tail; ++i) {
          const int32_t a = x[k4 + i], b = x[pitch + k4 + i];
          const int32_t c = w[2 * k4 + i], d = w[2 * k4 + 4 + i];
          acc[0] += a * c;
          acc[1] += a * d;
          acc[2] += b * c;
          acc[3] += b * d;
        }
        int8_t *o1 = two_px ? o + out_c : o;  /* a lone last pixel: pitch 0, stored twice */
        unas_rqf_store2(p->rq + oc, acc[0], acc[2], p->act_min, p->act_max, o, o1);
        if (two_ch) {
          unas_rqf_store2(p->rq + oc + 1, acc[1], acc[3], p->act_min, p->act_max, o + 1, o1 + 1);
        }
      }
    }
  }
}

/* 1x1 convolution with int16-expanded weights (in_c <= UNAS_PATCH_MAX): pixel pairs outermost
 * (pairs may span rows), each pair sign-extended once for all channel pairs. */
void unas_conv2d_1x1_expanded_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  int32_t xe[UNAS_PATCH_MAX];  /* 2 pixels x in_c taps as int16 */
  const int32_t k = p->in_c, pixels = p->out_h * p->out_w;
  const int32_t x_pitch = p->stride_w * k, row_pitch = p->stride_h * p->in_w * k;
  const int8_t *row = in;
  int32_t ox = 0;
  for (int32_t pix = 0; pix < pixels; pix += 2, out += 2 * p->out_c) {
    const int8_t *xa = row + ox * x_pitch, *xb = xa;
    if (++ox == p->out_w) ox = 0, row += row_pitch;
    const int32_t two_px = pix + 1 < pixels;
    if (two_px) {
      xb = row + ox * x_pitch;
      if (++ox == p->out_w) ox = 0, row += row_pitch;
    }
    unas_expand_pair(xa, xb, k, xe);
    unas_channel_pairs(p, xe, (k + 3) >> 2, out, two_px ? out + p->out_c : out);
  }
}

/* One output channel of unas_conv2d_1x1_c1_s8 over `run` input pixels `step` apart (a literal
 * 1 lets the load post-increment, which frees the register the clamp bounds need). */
__attribute__((always_inline)) static inline int8_t *unas_c1_run(
    const unas_rqf *r, int32_t w, int32_t b, const int8_t *x, int32_t run, int32_t step,
    int8_t *o, int32_t out_c, int32_t lo, int32_t hi) {
  for (const int8_t *const end = x + run * step; x != end; x += step, o += out_c) {
    *o = (int8_t)unas_rqf_act(r, b + w * *x, lo, hi);
  }
  return o;
}

/* 1x1 convolution of a one-channel input (p->rq, folded bias, plain weights [out_c]): each
 * output is one multiply, so the 2 x 2 block would mostly multiply zero padding; channel by
 * channel instead, with the channel's weight, bias and requantisation constants in registers.
 * With stride 1 the pixels are one run (out_w == in_w), else a run per output row. */
void unas_conv2d_1x1_c1_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  const int32_t out_c = p->out_c, lo = p->act_min, hi = p->act_max;
  const int32_t x_step = p->stride_w, row_step = p->stride_h * p->in_w;
  const int32_t one_run = x_step == 1 && row_step == p->out_w;
  for (int32_t oc = 0; oc < out_c; ++oc) {
    const unas_rqf r = p->rq[oc];
    const int32_t w = p->weights[oc], b = p->bias[oc];
    if (one_run) {
      unas_c1_run(&r, w, b, in, p->out_h * p->out_w, 1, out + oc, out_c, lo, hi);
      continue;
    }
    int8_t *o = out + oc;
    const int8_t *row = in;
    for (int32_t oy = 0; oy < p->out_h; ++oy, row += row_step) {
      o = unas_c1_run(&r, w, b, row, p->out_w, x_step, o, out_c, lo, hi);
    }
  }
}

/* 1x1 convolution without generator constants: one dot product per output (plain
 * [out_c][in_c] weights, MultiplyByQuantizedMultiplier per output). */
void unas_conv2d_1x1_generic_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  const int32_t k = p->in_c;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int8_t *x = in + (oy * p->stride_h * p->in_w + ox * p->stride_w) * k;
      for (int32_t oc = 0; oc < p->out_c; ++oc) {
        *out++ = unas_requant(p->bias[oc] + unas_dot_s8(p->weights + oc * k, x, k), p, oc);
      }
    }
  }
}

/* 1x1 convolution for hand-written callers: the path the generator would have chosen from the
 * fields set (generated code calls that path directly, so only it is linked). The output never
 * overlaps the input (convolutions are not planned in place). */
void unas_conv2d_1x1_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  if (!p->packed && p->rq && p->in_c == 1) {
    unas_conv2d_1x1_c1_s8(p, in, out);
  } else if (p->packed && p->rq && p->in_c <= UNAS_PATCH_MAX) {
    unas_conv2d_1x1_expanded_s8(p, in, out);
  } else if (p->packed && p->rq) {
    unas_conv2d_1x1_packed_s8(p, in, out);
  } else {
    unas_conv2d_1x1_generic_s8(p, in, out);
  }
}

/* ---- gathered-window (patch) kernel ---- */

/* `rows` runs of `run` int8 taps, `pitch` bytes apart in the input, sign-extended to int16 one
 * after another into dst: a window inside the image (dilation 1 along x). */
static inline void unas_copy_rows16(const int8_t *src, int32_t rows, int32_t run, int32_t pitch,
                                    int16_t *dst) {
  for (int32_t r = 0; r < rows; ++r, src += pitch) {
    const int8_t *s = src, *const end = src + run;
    while (s != end) *dst++ = *s++;
  }
}

/* The k_h x k_w x in_c input window whose top-left tap is at (iy0, ix0), sign-extended to int16
 * in filter order into dst (taps 0 .. k - 1), for windows that cross the image border (or are
 * dilated along x); taps outside the image read as in_zp (they add nothing with the folded
 * bias, as TFLM skips them). */
static void unas_patch_gather16(const unas_conv_params *p, const int8_t *in, int32_t iy0,
                                int32_t ix0, int16_t *dst) {
  const int32_t c_in = p->in_c, run = p->k_w * c_in, zp = p->in_zp;
  int32_t kx_lo, kx_hi;
  unas_tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx_lo, &kx_hi);
  const int32_t row_inside = p->dil_w == 1 && kx_lo == 0 && kx_hi == p->k_w;
  const int32_t row_pitch = p->dil_h * p->in_w * c_in, x_step = p->dil_w * c_in;
  int32_t iy = iy0, offset = (iy0 * p->in_w + ix0) * c_in;  /* an offset: may lie outside */
  for (int32_t ky = 0; ky < p->k_h; ++ky, dst += run, offset += row_pitch, iy += p->dil_h) {
    if (iy < 0 || iy >= p->in_h) {
      for (int32_t i = 0; i < run; ++i) dst[i] = (int16_t)zp;
    } else if (row_inside) {
      unas_copy_rows16(in + offset, 1, run, 0, dst);
    } else if (p->dil_w == 1) {  /* taps outside on the left / right, a run inside between */
      const int32_t first = kx_lo * c_in, last = (kx_hi > kx_lo ? kx_hi : kx_lo) * c_in;
      for (int32_t i = 0; i < first; ++i) dst[i] = (int16_t)zp;
      if (last > first) unas_copy_rows16(in + offset + first, 1, last - first, 0, dst + first);
      for (int32_t i = last; i < run; ++i) dst[i] = (int16_t)zp;
    } else {
      const int8_t *src = in + offset;
      for (int32_t kx = 0; kx < p->k_w; ++kx) {
        int16_t *d = dst + kx * c_in;
        const int8_t *s = src + kx * x_step;
        const int32_t inside = kx >= kx_lo && kx < kx_hi;
        for (int32_t c = 0; c < c_in; ++c) d[c] = inside ? s[c] : (int16_t)zp;
      }
    }
  }
}

/* Pixel a's int16 window at xa, pixel b's UNAS_PATCH_MAX taps further, taps paired in filter
 * order. */
UNAS_BLOCK2X2(unas_window2x2, 2 * UNAS_PATCH_MAX, 8)

/* Activation range and pixel distance of the patch kernel's stores (ob - oa). */
typedef struct {
  int32_t lo, hi, pitch;
  int32_t lo2, hi2;  /* lo and hi in both 16-bit halves (unas_rq4_clamp_store) */
} unas_out_pair;

/* Requantises accumulators a and b of one channel with constants r, clamps them to
 * [o->lo, o->hi] and stores them at oa and oa + o->pitch: one asm block, so the constants, the
 * range and the pitch are loaded in it (nothing for the compiler to keep in registers). */
__attribute__((always_inline)) static inline void unas_rq2_clamp_store(
    const unas_rqf *r, const unas_out_pair *o, int32_t a, int32_t b, int8_t *oa) {
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
  int32_t m, klo, khi, sh, t, h;
  __asm__ volatile(
      "ldrd %[m], %[klo], [%[r]]\n\t"
      "ldrd %[khi], %[sh], [%[r], #8]\n\t"
      "and %[t], %[a], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[a], asr #31\n\t"
      "smlal %[t], %[h], %[a], %[m]\n\t"
      "asr %[a], %[h], %[sh]\n\t"
      "and %[t], %[b], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[b], asr #31\n\t"
      "smlal %[t], %[h], %[b], %[m]\n\t"
      "asr %[b], %[h], %[sh]\n\t"
      "ldrd %[m], %[klo], [%[o]]\n\t"
      "ldr %[khi], [%[o], #8]\n\t"
      "cmp %[a], %[m]\n\t"
      "it lt\n\t"
      "movlt %[a], %[m]\n\t"
      "cmp %[a], %[klo]\n\t"
      "it gt\n\t"
      "movgt %[a], %[klo]\n\t"
      "strb %[a], [%[oa]]\n\t"
      "cmp %[b], %[m]\n\t"
      "it lt\n\t"
      "movlt %[b], %[m]\n\t"
      "cmp %[b], %[klo]\n\t"
      "it gt\n\t"
      "movgt %[b], %[klo]\n\t"
      "strb %[b], [%[oa], %[khi]]"
      : [a] "+&r"(a), [b] "+&r"(b), [m] "=&r"(m), [klo] "=&r"(klo), [khi] "=&r"(khi),
        [sh] "=&r"(sh), [t] "=&r"(t), [h] "=&r"(h)
      : [r] "r"(r), [o] "r"(o), [oa] "r"(oa)
      : "cc", "memory");
#else
  a = unas_rqf_apply(r, a);
  b = unas_rqf_apply(r, b);
  a = a > o->lo ? a : o->lo;
  b = b > o->lo ? b : o->lo;
  oa[0] = (int8_t)(a < o->hi ? a : o->hi);
  oa[o->pitch] = (int8_t)(b < o->hi ? b : o->hi);
#endif
}

/* Channels 0 and 1 (constants r[0], r[1]) of two pixels: accumulators a0, b0 (channel 0 of
 * pixels a, b) and a1, b1, requantised, clamped and stored at oa[0..1] and oa[pitch + 0..1].
 * On Thumb-2 DSP cores each pixel's two channels are clamped together as 16-bit lanes (SSAT to
 * 16 bits first, then SSUB16/SEL against the range in both halves) and stored as a halfword. */
__attribute__((always_inline)) static inline void unas_rq4_clamp_store(
    const unas_rqf *r, const unas_out_pair *o, int32_t a0, int32_t a1, int32_t b0, int32_t b1,
    int8_t *oa) {
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
  int32_t m, klo, khi, sh, t, h;
  __asm__ volatile(
      "ldrd %[m], %[klo], [%[r]]\n\t"
      "ldrd %[khi], %[sh], [%[r], #8]\n\t"
      "and %[t], %[a0], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[a0], asr #31\n\t"
      "smlal %[t], %[h], %[a0], %[m]\n\t"
      "asr %[a0], %[h], %[sh]\n\t"
      "and %[t], %[b0], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[b0], asr #31\n\t"
      "smlal %[t], %[h], %[b0], %[m]\n\t"
      "asr %[b0], %[h], %[sh]\n\t"
      "ldrd %[m], %[klo], [%[r], #16]\n\t"
      "ldrd %[khi], %[sh], [%[r], #24]\n\t"
      "and %[t], %[a1], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[a1], asr #31\n\t"
      "smlal %[t], %[h], %[a1], %[m]\n\t"
      "asr %[a1], %[h], %[sh]\n\t"
      "and %[t], %[b1], #0x80000000\n\t"
      "adds %[t], %[t], %[klo]\n\t"
      "adc %[h], %[khi], %[b1], asr #31\n\t"
      "smlal %[t], %[h], %[b1], %[m]\n\t"
      "asr %[b1], %[h], %[sh]\n\t"
      "ldrd %[m], %[klo], [%[o], #12]\n\t" /* lo2, hi2 */
      "ldr %[khi], [%[o], #8]\n\t"         /* pitch */
      "ssat %[a0], #16, %[a0]\n\t"
      "ssat %[a1], #16, %[a1]\n\t"
      "pkhbt %[a0], %[a0], %[a1], lsl #16\n\t"
      "ssub16 %[t], %[a0], %[m]\n\t"
      "sel %[a0], %[a0], %[m]\n\t"
      "ssub16 %[t], %[klo], %[a0]\n\t"
      "sel %[a0], %[a0], %[klo]\n\t"
      "uxtb16 %[a0], %[a0]\n\t"
      "orr %[a0], %[a0], %[a0], lsr #8\n\t"
      "strh %[a0], [%[oa]]\n\t"
      "ssat %[b0], #16, %[b0]\n\t"
      "ssat %[b1], #16, %[b1]\n\t"
      "pkhbt %[b0], %[b0], %[b1], lsl #16\n\t"
      "ssub16 %[t], %[b0], %[m]\n\t"
      "sel %[b0], %[b0], %[m]\n\t"
      "ssub16 %[t], %[klo], %[b0]\n\t"
      "sel %[b0], %[b0], %[klo]\n\t"
      "uxtb16 %[b0], %[b0]\n\t"
      "orr %[b0], %[b0], %[b0], lsr #8\n\t"
      "strh %[b0], [%[oa], %[khi]]"
      : [a0] "+&r"(a0), [b0] "+&r"(b0), [a1] "+&r"(a1), [b1] "+&r"(b1), [m] "=&r"(m),
        [klo] "=&r"(klo), [khi] "=&r"(khi), [sh] "=&r"(sh), [t] "=&r"(t), [h] "=&r"(h)
      : [r] "r"(r), [o] "r"(o), [oa] "r"(oa)
      : "cc", "memory");
#else
  unas_rq2_clamp_store(r, o, a0, b0, oa);
  unas_rq2_clamp_store(r + 1, o, a1, b1, oa + 1);
#endif
}

/* Every channel pair against the two gathered windows at xa (see unas_window2x2); channel c of
 * pixel a goes to oa[c], of pixel b to oa[pitch + c] (pitch 0 for a lone last pixel). */
static void unas_window_channels(const unas_conv_params *p, const int16_t *xa, int32_t groups,
                                 int8_t *oa, int32_t pitch) {
  const int32_t *w = (const int32_t *)(const void *)p->packed;
  const int32_t *bias = p->bias;
  const unas_rqf *r = p->rq;
  const unas_out_pair o = {p->act_min, p->act_max, pitch, unas_pack16(p->act_min, p->act_min),
                           unas_pack16(p->act_max, p->act_max)};
  const int32_t pairs = p->out_c >> 1;
  for (int32_t j = 0; j < pairs; ++j, w += 4 * groups, bias += 2, r += 2, oa += 2) {
    int32_t acc[4] = {bias[0], bias[1], bias[0], bias[1]};
    unas_window2x2(xa, w, groups, acc);
    unas_rq4_clamp_store(r, &o, acc[0], acc[1], acc[2], acc[3], oa);
  }
  if (p->out_c & 1) {  /* the last channel: its packed partner is zeros */
    int32_t acc[4] = {bias[0], 0, bias[0], 0};
    unas_window2x2(xa, w, groups, acc);
    unas_rq2_clamp_store(r, &o, acc[0], acc[2], oa);
  }
}

/* Output pixels two at a time (pairs may span rows): both windows are gathered straight into one
 * int16 buffer (pixel b UNAS_PATCH_MAX taps after pixel a), the padding taps k .. K4 - 1 zeroed
 * once, then every channel pair runs the 2 x 2 block on them. */
void unas_conv2d_patch_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  int16_t win[2 * UNAS_PATCH_MAX] __attribute__((aligned(8)));
  const int32_t k = p->k_h * p->k_w * p->in_c, k4 = (k + 3) & ~3;
  const int32_t out_c = p->out_c, pixels = p->out_h * p->out_w;
  for (int32_t i = k; i < k4; ++i) win[i] = win[UNAS_PATCH_MAX + i] = 0;
  const int32_t run = p->k_w * p->in_c, row_pitch = p->dil_h * p->in_w * p->in_c;
  /* windows with ix0 in [0, x_max] and iy0 in [0, y_max] lie inside the image */
  const int32_t x_max = p->dil_w == 1 ? p->in_w - p->k_w : -1;  /* -1: none */
  const int32_t y_max = p->in_h - (p->k_h - 1) * p->dil_h - 1;
  int32_t oy = 0, ox = 0;
  for (int32_t pix = 0; pix < pixels; ++pix, out += out_c) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t, ix0 = ox * p->stride_w - p->pad_l;
    const int32_t second = pix & 1;
    int16_t *const dst = win + (second ? UNAS_PATCH_MAX : 0);
    if (ix0 >= 0 && ix0 <= x_max && iy0 >= 0 && iy0 <= y_max) {
      unas_copy_rows16(in + (iy0 * p->in_w + ix0) * p->in_c, p->k_h, run, row_pitch, dst);
    } else {
      unas_patch_gather16(p, in, iy0, ix0, dst);
    }
    if (++ox == p->out_w) ox = 0, ++oy;
    if (second) {
      unas_window_channels(p, win, k4 >> 2, out - out_c, out_c);
    } else if (pix + 1 == pixels) {  /* a lone last pixel: computed as a pair with itself */
      /* k <= UNAS_PATCH_MAX: the halves do not overlap (memcpy, which the model links anyway;
       * GCC turned the copy loop into memmove, 254 more bytes of Flash) */
      memcpy(win + UNAS_PATCH_MAX, win, (size_t)k * sizeof win[0]);
      unas_window_channels(p, win, k4 >> 2, out, 0);
    }
  }
}

/* ---- depthwise convolution ---- */

/* ---- depthwise convolution with generation-time precomputation (depth multiplier 1) ---- */

/* Requantisation of one output channel (the generator's proven-exact unas_dw_rq when it wrote
 * one, else MultiplyByQuantizedMultiplier), clamped. Out of line: border and tail outputs only;
 * the hot loops requantise inline. */
__attribute__((noinline)) static int8_t unas_dw_out(const unas_dwconv_params *p, int32_t acc,
                                                   int32_t c) {
  const int32_t v = p->rq != 0 ? unas_dw_rq(acc, p->rq + 4 * c)
                               : unas_mbqm(acc, p->mult[c], p->shift[c]) + p->out_zp;
  return unas_dw_clamp(v, p->act_min, p->act_max);
}

/* Outputs of channels c..c+3 from their accumulators. Kept out of line: the tap loops around it
 * need every register; here each channel's {mult, left + 1, nudge, right} block is loaded. */
__attribute__((noinline)) static void unas_dw_out4(const unas_dwconv_params *p, const int32_t *acc,
                                                   int32_t c, int8_t *o) {
  const int32_t *rq = p->rq;
  if (rq == 0) {
    for (int32_t j = 0; j < 4; ++j) o[j] = unas_dw_out(p, acc[j], c + j);
    return;
  }
  rq += 4 * c;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int32_t v0 = unas_dw_sat8(unas_dw_rq(acc[0], rq));
  const int32_t v1 = unas_dw_sat8(unas_dw_rq(acc[1], rq + 4));
  const int32_t v2 = unas_dw_sat8(unas_dw_rq(acc[2], rq + 8));
  const int32_t v3 = unas_dw_sat8(unas_dw_rq(acc[3], rq + 12));
  if (lo == -128 && hi == 127) {
    o[0] = (int8_t)v0;
    o[1] = (int8_t)v1;
    o[2] = (int8_t)v2;
    o[3] = (int8_t)v3;
  } else {
    o[0] = unas_dw_clamp(v0, lo, hi);
    o[1] = unas_dw_clamp(v1, lo, hi);
    o[2] = unas_dw_clamp(v2, lo, hi);
    o[3] = unas_dw_clamp(v3, lo, hi);
  }
}

/* One tap of four channels: x word against the even (c0, c2) and odd (c1, c3) weight pairs. */
#define UNAS_DW_TAP4(v, we, wo)                                              \
  do {                                                                      \
    const int32_t e_ = unas_dw_even(v), o_ = unas_dw_odd(v);                \
    a0 = unas_dw_smlabb(e_, (we), a0);                                      \
    a2 = unas_dw_smlatt(e_, (we), a2);                                      \
    a1 = unas_dw_smlabb(o_, (wo), a1);                                      \
    a3 = unas_dw_smlatt(o_, (wo), a3);                                      \
  } while (0)

/* acc[0..3] += a whole k_h x K window of channels c..c+3 (interior pixel, zero point folded into
 * the bias): x steps x_row per row and x_col per column, w = this group's widened taps. K is a
 * literal at every call, so each filter row unrolls. */
__attribute__((always_inline)) static inline void unas_dw_window4(
    const int8_t *x, int32_t x_row, int32_t x_col, const int32_t *w, int32_t k_h, int32_t K,
    int32_t *acc) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t ky = 0; ky < k_h; ++ky, x += x_row, w += 2 * K) {
#pragma GCC unroll 8
    for (int32_t kx = 0; kx < K; ++kx) {
      UNAS_DW_TAP4(unas_load4(x + kx * x_col), w[2 * kx], w[2 * kx + 1]);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* acc[0..3] += the in-image rows x cols taps of channels c..c+3 of a border pixel, inputs minus
 * the zero point (zp2 in both int16 lanes); w_row int32 per filter row. */
static inline void unas_dw_border4(const int8_t *x, int32_t x_row, int32_t x_col, const int32_t *w,
                                   int32_t w_row, int32_t rows, int32_t cols, int32_t zp2,
                                   int32_t *acc) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t ky = 0; ky < rows; ++ky, x += x_row, w += w_row) {
    for (int32_t kx = 0; kx < cols; ++kx) {
      const uint32_t v = unas_load4(x + kx * x_col);
      const int32_t e = unas_dw_sub16(unas_dw_even(v), zp2), o = unas_dw_sub16(unas_dw_odd(v), zp2);
      a0 = unas_dw_smlabb(e, w[2 * kx], a0);
      a2 = unas_dw_smlatt(e, w[2 * kx], a2);
      a1 = unas_dw_smlabb(o, w[2 * kx + 1], a1);
      a3 = unas_dw_smlatt(o, w[2 * kx + 1], a3);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* One scalar channel of one output pixel, taps outside the image skipped (as TFLM). */
static inline int32_t unas_dw_border1(const unas_dwconv_params *p, const int8_t *x, int32_t x_row,
                                      int32_t x_col, int32_t c, int32_t ky_lo, int32_t ky_hi,
                                      int32_t kx_lo, int32_t kx_hi) {
  int32_t acc = p->bias[c];
  for (int32_t ky = ky_lo; ky < ky_hi; ++ky, x += x_row) {
    const int8_t *w = p->weights + (ky * p->k_w + kx_lo) * p->out_c + c;
    for (int32_t kx = 0; kx < kx_hi - kx_lo; ++kx) {
      acc += (int32_t)w[kx * p->out_c] * ((int32_t)x[kx * x_col] - p->in_zp);
    }
  }
  return acc;
}

/* Output columns [*lo, *hi) whose k-tap window (stride s, padding pad) lies inside [0, size). */
static void unas_dw_inside(int32_t k, int32_t s, int32_t pad, int32_t size, int32_t out,
                           int32_t *lo, int32_t *hi) {
  *lo = (pad + s - 1) / s;
  *hi = size - k + pad < 0 ? 0 : (size - k + pad) / s + 1;
  *hi = *hi < out ? *hi : out;
  *lo = *lo < *hi ? *lo : *hi;
}

/* All channel groups of one interior pixel, the kernel size a literal. */
__attribute__((always_inline)) static inline void unas_dw_pixel4(
    const unas_dwconv_params *p, const int8_t *x, int8_t *o, int32_t k_h, int32_t K) {
  const int32_t c_count = p->in_c, x_row = p->in_w * c_count;
  const int32_t *w = p->wide;
  for (int32_t c = 0; c + 4 <= c_count; c += 4, w += 2 * k_h * K) {
    int32_t acc[4];
    memcpy(acc, p->folded + c, sizeof acc);
    unas_dw_window4(x + c, x_row, c_count, w, k_h, K, acc);
    unas_dw_out4(p, acc, c, o + c);
  }
}

/* The four-channel groups of one interior output pixel (x: its window's first tap). */
typedef void (*unas_dw_interior_fn)(const unas_dwconv_params *p, const int8_t *x, int8_t *o);

static void unas_dw_interior3(const unas_dwconv_params *p, const int8_t *x, int8_t *o) {
  unas_dw_pixel4(p, x, o, 3, 3);
}

/* Other sizes (code size; 5x5 unrolled was 348 B more): the border loop over the full window,
 * zero point subtracted. */
static void unas_dw_interior_any(const unas_dwconv_params *p, const int8_t *x, int8_t *o) {
  const int32_t c_count = p->in_c, taps = p->k_h * p->k_w;
  const int32_t zp2 = (int32_t)(((uint32_t)p->in_zp << 16) | ((uint32_t)p->in_zp & 0xFFFFu));
  for (int32_t c = 0; c + 4 <= c_count; c += 4) {
    int32_t acc[4];
    memcpy(acc, p->bias + c, sizeof acc);
    unas_dw_border4(x + c, p->in_w * c_count, c_count, p->wide + (c / 4) * 2 * taps,
                    2 * p->k_w, p->k_h, p->k_w, zp2, acc);
    unas_dw_out4(p, acc, c, o + c);
  }
}

/* Not in place, in_c >= 4 (UNAS_DW_WIDE_GROUPS): each output pixel takes its channels four at a
 * time, one input word per tap feeding SMLABB/SMLATT against two pre-widened weight words
 * (interior pixels: `interior`, the whole window, zero point folded into the bias for 3x3; border pixels: the taps inside the image minus the zero point); channels past the last
 * multiple of four one by one. */
static void unas_dw_groups(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                           unas_dw_interior_fn interior) {
  const int32_t c_count = p->in_c, k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w;
  const int32_t x_row = p->in_w * c_count, tail = c_count & ~3;
  const int32_t zp2 = (int32_t)(((uint32_t)p->in_zp << 16) | ((uint32_t)p->in_zp & 0xFFFFu));
  int32_t ox_lo, ox_hi, oy_lo, oy_hi;
  unas_dw_inside(k_w, p->stride_w, p->pad_l, p->in_w, p->out_w, &ox_lo, &ox_hi);
  unas_dw_inside(k_h, p->stride_h, p->pad_t, p->in_h, p->out_h, &oy_lo, &oy_hi);
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    int32_t ky_lo, ky_hi;
    unas_tap_range(iy0, 1, k_h, p->in_h, &ky_lo, &ky_hi);
    const int32_t rows_inside = oy >= oy_lo && oy < oy_hi;
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int32_t ix0 = ox * p->stride_w - p->pad_l;
      int8_t *o = out + (oy * p->out_w + ox) * c_count;
      if (rows_inside && ox >= ox_lo && ox < ox_hi) {
        const int8_t *x = in + (iy0 * p->in_w + ix0) * c_count;
        interior(p, x, o);
        for (int32_t c = tail; c < c_count; ++c) {
          o[c] = unas_dw_out(p, unas_dw_border1(p, x + c, x_row, c_count, c, 0, k_h, 0, k_w), c);
        }
        continue;
      }
      int32_t kx_lo, kx_hi;
      unas_tap_range(ix0, 1, k_w, p->in_w, &kx_lo, &kx_hi);
      const int8_t *x = in + ((iy0 + ky_lo) * p->in_w + ix0 + kx_lo) * c_count;
      const int32_t *w = p->wide + 2 * (ky_lo * k_w + kx_lo);
      for (int32_t c = 0; c < tail; c += 4, w += 2 * taps) {
        int32_t acc[4];
        memcpy(acc, p->bias + c, sizeof acc);
        unas_dw_border4(x + c, x_row, c_count, w, 2 * k_w, ky_hi - ky_lo, kx_hi - kx_lo, zp2,
                        acc);
        unas_dw_out4(p, acc, c, o + c);
      }
      for (int32_t c = tail; c < c_count; ++c) {
        o[c] = unas_dw_out(p, unas_dw_border1(p, x + c, x_row, c_count, c, ky_lo, ky_hi, kx_lo,
                                              kx_hi), c);
      }
    }
  }
}

void unas_dwconv_groups3_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  unas_dw_groups(p, in, out, unas_dw_interior3);
}

void unas_dwconv_groups_any_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  unas_dw_groups(p, in, out, unas_dw_interior_any);
}

/* The groups kernel for p's filter size (what the generator calls directly). */
void unas_dwconv_groups_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  if (p->k_h == 3 && p->k_w == 3) {
    unas_dwconv_groups3_s8(p, in, out);
  } else {
    unas_dwconv_groups_any_s8(p, in, out);
  }
}

/* Rows x pitch bytes of a channel plane holding every tap of every output (padding included);
 * unas.resources.engine.depthwise_plane_bytes adds the (-k_w) & 3 bytes the last row's four-byte
 * tap words may read, and sizes the scratch buffer with the same formulas. */
static inline int32_t unas_dw_plane_pitch(const unas_dwconv_params *p) {
  return (p->out_w - 1) * p->stride_w + (p->k_w - 1) * p->dil_w + 1;
}

static inline int32_t unas_dw_plane_rows_count(const unas_dwconv_params *p) {
  return (p->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dil_h + 1;
}

/* The plane's zero-point frame, once per layer: every byte in_zp (the last row's word overrun
 * too, which only ever meets zero taps); unas_dw_copy_channel then overwrites only the image part,
 * so the padding stays valid for every channel. */
static void unas_dw_plane_frame(const unas_dwconv_params *p, int8_t *plane, int32_t pitch,
                                int32_t rows) {
  memset(plane, p->in_zp, (size_t)(rows * pitch + ((-p->k_w) & 3)));
}

/* Channel c of the NHWC input into the framed plane: plane row r holds input row r - pad_t, plane
 * column q input column q - pad_l, and every position outside the image keeps in_zp, so with the
 * folded bias (bias - in_zp * sum(taps)) an outside tap adds exactly nothing, as TFLM skips it.
 * Four bytes per step (one LDRB each, the channel stride apart). */
static void unas_dw_copy_channel(const unas_dwconv_params *p, const int8_t *in, int8_t *plane,
                                 int32_t pitch, int32_t rows) {
  const int32_t c_count = p->in_c, left = p->pad_l < pitch ? p->pad_l : pitch;
  const int32_t inside = pitch - left < p->in_w ? pitch - left : p->in_w;
  const int32_t in_rows = rows - p->pad_t < p->in_h ? rows - p->pad_t : p->in_h;
  int8_t *dst_row = plane + p->pad_t * pitch + left;
  for (int32_t iy = 0; iy < in_rows; ++iy, dst_row += pitch) {
    const int8_t *src = in + iy * p->in_w * c_count;
    int8_t *dst = dst_row;
    int32_t i = inside;
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
    if (i >= 8) {
      /* eight bytes per step: LDRB with the stride folded into the address, ORR into two words,
       * two (unaligned) STR (GCC's version of the C loop below: 3 instructions per byte, this
       * one 2.5) */
      const int8_t *const end = dst + (i & ~7);
      const int32_t c3 = 3 * c_count;
      uint32_t w0, w1, b;
      __asm__ volatile(
          "1:\n\t"
          "ldrb %[w0], [%[s]]\n\t"
          "ldrb %[b], [%[s], %[c]]\n\t"
          "orr %[w0], %[w0], %[b], lsl #8\n\t"
          "ldrb %[b], [%[s], %[c], lsl #1]\n\t"
          "orr %[w0], %[w0], %[b], lsl #16\n\t"
          "ldrb %[b], [%[s], %[c3]]\n\t"
          "orr %[w0], %[w0], %[b], lsl #24\n\t"
          "add %[s], %[s], %[c], lsl #2\n\t"
          "ldrb %[w1], [%[s]]\n\t"
          "ldrb %[b], [%[s], %[c]]\n\t"
          "orr %[w1], %[w1], %[b], lsl #8\n\t"
          "ldrb %[b], [%[s], %[c], lsl #1]\n\t"
          "orr %[w1], %[w1], %[b], lsl #16\n\t"
          "ldrb %[b], [%[s], %[c3]]\n\t"
          "orr %[w1], %[w1], %[b], lsl #24\n\t"
          "add %[s], %[s], %[c], lsl #2\n\t"
          "str %[w0], [%[d]], #4\n\t"
          "str %[w1], [%[d]], #4\n\t"
          "cmp %[d], %[e]\n\t"
          "bne 1b"
          : [s] "+&r"(src), [d] "+&r"(dst), [w0] "=&r"(w0), [w1] "=&r"(w1), [b] "=&r"(b)
          : [c] "r"(c_count), [c3] "r"(c3), [e] "r"(end)
          : "cc", "memory");
      i &= 7;
    }
#endif
    for (; i >= 4; i -= 4, dst += 4) {
      uint32_t word = (uint8_t)*src;
      src += c_count;
      word |= (uint32_t)(uint8_t)*src << 8;
      src += c_count;
      word |= (uint32_t)(uint8_t)*src << 16;
      src += c_count;
      word |= (uint32_t)(uint8_t)*src << 24;
      src += c_count;
      memcpy(dst, &word, 4);
    }
    for (; i > 0; --i, src += c_count) *dst++ = *src;
  }
}

/* acc + one filter row of W words of four plane bytes, each word two SMLADs against the row's
 * widened taps (even (t0, t2), odd (t1, t3); taps past k_w are zero). */
__attribute__((always_inline)) static inline int32_t unas_dw_window_row(
    const int8_t *r, const int32_t *t, int32_t W, int32_t acc) {
#pragma GCC unroll 2
  for (int32_t j = 0; j < W; ++j) {
    const uint32_t v = unas_load4(r + 4 * j);
    acc = unas_dw_smlad(unas_dw_even(v), t[2 * j], acc);
    acc = unas_dw_smlad(unas_dw_odd(v), t[2 * j + 1], acc);
  }
  return acc;
}

/* The same row for two horizontally adjacent outputs (stride 1, odd k_w): the word loaded for
 * output ox also feeds ox + 1, whose taps (t0, t2) meet the odd bytes and whose (t1, t3) taps,
 * moved up one lane (the previous word's t3 in lane 0), the even bytes. */
__attribute__((always_inline)) static inline void unas_dw_pair_row(
    const int8_t *r, const int32_t *t, int32_t W, int32_t *a0, int32_t *a1) {
  uint32_t carry = 0;
#pragma GCC unroll 2
  for (int32_t j = 0; j < W; ++j) {
    const uint32_t v = unas_load4(r + 4 * j);
    const int32_t e = unas_dw_even(v), o = unas_dw_odd(v), we = t[2 * j], wo = t[2 * j + 1];
    *a0 = unas_dw_smlad(e, we, *a0);
    *a0 = unas_dw_smlad(o, wo, *a0);
    *a1 = unas_dw_smlad(o, we, *a1);
    *a1 = unas_dw_smlad(e, (int32_t)(carry | ((uint32_t)wo << 16)), *a1);
    carry = (uint32_t)wo >> 16;
  }
}

/* Every output of one channel from its padded plane, K filter rows of W words, over the folded
 * bias `start`, requantised by the channel's unas_dw_rq block. With stride 1 and odd k_w (the
 * right neighbour's taps end inside the same W words) outputs go in pairs (unas_dw_pair_row).
 * `rolled` (a literal): 0 unrolls the K rows (K a literal too: the 3x3 kernel), 1 keeps them a
 * loop (code size: 5x5 / 7x7 and any other size share one function per word count). */
__attribute__((always_inline)) static inline void unas_dw_plane_loop(
    const unas_dwconv_params *p, const int8_t *plane, int32_t pitch, const int32_t *w,
    int32_t start, const int32_t *rq_block, int8_t *dst, int32_t dst_pitch, int32_t K,
    int32_t W, int32_t rolled) {
  const int32_t row_step = p->stride_h * pitch, out_w = p->out_w, s_w = p->stride_w;
  const int32_t pairs = s_w == 1 && (p->k_w & 1) ? out_w >> 1 : 0;
  const int32_t lo = p->act_min, hi = p->act_max;
  /* a local copy: the int8 output stores could otherwise alias the block and force reloads */
  const int32_t rq[4] = {rq_block[0], rq_block[1], rq_block[2], rq_block[3]};
  for (int32_t oy = 0; oy < p->out_h; ++oy, plane += row_step) {
    const int8_t *x = plane;
    for (int32_t i = 0; i < pairs; ++i, x += 2, dst += 2 * dst_pitch) {
      int32_t a0 = start, a1 = start;
      const int8_t *r = x;
      const int32_t *t = w;
      if (rolled) {
#pragma GCC unroll 1
        for (int32_t ky = 0; ky < K; ++ky, r += pitch, t += 2 * W) {
          unas_dw_pair_row(r, t, W, &a0, &a1);
        }
      } else {
#pragma GCC unroll 8
        for (int32_t ky = 0; ky < K; ++ky, r += pitch, t += 2 * W) {
          unas_dw_pair_row(r, t, W, &a0, &a1);
        }
      }
      dst[0] = unas_dw_clamp(unas_dw_rq(a0, rq), lo, hi);
      dst[dst_pitch] = unas_dw_clamp(unas_dw_rq(a1, rq), lo, hi);
    }
    for (int32_t ox = 2 * pairs; ox < out_w; ++ox, x += s_w, dst += dst_pitch) {
      int32_t acc = start;
      const int8_t *r = x;
      const int32_t *t = w;
#pragma GCC unroll 1
      for (int32_t ky = 0; ky < K; ++ky, r += pitch, t += 2 * W) {
        acc = unas_dw_window_row(r, t, W, acc);
      }
      *dst = unas_dw_clamp(unas_dw_rq(acc, rq), lo, hi);
    }
  }
}

/* ---- four outputs per filter row (stride 1 or 2, k_w = 3, 5, 7) ---- */

/* More lane arithmetic for the four-wide plane rows: PKHBT (low half of a, high half of b),
 * SMLADX (a's lanes against b's swapped) and SMLATB (a's high lane times b's low). */
#if defined(__ARM_FEATURE_DSP)
static inline int32_t unas_dw_pkhbt(int32_t a, int32_t b) {
  int32_t r;
  __asm__("pkhbt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
static inline int32_t unas_dw_smladx(int32_t a, int32_t b, int32_t acc) {
  return __smladx(a, b, acc);
}
static inline int32_t unas_dw_smlatb(int32_t a, int32_t b, int32_t acc) {
  return __smlatb(a, b, acc);
}
#else
static inline int32_t unas_dw_pkhbt(int32_t a, int32_t b) {
  return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b & 0xFFFF0000u));
}
static inline int32_t unas_dw_smladx(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(unas_dw_lo(a) * unas_dw_hi(b)) +
                   (uint32_t)(unas_dw_hi(a) * unas_dw_lo(b)));
}
static inline int32_t unas_dw_smlatb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(unas_dw_hi(a) * unas_dw_lo(b)));
}
#endif

/* One filter row's contribution to four horizontally adjacent outputs a[0..3] (the first reads
 * plane bytes b0.. at r). With E = (b0, b2), O = (b1, b3) of one word and E2, O2 of the next,
 * X = PKHBT(E2, E) = (b4, b2) and Y = PKHBT(O2, O) = (b5, b3) line up the taps that straddle the
 * two words, so each pair of taps is one SMLAD / SMLADX against the row's widened weights
 * (t[0] = (t0, t2), t[1] = (t1, t3), t[2] = (t4, t6), t[3] = (t5, 0)); a lone tap is one
 * SMLABB / SMLATB. The loads never reach past the bytes the four windows cover, except the
 * stride-2 5x5 row's last byte (inside the plane's (-k_w) & 3 overrun). */
__attribute__((always_inline)) static inline void unas_dw_row4(
    const int8_t *r, const int32_t *t, int32_t *a, int32_t K, int32_t S) {
  const uint32_t v = unas_load4(r);
  const int32_t E = unas_dw_even(v), O = unas_dw_odd(v);
  if (S == 1 && K == 3) {
    /* b0..b5: E2 and O2 need only their low lanes (b4, b5) */
    const int32_t E2 = r[4], O2 = r[5], w02 = t[0], w1 = t[1];
    const int32_t X = unas_dw_pkhbt(E2, E), Y = unas_dw_pkhbt(O2, O);
    a[0] = unas_dw_smlabb(O, w1, unas_dw_smlad(E, w02, a[0]));
    a[1] = unas_dw_smlatb(E, w1, unas_dw_smlad(O, w02, a[1]));
    a[2] = unas_dw_smlatb(O, w1, unas_dw_smladx(X, w02, a[2]));
    a[3] = unas_dw_smlabb(E2, w1, unas_dw_smladx(Y, w02, a[3]));
  } else if (S == 1 && K == 5) {
    /* b0..b7 */
    const uint32_t v2 = unas_load4(r + 4);
    const int32_t E2 = unas_dw_even(v2), O2 = unas_dw_odd(v2);
    const int32_t w02 = t[0], w13 = t[1], w4 = t[2];
    const int32_t X = unas_dw_pkhbt(E2, E), Y = unas_dw_pkhbt(O2, O);
    a[0] = unas_dw_smlabb(E2, w4, unas_dw_smlad(O, w13, unas_dw_smlad(E, w02, a[0])));
    a[1] = unas_dw_smlabb(O2, w4, unas_dw_smladx(X, w13, unas_dw_smlad(O, w02, a[1])));
    a[2] = unas_dw_smlatb(E2, w4, unas_dw_smladx(Y, w13, unas_dw_smladx(X, w02, a[2])));
    a[3] = unas_dw_smlatb(O2, w4, unas_dw_smlad(E2, w13, unas_dw_smladx(Y, w02, a[3])));
  } else if (S == 1) {
    /* K == 7: b0..b9 */
    const uint32_t v2 = unas_load4(r + 4);
    const int32_t E2 = unas_dw_even(v2), O2 = unas_dw_odd(v2), E3 = r[8], O3 = r[9];
    const int32_t w02 = t[0], w13 = t[1], w46 = t[2], w5 = t[3];
    const int32_t X = unas_dw_pkhbt(E2, E), Y = unas_dw_pkhbt(O2, O);
    const int32_t X2 = unas_dw_pkhbt(E3, E2), Y2 = unas_dw_pkhbt(O3, O2);
    a[0] = unas_dw_smlabb(O2, w5, unas_dw_smlad(E2, w46, unas_dw_smlad(O, w13,
                          unas_dw_smlad(E, w02, a[0]))));
    a[1] = unas_dw_smlatb(E2, w5, unas_dw_smlad(O2, w46, unas_dw_smladx(X, w13,
                          unas_dw_smlad(O, w02, a[1]))));
    a[2] = unas_dw_smlatb(O2, w5, unas_dw_smladx(X2, w46, unas_dw_smladx(Y, w13,
                          unas_dw_smladx(X, w02, a[2]))));
    a[3] = unas_dw_smlabb(E3, w5, unas_dw_smladx(Y2, w46, unas_dw_smlad(E2, w13,
                          unas_dw_smladx(Y, w02, a[3]))));
  } else if (K == 3) {
    /* stride 2, b0..b8: outputs 0 and 2 start on a word, 1 and 3 straddle two */
    const uint32_t v2 = unas_load4(r + 4);
    const int32_t E2 = unas_dw_even(v2), O2 = unas_dw_odd(v2), E3 = r[8];
    const int32_t w02 = t[0], w1 = t[1];
    a[0] = unas_dw_smlabb(O, w1, unas_dw_smlad(E, w02, a[0]));
    a[1] = unas_dw_smlatb(O, w1, unas_dw_smladx(unas_dw_pkhbt(E2, E), w02, a[1]));
    a[2] = unas_dw_smlabb(O2, w1, unas_dw_smlad(E2, w02, a[2]));
    a[3] = unas_dw_smlatb(O2, w1, unas_dw_smladx(unas_dw_pkhbt(E3, E2), w02, a[3]));
  } else if (K == 5) {
    /* stride 2, b0..b10 (b11 read: the plane's overrun covers it) */
    const uint32_t v2 = unas_load4(r + 4), v3 = unas_load4(r + 8);
    const int32_t E2 = unas_dw_even(v2), O2 = unas_dw_odd(v2);
    const int32_t E3 = unas_dw_even(v3), O3 = unas_dw_odd(v3);
    const int32_t w02 = t[0], w13 = t[1], w4 = t[2];
    a[0] = unas_dw_smlabb(E2, w4, unas_dw_smlad(O, w13, unas_dw_smlad(E, w02, a[0])));
    a[1] = unas_dw_smlatb(E2, w4, unas_dw_smladx(unas_dw_pkhbt(O2, O), w13,
                          unas_dw_smladx(unas_dw_pkhbt(E2, E), w02, a[1])));
    a[2] = unas_dw_smlabb(E3, w4, unas_dw_smlad(O2, w13, unas_dw_smlad(E2, w02, a[2])));
    a[3] = unas_dw_smlatb(E3, w4, unas_dw_smladx(unas_dw_pkhbt(O3, O2), w13,
                          unas_dw_smladx(unas_dw_pkhbt(E3, E2), w02, a[3])));
  } else {
    /* stride 2, K == 7: b0..b12 */
    const uint32_t v2 = unas_load4(r + 4), v3 = unas_load4(r + 8);
    const int32_t E2 = unas_dw_even(v2), O2 = unas_dw_odd(v2);
    const int32_t E3 = unas_dw_even(v3), O3 = unas_dw_odd(v3), E4 = r[12];
    const int32_t w02 = t[0], w13 = t[1], w46 = t[2], w5 = t[3];
    const int32_t X2 = unas_dw_pkhbt(E3, E2), Y2 = unas_dw_pkhbt(O3, O2);
    a[0] = unas_dw_smlabb(O2, w5, unas_dw_smlad(E2, w46, unas_dw_smlad(O, w13,
                          unas_dw_smlad(E, w02, a[0]))));
    a[1] = unas_dw_smlatb(O2, w5, unas_dw_smladx(X2, w46, unas_dw_smladx(unas_dw_pkhbt(O2, O),
                          w13, unas_dw_smladx(unas_dw_pkhbt(E2, E), w02, a[1]))));
    a[2] = unas_dw_smlabb(O3, w5, unas_dw_smlad(E3, w46, unas_dw_smlad(O2, w13,
                          unas_dw_smlad(E2, w02, a[2]))));
    a[3] = unas_dw_smlatb(O3, w5, unas_dw_smladx(unas_dw_pkhbt(E4, E3), w46, unas_dw_smladx(Y2,
                          w13, unas_dw_smladx(X2, w02, a[3]))));
  }
}

/* Asm text shared by the four-wide depthwise kernels (operands are strings such as "%[a0]").
 * UNAS_DW_RQ8_ASM: unas_dw_rq4 then int8 saturation of accumulator A (LSH, MULT, NUDGE, RSH: the
 * rq block's operands, T a scratch). UNAS_DW_CLAMP4_ASM: a0..a3 packed into a0's bytes, the
 * byte-wise bounds loaded from BASE + OFF into LO and HI, a0 clamped lane-wise with SSUB8/SEL. */
#define UNAS_DW_RQ8_ASM(A, LSH, MULT, T, NUDGE, RSH)  \
  "lsl " A ", " A ", " LSH "\n\t"                     \
  "smmulr " A ", " A ", " MULT "\n\t"                 \
  "add " T ", " A ", " NUDGE "\n\t"                   \
  "add " A ", " T ", " A ", asr #31\n\t"              \
  "asr " A ", " A ", " RSH "\n\t"                     \
  "ssat " A ", #8, " A "\n\t"
#define UNAS_DW_CLAMP4_ASM(T, LO, HI, BASE, OFF)      \
  "bfi %[a0], %[a1], #8, #8\n\t"                      \
  "bfi %[a0], %[a2], #16, #8\n\t"                     \
  "bfi %[a0], %[a3], #24, #8\n\t"                     \
  "ldrd " LO ", " HI ", [" BASE ", #" OFF "]\n\t"     \
  "ssub8 " T ", %[a0], " LO "\n\t"                    \
  "sel " T ", %[a0], " LO "\n\t"                      \
  "ssub8 %[a0], " T ", " HI "\n\t"                    \
  "sel %[a0], " HI ", " T "\n\t"

/* Outputs a[0..3] of one channel requantised by q = {its unas_dw_rq block, lo4, hi4, full}
 * (lo4, hi4: act_min, act_max in every byte; full: the bounds are -128 and 127), clamped and
 * stored `step` bytes apart. On Thumb-2 DSP cores one asm block: per output LSL, SMMULR, ADD,
 * ADD (ASR #31), ASR, SSAT (unas_dw_rq4, then int8, which is all the clamping a full range
 * needs); otherwise three BFI pack the four into one word and SSUB8/SEL take the lane-wise max
 * with lo4 and min with hi4 (four instructions for all four outputs); then four STRB. */
__attribute__((always_inline)) static inline void unas_dw_store4(int32_t *a, const int32_t *q,
                                                                 int8_t *o, int32_t step) {
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
  int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], m, l, n, r, t;
  int8_t *o3 = o;  /* advanced by step inside */
#define UNAS_DW_RQ8(A) UNAS_DW_RQ8_ASM(A, "%[l]", "%[m]", "%[t]", "%[n]", "%[r]")
  __asm__ volatile("ldrd %[m], %[l], [%[q]]\n\t"
          "ldrd %[n], %[r], [%[q], #8]\n\t"
          UNAS_DW_RQ8("%[a0]") UNAS_DW_RQ8("%[a1]") UNAS_DW_RQ8("%[a2]") UNAS_DW_RQ8("%[a3]")
          "ldr %[t], [%[q], #24]\n\t"
          "cmp %[t], #0\n\t"
          "bne 1f\n\t"
          UNAS_DW_CLAMP4_ASM("%[t]", "%[m]", "%[l]", "%[q]", "16")
          "strb %[a0], [%[o]]\n\t"
          "lsr %[a1], %[a0], #8\n\t"
          "strb %[a1], [%[o], %[step]]\n\t"
          "lsr %[a1], %[a0], #16\n\t"
          "strb %[a1], [%[o], %[step], lsl #1]\n\t"
          "lsr %[a0], %[a0], #24\n\t"
          "add %[o], %[o], %[step]\n\t"
          "strb %[a0], [%[o], %[step], lsl #1]\n\t"
          "b 2f\n"
          "1:\n\t"
          "strb %[a0], [%[o]]\n\t"
          "strb %[a1], [%[o], %[step]]\n\t"
          "strb %[a2], [%[o], %[step], lsl #1]\n\t"
          "add %[o], %[o], %[step]\n\t"
          "strb %[a3], [%[o], %[step], lsl #1]\n"
          "2:"
          : [a0] "+&r"(a0), [a1] "+&r"(a1), [a2] "+&r"(a2), [a3] "+&r"(a3), [o] "+&r"(o3),
            [m] "=&r"(m), [l] "=&r"(l), [n] "=&r"(n), [r] "=&r"(r), [t] "=&r"(t)
          : [q] "r"(q), [step] "r"(step)
          : "cc", "memory");
#undef UNAS_DW_RQ8
#else
  const int32_t lo = (int8_t)q[4], hi = (int8_t)q[5];
  for (int32_t j = 0; j < 4; ++j) o[j * step] = unas_dw_clamp(unas_dw_rq(a[j], q), lo, hi);
#endif
}

/* Every output of one channel from its padded plane, four per step along each output row (the
 * last step of a row moved back to end at out_w, recomputing a few outputs: out_w >= 4), K x K
 * filter (K = 3, 5, 7), horizontal stride S (1 or 2), over the folded bias. */
__attribute__((always_inline)) static inline void unas_dw_plane_loop4(
    const unas_dwconv_params *p, const int8_t *plane, int32_t pitch, int32_t c, int8_t *dst,
    int32_t dst_pitch, int32_t K, int32_t S) {
  const int32_t words = (K + 3) / 4, row_step = p->stride_h * pitch, last = p->out_w - 4;
  const int32_t *w = p->wide + 2 * words * K * c, *rq = p->rq + 4 * c;
  const int32_t start = p->folded[c], groups = (p->out_w + 3) >> 2;
  const int32_t q[7] = {rq[0], rq[1], rq[2], rq[3],
                        (int32_t)(0x01010101u * (uint8_t)p->act_min),
                        (int32_t)(0x01010101u * (uint8_t)p->act_max),
                        p->act_min == -128 && p->act_max == 127};
  int8_t *row_out = dst;
  for (int32_t oy = 0; oy < p->out_h; ++oy, plane += row_step, row_out += p->out_w * dst_pitch) {
    const int8_t *x = plane;
    int8_t *o = row_out;
    for (int32_t g = groups;;) {
      int32_t a[4] = {start, start, start, start};
      if (K == 3) {
        unas_dw_row4(x, w, a, K, S);
        unas_dw_row4(x + pitch, w + 2, a, K, S);
        unas_dw_row4(x + 2 * pitch, w + 4, a, K, S);
      } else {
        const int8_t *r = x;
        const int32_t *t = w;
#pragma GCC unroll 1
        for (int32_t ky = 0; ky < K; ++ky, r += pitch, t += 2 * words) unas_dw_row4(r, t, a, K, S);
      }
      unas_dw_store4(a, q, o, dst_pitch);
      if (--g == 0) break;
      if (g == 1) {
        x = plane + S * last;
        o = row_out + last * dst_pitch;
      } else {
        x += 4 * S;
        o += 4 * dst_pitch;
      }
    }
  }
}

#define UNAS_DW_PLANE_CHANNEL4(NAME, K, S)                                                    \
  static void NAME(const unas_dwconv_params *p, const int8_t *plane, int32_t pitch, int32_t c, \
                   int8_t *dst, int32_t dst_pitch) {                                          \
    unas_dw_plane_loop4(p, plane, pitch, c, dst, dst_pitch, (K), (S));                       \
  }

/* The end of a four-wide stride-1 row step in asm (unas_dw_channel3s1 / 5s1), after the four
 * requantised outputs a0..a3: the output address from the block's step and base (OBASE) and x,
 * the SSUB8/SEL clamp of all four unless the block's FULL flag says SSAT was enough, four
 * strides-apart stores, then x to the next step (4 on, the last step ending at the block's
 * XLAST) or out. STEP and T are scratch operands; the clamp bounds load into w02 and WB. */
#define UNAS_DW_S1_STORE4_NEXT(STEP, T, OBASE, FULL, LOHI, WB, XLAST)  \
  "ldrd %[" #STEP "], %[r], [%[b], #" OBASE "]\n\t"                     \
  "mla %[r], %[x], %[" #STEP "], %[r]\n\t"                              \
  "ldr %[" #T "], [%[b], #" FULL "]\n\t"                                \
  "cmp %[" #T "], #0\n\t"                                               \
  "bne 3f\n\t"                                                          \
  UNAS_DW_CLAMP4_ASM("%[" #T "]", "%[w02]", "%[" #WB "]", "%[b]", LOHI)  \
  "lsr %[a1], %[a0], #8\n\t"                                            \
  "lsr %[a2], %[a0], #16\n\t"                                           \
  "lsr %[a3], %[a0], #24\n"                                             \
  "3:\n\t"                                                              \
  "strb %[a0], [%[r]]\n\t"                                              \
  "strb %[a1], [%[r], %[" #STEP "]]\n\t"                                \
  "strb %[a2], [%[r], %[" #STEP "], lsl #1]\n\t"                        \
  "add %[r], %[r], %[" #STEP "]\n\t"                                    \
  "strb %[a3], [%[r], %[" #STEP "], lsl #1]\n\t"                        \
  "ldr %[" #T "], [%[b], #" XLAST "]\n\t"                               \
  "cmp %[x], %[" #T "]\n\t"                                             \
  "beq 2f\n\t"                                                          \
  "add %[x], %[x], #4\n\t"                                              \
  "cmp %[x], %[" #T "]\n\t"                                             \
  "it hi\n\t"                                                           \
  "movhi %[x], %[" #T "]\n\t"                                           \
  "b 1b\n"                                                              \
  "2:"

#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
/* The 3x3 stride-1 channel with each output row one asm loop: per step of four outputs and per
 * filter row LDR, LDRD of the row's weights, two LDRSB, two SXTB16, two PKHBT and the eight
 * multiply-accumulates of unas_dw_row4 (K = 3), then unas_dw_store4's requantisation. Its
 * loop-invariant values sit in a block on the stack instead of GCC's spill slots (GCC's own
 * schedule of the same steps spilled accumulators and reloaded weights: 7% more per layer);
 * 13 registers hold the four accumulators, one row's weights and plane bytes, the row pointer,
 * the step's first plane byte and the block. */
static void unas_dw_channel3s1(const unas_dwconv_params *p, const int8_t *plane, int32_t pitch,
                               int32_t c, int8_t *dst, int32_t dst_pitch) {
  const int32_t *w = p->wide + 6 * c, *rq = p->rq + 4 * c;
  /* start, 3 x (w02, w1), mult, lsh, nudge, rsh, lo4, hi4, full, pitch, step, obase, x_last */
  int32_t b[18] = {p->folded[c], w[0], w[1], w[2], w[3], w[4], w[5], rq[0], rq[1], rq[2], rq[3],
                   (int32_t)(0x01010101u * (uint8_t)p->act_min),
                   (int32_t)(0x01010101u * (uint8_t)p->act_max),
                   p->act_min == -128 && p->act_max == 127, pitch, dst_pitch, 0, 0};
  const int32_t row_step = p->stride_h * pitch, last = p->out_w - 4;
  for (int32_t oy = 0; oy < p->out_h; ++oy, plane += row_step, dst += p->out_w * dst_pitch) {
    /* output of the step at plane byte x: obase + x * step (32-bit address arithmetic) */
    b[16] = (int32_t)((uint32_t)(uintptr_t)dst - (uint32_t)(uintptr_t)plane * (uint32_t)dst_pitch);
    b[17] = (int32_t)(uintptr_t)(plane + last);
    const int8_t *x = plane;
    int32_t a0, a1, a2, a3, w02, w1, e, o, b4, b5, r;
#define UNAS_DW_K3S1_ROW(OFF)                   \
  "ldr %[e], [%[r]]\n\t"                       \
  "ldrd %[w02], %[w1], [%[b], #" OFF "]\n\t"   \
  "ldrsb %[b4], [%[r], #4]\n\t"                \
  "ldrsb %[b5], [%[r], #5]\n\t"                \
  "sxtb16 %[o], %[e], ror #8\n\t"              \
  "sxtb16 %[e], %[e]\n\t"                      \
  "smlad %[a0], %[e], %[w02], %[a0]\n\t"       \
  "smlabb %[a0], %[o], %[w1], %[a0]\n\t"       \
  "smlad %[a1], %[o], %[w02], %[a1]\n\t"       \
  "smlatb %[a1], %[e], %[w1], %[a1]\n\t"       \
  "smlabb %[a3], %[b4], %[w1], %[a3]\n\t"      \
  "pkhbt %[b4], %[b4], %[e]\n\t"               \
  "smladx %[a2], %[b4], %[w02], %[a2]\n\t"     \
  "smlatb %[a2], %[o], %[w1], %[a2]\n\t"       \
  "pkhbt %[b5], %[b5], %[o]\n\t"               \
  "smladx %[a3], %[b5], %[w02], %[a3]\n\t"
#define UNAS_DW_K3S1_NEXT                       \
  "ldr %[b5], [%[b], #56]\n\t"                 \
  "add %[r], %[r], %[b5]\n\t"
#define UNAS_DW_K3S1_RQ8(A) UNAS_DW_RQ8_ASM(A, "%[w1]", "%[w02]", "%[b4]", "%[e]", "%[o]")
    __asm__ volatile(
        "1:\n\t"
        "ldr %[a0], [%[b]]\n\t"
        "mov %[a1], %[a0]\n\t"
        "mov %[a2], %[a0]\n\t"
        "mov %[a3], %[a0]\n\t"
        "mov %[r], %[x]\n\t"
        UNAS_DW_K3S1_ROW("4") UNAS_DW_K3S1_NEXT
        UNAS_DW_K3S1_ROW("12") UNAS_DW_K3S1_NEXT
        UNAS_DW_K3S1_ROW("20")
        "ldrd %[w02], %[w1], [%[b], #28]\n\t"
        "ldrd %[e], %[o], [%[b], #36]\n\t"
        UNAS_DW_K3S1_RQ8("%[a0]") UNAS_DW_K3S1_RQ8("%[a1]")
        UNAS_DW_K3S1_RQ8("%[a2]") UNAS_DW_K3S1_RQ8("%[a3]")
        UNAS_DW_S1_STORE4_NEXT(b5, b4, "60", "52", "44", w1, "68")
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w02] "=&r"(w02),
          [w1] "=&r"(w1), [e] "=&r"(e), [o] "=&r"(o), [b4] "=&r"(b4), [b5] "=&r"(b5),
          [r] "=&r"(r), [x] "+&r"(x)
        : [b] "r"(b)
        : "cc", "memory");
#undef UNAS_DW_K3S1_ROW
#undef UNAS_DW_K3S1_NEXT
#undef UNAS_DW_K3S1_RQ8
  }
}
#else
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel3s1, 3, 1)
#endif
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
/* The 5x5 stride-1 channel as unas_dw_channel3s1: each output row one asm loop, the five filter
 * rows unrolled (unas_dw_row4's K = 5 row: 2 LDR, LDRD and LDR of the row's weights, 4 SXTB16,
 * 2 PKHBT, 12 multiply-accumulates), then unas_dw_store4's requantisation; X and Y overwrite E
 * and O once these are spent and the lone tap's weight reuses w02's register, so 13 registers
 * do (GCC's rolled loop over the C row: 17% more instructions per layer). */
static void unas_dw_channel5s1(const unas_dwconv_params *p, const int8_t *plane, int32_t pitch,
                               int32_t c, int8_t *dst, int32_t dst_pitch) {
  const int32_t *w = p->wide + 20 * c, *rq = p->rq + 4 * c;
  /* start, 5 x (w02, w13, w4), mult, lsh, nudge, rsh, lo4, hi4, full, pitch, step, obase,
   * x_last */
  int32_t b[27] = {p->folded[c]};
  for (int32_t k = 0; k < 5; ++k) {
    b[1 + 3 * k] = w[4 * k];
    b[2 + 3 * k] = w[4 * k + 1];
    b[3 + 3 * k] = w[4 * k + 2];
  }
  b[16] = rq[0];
  b[17] = rq[1];
  b[18] = rq[2];
  b[19] = rq[3];
  b[20] = (int32_t)(0x01010101u * (uint8_t)p->act_min);
  b[21] = (int32_t)(0x01010101u * (uint8_t)p->act_max);
  b[22] = p->act_min == -128 && p->act_max == 127;
  b[23] = pitch;
  b[24] = dst_pitch;
  const int32_t row_step = p->stride_h * pitch, last = p->out_w - 4;
  for (int32_t oy = 0; oy < p->out_h; ++oy, plane += row_step, dst += p->out_w * dst_pitch) {
    b[25] = (int32_t)((uint32_t)(uintptr_t)dst - (uint32_t)(uintptr_t)plane * (uint32_t)dst_pitch);
    b[26] = (int32_t)(uintptr_t)(plane + last);
    const int8_t *x = plane;
    int32_t a0, a1, a2, a3, w02, w13, e, o, e2, o2, r;
#define UNAS_DW_K5S1_ROW(W02_13, W4)             \
  "ldr %[e], [%[r]]\n\t"                          \
  "ldr %[e2], [%[r], #4]\n\t"                     \
  "ldrd %[w02], %[w13], [%[b], #" W02_13 "]\n\t"  \
  "sxtb16 %[o], %[e], ror #8\n\t"                 \
  "sxtb16 %[e], %[e]\n\t"                         \
  "sxtb16 %[o2], %[e2], ror #8\n\t"               \
  "sxtb16 %[e2], %[e2]\n\t"                       \
  "smlad %[a0], %[e], %[w02], %[a0]\n\t"          \
  "smlad %[a0], %[o], %[w13], %[a0]\n\t"          \
  "smlad %[a1], %[o], %[w02], %[a1]\n\t"          \
  "smlad %[a3], %[e2], %[w13], %[a3]\n\t"         \
  "pkhbt %[e], %[e2], %[e]\n\t"                   \
  "smladx %[a1], %[e], %[w13], %[a1]\n\t"         \
  "smladx %[a2], %[e], %[w02], %[a2]\n\t"         \
  "pkhbt %[o], %[o2], %[o]\n\t"                   \
  "smladx %[a2], %[o], %[w13], %[a2]\n\t"         \
  "smladx %[a3], %[o], %[w02], %[a3]\n\t"         \
  "ldr %[w02], [%[b], #" W4 "]\n\t"               \
  "smlabb %[a0], %[e2], %[w02], %[a0]\n\t"        \
  "smlabb %[a1], %[o2], %[w02], %[a1]\n\t"        \
  "smlatb %[a2], %[e2], %[w02], %[a2]\n\t"        \
  "smlatb %[a3], %[o2], %[w02], %[a3]\n\t"
#define UNAS_DW_K5S1_NEXT                         \
  "ldr %[w13], [%[b], #92]\n\t"                   \
  "add %[r], %[r], %[w13]\n\t"
#define UNAS_DW_K5S1_RQ8(A) UNAS_DW_RQ8_ASM(A, "%[w13]", "%[w02]", "%[e2]", "%[e]", "%[o]")
    __asm__ volatile(
        "1:\n\t"
        "ldr %[a0], [%[b]]\n\t"
        "mov %[a1], %[a0]\n\t"
        "mov %[a2], %[a0]\n\t"
        "mov %[a3], %[a0]\n\t"
        "mov %[r], %[x]\n\t"
        UNAS_DW_K5S1_ROW("4", "12") UNAS_DW_K5S1_NEXT
        UNAS_DW_K5S1_ROW("16", "24") UNAS_DW_K5S1_NEXT
        UNAS_DW_K5S1_ROW("28", "36") UNAS_DW_K5S1_NEXT
        UNAS_DW_K5S1_ROW("40", "48") UNAS_DW_K5S1_NEXT
        UNAS_DW_K5S1_ROW("52", "60")
        "ldrd %[w02], %[w13], [%[b], #64]\n\t"
        "ldrd %[e], %[o], [%[b], #72]\n\t"
        UNAS_DW_K5S1_RQ8("%[a0]") UNAS_DW_K5S1_RQ8("%[a1]")
        UNAS_DW_K5S1_RQ8("%[a2]") UNAS_DW_K5S1_RQ8("%[a3]")
        UNAS_DW_S1_STORE4_NEXT(o2, e2, "96", "88", "80", w13, "104")
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w02] "=&r"(w02),
          [w13] "=&r"(w13), [e] "=&r"(e), [o] "=&r"(o), [e2] "=&r"(e2), [o2] "=&r"(o2),
          [r] "=&r"(r), [x] "+&r"(x)
        : [b] "r"(b)
        : "cc", "memory");
  }
}
#undef UNAS_DW_K5S1_ROW
#undef UNAS_DW_K5S1_NEXT
#undef UNAS_DW_K5S1_RQ8
#else
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel5s1, 5, 1)
#endif
#undef UNAS_DW_S1_STORE4_NEXT
#undef UNAS_DW_RQ8_ASM
#undef UNAS_DW_CLAMP4_ASM
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel7s1, 7, 1)
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel3s2, 3, 2)
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel5s2, 5, 2)
UNAS_DW_PLANE_CHANNEL4(unas_dw_channel7s2, 7, 2)

/* Channel c of the NHWC input into the padded plane, then channel c of the output from it, for
 * every channel (see unas_dwconv_planes_s8); `channel` computes one channel's outputs. */
typedef void (*unas_dw_channel_fn)(const unas_dwconv_params *p, const int8_t *plane,
                                   int32_t pitch, int32_t c, int8_t *dst, int32_t dst_pitch);

static void unas_dw_planes(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                           int8_t *plane, unas_dw_channel_fn channel) {
  const int32_t pitch = unas_dw_plane_pitch(p), rows = unas_dw_plane_rows_count(p);
  unas_dw_plane_frame(p, plane, pitch, rows);
  for (int32_t c = 0; c < p->in_c; ++c) {
    unas_dw_copy_channel(p, in + c, plane, pitch, rows);
    channel(p, plane, pitch, c, out + c, p->in_c);
  }
}

#define UNAS_DW_PLANE_CHANNEL(NAME, K, W, ROLLED)                                            \
  static void NAME(const unas_dwconv_params *p, const int8_t *plane, int32_t pitch, int32_t c, \
                   int8_t *dst, int32_t dst_pitch) {                                          \
    const int32_t words = (p->k_w + 3) / 4;                                                    \
    unas_dw_plane_loop(p, plane, pitch, p->wide + 2 * words * p->k_h * c, p->folded[c],        \
                       p->rq + 4 * c, dst, dst_pitch, (K), (W), (ROLLED));                    \
  }
UNAS_DW_PLANE_CHANNEL(unas_dw_channel3, 3, 1, 0)
UNAS_DW_PLANE_CHANNEL(unas_dw_channel5, 5, 2, 0)
UNAS_DW_PLANE_CHANNEL(unas_dw_channel_w2, p->k_h, 2, 1)
UNAS_DW_PLANE_CHANNEL(unas_dw_channel_rows, p->k_h, words, 1)

/* Without widened rows or requantisation blocks (dilation, a folded bias or accumulator too
 * large for them): every tap minus the zero point, then the general requantisation. */
static void unas_dw_channel_taps(const unas_dwconv_params *p, const int8_t *plane, int32_t pitch,
                                 int32_t c, int8_t *dst, int32_t dst_pitch) {
  const int32_t k_h = p->k_h, k_w = p->k_w, row_step = p->stride_h * pitch;
  for (int32_t oy = 0; oy < p->out_h; ++oy, plane += row_step) {
    const int8_t *x = plane;
    for (int32_t ox = 0; ox < p->out_w; ++ox, x += p->stride_w, dst += dst_pitch) {
      int32_t acc = p->bias[c];
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const int8_t *row = x + ky * p->dil_h * pitch;
        const int8_t *taps = p->weights + ky * k_w * p->out_c + c;
        for (int32_t kx = 0; kx < k_w; ++kx) {
          acc += (int32_t)taps[kx * p->out_c] * ((int32_t)row[kx * p->dil_w] - p->in_zp);
        }
      }
      *dst = unas_dw_out(p, acc, c);
    }
  }
}

void unas_dwconv_planes3_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel3);
}

void unas_dwconv_planes5_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel5);
}

void unas_dwconv_planes7_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel_w2);
}

void unas_dwconv_planes_rows_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                                int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel_rows);
}

void unas_dwconv_planes3s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel3s1);
}

void unas_dwconv_planes3s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel3s2);
}

void unas_dwconv_planes5s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel5s1);
}

void unas_dwconv_planes5s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel5s2);
}

void unas_dwconv_planes7s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel7s1);
}

void unas_dwconv_planes7s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel7s2);
}

void unas_dwconv_planes_taps_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                                int8_t *plane) {
  unas_dw_planes(p, in, out, plane, unas_dw_channel_taps);
}

/* Whether p fits the four-wide kernels unas_dwconv_planes{3,5,7}s{1,2}_s8: a square 3x3, 5x5 or
 * 7x7 filter, horizontal stride 1 or 2, at least four outputs per row (any vertical stride). */
static int unas_dw_four_wide(const unas_dwconv_params *p) {
  const int32_t k = p->k_w;
  return p->k_h == k && (k == 3 || k == 5 || k == 7) && (p->stride_w == 1 || p->stride_w == 2) &&
         p->out_w >= 4;
}

/* The plane kernel for p: what the generator calls directly (so only that one is linked). */
void unas_dwconv_planes_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                           int8_t *plane) {
  const int32_t words = (p->k_w + 3) / 4;
  if (p->wide_layout != UNAS_DW_WIDE_ROWS || p->rq == 0) {
    unas_dwconv_planes_taps_s8(p, in, out, plane);
  } else if (unas_dw_four_wide(p)) {
    static void (*const fours[3][2])(const unas_dwconv_params *, const int8_t *, int8_t *,
                                     int8_t *) = {
        {unas_dwconv_planes3s1_s8, unas_dwconv_planes3s2_s8},
        {unas_dwconv_planes5s1_s8, unas_dwconv_planes5s2_s8},
        {unas_dwconv_planes7s1_s8, unas_dwconv_planes7s2_s8}};
    fours[(p->k_w - 3) / 2][p->stride_w - 1](p, in, out, plane);
  } else if (p->k_h == 3 && words == 1) {
    unas_dwconv_planes3_s8(p, in, out, plane);
  } else if (p->k_h == 5 && words == 2) {
    unas_dwconv_planes5_s8(p, in, out, plane);
  } else if (p->k_h == 7 && words == 2) {
    unas_dwconv_planes7_s8(p, in, out, plane);
  } else {
    unas_dwconv_planes_rows_s8(p, in, out, plane);
  }
}

void unas_dwconv_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  if (p->wide_layout == UNAS_DW_WIDE_GROUPS) {
    unas_dwconv_groups_s8(p, in, out);
  } else {
    unas_dwconv_ref_s8(p, in, out);
  }
}

/* TFLM's loop order, every tap inside the image minus the zero point (any depth multiplier and
 * dilation). */
void unas_dwconv_ref_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    int32_t ky_lo, ky_hi;
    unas_tap_range(iy0, p->dil_h, p->k_h, p->in_h, &ky_lo, &ky_hi);
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int32_t ix0 = ox * p->stride_w - p->pad_l;
      int32_t kx_lo, kx_hi;
      unas_tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx_lo, &kx_hi);
      for (int32_t ic = 0; ic < p->in_c; ++ic) {
        for (int32_t m = 0; m < p->depth_mult; ++m) {
          const int32_t oc = ic * p->depth_mult + m;
          int32_t acc = p->bias[oc];
          for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
            const int8_t *row = in + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c + ic;
            const int8_t *wrow = p->weights + ky * p->k_w * p->out_c + oc;
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
              acc += (int32_t)wrow[kx * p->out_c] * ((int32_t)row[kx * p->dil_w * p->in_c] - p->in_zp);
            }
          }
          acc = unas_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_zp;
          out[(oy * p->out_w + ox) * p->out_c + oc] = unas_clamp_s8(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

/* 1x1, stride 1, depth multiplier 1, with p->rq (the generator calls unas_dwconv_ref_s8
 * without it): one multiply per element, channel by channel with the channel's weight and
 * requantisation in registers; out may equal in (each output element replaces the one input
 * element it reads). acc = bias + w * (x - in_zp), wrapping as TFLM's int32 arithmetic does;
 * its left shift is applied to the weight and the offset bias instead (equal modulo 2^32). */
void unas_dwconv_1x1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->in_c, n = p->out_h * p->out_w * c_count;
  const int32_t lo = p->act_min, hi = p->act_max;
  for (int32_t c = 0; c < c_count; ++c) {
    const int32_t *rq = p->rq + 4 * c;
    const int32_t mult = rq[0], lsh = rq[1], nudge = rq[2], rsh = rq[3];
    const uint32_t w = (uint32_t)p->weights[c] << lsh;
    const uint32_t base = ((uint32_t)p->bias[c] - (uint32_t)(p->weights[c] * p->in_zp)) << lsh;
    const int8_t *x = in + c;
    int8_t *o = out + c;
    for (int32_t i = 0; i < n; i += c_count) {
      const int32_t acc = (int32_t)(base + w * (uint32_t)(int32_t)x[i]);
      o[i] = unas_dw_clamp(unas_dw_rq4(acc, mult, 0, nudge, rsh), lo, hi);
    }
  }
}

/* ---- fully connected ---- */

static inline int8_t unas_fc_requant(int32_t acc, const unas_fc_params *p, int32_t u) {
  const int32_t v = unas_mbqm(acc, p->mult[u], p->shift[u]) + p->out_zp;
  return unas_clamp_s8(v, p->act_min, p->act_max);
}

/* Units four at a time, so each input word is loaded once for four weight rows (classifier
 * heads have one row; code size matters more here than the 2 x 2 block). */
void unas_fc_s8(const unas_fc_params *p, const int8_t *in, int8_t *out) {
  const int32_t depth = p->depth;
  for (int32_t r = 0; r < p->rows; ++r) {
    const int8_t *x = in + r * depth;
    const int8_t *w = p->weights;
    int32_t u = 0;
    for (; u + 4 <= p->units; u += 4, w += 4 * depth) {
      int32_t acc[4] = {p->bias[u], p->bias[u + 1], p->bias[u + 2], p->bias[u + 3]};
      unas_dot4_s8(x, w, depth, acc, depth);
      for (int32_t j = 0; j < 4; ++j) *out++ = unas_fc_requant(acc[j], p, u + j);
    }
    for (; u < p->units; ++u, w += depth) {
      *out++ = unas_fc_requant(p->bias[u] + unas_dot_s8(w, x, depth), p, u);
    }
  }
}

/* ---- pooling ---- */

#if defined(__ARM_FEATURE_DSP)
/* Per signed byte max / min of four int8 lanes (SSUB8 sets one GE flag per byte, SEL picks). */
static inline uint32_t unas_max4(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
}
static inline uint32_t unas_min4(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
}
/* acc's two int16 lanes += bytes 0 and 2 (even) / 1 and 3 (odd) of x, sign-extended. */
static inline int32_t unas_sxtab16_even(int32_t acc, uint32_t x) {
  return __sxtab16(acc, (int32_t)x);
}
static inline int32_t unas_sxtab16_odd(int32_t acc, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
#endif

/* Sums of channels [c, c + 4) over the pixels at x, x + pitch, ... (n of them) into s[0..3].
 * On DSP cores two SXTAB16 per word accumulate int16 lanes, flushed every 256 pixels (256 * 128
 * still fits an int16 lane). */
static inline void unas_sum4(const int8_t *x, int32_t pitch, int32_t n, int32_t *s) {
#if defined(__ARM_FEATURE_DSP)
  while (n > 0) {
    const int32_t chunk = n < 256 ? n : 256;
    int32_t even = 0, odd = 0;
    for (int32_t i = 0; i < chunk; ++i, x += pitch) {
      const uint32_t w = unas_load4(x);
      even = unas_sxtab16_even(even, w);
      odd = unas_sxtab16_odd(odd, w);
    }
    s[0] += (int16_t)(even & 0xFFFF);
    s[1] += (int16_t)(odd & 0xFFFF);
    s[2] += even >> 16;
    s[3] += odd >> 16;
    n -= chunk;
  }
#else
  for (int32_t i = 0; i < n; ++i, x += pitch) {
    s[0] += x[0];
    s[1] += x[1];
    s[2] += x[2];
    s[3] += x[3];
  }
#endif
}

/* Max of channels [c, c + 4) over a rows x cols window (rows row_pitch apart, columns col_pitch
 * apart) as four int8 lanes, starting from -128 in every lane. */
static inline uint32_t unas_max4_window(const int8_t *x, int32_t row_pitch, int32_t col_pitch,
                                        int32_t rows, int32_t cols) {
#if defined(__ARM_FEATURE_DSP)
  uint32_t best = 0x80808080u;
  for (int32_t fy = 0; fy < rows; ++fy, x += row_pitch) {
    for (int32_t fx = 0; fx < cols; ++fx) best = unas_max4(unas_load4(x + fx * col_pitch), best);
  }
  return best;
#else
  int32_t b[4] = {-128, -128, -128, -128};
  for (int32_t fy = 0; fy < rows; ++fy, x += row_pitch) {
    for (int32_t fx = 0; fx < cols; ++fx) {
      for (int32_t j = 0; j < 4; ++j) {
        const int32_t v = x[fx * col_pitch + j];
        b[j] = v > b[j] ? v : b[j];
      }
    }
  }
  return (uint32_t)(uint8_t)b[0] | (uint32_t)(uint8_t)b[1] << 8 | (uint32_t)(uint8_t)b[2] << 16 |
         (uint32_t)(uint8_t)b[3] << 24;
#endif
}

/* Four lanes clamped to [lo, hi] (bytes replicated in lo4, hi4) and stored. */
static inline void unas_store4_clamped(uint32_t v, uint32_t lo4, uint32_t hi4, int32_t clamp,
                                       int8_t *o) {
#if defined(__ARM_FEATURE_DSP)
  if (clamp) v = unas_min4(unas_max4(v, lo4), hi4);
#else
  if (clamp) {
    for (int32_t j = 0; j < 32; j += 8) {
      const int32_t lane = (int8_t)((v >> j) & 0xFFu);
      const int32_t lo = (int8_t)((lo4 >> j) & 0xFFu), hi = (int8_t)((hi4 >> j) & 0xFFu);
      const int32_t c = lane < lo ? lo : (lane > hi ? hi : lane);
      v = (v & ~(0xFFu << j)) | ((uint32_t)(uint8_t)c << j);
    }
  }
#endif
  memcpy(o, &v, 4);
}

/* Both pooling kernels: channels four at a time (one word per tap), the rest one by one; taps
 * outside the image are skipped, as in TFLM. Full 2 x 2 windows (the common stride-2 pool)
 * take an unrolled path. */
void unas_maxpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->channels, row_pitch = p->in_w * c_count, tail = c_count & ~3;
  const int32_t lo = p->act_min, hi = p->act_max, clamp = lo != -128 || hi != 127;
  const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u;
  const uint32_t hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    int32_t fy_lo, fy_hi;
    unas_tap_range(iy0, 1, p->f_h, p->in_h, &fy_lo, &fy_hi);
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int32_t ix0 = ox * p->stride_w - p->pad_l;
      int32_t fx_lo, fx_hi;
      unas_tap_range(ix0, 1, p->f_w, p->in_w, &fx_lo, &fx_hi);
      const int8_t *x = in + ((iy0 + fy_lo) * p->in_w + ix0 + fx_lo) * c_count;
      const int32_t rows = fy_hi - fy_lo, cols = fx_hi - fx_lo;
      int32_t c = 0;
      if (rows == 2 && cols == 2) {
        for (; c < tail; c += 4, out += 4) {
          const int8_t *xc = x + c;
#if defined(__ARM_FEATURE_DSP)
          const uint32_t v = unas_max4(unas_max4(unas_load4(xc), unas_load4(xc + c_count)),
                                       unas_max4(unas_load4(xc + row_pitch),
                                                 unas_load4(xc + row_pitch + c_count)));
#else
          const uint32_t v = unas_max4_window(xc, row_pitch, c_count, 2, 2);
#endif
          unas_store4_clamped(v, lo4, hi4, clamp, out);
        }
      } else {
        for (; c < tail; c += 4, out += 4) {
          unas_store4_clamped(unas_max4_window(x + c, row_pitch, c_count, rows, cols), lo4, hi4,
                              clamp, out);
        }
      }
      for (; c < c_count; ++c) {
        int32_t best = -128;
        if (rows == 2 && cols == 2) {
          const int8_t *xc = x + c;
          const int32_t a = xc[0] > xc[c_count] ? xc[0] : xc[c_count];
          const int32_t b = xc[row_pitch] > xc[row_pitch + c_count] ? xc[row_pitch]
                                                                    : xc[row_pitch + c_count];
          best = a > b ? a : b;
        } else {
          for (int32_t fy = 0; fy < rows; ++fy) {
            for (int32_t fx = 0; fx < cols; ++fx) {
              const int32_t v = x[fy * row_pitch + fx * c_count + c];
              best = v > best ? v : best;
            }
          }
        }
        *out++ = unas_clamp_s8(best, lo, hi);
      }
    }
  }
}

/* MAX_POOL_2D whose every window is a full 2 x 2 inside the input (no padding; the generator
 * checks): no tap ranges, four channels per word through the unrolled 2 x 2 maximum. */
void unas_maxpool_2x2_s8(const unas_pool_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->channels, row_pitch = p->in_w * c_count, tail = c_count & ~3;
  const int32_t lo = p->act_min, hi = p->act_max, clamp = lo != -128 || hi != 127;
  const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u;
  const uint32_t hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
  const int32_t x_step = p->stride_w * c_count, y_step = p->stride_h * row_pitch;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int8_t *x = in + oy * y_step;
    for (int32_t ox = 0; ox < p->out_w; ++ox, x += x_step) {
      int32_t c = 0;
      for (; c < tail; c += 4, out += 4) {
        const int8_t *xc = x + c;
#if defined(__ARM_FEATURE_DSP)
        const uint32_t v = unas_max4(unas_max4(unas_load4(xc), unas_load4(xc + c_count)),
                                     unas_max4(unas_load4(xc + row_pitch),
                                               unas_load4(xc + row_pitch + c_count)));
#else
        const uint32_t v = unas_max4_window(xc, row_pitch, c_count, 2, 2);
#endif
        unas_store4_clamped(v, lo4, hi4, clamp, out);
      }
      for (; c < c_count; ++c) {
        const int8_t *xc = x + c;
        const int32_t a = xc[0] > xc[c_count] ? xc[0] : xc[c_count];
        const int32_t b = xc[row_pitch] > xc[row_pitch + c_count] ? xc[row_pitch]
                                                                  : xc[row_pitch + c_count];
        *out++ = unas_clamp_s8(a > b ? a : b, lo, hi);
      }
    }
  }
}

/* TFLM's rounded average of an in-bounds window sum, clamped. */
static inline int8_t unas_average(int32_t sum, int32_t count, int32_t lo, int32_t hi) {
  if (count > 0) sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
  return unas_clamp_s8(sum, lo, hi);
}

void unas_avgpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->channels, row_pitch = p->in_w * c_count;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    int32_t fy_lo, fy_hi;
    unas_tap_range(iy0, 1, p->f_h, p->in_h, &fy_lo, &fy_hi);
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const int32_t ix0 = ox * p->stride_w - p->pad_l;
      int32_t fx_lo, fx_hi;
      unas_tap_range(ix0, 1, p->f_w, p->in_w, &fx_lo, &fx_hi);
      const int8_t *x = in + ((iy0 + fy_lo) * p->in_w + ix0 + fx_lo) * c_count;
      const int32_t rows = fy_hi - fy_lo, cols = fx_hi - fx_lo, count = rows * cols;
      int32_t c = 0;
      for (; c + 4 <= c_count; c += 4) {
        int32_t s[4] = {0, 0, 0, 0};
        for (int32_t fy = 0; fy < rows; ++fy) unas_sum4(x + fy * row_pitch + c, c_count, cols, s);
        for (int32_t j = 0; j < 4; ++j) *out++ = unas_average(s[j], count, p->act_min, p->act_max);
      }
      for (; c < c_count; ++c) {
        int32_t sum = 0;
        for (int32_t fy = 0; fy < rows; ++fy) {
          for (int32_t fx = 0; fx < cols; ++fx) sum += x[fy * row_pitch + fx * c_count + c];
        }
        *out++ = unas_average(sum, count, p->act_min, p->act_max);
      }
    }
  }
}

/* AVERAGE_POOL_2D whose every window is a full 2 x 2 inside the input (no padding; the generator
 * checks): no tap ranges, the count a literal 4. */
void unas_avgpool_2x2_s8(const unas_pool_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->channels, row_pitch = p->in_w * c_count;
  const int32_t x_step = p->stride_w * c_count, y_step = p->stride_h * row_pitch;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int8_t *x = in + oy * y_step;
    for (int32_t ox = 0; ox < p->out_w; ++ox, x += x_step) {
      int32_t c = 0;
      for (; c + 4 <= c_count; c += 4) {
        int32_t s[4] = {0, 0, 0, 0};
        unas_sum4(x + c, c_count, 2, s);
        unas_sum4(x + row_pitch + c, c_count, 2, s);
        for (int32_t j = 0; j < 4; ++j) *out++ = unas_average(s[j], 4, p->act_min, p->act_max);
      }
      for (; c < c_count; ++c) {
        const int8_t *xc = x + c;
        const int32_t sum = xc[0] + xc[c_count] + xc[row_pitch] + xc[row_pitch + c_count];
        *out++ = unas_average(sum, 4, p->act_min, p->act_max);
      }
    }
  }
}

/* ---- element-wise ---- */

/* Element-wise int8 -> int8 ADD through the generator's two 256-entry tables of rescaled inputs
 * (two loads instead of two MultiplyByQuantizedMultiplier per element), then one output
 * requantisation: the proven-exact out_rq block (unas_add_rq_s8) or MultiplyByQuantizedMultiplier
 * (unas_add_generic_s8). out may equal in1 or in2 (in place): element i is read before it is
 * written. */
void unas_add_rq_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2,
                    int8_t *out) {
  const uint8_t *u1 = (const uint8_t *)in1, *u2 = (const uint8_t *)in2;
  const int32_t *t1 = p->table1, *t2 = p->table2, *rq = p->out_rq;
  const int32_t lo = p->act_min, hi = p->act_max, n = p->size;
  const int32_t mult = rq[0], lsh = rq[1], nudge = rq[2], rsh = rq[3];
  for (int32_t i = 0; i < n; ++i) {
    const int32_t v = unas_dw_rq4(t1[u1[i]] + t2[u2[i]], mult, lsh, nudge, rsh);
    out[i] = unas_dw_clamp(v, lo, hi);
  }
}

void unas_add_generic_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2,
                         int8_t *out) {
  const uint8_t *u1 = (const uint8_t *)in1, *u2 = (const uint8_t *)in2;
  const int32_t *t1 = p->table1, *t2 = p->table2;
  const int32_t zp = p->out_offset, lo = p->act_min, hi = p->act_max, n = p->size;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t v = unas_mbqm(t1[u1[i]] + t2[u2[i]], p->out_mult, p->out_shift) + zp;
    out[i] = unas_clamp_s8(v, lo, hi);
  }
}

void unas_add_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  if (p->out_rq != 0) {
    unas_add_rq_s8(p, in1, in2, out);
  } else {
    unas_add_generic_s8(p, in1, in2, out);
  }
}

void unas_requantize_s8(int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult, int32_t shift,
                        const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) {
    out[i] = unas_clamp_s8(unas_mbqm(in[i] - in_zp, mult, shift) + out_zp, -128, 127);
  }
}

void unas_quantize_f32_s8(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) {
    float x;  /* float tensors may sit at any arena offset: copy, never dereference */
    memcpy(&x, in + 4 * i, 4);
    const int32_t q = (int32_t)round((double)x / scale) + zp;
    out[i] = unas_clamp_s8(q, -128, 127);
  }
}

void unas_dequantize_s8_f32(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) {
    const float y = (float)(scale * (double)(in[i] - zp));
    memcpy(out + 4 * i, &y, 4);
  }
}

/* ---- reductions ---- */

static inline int8_t unas_mean_out(int32_t sum, const unas_mean_params *p) {
  const int32_t acc = unas_mbqm(sum - p->in_zp * p->count, p->mult, p->shift);
  return unas_clamp_s8(acc + p->out_zp, -128, 127);
}

/* Global average pooling (MEAN over H and W of a 1 x H x W x C tensor): per-channel integer sums,
 * channels four at a time, one requantisation per output. */
void unas_mean_hw_s8(const unas_mean_params *p, const int8_t *in, int8_t *out) {
  const int32_t c_count = p->dims[3], pixels = p->dims[1] * p->dims[2];
  int32_t c = 0;
  for (; c + 4 <= c_count; c += 4) {
    int32_t s[4] = {0, 0, 0, 0};
    unas_sum4(in + c, c_count, pixels, s);
    for (int32_t j = 0; j < 4; ++j) out[c + j] = unas_mean_out(s[j], p);
  }
  for (; c < c_count; ++c) {
    int32_t sum = 0;
    for (int32_t i = 0; i < pixels; ++i) sum += in[i * c_count + c];
    out[c] = unas_mean_out(sum, p);
  }
}

/* Offset of the n-th element of the sub-box whose extents are ext[] (row-major), in a tensor with
 * element strides stride[]. */
static int32_t unas_box_offset(int32_t n, const int32_t *ext, const int32_t *stride) {
  int32_t offset = 0;
  for (int32_t k = 3; k >= 0; --k) {
    offset += (n % ext[k]) * stride[k];
    n /= ext[k];
  }
  return offset;
}

/* Any axes: kept axes span the outputs, reduced axes each output's box. */
void unas_mean_box_s8(const unas_mean_params *p, const int8_t *in, int8_t *out) {
  const int32_t *d = p->dims;
  const int32_t *r = p->reduce;
  const int32_t stride[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
  int32_t kept[4], reduced[4], outputs = 1;
  for (int32_t k = 0; k < 4; ++k) {
    kept[k] = r[k] ? 1 : d[k];
    reduced[k] = r[k] ? d[k] : 1;
    outputs *= kept[k];
  }
  for (int32_t o = 0; o < outputs; ++o) {
    const int8_t *base = in + unas_box_offset(o, kept, stride);
    int32_t sum = 0;
    for (int32_t j = 0; j < p->count; ++j) sum += base[unas_box_offset(j, reduced, stride)];
    out[o] = unas_mean_out(sum, p);
  }
}

void unas_mean_s8(const unas_mean_params *p, const int8_t *in, int8_t *out) {
  const int32_t *d = p->dims, *r = p->reduce;
  if (d[0] == 1 && r[1] && r[2] && !r[3]) {
    unas_mean_hw_s8(p, in, out);
  } else {
    unas_mean_box_s8(p, in, out);
  }
}

/* ---- softmax (gemmlowp fixed point, as TFLM's reference int8 softmax) ---- */

static int32_t unas_sat_lshift(int32_t x, int32_t exponent) {
  /* SaturatingRoundingMultiplyByPOT with a positive exponent */
  const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return x * (1 << exponent);
}

static int32_t unas_exp_quarter(int32_t a) {
  /* exp on [-1/4, 0), Q0.31 in and out */
  const int32_t constant_term = 1895147668;  /* exp(-1/8) */
  const int32_t one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = unas_srdhm(x, x);
  const int32_t x3 = unas_srdhm(x2, x);
  const int32_t x4 = unas_srdhm(x2, x2);
  const int32_t x4_over_4 = unas_rdbypot(x4, 2);
  const int32_t poly = unas_rdbypot(unas_srdhm(x4_over_4 + x3, one_third) + x2, 1);
  return constant_term + unas_srdhm(constant_term, x + poly);
}

static int32_t unas_exp_negative(int32_t a) {
  /* exp of a <= 0 given in Q5.26, result in Q0.31 */
  const int32_t one_quarter = 1 << 24;
  const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
  int32_t result = unas_exp_quarter(unas_sat_lshift(a_mod, 5));
  const int32_t remainder = a_mod - a;
  static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                         39332535, 720401, 242};
  for (int32_t i = 0; i < 7; ++i) {
    if (remainder & (1 << (24 + i))) result = unas_srdhm(result, multipliers[i]);
  }
  return a == 0 ? INT32_MAX : result;
}

static int32_t unas_one_over_one_plus_x(int32_t a) {
  /* 1 / (1 + a) for a in [0, 1), Q0.31, by Newton-Raphson in Q2.29 */
  const int64_t sum = (int64_t)a + INT32_MAX;
  const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + unas_srdhm(half_den, -1010580540);
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - unas_srdhm(half_den, x);
    x = x + unas_sat_lshift(unas_srdhm(x, one_minus), 2);
  }
  return unas_sat_lshift(x, 1);
}

static int32_t unas_clz32(uint32_t x) {
  int32_t n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

void unas_softmax_s8(const unas_softmax_params *p, const int8_t *in, int8_t *out) {
  for (int32_t r = 0; r < p->rows; ++r) {
    const int8_t *x = in + r * p->depth;
    int8_t *y = out + r * p->depth;
    int32_t max_in_row = -128;
    for (int32_t c = 0; c < p->depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
    int32_t sum_of_exps = 0;  /* Q12.19 */
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t diff = x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = unas_srdhm(diff * (1 << p->input_left_shift), p->input_mult);
        sum_of_exps += unas_rdbypot(unas_exp_negative(scaled), 12);
      }
    }
    const int32_t headroom_plus_one = unas_clz32((uint32_t)sum_of_exps);
    const int32_t bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
    const int32_t scale = unas_one_over_one_plus_x(shifted_sum_minus_one);
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t diff = x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = unas_srdhm(diff * (1 << p->input_left_shift), p->input_mult);
        const int32_t e = unas_exp_negative(scaled);
        const int32_t unsat = unas_rdbypot(unas_srdhm(scale, e), bits_over_unit + 31 - 8);
        y[c] = unas_clamp_s8(unsat - 128, -128, 127);
      } else {
        y[c] = -128;
      }
    }
  }
}

/* ---- data movement ---- */

void unas_pad_s8(const unas_pad_params *p, const int8_t *in, int8_t *out) {
  const int32_t *id = p->in_dims, *od = p->out_dims, *b = p->before;
  memset(out, p->value, (size_t)(od[0] * od[1] * od[2] * od[3]));
  for (int32_t i0 = 0; i0 < id[0]; ++i0)
  for (int32_t i1 = 0; i1 < id[1]; ++i1)
  for (int32_t i2 = 0; i2 < id[2]; ++i2) {
    const int8_t *src = in + ((i0 * id[1] + i1) * id[2] + i2) * id[3];
    int8_t *dst = out + (((i0 + b[0]) * od[1] + i1 + b[1]) * od[2] + i2 + b[2]) * od[3] + b[3];
    memcpy(dst, src, (size_t)id[3]);
  }
}

void unas_concat(int8_t *out, int32_t outer, int32_t n_inputs, const int8_t *const *inputs,
                 const int32_t *sizes) {
  for (int32_t o = 0; o < outer; ++o) {
    for (int32_t i = 0; i < n_inputs; ++i) {
      memcpy(out, inputs[i] + o * sizes[i], (size_t)sizes[i]);
      out += sizes[i];
    }
  }
}

/* ---- 1x1 convolution for the fused blocks' short rows ---- */

/* The 1x1 convolution of unas_conv2d_1x1_expanded_s8 (same filter, same arithmetic, bit-exact)
 * with each channel pair's four outputs (two channels of two pixels) requantised, clamped and
 * stored in one block (unas_rq4_clamp_store, as the patch kernel does): the fused inverted-residual
 * blocks run their expansion and projection through it, whose few input channels make the
 * per-output requantisation the larger part of the work. */
void unas_conv2d_1x1_rows_s8(const unas_conv_params *p, const int8_t *in, int8_t *out) {
  int32_t xe[UNAS_PATCH_MAX]; /* 2 pixels x in_c taps as int16 */
  const int32_t k = p->in_c, pixels = p->out_h * p->out_w, out_c = p->out_c;
  const int32_t groups = (k + 3) >> 2, pairs = out_c >> 1;
  const int32_t x_pitch = p->stride_w * k, row_pitch = p->stride_h * p->in_w * k;
  const int32_t lo2 = unas_pack16(p->act_min, p->act_min);
  const int32_t hi2 = unas_pack16(p->act_max, p->act_max);
  const unas_out_pair two = {p->act_min, p->act_max, out_c, lo2, hi2};
  const unas_out_pair one = {p->act_min, p->act_max, 0, lo2, hi2};
  const int8_t *row = in;
  int32_t ox = 0;
  for (int32_t pix = 0; pix < pixels; pix += 2, out += 2 * out_c) {
    const int8_t *xa = row + ox * x_pitch, *xb = xa;
    if (++ox == p->out_w) ox = 0, row += row_pitch;
    const unas_out_pair *o = &one; /* a lone last pixel: computed twice into the same bytes */
    if (pix + 1 < pixels) {
      xb = row + ox * x_pitch;
      if (++ox == p->out_w) ox = 0, row += row_pitch;
      o = &two;
    }
    unas_expand_pair(xa, xb, k, xe);
    const int32_t *w = (const int32_t *)(const void *)p->packed;
    const int32_t *bias = p->bias;
    const unas_rqf *r = p->rq;
    int8_t *oa = out;
    for (int32_t j = 0; j < pairs; ++j, w += 4 * groups, bias += 2, r += 2, oa += 2) {
      int32_t acc[4] = {bias[0], bias[1], bias[0], bias[1]};
      unas_expanded2x2(xe, w, groups, acc);
      unas_rq4_clamp_store(r, o, acc[0], acc[1], acc[2], acc[3], oa);
    }
    if (out_c & 1) { /* the last channel: its packed partner is zeros */
      int32_t acc[4] = {bias[0], 0, bias[0], 0};
      unas_expanded2x2(xe, w, groups, acc);
      unas_rq2_clamp_store(r, o, acc[0], acc[2], oa);
    }
  }
}
