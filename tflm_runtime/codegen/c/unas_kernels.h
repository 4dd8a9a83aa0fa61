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

static inline int32_t unas_srdhm(int32_t a, int32_t b) {
  /* SaturatingRoundingDoublingHighMul */
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t unas_rdbypot(int32_t x, int32_t exponent) {
  /* RoundingDivideByPOT */
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t unas_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  /* MultiplyByQuantizedMultiplier */
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return unas_rdbypot(unas_srdhm(x * (1 << left), multiplier), right);
}

static inline int8_t unas_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Sum of a[i] * b[i] for i < n (int8 x int8 -> int32). */
static inline int32_t unas_dot_s8(const int8_t *a, const int8_t *b, int32_t n) {
  int32_t acc = 0;
  int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
  for (; i + 4 <= n; i += 4) {
    int32_t wa, wb;
    memcpy(&wa, a + i, 4);
    memcpy(&wb, b + i, 4);
    acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
    const uint32_t ua = (uint32_t)wa, ub = (uint32_t)wb;
    acc = __smlad(__sxtb16((int32_t)((ua >> 8) | (ua << 24))),
                  __sxtb16((int32_t)((ub >> 8) | (ub << 24))), acc);
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
    int32_t wx, ww;
    memcpy(&wx, x + i, 4);
    const uint32_t ux = (uint32_t)wx;
    const int32_t x_even = __sxtb16(wx), x_odd = __sxtb16((int32_t)((ux >> 8) | (ux << 24)));
    memcpy(&ww, w0 + i, 4);
    a0 = __smlad(x_even, __sxtb16(ww), a0);
    a0 = __smlad(x_odd, __sxtb16((int32_t)(((uint32_t)ww >> 8) | ((uint32_t)ww << 24))), a0);
    memcpy(&ww, w1 + i, 4);
    a1 = __smlad(x_even, __sxtb16(ww), a1);
    a1 = __smlad(x_odd, __sxtb16((int32_t)(((uint32_t)ww >> 8) | ((uint32_t)ww << 24))), a1);
    memcpy(&ww, w2 + i, 4);
    a2 = __smlad(x_even, __sxtb16(ww), a2);
    a2 = __smlad(x_odd, __sxtb16((int32_t)(((uint32_t)ww >> 8) | ((uint32_t)ww << 24))), a2);
    memcpy(&ww, w3 + i, 4);
    a3 = __smlad(x_even, __sxtb16(ww), a3);
    a3 = __smlad(x_odd, __sxtb16((int32_t)(((uint32_t)ww >> 8) | ((uint32_t)ww << 24))), a3);
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

/* ---- parameter blocks ---- */

typedef struct {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
  int32_t in_zp, out_zp, act_min, act_max;
  const int8_t *weights;  /* [out_c][k_h][k_w][in_c] */
  const int32_t *bias;    /* folded: bias[oc] - in_zp * sum(weights[oc]) */
  const int32_t *bias_raw; /* the model's bias (border pixels of k x k convolutions) */
  const int32_t *mult;    /* per output channel */
  const int32_t *shift;   /* per output channel */
} unas_conv_params;

typedef struct {
  int32_t in_h, in_w, in_c, out_h, out_w, out_c, depth_mult;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
  int32_t in_zp, out_zp, act_min, act_max;
  const int8_t *weights;  /* [k_h][k_w][out_c] */
  const int32_t *bias;    /* [out_c], not folded */
  const int32_t *mult;
  const int32_t *shift;
} unas_dwconv_params;

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

void unas_conv2d_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
void unas_conv2d_1x1_s8(const unas_conv_params *p, const int8_t *in, int8_t *out);
void unas_dwconv_s8(const unas_dwconv_params *p, const int8_t *in, int8_t *out);
void unas_dwconv_inplace_s8(const unas_dwconv_params *p, int8_t *buf, int8_t *scratch);
void unas_fc_s8(const unas_fc_params *p, const int8_t *in, int8_t *out);
void unas_maxpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
void unas_avgpool_s8(const unas_pool_params *p, const int8_t *in, int8_t *out);
void unas_add_s8(const unas_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void unas_mean_s8(const unas_mean_params *p, const int8_t *in, int8_t *out);
void unas_softmax_s8(const unas_softmax_params *p, const int8_t *in, int8_t *out);
void unas_pad_s8(const unas_pad_params *p, const int8_t *in, int8_t *out);
void unas_concat(int8_t *out, int32_t outer, int32_t n_inputs, const int8_t *const *inputs,
                 const int32_t *sizes);
void unas_requantize_s8(int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult, int32_t shift,
                        const int8_t *in, int8_t *out);
void unas_quantize_f32_s8(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out);
void unas_dequantize_s8_f32(int32_t n, double scale, int32_t zp, const int8_t *in, int8_t *out);

#endif /* UNAS_KERNELS_H */
