// Fast pass kernels: the bits of isa::matmul_pass_int8/bf16, computed in an order that
// vectorises. Both keep a block of sums in vector registers over the k loop (below); the int8
// kernel uses SSE2's pmaddwd on x86-64 and, elsewhere, matmul_pass_int8_rows (four output rows
// at a time, each weight row loaded once for the four).
#include "sim/mxu/fast_kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "isa/kernels.h"

namespace tpu::sim {

namespace {

constexpr int kRowBlock = 4;

std::size_t sz(int v) { return static_cast<std::size_t>(v); }

}  // namespace

void matmul_pass_int8_rows(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
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

#if defined(__SSE2__)
namespace {

// The int8 micro-kernel: k taken in pairs, so one pmaddwd gives, per int32 lane j,
// a[k] * w[k][j] + a[k+1] * w[k+1][j] (at most 2^15 in magnitude: exact), added to a kI8Mr x 8
// block of int32 sums held in registers; additions wrap, which is associative, so the bits are
// the reference's whatever the order.
constexpr int kI8Mr = 4;
constexpr int kI8Nr = 8;

// The 16 bits of an int8 value widened to int16, as the low half of a uint32.
inline uint32_t int16_bits(int8_t v) { return static_cast<uint16_t>(static_cast<int16_t>(v)); }

void int8_block(const int32_t* ap, const int16_t* wp, int pairs, __m128i (&s)[kI8Mr][2]) {
  for (auto& row : s) row[0] = row[1] = _mm_setzero_si128();
  for (int p = 0; p < pairs; ++p) {
    const __m128i w0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + sz(p) * 2 * kI8Nr));
    const __m128i w1 =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + sz(p) * 2 * kI8Nr + 8));
    for (int r = 0; r < kI8Mr; ++r) {
      const __m128i x = _mm_set1_epi32(ap[sz(p) * kI8Mr + sz(r)]);
      s[r][0] = _mm_add_epi32(s[r][0], _mm_madd_epi16(x, w0));
      s[r][1] = _mm_add_epi32(s[r][1], _mm_madd_epi16(x, w1));
    }
  }
}

}  // namespace

void matmul_pass_int8_fast(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                           int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const int pairs = (k + 1) / 2, panels = (n + kI8Nr - 1) / kI8Nr;
  // Weights as panels of 8 columns: per k pair, (w[2p][j], w[2p+1][j]) for j = 0..7 as int16
  // pairs; zero beyond k and n.
  thread_local std::vector<int16_t> wp;
  thread_local std::vector<int32_t> ap;
  wp.assign(sz(panels) * sz(pairs) * 2 * kI8Nr, 0);
  for (int kk = 0; kk < k; ++kk) {
    const int8_t* row = w + sz(kk) * ldw;
    for (int j = 0; j < n; ++j) {
      wp[(sz(j / kI8Nr) * sz(pairs) + sz(kk / 2)) * 2 * kI8Nr + sz(j % kI8Nr) * 2 + sz(kk % 2)] =
          row[j];
    }
  }
  ap.resize(sz(pairs) * kI8Mr);
  for (int i0 = 0; i0 < m; i0 += kI8Mr) {
    const int rows = std::min(kI8Mr, m - i0);
    // Inputs: per k pair and row, (a[r][2p], a[r][2p+1]) as two int16 in one int32.
    for (int p = 0; p < pairs; ++p) {
      for (int r = 0; r < kI8Mr; ++r) {
        uint32_t pair = 0;
        if (r < rows) {
          const int8_t* x = a + sz(i0 + r) * lda;
          pair = int16_bits(x[2 * p]);
          if (2 * p + 1 < k) pair |= int16_bits(x[2 * p + 1]) << 16;
        }
        ap[sz(p) * kI8Mr + sz(r)] = static_cast<int32_t>(pair);
      }
    }
    for (int pn = 0; pn < panels; ++pn) {
      const int j0 = pn * kI8Nr, cols = std::min(kI8Nr, n - j0);
      __m128i s[kI8Mr][2];
      int8_block(ap.data(), wp.data() + sz(pn) * sz(pairs) * 2 * kI8Nr, pairs, s);
      for (int r = 0; r < rows; ++r) {
        uint32_t sums[kI8Nr];
        std::memcpy(sums, s[r], sizeof sums);
        int32_t* out = acc + sz(i0 + r) * ldacc + sz(j0);
        for (int j = 0; j < cols; ++j) {
          const uint32_t base = accumulate ? static_cast<uint32_t>(out[j]) : 0u;
          out[j] = static_cast<int32_t>(base + sums[j]);
        }
      }
    }
  }
}
#else
void matmul_pass_int8_fast(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                           int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate) {
  matmul_pass_int8_rows(a, lda, w, ldw, m, k, n, acc, ldacc, accumulate);
}
#endif

// The bf16 kernel keeps a kMr x kNr block of partial sums in vector registers for the whole
// k loop (the register blocking of a BLAS micro-kernel), so each step loads kNr widened weights
// and kMr widened inputs for kMr x kNr products instead of loading and storing every partial
// sum. The per-output order is unchanged: +0.0f, then one fp32 product and one fp32 sum per k,
// k ascending. Lanes beyond m or n compute on zero padding and are never stored.
namespace {

using Vec4 = float __attribute__((vector_size(16)));  // one SSE register (GCC/Clang vectors)
constexpr int kMr = 6;                                // output rows per block
constexpr int kNv = 2;                                // vectors of 4 columns per block
constexpr int kNr = 4 * kNv;                          // output columns per block

inline Vec4 load4(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Partial sums of rows [0, kMr) x columns [0, kNr) of one block: ap holds k steps of kMr
// inputs, wp k steps of kNr weights.
inline void block_sums(const float* ap, const float* wp, int k, Vec4 (&s)[kMr][kNv]) {
  for (auto& row : s) {
    for (auto& v : row) v = Vec4{0.0f, 0.0f, 0.0f, 0.0f};
  }
  for (int kk = 0; kk < k; ++kk) {
    Vec4 w[kNv];
    for (int v = 0; v < kNv; ++v) w[v] = load4(wp + sz(kk) * kNr + sz(4 * v));
    for (int r = 0; r < kMr; ++r) {
      const float x = ap[sz(kk) * kMr + sz(r)];
      const Vec4 b = {x, x, x, x};
      for (int v = 0; v < kNv; ++v) s[r][v] = s[r][v] + b * w[v];
    }
  }
}

// Whether any of rows x cols bf16 values (row stride ld) is a NaN.
bool any_nan_bf16(const uint16_t* p, std::size_t ld, int rows, int cols) {
  unsigned found = 0;
  for (int r = 0; r < rows; ++r) {
    const uint16_t* row = p + sz(r) * ld;
    for (int c = 0; c < cols; ++c) found |= (row[c] & 0x7FFFu) > 0x7F80u ? 1u : 0u;
  }
  return found != 0;
}

bool any_nan_fp32(const float* p, std::size_t ld, int rows, int cols) {
  unsigned found = 0;
  for (int r = 0; r < rows; ++r) {
    const float* row = p + sz(r) * ld;
    for (int c = 0; c < cols; ++c) found |= row[c] != row[c] ? 1u : 0u;
  }
  return found != 0;
}

}  // namespace

void matmul_pass_bf16_fast(const uint16_t* a, std::size_t lda, const uint16_t* w, std::size_t ldw,
                           int m, int k, int n, float* acc, std::size_t ldacc, bool accumulate,
                           const isa::NumericsOptions& opt) {
  if (m <= 0 || n <= 0) return;
  // Which NaN a sum or product returns when an operand is a NaN is pinned by fl32_add and
  // fl32_mul (the first operand's), but vector code cannot pin the operand order. Without a
  // NaN among the operands every NaN a pass makes is the host's one default NaN, so the
  // order cannot show; with one, the pass takes the reference kernel (rare, never in
  // seeded data).
  if (any_nan_bf16(a, lda, m, k) || any_nan_bf16(w, ldw, k, n) ||
      (accumulate && any_nan_fp32(acc, ldacc, m, n))) {
    isa::matmul_pass_bf16(a, lda, w, ldw, m, k, n, acc, ldacc, accumulate, opt);
    return;
  }
  // Widen the weight tile once (bf16_to_fp32 flushes subnormal operands as bf16_mul does),
  // packed as panels of kNr columns, k steps each, zero beyond n.
  const int panels = (n + kNr - 1) / kNr;
  thread_local std::vector<float> wp;
  thread_local std::vector<float> ap;
  wp.assign(sz(panels) * sz(k) * kNr, 0.0f);
  for (int p = 0; p < panels; ++p) {
    const int j0 = p * kNr, cols = std::min(kNr, n - j0);
    float* panel = wp.data() + sz(p) * sz(k) * kNr;
    for (int kk = 0; kk < k; ++kk) {
      const uint16_t* src = w + sz(kk) * ldw + sz(j0);
      for (int j = 0; j < cols; ++j) panel[sz(kk) * kNr + sz(j)] = isa::bf16_to_fp32(src[j], opt);
    }
  }
  ap.resize(sz(k) * kMr);
  for (int i0 = 0; i0 < m; i0 += kMr) {
    const int rows = std::min(kMr, m - i0);
    for (int kk = 0; kk < k; ++kk) {
      for (int r = 0; r < kMr; ++r) {
        ap[sz(kk) * kMr + sz(r)] =
            r < rows ? isa::bf16_to_fp32(a[sz(i0 + r) * lda + sz(kk)], opt) : 0.0f;
      }
    }
    for (int p = 0; p < panels; ++p) {
      const int j0 = p * kNr, cols = std::min(kNr, n - j0);
      Vec4 s[kMr][kNv];
      block_sums(ap.data(), wp.data() + sz(p) * sz(k) * kNr, k, s);
      for (int r = 0; r < rows; ++r) {
        float sums[kNr];
        std::memcpy(sums, s[r], sizeof sums);
        float* out = acc + sz(i0 + r) * ldacc + sz(j0);
        for (int j = 0; j < cols; ++j) out[j] = accumulate ? out[j] + sums[j] : sums[j];
      }
    }
  }
}

}  // namespace tpu::sim
