// Fast pass kernels. Rows of the output are processed four at a time so that each weight
// row loaded from cache feeds four output rows; the k loop stays sequential per output.
#include "sim/mxu/fast_kernels.h"

#include <algorithm>
#include <vector>

namespace tpu::sim {

namespace {

constexpr int kRowBlock = 4;

std::size_t sz(int v) { return static_cast<std::size_t>(v); }

}  // namespace

void matmul_pass_int8_fast(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                           int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate) {
  // Sums are kept as uint32 so that wrap-around is defined; int8 x int8 fits in int16.
  thread_local std::vector<uint32_t> sums;
  sums.resize(sz(kRowBlock) * sz(n));
  for (int i0 = 0; i0 < m; i0 += kRowBlock) {
    const int rows = std::min(kRowBlock, m - i0);
    std::fill(sums.begin(), sums.end(), 0u);
    uint32_t* s0 = sums.data();
    uint32_t* s1 = s0 + n;
    uint32_t* s2 = s1 + n;
    uint32_t* s3 = s2 + n;
    for (int kk = 0; kk < k; ++kk) {
      const int8_t* wr = w + sz(kk) * ldw;
      auto av = [&](int r) -> int16_t {
        return r < rows ? static_cast<int16_t>(a[sz(i0 + r) * lda + sz(kk)]) : int16_t{0};
      };
      const int16_t a0 = av(0), a1 = av(1), a2 = av(2), a3 = av(3);
      for (int j = 0; j < n; ++j) {
        const auto wj = static_cast<int16_t>(wr[j]);
        s0[j] += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(a0 * wj)));
        s1[j] += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(a1 * wj)));
        s2[j] += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(a2 * wj)));
        s3[j] += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(a3 * wj)));
      }
    }
    for (int r = 0; r < rows; ++r) {
      int32_t* out = acc + sz(i0 + r) * ldacc;
      const uint32_t* s = sums.data() + sz(r) * sz(n);
      for (int j = 0; j < n; ++j) {
        const uint32_t base = accumulate ? static_cast<uint32_t>(out[j]) : 0u;
        out[j] = static_cast<int32_t>(base + s[j]);
      }
    }
  }
}

void matmul_pass_bf16_fast(const uint16_t* a, std::size_t lda, const uint16_t* w, std::size_t ldw,
                           int m, int k, int n, float* acc, std::size_t ldacc, bool accumulate,
                           const isa::NumericsOptions& opt) {
  // Widen the weight tile once (bf16_to_fp32 flushes subnormal operands as bf16_mul does).
  thread_local std::vector<float> wf;
  thread_local std::vector<float> sums;
  wf.resize(sz(k) * sz(n));
  for (int kk = 0; kk < k; ++kk) {
    for (int j = 0; j < n; ++j) {
      wf[sz(kk) * sz(n) + sz(j)] = isa::bf16_to_fp32(w[sz(kk) * ldw + sz(j)], opt);
    }
  }
  sums.resize(sz(kRowBlock) * sz(n));
  for (int i0 = 0; i0 < m; i0 += kRowBlock) {
    const int rows = std::min(kRowBlock, m - i0);
    std::fill(sums.begin(), sums.end(), 0.0f);  // each partial sum enters as +0.0f
    float* s0 = sums.data();
    float* s1 = s0 + n;
    float* s2 = s1 + n;
    float* s3 = s2 + n;
    for (int kk = 0; kk < k; ++kk) {
      const float* wr = wf.data() + sz(kk) * sz(n);
      auto av = [&](int r) -> float {
        return r < rows ? isa::bf16_to_fp32(a[sz(i0 + r) * lda + sz(kk)], opt) : 0.0f;
      };
      const float a0 = av(0), a1 = av(1), a2 = av(2), a3 = av(3);
      for (int j = 0; j < n; ++j) {
        const float wj = wr[j];
        // One rounding for the product and one for the sum (no contraction: the build
        // passes -ffp-contract=off).
        const float p0 = a0 * wj, p1 = a1 * wj, p2 = a2 * wj, p3 = a3 * wj;
        s0[j] = s0[j] + p0;
        s1[j] = s1[j] + p1;
        s2[j] = s2[j] + p2;
        s3[j] = s3[j] + p3;
      }
    }
    for (int r = 0; r < rows; ++r) {
      float* out = acc + sz(i0 + r) * ldacc;
      const float* s = sums.data() + sz(r) * sz(n);
      for (int j = 0; j < n; ++j) out[j] = accumulate ? out[j] + s[j] : s[j];
    }
  }
}

}  // namespace tpu::sim
