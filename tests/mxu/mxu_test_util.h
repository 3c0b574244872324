// Shared helpers of the MAC-grid tests: seeded operands, and one function that runs the
// stepped oracle, the fast timing model, the fast kernels and the isa reference kernels on
// the same case and describes the first disagreement.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <random>

#include "sim/mxu/array_config.h"
#include "sim/mxu/stepped_array.h"

namespace tpu::sim::test {

/// A bf16 operand: mostly moderate values (so sums are ordinary), sometimes a special value
/// (signed zero, infinity, NaN with payload, subnormal, largest finite, tiny normal).
uint16_t random_bf16(std::mt19937_64& rng);

/// "WS 4x3 W=2 double" style name of a config.
std::string describe(const ArrayConfig& c);
/// "[m=2 k=3 n=1 load acc wr=0 ir=0] ..." style description of a pass sequence.
std::string describe(const std::vector<PassSpec>& passes);

/// Every weight-path option of an R-row array: double-buffered, single-buffered and
/// overlap none, each with every bus width W in [1, R] when all_widths, else W in {1, R}.
std::vector<ArrayConfig> weight_path_options(arch::Dataflow df, int rows, int cols,
                                             bool all_widths);

/// The pass that puts `stationary_rows` x `stationary_cols` on the array and streams
/// `streamed` vectors under `df` (the inverse of sim::geometry).
PassSpec pass_for(arch::Dataflow df, int stationary_rows, int stationary_cols, int streamed);

/// What compare() checks.
struct CompareOptions {
  bool numerics = true;  ///< run operands through all models and compare bits
  arch::DType dtype = arch::DType::kInt8;
  uint64_t seed = 1;
};

/// Runs the case through every model. Returns "" when the fast model equals the stepped one
/// in every PassTiming figure, the total, every input and output cycle, and (with numerics)
/// stepped, fast-kernel and isa reference accumulators are bit-identical; otherwise a
/// one-line description of the first difference.
std::string compare(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                    const CompareOptions& options = {});

}  // namespace tpu::sim::test
