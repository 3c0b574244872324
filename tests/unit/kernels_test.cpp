// Tests of the golden reference kernels against independently written loops: the pinned fp32
// accumulation order, int32 wrap-around, TFLite pooling rounding, activations, elementwise ops.
#include "isa/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

namespace tpu::isa {
namespace {

constexpr NumericsOptions kFlush{true};
constexpr NumericsOptions kKeep{false};

static_assert(std::size(kActivationNames) == kActivationCount);
static_assert(std::size(kPoolKindNames) == kPoolKindCount);
static_assert(std::size(kVectorOpNames) == kVectorOpCount);
static_assert(std::size(kRowOpKindNames) == kRowOpKindCount);

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Independent widening: the bf16 pattern is the high half of the fp32 pattern.
float widen(uint16_t b, bool flush) {
  if (flush && (b & 0x7F80) == 0) b &= 0x8000;
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// A random finite bf16 with an unbiased exponent in [-spread, spread]; spread 127 also
// reaches the zero/subnormal exponent field.
uint16_t random_bf16(std::mt19937& rng, int spread) {
  const uint32_t exponent =
      static_cast<uint32_t>(127 - spread + static_cast<int>(rng() % (2 * spread + 1)));
  return static_cast<uint16_t>((rng() & 0x8000u) | (exponent << 7) | (rng() & 0x7Fu));
}

int32_t wrap_int64(int64_t v) {
  const uint32_t low = static_cast<uint32_t>(static_cast<uint64_t>(v));
  return low >= 0x80000000u ? static_cast<int32_t>(static_cast<int64_t>(low) - (int64_t{1} << 32))
                            : static_cast<int32_t>(low);
}

// ---- matmul_pass_int8 ----

TEST(MatmulPassInt8, MatchesInt64ReferenceWithStrides) {
  std::mt19937 rng(11);
  const int m = 5, k = 37, n = 7;
  const std::size_t lda = k + 3, ldw = n + 2, ldacc = n + 4;
  std::vector<int8_t> a(m * lda), w(k * ldw);
  for (auto& v : a) v = static_cast<int8_t>(rng());
  for (auto& v : w) v = static_cast<int8_t>(rng());
  for (bool accumulate : {false, true}) {
    std::vector<int32_t> acc(m * ldacc);
    for (auto& v : acc) v = static_cast<int32_t>(rng());
    const std::vector<int32_t> before = acc;
    matmul_pass_int8(a.data(), lda, w.data(), ldw, m, k, n, acc.data(), ldacc, accumulate);
    for (int i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < ldacc; ++j) {
        const std::size_t at = i * ldacc + j;
        if (j >= static_cast<std::size_t>(n)) {
          EXPECT_EQ(acc[at], before[at]) << "stride padding written at " << i << "," << j;
          continue;
        }
        int64_t sum = accumulate ? before[at] : 0;
        for (int kk = 0; kk < k; ++kk) sum += int64_t{a[i * lda + kk]} * w[kk * ldw + j];
        EXPECT_EQ(acc[at], wrap_int64(sum)) << i << "," << j << " accumulate=" << accumulate;
      }
    }
  }
}

TEST(MatmulPassInt8, AccumulatorWrapsWhenTheSumOverflows) {
  // (-128) * (-128) = 2^14 per step; 2^17 + 1 steps exceed INT32_MAX.
  const int k = (1 << 17) + 1;
  std::vector<int8_t> a(k, -128), w(k, -128);
  int32_t acc = 0;
  matmul_pass_int8(a.data(), k, w.data(), 1, 1, k, 1, &acc, 1, false);
  const int64_t exact = int64_t{k} * 16384;
  ASSERT_GT(exact, std::numeric_limits<int32_t>::max());
  EXPECT_LT(acc, 0);  // wrapped, did not saturate
  EXPECT_EQ(acc, wrap_int64(exact));
}

TEST(MatmulPassInt8, AccumulateWrapsFromAPreloadedAccumulator) {
  const int8_t a[2] = {127, -128};
  const int8_t w[2] = {127, 1};
  int32_t acc = std::numeric_limits<int32_t>::max() - 10;
  matmul_pass_int8(a, 2, w, 1, 1, 2, 1, &acc, 1, true);
  EXPECT_EQ(acc, wrap_int64(int64_t{std::numeric_limits<int32_t>::max()} - 10 + 127 * 127 - 128));
  EXPECT_LT(acc, 0);
}

// ---- matmul_pass_bf16 ----

// Independent statement of the pinned order for one output (m, n).
float forward_sum(const std::vector<uint16_t>& a, std::size_t lda, const std::vector<uint16_t>& w,
                  std::size_t ldw, int row, int col, int k_begin, int k_end, bool flush) {
  float s = 0.0f;
  for (int kk = k_begin; kk < k_end; ++kk) {
    s += widen(a[row * lda + kk], flush) * widen(w[kk * ldw + col], flush);
  }
  return s;
}

float reversed_sum(const std::vector<uint16_t>& a, std::size_t lda, const std::vector<uint16_t>& w,
                   std::size_t ldw, int row, int col, int k) {
  float s = 0.0f;
  for (int kk = k - 1; kk >= 0; --kk)
    s += widen(a[row * lda + kk], false) * widen(w[kk * ldw + col], false);
  return s;
}

float pairwise_sum(const std::vector<float>& products, std::size_t begin, std::size_t end) {
  if (end - begin == 1) return products[begin];
  const std::size_t mid = begin + (end - begin) / 2;
  return pairwise_sum(products, begin, mid) + pairwise_sum(products, mid, end);
}

TEST(MatmulPassBf16, EqualsIndependentLoopBitForBit) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 20; ++trial) {
    const int m = 1 + static_cast<int>(rng() % 9), k = 1 + static_cast<int>(rng() % 70),
              n = 1 + static_cast<int>(rng() % 9);
    const std::size_t lda = k + rng() % 3, ldw = n + rng() % 3, ldacc = n + rng() % 3;
    std::vector<uint16_t> a(m * lda), w(k * ldw);
    for (auto& v : a) v = random_bf16(rng, 30);
    for (auto& v : w) v = random_bf16(rng, 30);
    a[0] = 0x0003;  // a subnormal operand, flushed or not
    const bool flush = trial % 2 == 0;
    const bool accumulate = trial % 3 == 0;
    std::vector<float> acc(m * ldacc);
    for (auto& v : acc) v = widen(random_bf16(rng, 30), false);
    const std::vector<float> before = acc;
    matmul_pass_bf16(a.data(), lda, w.data(), ldw, m, k, n, acc.data(), ldacc, accumulate,
                     flush ? kFlush : kKeep);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        const float s = forward_sum(a, lda, w, ldw, i, j, 0, k, flush);
        const float expected = accumulate ? before[i * ldacc + j] + s : s;
        ASSERT_EQ(bits_of(acc[i * ldacc + j]), bits_of(expected))
            << "trial " << trial << " at " << i << "," << j;
      }
    }
  }
}

TEST(MatmulPassBf16, OrderIsPinnedReversedOrPairwiseSumsDiffer) {
  std::mt19937 rng(77);
  const int m = 4, k = 64, n = 4;
  std::vector<uint16_t> a(m * k), w(k * n);
  for (auto& v : a) v = random_bf16(rng, 12);
  for (auto& v : w) v = random_bf16(rng, 12);
  std::vector<float> acc(m * n);
  matmul_pass_bf16(a.data(), k, w.data(), n, m, k, n, acc.data(), n, false, kKeep);
  int differs_reversed = 0, differs_pairwise = 0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const uint32_t got = bits_of(acc[i * n + j]);
      ASSERT_EQ(got, bits_of(forward_sum(a, k, w, n, i, j, 0, k, false)));
      if (got != bits_of(reversed_sum(a, k, w, n, i, j, k))) ++differs_reversed;
      std::vector<float> products;
      for (int kk = 0; kk < k; ++kk)
        products.push_back(widen(a[i * k + kk], false) * widen(w[kk * n + j], false));
      if (got != bits_of(pairwise_sum(products, 0, products.size()))) ++differs_pairwise;
    }
  }
  // Another order would give other bits, so the pinned order is observable.
  EXPECT_GT(differs_reversed, 0);
  EXPECT_GT(differs_pairwise, 0);
}

TEST(MatmulPassBf16, TwoPassesAddPassSumsToTheAccumulatorInProgramOrder) {
  std::mt19937 rng(5);
  const int m = 4, k = 64, n = 4, half = k / 2;
  std::vector<uint16_t> a(m * k), w(k * n);
  for (auto& v : a) v = random_bf16(rng, 12);
  for (auto& v : w) v = random_bf16(rng, 12);
  std::vector<float> split(m * n), single(m * n);
  // Pass 1 over k in [0, 32), pass 2 over [32, 64): the second starts at row `half`.
  matmul_pass_bf16(a.data(), k, w.data(), n, m, half, n, split.data(), n, false, kKeep);
  matmul_pass_bf16(a.data() + half, k, w.data() + half * n, n, m, half, n, split.data(), n, true,
                   kKeep);
  matmul_pass_bf16(a.data(), k, w.data(), n, m, k, n, single.data(), n, false, kKeep);
  int differs_from_single_pass = 0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const float s1 = forward_sum(a, k, w, n, i, j, 0, half, false);
      const float s2 = forward_sum(a, k, w, n, i, j, half, k, false);
      ASSERT_EQ(bits_of(split[i * n + j]), bits_of(s1 + s2));
      if (bits_of(split[i * n + j]) != bits_of(single[i * n + j])) ++differs_from_single_pass;
    }
  }
  // Where the pass boundary falls is part of the result.
  EXPECT_GT(differs_from_single_pass, 0);
}

TEST(MatmulPassBf16, PartialSumStartsAtPositiveZero) {
  const uint16_t a[3] = {0x8000, 0x8000, 0x8000};  // -0.0
  const uint16_t w[3] = {0x3F80, 0x3F80, 0x3F80};  // 1.0
  float acc = 123.0f;
  matmul_pass_bf16(a, 3, w, 1, 1, 3, 1, &acc, 1, false);
  // Every product is -0.0, but +0.0 + -0.0 = +0.0 under round to nearest.
  EXPECT_EQ(bits_of(acc), 0u);
  acc = 123.0f;
  matmul_pass_bf16(a, 0, w, 1, 1, 0, 1, &acc, 1, false);  // K = 0 writes +0.0
  EXPECT_EQ(bits_of(acc), 0u);
}

TEST(MatmulPassBf16, FlushesSubnormalOperandsOnlyWhenEnabled) {
  const uint16_t a[1] = {0x0001};  // 2^-133
  const uint16_t w[1] = {0x4000};  // 2.0
  float acc = 0.0f;
  matmul_pass_bf16(a, 1, w, 1, 1, 1, 1, &acc, 1, false, kFlush);
  EXPECT_EQ(acc, 0.0f);
  matmul_pass_bf16(a, 1, w, 1, 1, 1, 1, &acc, 1, false, kKeep);
  EXPECT_EQ(acc, std::ldexp(1.0f, -132));
}

// ---- activations ----

TEST(Activation, NoneReturnsTheInputBits) {
  for (float x : {0.0f, -0.0f, 1.5f, -3.0e38f, std::numeric_limits<float>::quiet_NaN()}) {
    EXPECT_EQ(bits_of(apply_activation(x, Activation::kNone)), bits_of(x));
  }
}

TEST(Activation, ReluAndRelu6ClampAndPassNanThrough) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(apply_activation(-1.0f, Activation::kRelu), 0.0f);
  EXPECT_EQ(apply_activation(2.5f, Activation::kRelu), 2.5f);
  EXPECT_EQ(apply_activation(inf, Activation::kRelu), inf);
  EXPECT_EQ(bits_of(apply_activation(-inf, Activation::kRelu)), 0u);
  EXPECT_TRUE(std::isnan(apply_activation(nan, Activation::kRelu)));
  EXPECT_EQ(bits_of(apply_activation(-0.0f, Activation::kRelu)), bits_of(-0.0f));
  EXPECT_EQ(apply_activation(7.0f, Activation::kRelu6), 6.0f);
  EXPECT_EQ(apply_activation(5.5f, Activation::kRelu6), 5.5f);
  EXPECT_EQ(apply_activation(-7.0f, Activation::kRelu6), 0.0f);
  EXPECT_EQ(apply_activation(inf, Activation::kRelu6), 6.0f);
  EXPECT_TRUE(std::isnan(apply_activation(nan, Activation::kRelu6)));
}

TEST(Activation, SigmoidAndTanhAreTheFloatLibmFormulas) {
  EXPECT_EQ(apply_activation(0.0f, Activation::kSigmoid), 0.5f);
  EXPECT_EQ(apply_activation(0.0f, Activation::kTanh), 0.0f);
  for (int i = -4000; i <= 4000; ++i) {
    const float x = static_cast<float>(i) / 200.0f;
    const float sigmoid = 1.0f / (1.0f + std::exp(-x));
    ASSERT_EQ(bits_of(apply_activation(x, Activation::kSigmoid)), bits_of(sigmoid)) << x;
    ASSERT_EQ(bits_of(apply_activation(x, Activation::kTanh)), bits_of(std::tanh(x))) << x;
    // And they really are sigmoid / tanh.
    ASSERT_NEAR(apply_activation(x, Activation::kSigmoid), 1.0 / (1.0 + std::exp(-double{x})),
                1e-6);
    ASSERT_NEAR(apply_activation(x, Activation::kTanh), std::tanh(double{x}), 1e-6);
  }
}

TEST(Activation, GeluFollowsTheDocumentedEvaluationOrder) {
  int order_sensitive = 0;
  for (int i = -6000; i <= 6000; ++i) {
    const float x = static_cast<float>(i) / 997.0f;
    // docs/numerics.md: left-to-right evaluation of this expression, one rounding per operator.
    const float documented =
        0.5f * x * (1.0f + std::tanh(0.7978845608f * (x + 0.044715f * (x * x * x))));
    ASSERT_EQ(bits_of(apply_activation(x, Activation::kGelu)), bits_of(documented)) << x;
    const float regrouped =
        0.5f * x * (1.0f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
    if (bits_of(regrouped) != bits_of(documented)) ++order_sensitive;
  }
  // Regrouping the cubic term changes bits for some inputs, so the order has to be pinned.
  EXPECT_GT(order_sensitive, 0);
}

TEST(Activation, GeluIsCloseToTheErfDefinition) {
  for (int i = -800; i <= 800; ++i) {
    const double x = i / 100.0;
    const double exact = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    ASSERT_NEAR(apply_activation(static_cast<float>(x), Activation::kGelu), exact, 1e-3) << x;
  }
}

// ---- pooling ----

struct RandomPool {
  PoolShape shape;
  int pad_bottom = 0, pad_right = 0;
};

RandomPool random_pool_shape(std::mt19937& rng) {
  RandomPool p;
  PoolShape& s = p.shape;
  s.in_h = 1 + static_cast<int>(rng() % 8);
  s.in_w = 1 + static_cast<int>(rng() % 8);
  s.channels = 1 + static_cast<int>(rng() % 4);
  s.win_h = 1 + static_cast<int>(rng() % 4);
  s.win_w = 1 + static_cast<int>(rng() % 4);
  s.stride_h = 1 + static_cast<int>(rng() % 3);
  s.stride_w = 1 + static_cast<int>(rng() % 3);
  s.pad_top = static_cast<int>(rng() % s.win_h);
  s.pad_left = static_cast<int>(rng() % s.win_w);
  p.pad_bottom = static_cast<int>(rng() % s.win_h);
  p.pad_right = static_cast<int>(rng() % s.win_w);
  s.out_h = std::max(1, (s.in_h + s.pad_top + p.pad_bottom - s.win_h) / s.stride_h + 1);
  s.out_w = std::max(1, (s.in_w + s.pad_left + p.pad_right - s.win_w) / s.stride_w + 1);
  return p;
}

// Valid input positions of output (oy, ox), found by scanning the whole image in row-major
// order and testing window membership.
std::vector<std::size_t> window_members(const PoolShape& s, int oy, int ox, int c) {
  std::vector<std::size_t> members;
  for (int y = 0; y < s.in_h; ++y) {
    for (int x = 0; x < s.in_w; ++x) {
      const int top = oy * s.stride_h - s.pad_top, left = ox * s.stride_w - s.pad_left;
      if (y >= top && y < top + s.win_h && x >= left && x < left + s.win_w) {
        members.push_back((static_cast<std::size_t>(y) * s.in_w + x) * s.channels + c);
      }
    }
  }
  return members;
}

TEST(PoolInt8, MatchesIndependentReferenceOnRandomShapes) {
  std::mt19937 rng(8);
  int empty_windows = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const PoolShape s = random_pool_shape(rng).shape;
    std::vector<int8_t> in(static_cast<std::size_t>(s.in_h) * s.in_w * s.channels);
    for (auto& v : in) v = static_cast<int8_t>(rng());
    for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvg}) {
      std::vector<int8_t> out(static_cast<std::size_t>(s.out_h) * s.out_w * s.channels, 99);
      pool_int8(in.data(), out.data(), s, kind);
      for (int oy = 0; oy < s.out_h; ++oy) {
        for (int ox = 0; ox < s.out_w; ++ox) {
          for (int c = 0; c < s.channels; ++c) {
            const std::vector<std::size_t> members = window_members(s, oy, ox, c);
            int expected = 0;
            if (members.empty()) {
              ++empty_windows;
            } else if (kind == PoolKind::kMax) {
              expected = -128;
              for (std::size_t at : members) expected = std::max<int>(expected, in[at]);
            } else {
              long sum = 0;
              for (std::size_t at : members) sum += in[at];
              // std::round rounds halfway cases away from zero.
              expected = static_cast<int>(std::round(static_cast<double>(sum) / members.size()));
            }
            ASSERT_EQ(out[(static_cast<std::size_t>(oy) * s.out_w + ox) * s.channels + c], expected)
                << "trial " << trial << " kind " << kPoolKindNames[static_cast<int>(kind)];
          }
        }
      }
    }
  }
  EXPECT_EQ(empty_windows, 0);  // random shapes keep windows overlapping the image
}

TEST(PoolInt8, AverageRoundsHalfAwayFromZero) {
  PoolShape s;
  s.in_h = 1, s.in_w = 2, s.channels = 1, s.win_h = 1, s.win_w = 2, s.out_h = 1, s.out_w = 1;
  int8_t out = 0;
  const int8_t up[2] = {1, 2};  // 1.5
  pool_int8(up, &out, s, PoolKind::kAvg);
  EXPECT_EQ(out, 2);
  const int8_t down[2] = {-1, -2};  // -1.5
  pool_int8(down, &out, s, PoolKind::kAvg);
  EXPECT_EQ(out, -2);
  const int8_t extremes[2] = {-128, -127};  // -127.5
  pool_int8(extremes, &out, s, PoolKind::kAvg);
  EXPECT_EQ(out, -128);
  const int8_t tops[2] = {127, 126};  // 126.5
  pool_int8(tops, &out, s, PoolKind::kAvg);
  EXPECT_EQ(out, 127);
}

TEST(PoolInt8, WindowsEntirelyInPaddingGiveZero) {
  PoolShape s;
  s.in_h = 1, s.in_w = 1, s.channels = 1, s.pad_top = 1, s.out_h = 2, s.out_w = 1;
  const int8_t in[1] = {-100};
  for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvg}) {
    int8_t out[2] = {55, 55};
    pool_int8(in, out, s, kind);
    EXPECT_EQ(out[0], 0);  // window row -1: padding only
    EXPECT_EQ(out[1], -100);
  }
}

TEST(PoolInt8, MaxIgnoresPaddingEvenWhenAllValuesAreNegative) {
  PoolShape s;
  s.in_h = 2, s.in_w = 2, s.channels = 1, s.win_h = 3, s.win_w = 3, s.pad_top = 1, s.pad_left = 1,
  s.out_h = 1, s.out_w = 1;
  const int8_t in[4] = {-50, -7, -128, -9};
  int8_t out = 0;
  pool_int8(in, &out, s, PoolKind::kMax);
  EXPECT_EQ(out, -7);
  pool_int8(in, &out, s, PoolKind::kAvg);  // (-194) / 4 = -48.5 -> -49
  EXPECT_EQ(out, -49);
}

TEST(PoolBf16, MatchesIndependentReferenceOnRandomShapes) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 300; ++trial) {
    const PoolShape s = random_pool_shape(rng).shape;
    std::vector<uint16_t> in(static_cast<std::size_t>(s.in_h) * s.in_w * s.channels);
    for (auto& v : in) v = random_bf16(rng, 10);
    for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvg}) {
      std::vector<uint16_t> out(static_cast<std::size_t>(s.out_h) * s.out_w * s.channels, 0x1234);
      pool_bf16(in.data(), out.data(), s, kind);
      for (int oy = 0; oy < s.out_h; ++oy) {
        for (int ox = 0; ox < s.out_w; ++ox) {
          for (int c = 0; c < s.channels; ++c) {
            // window_members is in row-major window order, the documented summation order.
            const std::vector<std::size_t> members = window_members(s, oy, ox, c);
            float expected = 0.0f;
            if (kind == PoolKind::kMax) {
              expected = -std::numeric_limits<float>::infinity();
              for (std::size_t at : members) expected = std::max(expected, widen(in[at], true));
            } else {
              for (std::size_t at : members) expected += widen(in[at], true);
              expected /= static_cast<float>(members.size());
            }
            ASSERT_EQ(out[(static_cast<std::size_t>(oy) * s.out_w + ox) * s.channels + c],
                      fp32_to_bf16(expected))
                << "trial " << trial << " kind " << kPoolKindNames[static_cast<int>(kind)];
          }
        }
      }
    }
  }
}

TEST(PoolBf16, AverageSumsInRowMajorWindowOrder) {
  // 2x2 window [[2^24, 1], [-2^24, 1]]. Row-major: 2^24 + 1 rounds to 2^24, - 2^24 = 0, + 1:
  // sum 1, average 0.25. Column-major would give (2^24 - 2^24 + 1 + 1) / 4 = 0.5.
  PoolShape s;
  s.in_h = 2, s.in_w = 2, s.channels = 1, s.win_h = 2, s.win_w = 2, s.out_h = 1, s.out_w = 1;
  const uint16_t big = fp32_to_bf16(16777216.0f), one = fp32_to_bf16(1.0f);
  ASSERT_EQ(bf16_to_fp32(big), 16777216.0f);
  const uint16_t in[4] = {big, one, static_cast<uint16_t>(big | 0x8000), one};
  uint16_t out = 0;
  pool_bf16(in, &out, s, PoolKind::kAvg);
  EXPECT_EQ(out, fp32_to_bf16(0.25f));
  EXPECT_NE(out, fp32_to_bf16(0.5f));
}

TEST(PoolBf16, MaxPropagatesNanFromAnyWindowPosition) {
  PoolShape s;
  s.in_h = 2, s.in_w = 2, s.channels = 1, s.win_h = 2, s.win_w = 2, s.out_h = 1, s.out_w = 1;
  for (int pos = 0; pos < 4; ++pos) {
    uint16_t in[4] = {fp32_to_bf16(1.0f), 0x7F80 /* +inf */, fp32_to_bf16(-3.0f), 0x0000};
    in[pos] = 0xFFC1;  // a negative quiet NaN with payload
    uint16_t out = 0;
    pool_bf16(in, &out, s, PoolKind::kMax);
    EXPECT_EQ(out, 0xFFC1) << "NaN at " << pos;
    pool_bf16(in, &out, s, PoolKind::kAvg);
    EXPECT_TRUE((out & 0x7F80) == 0x7F80 && (out & 0x7F) != 0) << "NaN at " << pos;
  }
}

TEST(PoolBf16, MaxKeepsTheEarlierElementOnASignedZeroTie) {
  PoolShape s;
  s.in_h = 1, s.in_w = 2, s.channels = 1, s.win_h = 1, s.win_w = 2, s.out_h = 1, s.out_w = 1;
  uint16_t out = 0x1234;
  const uint16_t negative_first[2] = {0x8000, 0x0000};
  pool_bf16(negative_first, &out, s, PoolKind::kMax);
  EXPECT_EQ(out, 0x8000);
  const uint16_t positive_first[2] = {0x0000, 0x8000};
  pool_bf16(positive_first, &out, s, PoolKind::kMax);
  EXPECT_EQ(out, 0x0000);
}

TEST(PoolBf16, WindowsEntirelyInPaddingGivePositiveZero) {
  PoolShape s;
  s.in_h = 1, s.in_w = 1, s.channels = 1, s.pad_left = 1, s.out_h = 1, s.out_w = 2;
  const uint16_t in[1] = {fp32_to_bf16(-5.0f)};
  for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvg}) {
    uint16_t out[2] = {0x1234, 0x1234};
    pool_bf16(in, out, s, kind);
    EXPECT_EQ(out[0], 0x0000);
    EXPECT_EQ(out[1], in[0]);
  }
}

// ---- elementwise ----

TEST(Elementwise, IsBinaryForExactlyTheTwoOperandOps) {
  for (int i = 0; i < kVectorOpCount; ++i) {
    const VectorOp op = static_cast<VectorOp>(i);
    const bool unary = op == VectorOp::kRelu || op == VectorOp::kCopy || op >= VectorOp::kRelu6;
    EXPECT_EQ(is_binary(op), !unary) << kVectorOpNames[i];
  }
}

TEST(ElementwiseInt8, MatchesSaturatedInt32ResultForAllOperandPairs) {
  std::vector<int8_t> a, b;
  for (int x = -128; x <= 127; ++x) {
    for (int y = -128; y <= 127; ++y) {
      a.push_back(static_cast<int8_t>(x));
      b.push_back(static_cast<int8_t>(y));
    }
  }
  std::vector<int8_t> out(a.size());
  // relu6, sigmoid, tanh and gelu are bf16-only (the verifier rejects them for int8).
  for (int i = 0; i <= static_cast<int>(VectorOp::kCopy); ++i) {
    const VectorOp op = static_cast<VectorOp>(i);
    elementwise_int8(op, a.data(), is_binary(op) ? b.data() : nullptr, out.data(), a.size());
    for (std::size_t e = 0; e < a.size(); ++e) {
      const int x = a[e], y = b[e];
      const int exact[] = {x + y, x - y, x * y, std::max(x, y), std::min(x, y), std::max(x, 0), x};
      const int expected = std::clamp(exact[i], -128, 127);
      ASSERT_EQ(out[e], expected) << kVectorOpNames[i] << " " << x << " " << y;
    }
  }
}

TEST(ElementwiseBf16, MatchesOneFp32OperationRoundedToBf16) {
  std::mt19937 rng(3);
  const std::size_t count = 50000;
  std::vector<uint16_t> a(count), b(count), out(count);
  for (std::size_t e = 0; e < count; ++e) {
    a[e] = random_bf16(rng, e % 10 == 0 ? 127 : 8);  // some overflow and subnormal results
    b[e] = random_bf16(rng, e % 10 == 0 ? 127 : 8);
  }
  a[0] = 0x0005;  // subnormal operands
  b[1] = 0x8042;
  for (bool flush : {true, false}) {
    const NumericsOptions opt = flush ? kFlush : kKeep;
    for (int i = 0; i < kVectorOpCount; ++i) {
      const VectorOp op = static_cast<VectorOp>(i);
      elementwise_bf16(op, a.data(), b.data(), out.data(), count, opt);
      for (std::size_t e = 0; e < count; ++e) {
        const float x = widen(a[e], flush), y = widen(b[e], flush);
        const float exact[] = {x + y,
                               x - y,
                               x * y,
                               std::max(x, y),
                               std::min(x, y),
                               std::max(x, 0.0f),
                               x,
                               apply_activation(x, Activation::kRelu6),
                               apply_activation(x, Activation::kSigmoid),
                               apply_activation(x, Activation::kTanh),
                               apply_activation(x, Activation::kGelu)};
        static_assert(sizeof(exact) / sizeof(exact[0]) == kVectorOpCount);
        ASSERT_EQ(out[e], fp32_to_bf16(exact[i], opt))
            << kVectorOpNames[i] << " " << a[e] << " " << b[e] << " flush " << flush;
      }
    }
  }
}

TEST(ElementwiseBf16, MaxAndMinPropagateNan) {
  const uint16_t nan = 0x7FC5, one = fp32_to_bf16(1.0f), inf = 0x7F80;
  const uint16_t a[3] = {nan, one, nan};
  const uint16_t b[3] = {inf, nan, 0xFFC7};
  uint16_t out[3];
  for (VectorOp op : {VectorOp::kMax, VectorOp::kMin}) {
    elementwise_bf16(op, a, b, out, 3);
    EXPECT_EQ(out[0], nan);
    EXPECT_EQ(out[1], nan);
    EXPECT_EQ(out[2], nan);  // both NaN: the first operand's
  }
}

TEST(ElementwiseBf16, AddOverflowsToInfinityAndCopyQuietsAndFlushes) {
  const uint16_t max_finite[2] = {0x7F7F, 0xFF7F};
  uint16_t out[2];
  elementwise_bf16(VectorOp::kAdd, max_finite, max_finite, out, 2);
  EXPECT_EQ(out[0], 0x7F80);
  EXPECT_EQ(out[1], 0xFF80);
  const uint16_t special[2] = {0x7F81 /* signalling NaN */, 0x8001 /* subnormal */};
  elementwise_bf16(VectorOp::kCopy, special, nullptr, out, 2, kFlush);
  EXPECT_EQ(out[0], 0x7FC1);
  EXPECT_EQ(out[1], 0x8000);
  elementwise_bf16(VectorOp::kCopy, special, nullptr, out, 2, kKeep);
  EXPECT_EQ(out[1], 0x8001);
}

// ---- Row ops ----

uint16_t bf(float x) { return fp32_to_bf16(x, kKeep); }

// bf16 spacing (one unit in the last place) at |x|, for tolerance checks against double.
double bf16_ulp(double x) {
  int e = 0;
  std::frexp(x, &e);  // |x| in [2^(e-1), 2^e)
  return std::ldexp(1.0, e - 1 - 7);
}

TEST(RowOpSoftmax, EqualValuesGiveExactFractionsWithoutOverflow) {
  // 200 in every position: exp(200) overflows fp32, the max subtraction must keep it at 1.
  std::vector<uint16_t> in = {bf(3.0f),   bf(3.0f),   bf(3.0f),  bf(3.0f),
                              bf(200.0f), bf(200.0f), bf(-7.5f), bf(-7.5f)};
  std::vector<uint16_t> out(8);
  softmax_bf16(in.data(), out.data(), 2, 4, kFlush);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], 0x3E80) << i;  // 0.25
  EXPECT_EQ(out[4], 0x3F00);                                   // 0.5
  EXPECT_EQ(out[5], 0x3F00);
  // exp(-207.5) underflows to +0 in fp32.
  EXPECT_EQ(out[6], 0x0000);
  EXPECT_EQ(out[7], 0x0000);
}

TEST(RowOpSoftmax, NegativeInfinityGivesZeroWeight) {
  const uint16_t ninf = 0xFF80;
  std::vector<uint16_t> in = {bf(0.0f), ninf, bf(0.0f), ninf};
  std::vector<uint16_t> out(4);
  softmax_bf16(in.data(), out.data(), 1, 4, kFlush);
  EXPECT_EQ(out, (std::vector<uint16_t>{0x3F00, 0x0000, 0x3F00, 0x0000}));
}

TEST(RowOpSoftmax, FirstNanOfTheRowFillsTheRowAndOtherRowsAreUntouched) {
  // 0x7F81 is a signalling NaN (quiet bit clear): the output is it, quieted (0x7FC1).
  std::vector<uint16_t> in = {bf(1.0f), 0x7F81, 0xFFC5,   bf(2.0f), bf(2.0f),
                              bf(2.0f), 0xFFC5, bf(1.0f), bf(1.0f)};
  std::vector<uint16_t> out(9);
  softmax_bf16(in.data(), out.data(), 3, 3, kFlush);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], 0x7FC1) << i;
  for (int i = 3; i < 6; ++i) EXPECT_EQ(out[i], bf(1.0f / 3.0f)) << i;
  for (int i = 6; i < 9; ++i) EXPECT_EQ(out[i], 0xFFC5) << i;
}

TEST(RowOpSoftmax, IsWithinOneBf16UlpOfTheExactSoftmax) {
  std::mt19937 rng(41);
  const int rows = 20, cols = 37;
  std::vector<uint16_t> in(rows * cols), out(rows * cols);
  for (auto& v : in) v = random_bf16(rng, 3);
  softmax_bf16(in.data(), out.data(), rows, cols, kFlush);
  for (int r = 0; r < rows; ++r) {
    double m = -1e300, s = 0;
    for (int i = 0; i < cols; ++i)
      m = std::max(m, static_cast<double>(widen(in[r * cols + i], true)));
    for (int i = 0; i < cols; ++i) s += std::exp(widen(in[r * cols + i], true) - m);
    for (int i = 0; i < cols; ++i) {
      double want = std::exp(widen(in[r * cols + i], true) - m) / s;
      double got = widen(out[r * cols + i], true);
      EXPECT_LE(std::fabs(got - want), bf16_ulp(want)) << r << " " << i;
    }
  }
}

TEST(RowOpSoftmax, Fp32RowIsTheDocumentedSequenceBitForBit) {
  // An independent loop of docs/numerics.md 8.1 on random fp32 rows (sum order pinned).
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-30.0f, 30.0f);
  for (int trial = 0; trial < 50; ++trial) {
    const int cols = 1 + trial * 7;
    std::vector<float> x(cols), y(cols);
    for (auto& v : x) v = d(rng);
    softmax_row_fp32(x.data(), y.data(), cols);
    float m = *std::max_element(x.begin(), x.end());
    std::vector<float> e(cols);
    float s = 0.0f;
    for (int i = 0; i < cols; ++i) {
      e[i] = expf(x[i] - m);
      s += e[i];
    }
    for (int i = 0; i < cols; ++i) EXPECT_EQ(bits_of(y[i]), bits_of(e[i] / s)) << trial << " " << i;
  }
}

TEST(RowOpLayerNorm, SmallRowsGiveHandComputedValues) {
  // Row 0: [1, 3]: mean 2, var 1, r = 1; normalized [-1, 1]; gamma [2, 0.5], beta [1, -1].
  // Row 1: [5, 5]: var 0, with eps 0 r = 1 / sqrt(0) = inf and 0 * inf = NaN; see the eps
  // test below.
  std::vector<uint16_t> in = {bf(1.0f), bf(3.0f)};
  std::vector<uint16_t> out(2);
  const float gamma[] = {2.0f, 0.5f}, beta[] = {1.0f, -1.0f};
  layer_norm_bf16(in.data(), out.data(), 1, 2, 0.0f, gamma, beta, kFlush);
  EXPECT_EQ(out[0], bf(-1.0f));
  EXPECT_EQ(out[1], bf(-0.5f));
  // [2, 4, 6, 8] with eps 0.75: mean 5, var (9+1+1+9)/4 = 5, r = 1/sqrt(5.75) rounded once.
  std::vector<uint16_t> in4 = {bf(2.0f), bf(4.0f), bf(6.0f), bf(8.0f)};
  std::vector<uint16_t> out4(4);
  const float g4[] = {1.0f, 1.0f, 1.0f, 1.0f}, b4[] = {0.0f, 0.0f, 0.0f, 10.0f};
  layer_norm_bf16(in4.data(), out4.data(), 1, 4, 0.75f, g4, b4, kFlush);
  const double r = 1.0 / std::sqrt(5.75);
  EXPECT_NEAR(widen(out4[0], true), -3 * r, bf16_ulp(3 * r));
  EXPECT_NEAR(widen(out4[1], true), -1 * r, bf16_ulp(r));
  EXPECT_NEAR(widen(out4[2], true), 1 * r, bf16_ulp(r));
  EXPECT_NEAR(widen(out4[3], true), 3 * r + 10, bf16_ulp(3 * r + 10));
  EXPECT_EQ(widen(out4[1], true), -widen(out4[2], true));
}

TEST(RowOpLayerNorm, ConstantRowGivesBetaWithEpsAndNanWithout) {
  std::vector<uint16_t> in = {bf(5.0f), bf(5.0f), bf(5.0f)};
  std::vector<uint16_t> out(3);
  const float gamma[] = {3.0f, 3.0f, 3.0f}, beta[] = {0.25f, -2.0f, 0.0f};
  layer_norm_bf16(in.data(), out.data(), 1, 3, 1e-5f, gamma, beta, kFlush);
  EXPECT_EQ(out, (std::vector<uint16_t>{bf(0.25f), bf(-2.0f), 0x0000}));
  layer_norm_bf16(in.data(), out.data(), 1, 3, 0.0f, gamma, beta, kFlush);
  for (uint16_t v : out) EXPECT_TRUE((v & 0x7F80) == 0x7F80 && (v & 0x7F) != 0) << v;
}

TEST(RowOpLayerNorm, Fp32RowIsTheDocumentedSequenceBitForBit) {
  std::mt19937 rng(43);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  for (int trial = 0; trial < 50; ++trial) {
    const int cols = 1 + trial * 5;
    std::vector<float> x(cols), y(cols), g(cols), b(cols);
    for (auto& v : x) v = d(rng);
    for (auto& v : g) v = d(rng);
    for (auto& v : b) v = d(rng);
    const float eps = 1e-5f;
    layer_norm_row_fp32(x.data(), y.data(), cols, eps, g.data(), b.data());
    float sum = 0.0f;
    for (float v : x) sum += v;
    float mean = sum / static_cast<float>(cols);
    float sq = 0.0f;
    for (float v : x) sq += (v - mean) * (v - mean);
    float r = 1.0f / sqrtf(sq / static_cast<float>(cols) + eps);
    for (int i = 0; i < cols; ++i) {
      EXPECT_EQ(bits_of(y[i]), bits_of((x[i] - mean) * r * g[i] + b[i])) << trial << " " << i;
    }
  }
}

TEST(RowOpInt8, OutputQuantizationRoundsTiesToEvenClampsAndMapsNanToTheZeroPoint) {
  RowQuant q;
  q.out_scale = 1.0f;
  q.out_zero_point = 0.0f;
  EXPECT_EQ(quantize_row_output(0.5f, q), 0);
  EXPECT_EQ(quantize_row_output(1.5f, q), 2);
  EXPECT_EQ(quantize_row_output(2.5f, q), 2);
  EXPECT_EQ(quantize_row_output(-2.5f, q), -2);
  EXPECT_EQ(quantize_row_output(-3.5f, q), -4);
  EXPECT_EQ(quantize_row_output(1000.0f, q), 127);
  EXPECT_EQ(quantize_row_output(-1000.0f, q), -128);
  EXPECT_EQ(quantize_row_output(INFINITY, q), 127);
  EXPECT_EQ(quantize_row_output(-INFINITY, q), -128);
  q.out_zero_point = -5.0f;
  EXPECT_EQ(quantize_row_output(NAN, q), -5);
  q.out_scale = 0.25f;
  EXPECT_EQ(quantize_row_output(1.0f, q), -1);      // 4 - 5
  EXPECT_EQ(quantize_row_output(-31.0f, q), -128);  // -124 - 5 clamps
}

TEST(RowOpInt8, SoftmaxAndLayerNormOnHandComputedRows) {
  RowQuant q;
  q.in_scale = 1.0f;
  q.in_zero_point = 10.0f;
  q.out_scale = 1.0f / 256.0f;
  q.out_zero_point = -128.0f;
  // Row [5, 5, 5, 5] -> 0.25 -> 64 - 128; row [10, 10, 10, -128] -> x = [0, 0, 0, -138]
  // -> exp(-138) underflows to 0: [1/3 x3, 0] -> 1/3 * 256 = 85.33 -> 85 - 128 = -43; -128.
  std::vector<int8_t> in = {5, 5, 5, 5, 10, 10, 10, -128};
  std::vector<int8_t> out(8);
  softmax_int8(in.data(), out.data(), 2, 4, q);
  EXPECT_EQ(out, (std::vector<int8_t>{-64, -64, -64, -64, -43, -43, -43, -128}));
  // Layer norm: q = [1, 3], in_scale 0.5, in_zp -1 -> x = [1, 2]; mean 1.5, var 0.25,
  // r = 2 -> [-1, 1]; gamma [1, 3], beta [0, 0.5] -> [-1, 3.5]; out_scale 0.25, zp 3:
  // [-4 + 3, 14 + 3] = [-1, 17].
  RowQuant ln;
  ln.in_scale = 0.5f;
  ln.in_zero_point = -1.0f;
  ln.out_scale = 0.25f;
  ln.out_zero_point = 3.0f;
  std::vector<int8_t> in2 = {1, 3}, out2(2);
  const float gamma[] = {1.0f, 3.0f}, beta[] = {0.0f, 0.5f};
  layer_norm_int8(in2.data(), out2.data(), 1, 2, ln, 0.0f, gamma, beta);
  EXPECT_EQ(out2, (std::vector<int8_t>{-1, 17}));
}

TEST(RowOpInt8, LookupTableCoversEveryInput) {
  std::vector<int8_t> table(256), in(256), out(256);
  for (int i = 0; i < 256; ++i) {
    table[i] = static_cast<int8_t>(127 - i);  // entry for input i - 128
    in[i] = static_cast<int8_t>(i - 128);
  }
  std::shuffle(in.begin(), in.end(), std::mt19937(44));
  lut_int8(in.data(), out.data(), 256, table.data());
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], static_cast<int8_t>(-1 - in[i])) << i;
}

}  // namespace
}  // namespace tpu::isa
