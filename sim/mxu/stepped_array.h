// The stepped PE-level reference model of the MAC grid (the timing oracle): one register per
// PE per value, one global step per cycle, rules as in docs/mxu.md. Slow on purpose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/numerics.h"
#include "sim/mxu/array_config.h"

namespace tpu::sim {

/// The data of one pass (row-major, strides in elements). int8: a and w are int8_t, acc is
/// int32_t; bf16: a and w are uint16_t bit patterns, acc is float. Null a or w streams
/// zeros; a null acc discards the results.
struct PassOperands {
  const void* a = nullptr;  ///< M x K inputs
  std::size_t lda = 0;
  const void* w = nullptr;  ///< K x N weights
  std::size_t ldw = 0;
  void* acc = nullptr;  ///< M x N accumulators, updated as results leave the array
  std::size_t ldacc = 0;
};

/// Options of a stepped run.
struct SteppedOptions {
  arch::DType dtype = arch::DType::kInt8;
  isa::NumericsOptions numerics;
  /// Record the entry cycle of every streamed vector and the exit cycle of every result.
  bool record_events = true;
  /// If set, writes the array edges (inputs entering each row, weight-bus issues and results
  /// leaving each column) as VCD. Only for arrays up to 64 x 64.
  std::ostream* vcd = nullptr;
  /// Test hooks: per pass, a cycle at which the controller must start the tile shift or the
  /// stream instead of applying its interlocks (-1 or a missing entry: its own rule). Used
  /// to show that starting any earlier than the rules allow corrupts a register.
  std::vector<int64_t> force_shift_start;
  std::vector<int64_t> force_stream_start;
};

/// When each streamed vector entered and each result element left (absolute cycles).
struct SteppedPassEvents {
  std::vector<int64_t> input_cycles;   ///< T entries: vector v entered at input_cycles[v]
  std::vector<int64_t> output_cycles;  ///< M x N, row-major: element (m, n) left then
};

struct SteppedResult {
  std::vector<PassTiming> passes;         ///< measured, with the final drain in the last
  std::vector<SteppedPassEvents> events;  ///< per pass, when record_events
  int64_t total_cycles = 0;               ///< last result out + 1
  int64_t stepped_cycles = 0;             ///< cycles stepped until the array was empty
};

/// A register conflict in the stepped model: a value overwritten before use, or an operand
/// meeting the wrong partner. Names the PE and the cycle.
class HazardError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Runs `passes` through a literal R x C register model, one step per cycle, from cycle 0
/// until the array is empty. Computes every result through the isa numerics (int8 wrap,
/// bf16 pinned fp32 order) into operands[i].acc and measures every PassTiming figure by
/// classifying each cycle. `operands` is empty (timing only) or has one entry per pass.
/// Throws std::invalid_argument for a bad config or pass, HazardError on a conflict.
SteppedResult run_stepped(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                          const std::vector<PassOperands>& operands = {},
                          const SteppedOptions& options = {});

}  // namespace tpu::sim
