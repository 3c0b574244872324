// Bit-exact scalar numerics shared by every part of tpusim: bf16 conversion and TensorFlow
// Lite style int8 requantization. docs/numerics.md states the contract these functions keep.
#pragma once

#include <cstdint>
#include <cstring>

namespace tpu::isa {

/// Options that change numeric results; part of the architecture config.
struct NumericsOptions {
  /// Flush subnormal bf16 values to signed zero on conversion in both directions (Cloud TPU).
  bool flush_subnormals = true;
};

// ---- bf16 (1 sign, 8 exponent, 7 mantissa bits), stored as its 16-bit pattern ----

/// fp32 -> bf16: round to nearest, ties to even; finite values that round past the largest
/// bf16 become +/-inf; NaN stays NaN (quieted, sign and top payload bits kept); when
/// flush_subnormals, a result (or input) in the subnormal range becomes signed zero. The flush
/// is decided on the input before rounding: every |x| < 2^-126 becomes signed zero, even the
/// largest fp32 subnormals that would otherwise round up to the smallest normal.
inline uint16_t fp32_to_bf16(float x, const NumericsOptions& opt = {});

/// bf16 -> fp32: exact widening; subnormal inputs become signed zero when flush_subnormals.
inline float bf16_to_fp32(uint16_t b, const NumericsOptions& opt = {});

/// The fp32 product of two bf16 values as the MAC computes it: both operands widened with
/// bf16_to_fp32 (so subnormal operands flush), then fl32_mul. Exact unless it overflows to
/// inf or underflows below 2^-126; the product itself is not flushed.
float bf16_mul(uint16_t a, uint16_t b, const NumericsOptions& opt = {});

/// x + y and x * y in IEEE fp32 (round to nearest even) with the NaN operand rule pinned
/// (docs/numerics.md section 3): x's NaN if x is a NaN, else y's if y is, quieted (quiet bit
/// 0x00400000 set, payload kept); an invalid operation on non-NaN operands (inf - inf,
/// 0 * inf) gives the host's default NaN. This is x86 SSE's rule for `addss x, y`, written
/// out because a compiler may swap the operands of a commutative + or *.
inline float fl32_add(float x, float y);
inline float fl32_mul(float x, float y);

// ---- int8 / int32 (TFLite reference kernels, gemmlowp fixed point) ----

/// int32 addition with two's-complement wrap-around (the accumulators do not saturate).
int32_t wrap_add(int32_t a, int32_t b);

/// gemmlowp SaturatingRoundingDoublingHighMul: floor((a*b + 2^30) / 2^31), i.e. a*b / 2^31
/// rounded to nearest with ties toward +infinity (a negative tie rounds toward zero, as ARM
/// VQRDMULH does); saturates to INT32_MAX only for INT32_MIN * INT32_MIN.
int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b);

/// gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.
/// exponent in [0, 31].
int32_t rounding_divide_by_pot(int32_t x, int exponent);

/// TFLite MultiplyByQuantizedMultiplier (double-rounding reference variant):
/// shift > 0 shifts left before the high multiply, shift < 0 divides by 2^-shift after.
/// multiplier in [2^30, 2^31) or 0; shift in [-31, 30]. The left shift wraps modulo 2^32
/// (TFLite's int32 multiply would be undefined there).
int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

/// TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier a Q31 value in
/// [2^30, 2^31) (or 0 for real == 0). real must be finite and >= 0. Reals below about 2^-32
/// (shift < -31) give multiplier 0, shift 0; reals >= 2^30 give a shift above 30, which
/// multiply_by_quantized_multiplier does not accept.
void quantize_multiplier(double real, int32_t* multiplier, int* shift);

/// Per-channel requantization parameters of one output channel.
struct RequantParams {
  int32_t bias = 0;        ///< added to the int32 accumulator (wrap-around) before scaling
  int32_t multiplier = 0;  ///< Q31 multiplier from quantize_multiplier
  int32_t shift = 0;       ///< shift from quantize_multiplier
};

/// acc + bias (wrapped), scaled by multiplier/shift, plus output_zero_point (in int64, so it
/// cannot overflow), clamped to [act_min, act_max] intersected with [-128, 127], cast to int8.
int8_t requantize(int32_t acc, const RequantParams& p, int32_t output_zero_point,
                  int32_t act_min, int32_t act_max);

/// Saturating cast of an int32 to int8.
int8_t saturate_int8(int32_t x);

/// SplitMix64: the generator behind every seeded fill (regions, workload data).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ---- Inline definitions of the two conversions (on every hot path) ----

inline uint16_t fp32_to_bf16(float x, const NumericsOptions& opt) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t exponent = bits & 0x7F800000u;
  const uint32_t mantissa = bits & 0x007FFFFFu;
  if (exponent == 0x7F800000u && mantissa != 0) {
    // NaN: truncate instead of rounding (rounding could carry into the exponent or the sign)
    // and set the quiet bit, so a signalling NaN whose payload is only in the low 16 bits
    // does not turn into an infinity.
    return static_cast<uint16_t>(static_cast<uint16_t>(bits >> 16) | 0x0040u);
  }
  if (opt.flush_subnormals && exponent == 0) {
    // bf16 has fp32's exponent range, so |x| < 2^-126 is exactly the fp32 subnormal range.
    // Flushing by the input's magnitude, before rounding, means the largest fp32 subnormals
    // (which would round up to 2^-126) also become zero. A normal fp32 never rounds down into
    // the bf16 subnormal range, so no separate result flush is needed.
    return static_cast<uint16_t>((bits & 0x80000000u) >> 16);
  }
  // Round to nearest even on the 16 dropped bits: add just under half, plus one when the kept
  // part is odd. A carry out of the mantissa bumps the exponent, which is also how the values
  // at or beyond the last tie above the largest finite bf16 become infinity.
  const uint32_t kept_lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + kept_lsb) >> 16);
}

namespace detail {
inline float quiet_nan(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits |= 0x00400000u;
  std::memcpy(&x, &bits, 4);
  return x;
}
}  // namespace detail

inline float fl32_add(float x, float y) {
  if (x != x) return detail::quiet_nan(x);
  if (y != y) return detail::quiet_nan(y);
  return x + y;
}

inline float fl32_mul(float x, float y) {
  if (x != x) return detail::quiet_nan(x);
  if (y != y) return detail::quiet_nan(y);
  return x * y;
}

inline float bf16_to_fp32(uint16_t b, const NumericsOptions& opt) {
  if (opt.flush_subnormals && (b & 0x7F80u) == 0) b &= 0x8000u;
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace tpu::isa
