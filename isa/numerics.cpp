// Bit-exact scalar numerics: bf16 <-> fp32 conversion and the TensorFlow Lite / gemmlowp
// fixed-point requantization helpers. docs/numerics.md is the contract these implement.
#include "isa/numerics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

namespace tpu::isa {




float bf16_mul(uint16_t a, uint16_t b, const NumericsOptions& opt) {
  return fl32_mul(bf16_to_fp32(a, opt), bf16_to_fp32(b, opt));
}

int32_t wrap_add(int32_t a, int32_t b) {
  // Unsigned arithmetic wraps by definition; converting back is modulo 2^32 (GCC and Clang
  // define it, C++20 requires it).
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  const bool overflow = a == b && a == std::numeric_limits<int32_t>::min();
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  // The negative nudge together with the truncating division gives floor((ab + 2^30) / 2^31).
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  const int32_t ab_x2_high32 = static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
  return overflow ? std::numeric_limits<int32_t>::max() : ab_x2_high32;
}

int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  assert(exponent >= 0 && exponent <= 31);
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  // >> of a negative value is an arithmetic shift on every supported compiler (C++20 rule).
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  assert(shift >= -31 && shift <= 30);
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  // TFLite writes x * (1 << left_shift) in int32, which is undefined when it overflows. Here
  // the product wraps modulo 2^32, which is what TFLite's compiled multiply does in practice.
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier),
                                right_shift);
}

void quantize_multiplier(double real, int32_t* multiplier, int* shift) {
  assert(std::isfinite(real) && real >= 0.0);
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  const double q = std::frexp(real, shift);  // real = q * 2^shift, q in [0.5, 1)
  int64_t q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  assert(q_fixed <= (int64_t{1} << 31));
  if (q_fixed == (int64_t{1} << 31)) {  // q rounded up to 1.0: renormalize to 0.5
    q_fixed /= 2;
    ++*shift;
  }
  if (*shift < -31) {  // every bit would be shifted out: TFLite uses a zero multiplier instead
    *shift = 0;
    q_fixed = 0;
  }
  *multiplier = static_cast<int32_t>(q_fixed);
}

int8_t requantize(int32_t acc, const RequantParams& p, int32_t output_zero_point, int32_t act_min,
                  int32_t act_max) {
  assert(act_min <= act_max);
  const int32_t scaled =
      multiply_by_quantized_multiplier(wrap_add(acc, p.bias), p.multiplier, p.shift);
  const int64_t shifted = static_cast<int64_t>(scaled) + output_zero_point;
  const int64_t lo = std::max<int64_t>(act_min, std::numeric_limits<int8_t>::min());
  const int64_t hi = std::min<int64_t>(act_max, std::numeric_limits<int8_t>::max());
  return static_cast<int8_t>(std::min(std::max(shifted, lo), hi));
}

int8_t saturate_int8(int32_t x) {
  return static_cast<int8_t>(std::clamp<int32_t>(x, std::numeric_limits<int8_t>::min(),
                                                 std::numeric_limits<int8_t>::max()));
}

}  // namespace tpu::isa
