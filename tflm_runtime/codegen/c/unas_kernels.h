/* unas int8 kernels for generated models: bit-exact with TFLite Micro's reference kernels.
 *
 * Every kernel takes a const parameter block whose fields the generator fills with literals
 * (shapes, zero points, per-channel multipliers/shifts, padding) and plain pointers into the
 * model's static arena. No heap, no interpreter, no tensor structs.
 *
 * Requantisation follows TFLM exactly: MultiplyByQuantizedMultiplier =
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, m), right).
 * On Cortex-M cores with the DSP extension (__ARM_FEATURE_DSP) the int8 dot products use
 * __sxtb16/__smlad from <arm_acle.h>; everywhere else portable C.
 */
#ifndef UNAS_KERNELS_H
#define UNAS_KERNELS_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

/* ---- fixed-point helpers (TFLM/gemmlowp semantics) ---- */

static inline int32_t unas_srdhm_nosat(int32_t a, int32_t b) {
  /* SaturatingRoundingDoublingHighMul for (a, b) != (INT32_MIN, INT32_MIN). TFLM divides
   * (ab + nudge) by 2^31 rounding toward zero, with nudge = 2^30 for ab >= 0 and 1 - 2^30 below;
   * for ab < 0 that equals floor((ab + 2^30) / 2^31), the same as for ab >= 0, so one
   * multiply-accumulate and an arithmetic shift give the identical result (SMLAL on Cortex-M). */
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t unas_srdhm(int32_t a, int32_t b) {
  /* SaturatingRoundingDoublingHighMul */
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return unas_srdhm_nosat(a, b);
}

static inline int32_t unas_rdbypot(int32_t x, int32_t exponent) {
  /* RoundingDivideByPOT, 0 <= exponent <= 31 */
  const int32_t mask = (int32_t)((1u << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t unas_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  /* MultiplyByQuantizedMultiplier. Quantized multipliers lie in [2^30, 2^31) (or are 0), never
   * INT32_MIN, so the doubling high multiply cannot saturate. */
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return unas_rdbypot(unas_srdhm_nosat((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int8_t unas_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Four consecutive int8 as one word (a single LDR on Cortex-M; unaligned access is allowed). */
static inline uint32_t unas_load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

#if defined(__ARM_FEATURE_DSP)
/* Bytes 0 and 2 (even) / 1 and 3 (odd) of a word, sign-extended to two int16 lanes. */
static inline int32_t unas_even16(uint32_t x) { return __sxtb16((int32_t)x); }
static inline int32_t unas_odd16(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); /* SXTB16 with its free rotation */
  return r;
}
#endif

/* Sum of a[i] * b[i] for i < n (int8 x int8 -> int32). */
static inline int32_t unas_dot_s8(const int8_t *a, const int8_t *b, int32_t n) {
  int32_t acc = 0;
  int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
  for (; i + 4 <= n; i += 4) {
    const uint32_t wa = unas_load4(a + i), wb = unas_load4(b + i);
    acc = __smlad(unas_even16(wa), unas_even16(wb), acc);
    acc = __smlad(unas_odd16(wa), unas_odd16(wb), acc);
  }
#else
  int32_t acc1 = 0, acc2 = 0, acc3 = 0;
  for (; i + 4 <= n; i += 4) {
    acc += (int32_t)a[i] * b[i];
    acc1 += (int32_t)a[i + 1] * b[i + 1];
    acc2 += (int32_t)a[i + 2] * b[i + 2];
    acc3 += (int32_t)a[i + 3] * b[i + 3];
  }
  acc += acc1 + acc2 + acc3;
#endif
  for (; i < n; ++i) acc += (int32_t)a[i] * b[i];
  return acc;
}

/* acc[j] += sum of x[i] * w[j * pitch + i] for i < n, j < 4: four weight rows, one input. */
static inline void unas_dot4_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t *acc,
                                int32_t pitch) {
  const int8_t *w0 = w, *w1 = w + pitch, *w2 = w + 2 * pitch, *w3 = w + 3 * pitch;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
  for (; i + 4 <= n; i += 4) {
    const uint32_t ux = unas_load4(x + i);
    const int32_t x_even = unas_even16(ux), x_odd = unas_odd16(ux);
    uint32_t ww = unas_load4(w0 + i);
    a0 = __smlad(x_even, unas_even16(ww), a0);
    a0 = __smlad(x_odd, unas_odd16(ww), a0);
    ww = unas_load4(w1 + i);
    a1 = __smlad(x_even, unas_even16(ww), a1);
    a1 = __smlad(x_odd, unas_odd16(ww), a1);
    ww = unas_load4(w2 + i);
    a2 = __smlad(x_even, unas_even16(ww), a2);
    a2 = __smlad(x_odd, unas_odd16(ww), a2);
    ww = unas_load4(w3 + i);
    a3 = __smlad(x_even, unas_even16(ww), a3);
    a3 = __smlad(x_odd, unas_odd16(ww), a3);
  }
#endif
  for (; i < n; ++i) {
    const int32_t xi = x[i];
    a0 += xi * w0[i];
    a1 += xi * w1[i];
    a2 += xi * w2[i];
    a3 += xi * w3[i];
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* Two inputs x0, x0 + x_pitch against two weight rows w0, w0 + w_pitch over n bytes:
 * acc[0] += x0.w0, acc[1] += x0.w1, acc[2] += x1.w0, acc[3] += x1.w1 (CMSIS-NN's 2 x 2 block:
 * each loaded and unpacked word feeds two SMLADs). Defined in unas_kernels.c. */
void unas_dot2x2_s8(const int8_t *x0, int32_t x_pitch, const int8_t *w0, int32_t w_pitch,
                    int32_t n, int32_t *acc);

/* ---- requantisation with generator-computed constants ---- */

/* One output channel's requantisation folded into one multiply-accumulate and one shift
 * (computed by the generator, tflm_runtime/codegen/lowering.py: fast_requant_constants):
 * out_zp + MultiplyByQuantizedMultiplier(acc, mult, -(shift + 1)) ==
 *   hi32(acc * mult + (hi:lo) - (acc < 0 ? 2^31 : 0)) >> shift
 * with (hi:lo) = 2^30 + 2^(31 + shift) + out_zp * 2^(32 + shift), exact for every int32 acc
 * when TFLM's right shift r = shift + 1 lies in [1, 22] (or mult is 0). The two roundings of TFLM
 * (doubling high multiply, then rounding divide by 2^r, halves away from zero) nest into one
 * floor division because floor(floor(a / b) + c) / d) == floor((a + b c) / (b d)). */
typedef struct {
  int32_t mult, lo, hi, shift;
} unas_rqf;

static inline int32_t unas_rqf_apply(const unas_rqf *c, int32_t acc) {
  const int64_t k = (int64_t)((uint64_t)(uint32_t)c->hi << 32 | (uint32_t)c->lo);
  const int64_t sign = (int32_t)((uint32_t)acc & 0x80000000u); /* -2^31 or 0 */
  const int64_t t = (int64_t)acc * c->mult + (k + sign);
  return (int32_t)(t >> 32) >> c->shift;
}

/* ---- parameter blocks ---- */

typedef struct {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
  int32_t in_zp, out_zp, act_min, act_max;
  const int8_t *weights;  /* [out_c][k_h][k_w][in_c]; unused (may be NULL) when packed is set */
  const int32_t *bias;    /* folded: bias[oc] - in_zp * sum(weights[oc]) */
  /* unas_conv2d_s8 only: [k_h + 1][out_c], row j = bias - in_zp * (sum of the channel's filter
   * rows 0 .. j - 1): row 0 is the model's bias, row k_h the folded bias */
  const int32_t *bias_rows;
  const int32_t *mult;    /* per output channel */
  const int32_t *shift;   /* per output channel */
  /* Optional (NULL: the generic path with weights/mult/shift). Both set: rq[out_c] constants
   * for unas_rqf_apply, and the filter with channel pairs (2j, 2j + 1) interleaved four taps at
   * a time, K = k_h * k_w * in_c zero padded to K4 (a multiple of 4), a missing last channel
   * zeros. Three layouts: unas_conv2d_patch_s8 reads sign-extended int16 pairs in filter
   * order, 4-byte aligned words [ceil(out_c / 2)][K4 / 4][4]: (t0, t1), (t2, t3) of channel 2j,
   * then of 2j + 1 (low half first); unas_conv2d_1x1_expanded_s8 (in_c <= UNAS_PATCH_MAX) the
   * same words in SXTB16 order, (t0, t2), (t1, t3); unas_conv2d_1x1_packed_s8 int8
   * [ceil(out_c / 2)][K4 / 4][2][4]. */
  const int8_t *packed;
  const unas_rqf *rq;
} unas_conv_params;

typedef struct {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c, depth_mult;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
  int32_t in_zp, out_zp, act_min, act_max;
  const int8_t *weights;  /* [k_h][k_w][out_c]; NULL when `wide` groups cover every channel */
  const int32_t *bias;    /* [out_c], not folded */
  const int32_t *mult;
  const int32_t *shift;
  /* Optional generation-time precomputation (depth multiplier 1, no dilation; NULL = the
   * general path). wide: weights pre-widened to int16 pairs, laid out for the kernel that runs
   * (UNAS_DW_WIDE_GROUPS: [in_c / 4][k_h * k_w][even (c0, c2), odd (c1, c3)];
   * UNAS_DW_WIDE_ROWS: [in_c][k_h][(k_w + 3) / 4][even (t0, t2), odd (t1, t3)] per 4 taps).
   * folded: bias - in_zp * sum(taps) per channel. rq: per-channel unas_dw_rq blocks, output
   * zero point included (NULL: MultiplyByQuantizedMultiplier over mult/shift, then out_zp). */
  int32_t wide_layout;
  const int32_t *wide;
  const int32_t *folded;
  const int32_t *rq;
} unas_dwconv_params;

enum { UNAS_DW_WIDE_NONE = 0, UNAS_DW_WIDE_GROUPS = 1, UNAS_DW_WIDE_ROWS = 2 };

/* Requantisation in four int32 per channel {mult, left + 1, nudge, right}, for accumulators the
 * generator proved small enough (|acc| << (left + 1) fits in int32) and right shifts >= 1:
 * SaturatingRoundingDoublingHighMul(acc << left, mult) == SMMULR(acc << (left + 1), mult), and
 * RoundingDivideByPOT(x, right) + out_zp == (x + nudge + (x < 0 ? -1 : 0)) >> right with
 * nudge = 2^(right - 1) + (out_zp << right): exactly TFLM's MultiplyByQuantizedMultiplier plus the
 * output zero point (adding a multiple of 2^right before the floor shift adds it after). */
static inline int32_t unas_dw_rq4(int32_t acc, int32_t mult, int32_t lsh, int32_t nudge,
                                  int32_t rsh) {
  const int32_t a = (int32_t)((uint32_t)acc << lsh);
  int32_t hi;
#if defined(__ARM_FEATURE_DSP)
  __asm__("smmulr %0, %1, %2" : "=r"(hi) : "r"(a), "r"(mult));
#else
  hi = (int32_t)(((int64_t)a * mult + ((int64_t)1 << 31)) >> 32);
#endif
  return (hi + nudge + (hi >> 31)) >> rsh;
}

static inline int32_t unas_dw_rq(int32_t acc, const int32_t *rq) {
  return unas_dw_rq4(acc, rq[0], rq[1], rq[2], rq[3]);
}

/* Clamp to [lo, hi] as two conditional moves. */
static inline int8_t unas_dw_clamp(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int8_t)v;
}

typedef struct {
  int32_t rows, depth, units;
  int32_t out_zp, act_min, act_max;
  const int8_t *weights;  /* [units][depth] */
  const int32_t *bias;    /* folded: bias[u] - in_zp * sum(weights[u]) */
  const int32_t *mult;
  const int32_t *shift;
} unas_fc_params;

typedef struct {
  int32_t in_h, in_w, channels, out_h, out_w;
  int32_t f_h, f_w, stride_h, stride_w, pad_t, pad_l;
  int32_t act_min, act_max;
} unas_pool_params;

typedef struct {
  int32_t size, left_shift;
  int32_t in1_offset, in1_mult, in1_shift;
  int32_t in2_offset, in2_mult, in2_shift;
  int32_t out_offset, out_mult, out_shift;
  int32_t act_min, act_max;
  /* table1[(uint8_t)x] = the rescaled first input
   * (MultiplyByQuantizedMultiplier((in1_offset + x) << left_shift, in1_mult, in1_shift)),
   * table2 likewise (the generator computes both); out_rq = the output's unas_dw_rq block with
   * out_offset included (NULL: out_mult/out_shift). */
  const int32_t *table1;
  const int32_t *table2;
  const int32_t *out_rq;
} unas_add_params;

typedef struct {
  int32_t dims[4];     /* input shape, padded to 4-D with leading 1s */
  int32_t reduce[4];   /* 1 = reduced axis */
  int32_t count;       /* elements reduced into one output */
  int32_t in_zp, out_zp, mult, shift;  /* mult/shift include 1/count (QuantizedMeanOrSum) */
} unas_mean_params;

typedef struct {
  int32_t rows, depth;
  int32_t input_mult, input_left_shift, diff_min;
} unas_softmax_params;

typedef struct {
  int32_t in_dims[4], out_dims[4], before[4];
  int32_t value;
} unas_pad_params;

/* ---- kernels ---- */

/* Model-adaptive selection: the generator knows at generation time which path an operator
 * takes and calls that path's own function, so the linker (--gc-sections) keeps only the paths
 * a model uses. The dispatching entry points (unas_conv2d_1x1_s8, unas_mean_s8, ...) pick the
 * same path from the parameter block at run time, for hand-written callers. */
typedef void (*unas_conv_fn)(const unas_conv_params *p, const int8_t *in, int8_t *out);

void unas_conv2d_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
/* 1x1 convolution, dispatching on the fields set: packed + rq with in_c <= UNAS_PATCH_MAX ->
 * _expanded (int16 weight layout), packed + rq -> _packed (int8 layout), else _generic
 * (weights, mult, shift). */
void unas_conv2d_1x1_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
void unas_conv2d_1x1_expanded_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
/* 1x1 with in_c == 1 (p->rq, plain weights): one multiply per output. */
void unas_conv2d_1x1_c1_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
void unas_conv2d_1x1_packed_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
void unas_conv2d_1x1_generic_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
/* k x k convolution whose filter (k_h * k_w * in_c rounded up to 4) fits UNAS_PATCH_MAX taps:
 * two output pixels' input windows are gathered as int16 into a 512-byte stack buffer (taps
 * outside the image hold in_zp, so the folded bias serves every pixel), then the 2 x 2 block on
 * the packed int16 filter. Requires p->packed and p->rq. */
#define UNAS_PATCH_MAX 128
void unas_conv2d_patch_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
/* Depthwise convolution reading its input directly: unas_dwconv_groups_s8 (wide_layout
 * UNAS_DW_WIDE_GROUPS) or unas_dwconv_ref_s8 (the general loop). Generated code calls the one it
 * needs, so the linker drops the other. */
void unas_dwconv_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
void unas_dwconv_groups_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
/* unas_dwconv_groups_s8 for 3x3 filters (interior windows unrolled) and any other size. */
void unas_dwconv_groups3_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
void unas_dwconv_groups_any_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
void unas_dwconv_ref_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
/* Depth multiplier 1, channel by channel: each input channel is copied into `plane` padded with
 * in_zp (((out_h - 1) * stride_h + (k_h - 1) * dil_h + 1) rows of ((out_w - 1) * stride_w +
 * (k_w - 1) * dil_w + 1) bytes, + (-k_w) & 3), so every output is an interior one, then that
 * channel of the output is computed from it. out may be in (MCUNet's in-place depthwise
 * convolution): in NHWC the output elements of channel c sit at offsets = c (mod C), which only
 * ever hold channel c of the input, already copied. unas_dwconv_planes_s8 picks one of the
 * others: planes{3,5,7}s{1,2} (widened rows and requantisation blocks, square 3/5/7 filters,
 * stride_w 1 or 2, out_w >= 4: four outputs per step), planes3/5/7 (the same blocks, k_h = 3
 * with k_w <= 4, k_h = 5 or 7 with 4 < k_w <= 8: output pairs), planes_rows (any other size
 * with them), planes_taps (without them: dilation, or accumulators too large); the generator
 * calls that one directly. */
void unas_dwconv_planes_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                           int8_t *plane);
void unas_dwconv_planes3_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane);
void unas_dwconv_planes5_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane);
void unas_dwconv_planes7_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                            int8_t *plane);
void unas_dwconv_planes_rows_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                                int8_t *plane);
/* Four outputs per step along a row: k_h = k_w = 3, 5 or 7, stride_w 1 (s1) or 2 (s2), out_w >= 4
 * (the widened rows and requantisation blocks as planes3/5/7; any stride_h). */
void unas_dwconv_planes3s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes3s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes5s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes5s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes7s1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes7s2_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                              int8_t *plane);
void unas_dwconv_planes_taps_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out,
                                int8_t *plane);
/* 1x1, stride 1, depth multiplier 1: per element, no scratch; out may be in. */
void unas_dwconv_1x1_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
void unas_fc_s8(const unas_fc_params *p, const int8_t *in, int8_t *out);
void unas_maxpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
void unas_avgpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
/* Pooling whose every window is a full 2 x 2 inside the input (f 2 x 2, no padding, any stride). */
void unas_maxpool_2x2_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
void unas_avgpool_2x2_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
void unas_add_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
/* ADD's two paths: out_rq set (unas_add_rq_s8) or not (unas_add_generic_s8). */
typedef void (*unas_add_fn)(const unas_add_params *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out);
void unas_add_rq_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void unas_add_generic_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2,
                         int8_t *out);
/* MEAN, dispatching: over H and W of a batch-1 NHWC tensor -> unas_mean_hw_s8, else
 * unas_mean_box_s8 (any axes). */
void unas_mean_s8(const unas_mean_params *p, const int8_t *in, int8_t *out);
void unas_mean_hw_s8(const unas_mean_params *p, const int8_t *in, int8_t *out);
void unas_mean_box_s8(const unas_mean_params *p, const int8_t *in, int8_t *out);
void unas_softmax_s8(const unas_softmax_params *p, const int8_t *in, int8_t *out);
void unas_pad_s8(const unas_pad_params *p, const int8_t *in, int8_t *out);
void unas_concat(int8_t *out, int32_t outer, int32_t n_inputs, const int8_t *const *inputs,
                 const int32_t *sizes);
void unas_requantize_s8(int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult, int32_t shift,
                        const int8_t *in, int8_t *out);
void unas_quantize_f32_s8(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out);
void unas_dequantize_s8_f32(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out);

/* 16-bit lane arithmetic: the DSP instructions on Cortex-M, their exact portable equivalents
 * elsewhere, so the host build runs (and the tests check) the same lanes and weight layouts.
 * Shared by the depthwise kernels and the fused blocks' row depthwise (unas_fused.c). */
#if defined(__ARM_FEATURE_DSP)
static inline int32_t unas_dw_even(uint32_t x) { return __sxtb16((int32_t)x); }
static inline int32_t unas_dw_odd(uint32_t x) { return unas_odd16(x); }
static inline int32_t unas_dw_sub16(int32_t a, int32_t b) { return __ssub16(a, b); }
static inline int32_t unas_dw_smlad(int32_t a, int32_t b, int32_t acc) {
  return __smlad(a, b, acc);
}
static inline int32_t unas_dw_smlabb(int32_t a, int32_t b, int32_t acc) {
  return __smlabb(a, b, acc);
}
static inline int32_t unas_dw_smlatt(int32_t a, int32_t b, int32_t acc) {
  return __smlatt(a, b, acc);
}
#else
static inline int32_t unas_dw_lo(int32_t x) { return (int16_t)(x & 0xFFFF); }
static inline int32_t unas_dw_hi(int32_t x) { return x >> 16; }
static inline int32_t unas_dw_pack(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}
static inline int32_t unas_dw_even(uint32_t x) {
  return unas_dw_pack((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu));
}
static inline int32_t unas_dw_odd(uint32_t x) { return unas_dw_even(x >> 8); }
static inline int32_t unas_dw_sub16(int32_t a, int32_t b) {
  return unas_dw_pack(unas_dw_lo(a) - unas_dw_lo(b), unas_dw_hi(a) - unas_dw_hi(b));
}
static inline int32_t unas_dw_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(unas_dw_lo(a) * unas_dw_lo(b)) +
                   (uint32_t)(unas_dw_hi(a) * unas_dw_hi(b)));
}
static inline int32_t unas_dw_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(unas_dw_lo(a) * unas_dw_lo(b)));
}
static inline int32_t unas_dw_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(unas_dw_hi(a) * unas_dw_hi(b)));
}
#endif

#if defined(__ARM_FEATURE_DSP)
static inline int32_t unas_dw_sat8(int32_t v) { return __ssat(v, 8); }
#else
static inline int32_t unas_dw_sat8(int32_t v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }
#endif

/* 1x1 convolution, the filter and arithmetic of unas_conv2d_1x1_expanded_s8, each channel pair's
 * four outputs requantised and stored in one block: the fused blocks' expansion and projection
 * (unas_fused.h) on their short rows. */
void unas_conv2d_1x1_rows_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);

#endif /* UNAS_KERNELS_H */
