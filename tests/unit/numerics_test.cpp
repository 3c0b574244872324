// Tests of the scalar numerics (bf16 conversion, gemmlowp / TFLite requantization) against
// independently written reference computations and well-known IEEE 754 facts.
#include "isa/numerics.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace tpu::isa {
namespace {

constexpr NumericsOptions kFlush{true};
constexpr NumericsOptions kKeep{false};

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

float float_of(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

bool bf16_is_nan(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0; }
bool bf16_is_subnormal(uint16_t b) { return (b & 0x7F80) == 0 && (b & 0x007F) != 0; }

// Independent fp32 -> bf16 rounding for non-NaN inputs: takes the two bf16 neighbours of |x|
// and picks the nearer one by comparing distances in double (exact: the operands are within
// a factor of two of each other), ties to the even one. Beyond the largest finite bf16 the
// upper neighbour is 2^128, which encodes as infinity.
uint16_t reference_round(float x) {
  const uint32_t b = bits_of(x);
  if (std::isinf(x)) return static_cast<uint16_t>(b >> 16);
  const uint32_t sign = b & 0x80000000u;
  const uint32_t lower = b & 0x7FFF0000u;
  const uint32_t upper = lower + 0x10000u;
  const double mag = std::fabs(static_cast<double>(x));
  const double lower_value = float_of(lower);
  const double upper_value = upper == 0x7F800000u ? std::ldexp(1.0, 128) : float_of(upper);
  const double below = mag - lower_value;
  const double above = upper_value - mag;
  uint32_t pick;
  if (below < above) {
    pick = lower;
  } else if (above < below) {
    pick = upper;
  } else {
    pick = ((lower >> 16) & 1u) == 0 ? lower : upper;
  }
  return static_cast<uint16_t>((sign | pick) >> 16);
}

// The flush rule of docs/numerics.md on top of the reference: |x| < 2^-126 -> signed zero.
uint16_t reference_round_flush(float x) {
  if (std::fabs(x) < FLT_MIN) return std::signbit(x) ? 0x8000 : 0x0000;
  return reference_round(x);
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- bf16 ----

TEST(Bf16, WidensWellKnownPatternsExactly) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x3F00), 0.5f);
  EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_fp32(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_fp32(0x0080), FLT_MIN);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-2.0f), 0xC000);
}

TEST(Bf16, RoundTripsAllNonNanPatterns) {
  int checked = 0;
  for (uint32_t p = 0; p <= 0xFFFF; ++p) {
    const uint16_t b = static_cast<uint16_t>(p);
    if (bf16_is_nan(b)) continue;
    ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(b, kKeep), kKeep), b) << hex(b);
    if (!bf16_is_subnormal(b)) {
      ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(b, kFlush), kFlush), b) << hex(b);
      // Widening is exactly a 16-bit shift.
      ASSERT_EQ(bits_of(bf16_to_fp32(b, kFlush)), p << 16) << hex(b);
    }
    ++checked;
  }
  // Every pattern except the NaNs: exponent all ones, mantissa one of 127 non-zero values,
  // two signs.
  EXPECT_EQ(checked, 65536 - 2 * 127);
}

TEST(Bf16, RoundTripKeepsEveryNanANanAndQuietsIt) {
  int nans = 0;
  for (uint32_t p = 0; p <= 0xFFFF; ++p) {
    const uint16_t b = static_cast<uint16_t>(p);
    if (!bf16_is_nan(b)) continue;
    ++nans;
    for (const NumericsOptions& opt : {kKeep, kFlush}) {
      const float wide = bf16_to_fp32(b, opt);
      ASSERT_TRUE(std::isnan(wide)) << hex(b);
      const uint16_t back = fp32_to_bf16(wide, opt);
      ASSERT_TRUE(bf16_is_nan(back)) << hex(b);
      // Sign and payload kept, quiet bit set.
      ASSERT_EQ(back, b | 0x0040) << hex(b);
    }
  }
  EXPECT_EQ(nans, 2 * 127);
}

TEST(Bf16, RoundTripFlushesSubnormalsOnlyWhenEnabled) {
  int subnormals = 0;
  for (uint32_t p = 0; p <= 0xFFFF; ++p) {
    const uint16_t b = static_cast<uint16_t>(p);
    if (!bf16_is_subnormal(b)) continue;
    ++subnormals;
    const uint16_t signed_zero = b & 0x8000;
    const float flushed = bf16_to_fp32(b, kFlush);
    ASSERT_EQ(flushed, 0.0f) << hex(b);
    ASSERT_EQ(std::signbit(flushed), (b & 0x8000) != 0) << hex(b);
    ASSERT_EQ(fp32_to_bf16(flushed, kFlush), signed_zero) << hex(b);
    // The flag also flushes on the way back, even from an unflushed widening.
    ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(b, kKeep), kFlush), signed_zero) << hex(b);
    const float kept = bf16_to_fp32(b, kKeep);
    ASSERT_NE(kept, 0.0f) << hex(b);
    ASSERT_EQ(fp32_to_bf16(kept, kKeep), b) << hex(b);
  }
  EXPECT_EQ(subnormals, 2 * 127);
}

TEST(Bf16, ExactTiesRoundToEvenBothWays) {
  // 1 + 2^-8 lies halfway between 1.0 (0x3F80, even) and 1 + 2^-7 (0x3F81, odd).
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-(1.0f + 0x1p-8f)), 0xBF80);
  // 1 + 3 * 2^-8 lies halfway between 0x3F81 (odd) and 0x3F82 (even): rounds up.
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_EQ(fp32_to_bf16(-(1.0f + 3 * 0x1p-8f)), 0xBF82);
  // A tie whose round-up carries into the exponent: 2 - 2^-8 is halfway between 0x3FFF (odd)
  // and 2.0 (0x4000, even).
  EXPECT_EQ(fp32_to_bf16(2.0f - 0x1p-8f), 0x4000);
}

TEST(Bf16, JustAboveOrBelowATieRoundsToTheNearerNeighbour) {
  const float even_tie = 1.0f + 0x1p-8f;  // between 0x3F80 and 0x3F81
  EXPECT_EQ(fp32_to_bf16(std::nextafter(even_tie, 2.0f)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(std::nextafter(even_tie, 0.0f)), 0x3F80);
  const float odd_tie = 1.0f + 3 * 0x1p-8f;  // between 0x3F81 and 0x3F82
  EXPECT_EQ(fp32_to_bf16(std::nextafter(odd_tie, 2.0f)), 0x3F82);
  EXPECT_EQ(fp32_to_bf16(std::nextafter(odd_tie, 0.0f)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(-std::nextafter(odd_tie, 0.0f)), 0xBF81);
}

TEST(Bf16, OverflowsToInfinityOnlyFromTheLastTieUp) {
  const float largest_finite = bf16_to_fp32(0x7F7F);
  const float last_tie = float_of(0x7F7F8000u);  // halfway between 0x7F7F and 2^128
  EXPECT_EQ(fp32_to_bf16(largest_finite), 0x7F7F);
  EXPECT_EQ(fp32_to_bf16(-largest_finite), 0xFF7F);
  EXPECT_EQ(fp32_to_bf16(std::nextafter(last_tie, 0.0f)), 0x7F7F);  // rounds to max finite
  EXPECT_EQ(fp32_to_bf16(-std::nextafter(last_tie, 0.0f)), 0xFF7F);
  EXPECT_EQ(fp32_to_bf16(last_tie), 0x7F80);  // odd 0x7F7F loses the tie: inf
  EXPECT_EQ(fp32_to_bf16(-last_tie), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(FLT_MAX), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-FLT_MAX), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
}

TEST(Bf16, MatchesNearestNeighbourReferenceOnEveryRoundingClass) {
  // For every bf16 pattern, the fp32 values at each position relative to the next tie.
  const uint32_t lows[] = {0x0000, 0x0001, 0x3FFF, 0x7FFE, 0x7FFF,
                           0x8000, 0x8001, 0xC000, 0xFFFE, 0xFFFF};
  std::mt19937 rng(20240611);
  int mismatches = 0;
  std::string first;
  auto check = [&](uint32_t bits) {
    const float x = float_of(bits);
    if (std::isnan(x)) return;
    const uint16_t got_keep = fp32_to_bf16(x, kKeep);
    const uint16_t got_flush = fp32_to_bf16(x, kFlush);
    if (got_keep != reference_round(x) || got_flush != reference_round_flush(x)) {
      if (mismatches++ == 0) first = hex(bits);
    }
  };
  for (uint32_t high = 0; high <= 0xFFFF; ++high) {
    for (uint32_t low : lows) check(high << 16 | low);
    check(high << 16 | (rng() & 0xFFFF));
  }
  for (int i = 0; i < 1 << 20; ++i) check(rng());
  EXPECT_EQ(mismatches, 0) << "first mismatch at fp32 " << first;
}

TEST(Bf16, SubnormalsRoundLikeNormalsWhenFlushIsOff) {
  // bf16 subnormal 0x0001 is 2^-133 = fp32 0x00010000.
  EXPECT_EQ(fp32_to_bf16(float_of(0x00010000u), kKeep), 0x0001);
  EXPECT_EQ(fp32_to_bf16(float_of(0x80010000u), kKeep), 0x8001);
  EXPECT_EQ(fp32_to_bf16(float_of(0x00018000u), kKeep), 0x0002);  // tie 1.5 ulp -> even 2
  EXPECT_EQ(fp32_to_bf16(float_of(0x00008000u), kKeep), 0x0000);  // tie 0.5 ulp -> even 0
  EXPECT_EQ(fp32_to_bf16(float_of(0x00008001u), kKeep), 0x0001);
  EXPECT_EQ(fp32_to_bf16(float_of(0x00000001u), kKeep), 0x0000);  // smallest fp32 subnormal
  EXPECT_EQ(fp32_to_bf16(float_of(0x80000001u), kKeep), 0x8000);
  // The largest fp32 subnormal rounds up to the smallest normal 2^-126.
  EXPECT_EQ(fp32_to_bf16(float_of(0x007FFFFFu), kKeep), 0x0080);
  EXPECT_EQ(fp32_to_bf16(float_of(0x807FFFFFu), kKeep), 0x8080);
}

TEST(Bf16, SubnormalInputsFlushToSignedZeroWhenEnabled) {
  EXPECT_EQ(fp32_to_bf16(float_of(0x00010000u), kFlush), 0x0000);
  EXPECT_EQ(fp32_to_bf16(float_of(0x80010000u), kFlush), 0x8000);
  EXPECT_EQ(fp32_to_bf16(float_of(0x00000001u), kFlush), 0x0000);
  EXPECT_EQ(fp32_to_bf16(float_of(0x807F0000u), kFlush), 0x8000);
  EXPECT_EQ(fp32_to_bf16(FLT_MIN, kFlush), 0x0080);  // the smallest normal survives
  EXPECT_EQ(fp32_to_bf16(-FLT_MIN, kFlush), 0x8080);
}

TEST(Bf16, LargestFp32SubnormalFlushesEvenThoughItWouldRoundToMinNormal) {
  // Documented boundary rule: the flush is decided on the input, before rounding.
  const float largest_subnormal = std::nextafter(FLT_MIN, 0.0f);
  ASSERT_EQ(bits_of(largest_subnormal), 0x007FFFFFu);
  EXPECT_EQ(fp32_to_bf16(largest_subnormal, kKeep), 0x0080);
  EXPECT_EQ(fp32_to_bf16(largest_subnormal, kFlush), 0x0000);
  EXPECT_EQ(fp32_to_bf16(-largest_subnormal, kFlush), 0x8000);
  // Just above the boundary nothing flushes, and values round into the smallest normal.
  EXPECT_EQ(fp32_to_bf16(std::nextafter(FLT_MIN, 1.0f), kFlush), 0x0080);
}

TEST(Bf16, NanKeepsSignAndTopPayloadAndBecomesQuiet) {
  EXPECT_EQ(fp32_to_bf16(float_of(0x7FC00000u)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(float_of(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(fp32_to_bf16(float_of(0x7FC12345u)), 0x7FC1);         // low payload dropped
  EXPECT_EQ(fp32_to_bf16(float_of(0x7FA50000u)), 0x7FA5 | 0x40);  // signalling -> quiet
  EXPECT_EQ(fp32_to_bf16(float_of(0xFF810000u)), 0xFF81 | 0x40);
  EXPECT_EQ(fp32_to_bf16(float_of(0x7FC00000u), kKeep), 0x7FC0);
}

TEST(Bf16, SignallingNanWithPayloadOnlyInLowBitsStaysNan) {
  // Truncating 0x7F800001 alone would give 0x7F80, which is +inf.
  for (uint32_t bits : {0x7F800001u, 0x7F808000u, 0x7F80FFFFu, 0xFF800001u}) {
    for (const NumericsOptions& opt : {kKeep, kFlush}) {
      const uint16_t b = fp32_to_bf16(float_of(bits), opt);
      EXPECT_TRUE(bf16_is_nan(b)) << hex(bits) << " -> " << hex(b);
      EXPECT_EQ(b & 0x8000, (bits >> 16) & 0x8000) << hex(bits);
    }
  }
}

TEST(Bf16, NanWithAllPayloadBitsSetDoesNotCarryIntoTheSign) {
  // Rounding 0x7FFFFFFF like a number would carry out to 0x8000 (-0.0).
  EXPECT_EQ(fp32_to_bf16(float_of(0x7FFFFFFFu)), 0x7FFF);
  EXPECT_EQ(fp32_to_bf16(float_of(0xFFFFFFFFu)), 0xFFFF);
}

TEST(Bf16, NegativeZeroKeepsItsSign) {
  EXPECT_EQ(fp32_to_bf16(-0.0f, kFlush), 0x8000);
  EXPECT_EQ(fp32_to_bf16(-0.0f, kKeep), 0x8000);
  EXPECT_EQ(fp32_to_bf16(0.0f, kFlush), 0x0000);
  EXPECT_TRUE(std::signbit(bf16_to_fp32(0x8000, kFlush)));
  EXPECT_EQ(bf16_to_fp32(0x8000, kFlush), 0.0f);
}

TEST(Bf16, ProductIsExactInFp32UnlessItOverflowsOrUnderflows) {
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    // Exponents within +-60 keep the product far from fp32's range limits.
    const uint16_t a = static_cast<uint16_t>((rng() & 0x807F) | ((127 + rng() % 121 - 60) << 7));
    const uint16_t b = static_cast<uint16_t>((rng() & 0x807F) | ((127 + rng() % 121 - 60) << 7));
    const double exact =
        static_cast<double>(bf16_to_fp32(a, kKeep)) * static_cast<double>(bf16_to_fp32(b, kKeep));
    ASSERT_EQ(static_cast<double>(bf16_mul(a, b, kFlush)), exact) << hex(a) << " " << hex(b);
  }
  // The largest finite bf16 squared is about 2^256: inf.
  EXPECT_EQ(bf16_mul(0x7F7F, 0x7F7F), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_mul(0x7F7F, 0xFF7F), -std::numeric_limits<float>::infinity());
}

TEST(Bf16, ProductFlushesSubnormalOperandsButNotTheResult) {
  EXPECT_EQ(bf16_mul(0x0001, 0x3F80, kFlush), 0.0f);  // subnormal * 1.0
  EXPECT_EQ(bf16_mul(0x0001, 0x3F80, kKeep), bf16_to_fp32(0x0001, kKeep));
  EXPECT_TRUE(std::signbit(bf16_mul(0x8001, 0x3F80, kFlush)));
  // 2^-126 * 0.5 = 2^-127 is an fp32 subnormal and is returned as such (no product flush).
  EXPECT_EQ(bf16_mul(0x0080, 0x3F00, kFlush), FLT_MIN / 2);
}

// The NaN operand rule of the MAC's fp32 sum and product: the first operand's NaN when it is
// one, else the second's, always quieted with the payload kept; non-NaN invalid operations
// give a NaN. Checked in both operand orders, so a swapped implementation fails.
TEST(Fp32Ops, NanOperandsPropagateFirstOperandFirstQuieted) {
  auto f = [](uint32_t bits) {
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  };
  auto bits = [](float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return b;
  };
  const float q1 = f(0x7FC12345u), q2 = f(0xFFE00001u), s1 = f(0x7F800777u);
  for (auto op : {&fl32_add, &fl32_mul}) {
    EXPECT_EQ(bits(op(q1, q2)), 0x7FC12345u);
    EXPECT_EQ(bits(op(q2, q1)), 0xFFE00001u);
    EXPECT_EQ(bits(op(s1, q2)), 0x7FC00777u);  // signalling first: quieted, payload kept
    EXPECT_EQ(bits(op(q2, s1)), 0xFFE00001u);
    EXPECT_EQ(bits(op(1.5f, s1)), 0x7FC00777u);
    EXPECT_EQ(bits(op(s1, -0.0f)), 0x7FC00777u);
    EXPECT_EQ(bits(op(-2.0f, q2)), 0xFFE00001u);
  }
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(fl32_add(inf, -inf)));
  EXPECT_TRUE(std::isnan(fl32_mul(0.0f, inf)));
  EXPECT_EQ(fl32_add(0.1f, 0.2f), 0.1f + 0.2f);
  EXPECT_EQ(fl32_mul(0.1f, 3.0f), 0.1f * 3.0f);
  // bf16_mul follows the same rule on the widened operands: a's NaN first.
  EXPECT_EQ(bits(bf16_mul(0x7F81, 0xFFC3)), 0x7FC10000u);
  EXPECT_EQ(bits(bf16_mul(0xFFC3, 0x7F81)), 0xFFC30000u);
}

TEST(FpEnvironment, HasGradualUnderflowForFp32Arithmetic) {
  // A flush-to-zero / denormals-are-zero mode (e.g. from -ffast-math) would change results.
  volatile float min_normal = FLT_MIN;
  volatile float half = 0.5f;
  const float product = min_normal * half;
  EXPECT_NE(product, 0.0f);
  EXPECT_EQ(bits_of(product), 0x00400000u);
}

// ---- int32 / gemmlowp ----

// Two's-complement reduction of an exact integer to int32.
int32_t wrap_to_int32(__int128 v) {
  uint64_t low = static_cast<uint64_t>(v) & 0xFFFFFFFFu;
  return static_cast<int32_t>(low >= 0x80000000u ? static_cast<int64_t>(low) - (int64_t{1} << 32)
                                                 : static_cast<int64_t>(low));
}

__int128 floor_div(__int128 n, __int128 d) {  // d > 0
  __int128 q = n / d;
  if (n % d != 0 && n < 0) --q;
  return q;
}

// a*b/2^31 rounded to nearest, ties toward +infinity; INT32_MIN^2 saturates.
int32_t reference_high_mul(int32_t a, int32_t b) {
  if (a == kInt32Min && b == kInt32Min) return kInt32Max;
  const __int128 p = static_cast<__int128>(a) * b;
  return static_cast<int32_t>(floor_div(p + (__int128{1} << 30), __int128{1} << 31));
}

// x / 2^e rounded to nearest, ties away from zero, on the magnitude.
int32_t reference_divide_by_pot(int32_t x, int e) {
  const __int128 v = x;
  const __int128 mag = v < 0 ? -v : v;
  const __int128 q = e == 0 ? mag : (mag + (__int128{1} << (e - 1))) >> e;
  return static_cast<int32_t>(v < 0 ? -q : q);
}

int32_t reference_mbqm(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t shifted = wrap_to_int32(static_cast<__int128>(x) * (__int128{1} << left));
  return reference_divide_by_pot(reference_high_mul(shifted, multiplier), right);
}

std::vector<int32_t> edge_int32s() {
  return {kInt32Min, kInt32Min + 1, -(1 << 30) - 1, -(1 << 30),    -65536,   -3, -2, -1, 0, 1, 2, 3,
          65536,     1 << 30,       (1 << 30) + 1,  kInt32Max - 1, kInt32Max};
}

TEST(WrapAdd, WrapsModulo2To32AtBothEnds) {
  EXPECT_EQ(wrap_add(kInt32Max, 1), kInt32Min);
  EXPECT_EQ(wrap_add(kInt32Min, -1), kInt32Max);
  EXPECT_EQ(wrap_add(kInt32Min, kInt32Min), 0);
  for (int32_t a : edge_int32s()) {
    for (int32_t b : edge_int32s()) {
      ASSERT_EQ(wrap_add(a, b), wrap_to_int32(static_cast<__int128>(a) + b)) << a << " " << b;
    }
  }
}

TEST(SaturatingRoundingDoublingHighMul, SaturatesOnlyForMinTimesMin) {
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Min, kInt32Min), kInt32Max);
  // -2^31 * (-2^31 + 1) / 2^31 = 2^31 - 1 exactly: no saturation needed.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Min, kInt32Min + 1), kInt32Max);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Min, kInt32Max), kInt32Min + 1);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(kInt32Max, kInt32Max), kInt32Max - 1);
}

TEST(SaturatingRoundingDoublingHighMul, TiesRoundTowardPositiveInfinity) {
  // 2^15 * 2^15 / 2^31 = +0.5 -> 1;  -0.5 -> 0;  3 * 2^30 / 2^31 = 1.5 -> 2;  -1.5 -> -1.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15), 1);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15), 0);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
  // Just past a negative tie rounds away.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-(1 << 15) - 1, 1 << 15), -1);
}

TEST(SaturatingRoundingDoublingHighMul, MatchesExactInt128Reference) {
  const std::vector<int32_t> edges = edge_int32s();
  for (int32_t a : edges) {
    for (int32_t b : edges) {
      ASSERT_EQ(saturating_rounding_doubling_high_mul(a, b), reference_high_mul(a, b))
          << a << " " << b;
    }
  }
  std::mt19937 rng(31);
  for (int i = 0; i < 300000; ++i) {
    const int32_t a = static_cast<int32_t>(rng());
    // Small b too, so that exact ties (low 31 bits == 2^30) actually occur.
    const int32_t b = (i & 1) ? static_cast<int32_t>(rng()) : static_cast<int32_t>(rng() % 9) - 4;
    const int32_t a_tie = (i % 3 == 0) ? static_cast<int32_t>(rng() % 65536) - 32768 : a;
    const int32_t b_tie = (i % 3 == 0) ? (1 << 30) : b;
    ASSERT_EQ(saturating_rounding_doubling_high_mul(a_tie, b_tie), reference_high_mul(a_tie, b_tie))
        << a_tie << " " << b_tie;
  }
}

TEST(RoundingDivideByPot, TiesRoundAwayFromZero) {
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);    // 2.5
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);  // -2.5
  EXPECT_EQ(rounding_divide_by_pot(3, 1), 2);    // 1.5
  EXPECT_EQ(rounding_divide_by_pot(-3, 1), -2);
  EXPECT_EQ(rounding_divide_by_pot(7, 2), 2);    // 1.75
  EXPECT_EQ(rounding_divide_by_pot(-5, 2), -1);  // -1.25
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);  // -1.5
  EXPECT_EQ(rounding_divide_by_pot(-7, 0), -7);
}

TEST(RoundingDivideByPot, MatchesExactReferenceAtEveryExponent) {
  std::mt19937 rng(5);
  for (int e = 0; e <= 31; ++e) {
    for (int32_t x : edge_int32s()) {
      ASSERT_EQ(rounding_divide_by_pot(x, e), reference_divide_by_pot(x, e)) << x << " " << e;
    }
    for (int i = 0; i < 20000; ++i) {
      int32_t x = static_cast<int32_t>(rng());
      // Force exact ties and near-ties at this exponent.
      if (e > 0 && i % 4 == 0) {
        const uint32_t half = 1u << (e - 1);
        const uint32_t low = static_cast<uint32_t>(x) & ~((half << 1) - 1u);
        x = static_cast<int32_t>(low | (half + static_cast<uint32_t>(i % 3) - 1u));
      }
      ASSERT_EQ(rounding_divide_by_pot(x, e), reference_divide_by_pot(x, e)) << x << " " << e;
    }
  }
}

TEST(MultiplyByQuantizedMultiplier, MatchesExactInt128ReferenceOnSeededSweep) {
  std::mt19937_64 rng(0x7155eed);
  const int32_t edge_multipliers[] = {0, 1 << 30, (1 << 30) + 1, kInt32Max - 1, kInt32Max};
  for (int shift = -31; shift <= 30; ++shift) {
    for (int32_t m : edge_multipliers) {
      for (int32_t x : edge_int32s()) {
        ASSERT_EQ(multiply_by_quantized_multiplier(x, m, shift), reference_mbqm(x, m, shift))
            << x << " " << m << " " << shift;
      }
    }
  }
  for (int i = 0; i < 400000; ++i) {
    const int shift = static_cast<int>(rng() % 62) - 31;
    const int32_t m = static_cast<int32_t>((1u << 30) | (rng() & 0x3FFFFFFFu));
    int32_t x = static_cast<int32_t>(rng());
    if (i % 2 == 0) x >>= rng() % 31;  // plenty of small accumulators too
    ASSERT_EQ(multiply_by_quantized_multiplier(x, m, shift), reference_mbqm(x, m, shift))
        << x << " " << m << " " << shift;
  }
}

TEST(MultiplyByQuantizedMultiplier, LeftShiftWrapsInsteadOfOverflowing) {
  // 2^20 << 12 = 2^32 wraps to 0; 3 << 30 wraps to -2^30.
  EXPECT_EQ(multiply_by_quantized_multiplier(1 << 20, 1 << 30, 12), 0);
  EXPECT_EQ(multiply_by_quantized_multiplier(3, kInt32Max, 30),
            saturating_rounding_doubling_high_mul(-(1 << 30), kInt32Max));
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Min, 1 << 30, 1), 0);
}

TEST(MultiplyByQuantizedMultiplier, HandlesShiftRangeEnds) {
  // multiplier 2^30 is 0.5 in Q31: result = x * 2^(shift - 1) with the two roundings.
  EXPECT_EQ(multiply_by_quantized_multiplier(1, 1 << 30, 30), 1 << 29);
  EXPECT_EQ(multiply_by_quantized_multiplier(-1, 1 << 30, 30), -(1 << 29));
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Max, kInt32Max, -31), 1);  // ~0.99999
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Min, kInt32Max, -31), -1);
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Min, 1 << 30, -31), -1);  // -0.5: away
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Max, 0, 30), 0);
}

// TFLite's TFLITE_SINGLE_ROUNDING variant: one round-half-up of x*m / 2^(31 - shift).
int32_t single_rounding_mbqm(int32_t x, int32_t m, int shift) {
  const int total_shift = 31 - shift;
  const int64_t round = int64_t{1} << (total_shift - 1);
  return static_cast<int32_t>((static_cast<int64_t>(x) * m + round) >> total_shift);
}

TEST(MultiplyByQuantizedMultiplier, DoubleRoundingDiffersFromSingleRoundingByAtMostOne) {
  std::mt19937 rng(99);
  int differences = 0;
  for (int i = 0; i < 200000; ++i) {
    const int shift = -static_cast<int>(rng() % 20);  // right shifts, the usual case
    const int32_t m = static_cast<int32_t>((1u << 30) | (rng() & 0x3FFFFFFFu));
    const int32_t x = static_cast<int32_t>(rng() % 2000001) - 1000000;
    const int32_t ours = multiply_by_quantized_multiplier(x, m, shift);
    const int32_t single = single_rounding_mbqm(x, m, shift);
    ASSERT_LE(std::abs(ours - single), 1) << x << " " << m << " " << shift;
    if (ours != single) ++differences;
  }
  // The variants really are different, so the choice in docs/numerics.md matters.
  EXPECT_GT(differences, 0);
}

TEST(QuantizeMultiplier, ZeroGivesZeroMultiplierAndShift) {
  int32_t m = -1;
  int shift = -1;
  quantize_multiplier(0.0, &m, &shift);
  EXPECT_EQ(m, 0);
  EXPECT_EQ(shift, 0);
}

TEST(QuantizeMultiplier, PowersOfTwoGiveHalfInQ31) {
  for (int e = -32; e <= 29; ++e) {
    int32_t m = 0;
    int shift = 0;
    quantize_multiplier(std::ldexp(1.0, e), &m, &shift);  // 2^e = 0.5 * 2^(e + 1)
    EXPECT_EQ(m, 1 << 30) << e;
    EXPECT_EQ(shift, e + 1) << e;
  }
}

TEST(QuantizeMultiplier, RoundTripsRealMultipliersWithinHalfAQ31Ulp) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> mantissa(0.5, 1.0);
  for (int i = 0; i < 200000; ++i) {
    const int e = static_cast<int>(rng() % 61) - 31;  // reals in [2^-32, 2^29)
    const double real = std::ldexp(mantissa(rng), e);
    int32_t m = 0;
    int shift = 0;
    quantize_multiplier(real, &m, &shift);
    ASSERT_GE(m, 1 << 30) << real;
    ASSERT_GE(shift, -31) << real;
    ASSERT_LE(shift, 30) << real;
    const double back = std::ldexp(static_cast<double>(m), shift - 31);
    // The Q31 significand is rounded to nearest: error <= 2^-32 relative to q in [0.5, 1).
    ASSERT_LE(std::fabs(back - real), std::ldexp(1.0, shift - 32)) << real;
  }
}

TEST(QuantizeMultiplier, SignificandRoundingUpToOneMovesToTheNextShift) {
  int32_t m = 0;
  int shift = 0;
  const double just_below_one = 1.0 - std::ldexp(1.0, -40);  // q * 2^31 rounds to 2^31
  quantize_multiplier(just_below_one, &m, &shift);
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(shift, 1);
  EXPECT_EQ(std::ldexp(static_cast<double>(m), shift - 31), 1.0);
}

TEST(QuantizeMultiplier, MultipliersBelowTwoToTheMinus32BecomeZero) {
  int32_t m = -1;
  int shift = -1;
  quantize_multiplier(std::ldexp(1.0, -33), &m, &shift);  // frexp shift -32 < -31
  EXPECT_EQ(m, 0);
  EXPECT_EQ(shift, 0);
  quantize_multiplier(std::ldexp(0.75, -32), &m, &shift);  // shift -32 as well
  EXPECT_EQ(m, 0);
  quantize_multiplier(std::ldexp(1.0, -32), &m, &shift);  // shift -31 is still kept
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(shift, -31);
  // The smallest kept multiplier still affects results.
  EXPECT_EQ(multiply_by_quantized_multiplier(kInt32Max, m, shift), 1);
}

// ---- requantize ----

int8_t reference_requantize(int32_t acc, const RequantParams& p, int32_t zp, int32_t act_min,
                            int32_t act_max) {
  const int32_t with_bias = wrap_to_int32(static_cast<__int128>(acc) + p.bias);
  const __int128 v = static_cast<__int128>(reference_mbqm(with_bias, p.multiplier, p.shift)) + zp;
  const __int128 lo = act_min > -128 ? act_min : -128;
  const __int128 hi = act_max < 127 ? act_max : 127;
  return static_cast<int8_t>(v < lo ? lo : (v > hi ? hi : v));
}

TEST(Requantize, MatchesExactReferenceOnSeededSweep) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300000; ++i) {
    RequantParams p;
    const double real =
        std::ldexp(0.5 + 0.5 * (rng() % 1000000) / 1e6, -static_cast<int>(rng() % 20));
    quantize_multiplier(real, &p.multiplier, &p.shift);
    p.bias = static_cast<int32_t>(rng() % 200001) - 100000;
    if (i % 50 == 0) p.bias = static_cast<int32_t>(rng());  // wrapping biases
    int32_t acc = static_cast<int32_t>(rng() % 2000001) - 1000000;
    if (i % 50 == 1) acc = static_cast<int32_t>(rng());
    const int32_t zp = static_cast<int32_t>(rng() % 256) - 128;
    int32_t act_min = -128;
    int32_t act_max = 127;
    if (i % 4 == 0) act_min = zp > -128 ? zp : -128;  // fused ReLU
    const int8_t got = requantize(acc, p, zp, act_min, act_max);
    ASSERT_EQ(got, reference_requantize(acc, p, zp, act_min, act_max))
        << acc << " " << p.bias << " " << p.multiplier << " " << p.shift << " " << zp;
  }
}

TEST(Requantize, HalfwayCasesFollowTheTwoTfliteRoundings) {
  RequantParams half;  // real multiplier 0.5: rounding happens in the high multiply only
  quantize_multiplier(0.5, &half.multiplier, &half.shift);
  ASSERT_EQ(half.shift, 0);
  EXPECT_EQ(requantize(3, half, 0, -128, 127), 2);    // 1.5 -> 2
  EXPECT_EQ(requantize(-3, half, 0, -128, 127), -1);  // -1.5 -> -1 (tie toward +inf)
  RequantParams quarter;  // 0.25: the high multiply is exact for even x, then divide by 2
  quantize_multiplier(0.25, &quarter.multiplier, &quarter.shift);
  ASSERT_EQ(quarter.shift, -1);
  EXPECT_EQ(requantize(6, quarter, 0, -128, 127), 2);    // 1.5 -> 2
  EXPECT_EQ(requantize(-6, quarter, 0, -128, 127), -2);  // -1.5 -> -2 (tie away from zero)
}

TEST(Requantize, AddsBiasWithWrapBeforeScaling) {
  RequantParams p;
  quantize_multiplier(1.0 / 65536.0, &p.multiplier, &p.shift);
  p.bias = 1;
  // INT32_MAX + 1 wraps to INT32_MIN; INT32_MIN / 65536 = -32768, saturated to -128.
  EXPECT_EQ(requantize(kInt32Max, p, 0, -128, 127), -128);
  p.bias = 65536 * 5;
  EXPECT_EQ(requantize(-65536 * 2, p, 0, -128, 127), 3);
}

TEST(Requantize, ClampsToActivationRangeAndInt8) {
  RequantParams one;
  quantize_multiplier(1.0, &one.multiplier, &one.shift);
  EXPECT_EQ(requantize(1000, one, 0, -128, 127), 127);
  EXPECT_EQ(requantize(-1000, one, 0, -128, 127), -128);
  EXPECT_EQ(requantize(50, one, 10, -128, 40), 40);
  EXPECT_EQ(requantize(-50, one, 10, -5, 127), -5);
  EXPECT_EQ(requantize(20, one, -3, -128, 127), 17);
  // An activation range wider than int8 is still cut to int8.
  EXPECT_EQ(requantize(500, one, 0, -1000, 1000), 127);
  EXPECT_EQ(requantize(-500, one, 0, -1000, 1000), -128);
}

TEST(Requantize, ZeroPointAdditionCannotOverflow) {
  // Scaled values next to the int32 limits: adding the zero point in int32 would overflow
  // (the sanitizer build would report it).
  const RequantParams p{0, kInt32Max, 0};
  ASSERT_EQ(multiply_by_quantized_multiplier(kInt32Max, p.multiplier, p.shift), kInt32Max - 1);
  ASSERT_EQ(multiply_by_quantized_multiplier(kInt32Min, p.multiplier, p.shift), kInt32Min + 1);
  EXPECT_EQ(requantize(kInt32Max, p, 127, -128, 127), 127);
  EXPECT_EQ(requantize(kInt32Min, p, -128, -128, 127), -128);
}

TEST(SaturateInt8, ClampsToInt8Range) {
  for (int32_t x : edge_int32s()) {
    const int32_t expected = x < -128 ? -128 : (x > 127 ? 127 : x);
    EXPECT_EQ(saturate_int8(x), expected) << x;
  }
  for (int32_t x = -300; x <= 300; ++x) {
    EXPECT_EQ(saturate_int8(x), x < -128 ? -128 : (x > 127 ? 127 : x)) << x;
  }
}

}  // namespace
}  // namespace tpu::isa
