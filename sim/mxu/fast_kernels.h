// Fast functional kernels for one matrix pass: the same bits as isa::matmul_pass_int8/bf16,
// computed in m, k, n order with the inner loop over contiguous outputs so it vectorises.
#pragma once

#include <cstddef>
#include <cstdint>

#include "isa/numerics.h"

namespace tpu::sim {

/// Bit-identical to isa::matmul_pass_int8 (same arguments and layout): int32 accumulators
/// with two's-complement wrap. Since wrapping addition is associative, any summation order
/// gives the reference bits; this one keeps k ascending anyway.
void matmul_pass_int8_fast(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                           int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate);

/// The portable int8 kernel (rows four at a time, vectorised by the compiler): what
/// matmul_pass_int8_fast runs on hosts without SSE2; tested on every host.
void matmul_pass_int8_rows(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                           int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate);

/// Bit-identical to isa::matmul_pass_bf16: for every output the partial sum starts at +0.0f
/// and adds fl32(a[m][k] * w[k][n]) for k ascending, then the accumulator adds the pass
/// result. Vectorised across n (independent outputs), never across k; a pass with a NaN
/// operand (input, weight or accumulated value) runs the reference kernel, whose NaN
/// payload rule vector lanes cannot follow (docs/numerics.md section 3).
void matmul_pass_bf16_fast(const uint16_t* a, std::size_t lda, const uint16_t* w, std::size_t ldw,
                           int m, int k, int n, float* acc, std::size_t ldacc, bool accumulate,
                           const isa::NumericsOptions& opt = {});

}  // namespace tpu::sim
