// The MAC grid's configuration and the description of one pass through it, shared by the
// stepped PE-level oracle and the fast model. docs/mxu.md defines every rule and figure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/arch_config.h"

namespace tpu::sim {

/// One systolic array (R rows x C columns) and its weight path.
struct ArrayConfig {
  int rows = 0;  ///< R: PE rows
  int cols = 0;  ///< C: PE columns
  arch::Dataflow dataflow = arch::Dataflow::kWeightStationary;
  /// W: stationary-tile rows the weight bus issues per cycle (1..R). A tile takes
  /// S = ceil(R / W) issue cycles.
  int weight_load_rows_per_cycle = 1;
  /// A second (shadow) register per PE so the next stationary tile shifts in while the
  /// current one computes. Ignored (single-buffered) when overlap is kNone.
  bool weight_double_buffer = true;
  /// kNone: each pass loads, streams and drains before the next one starts.
  arch::Overlap overlap = arch::Overlap::kPipelined;

  /// S = ceil(R / W), in cycles: the issue cycles of one stationary tile.
  int shift_cycles() const;
  /// True when the next tile may shift in while the current one computes.
  bool double_buffered() const;
};

/// The array of one MXU of `arch` (overlap none implies single-buffered weights).
ArrayConfig array_config_from_arch(const arch::ArchConfig& arch);

/// Throws std::invalid_argument naming the field when a value is out of range
/// (rows, cols >= 1; 1 <= weight_load_rows_per_cycle <= rows).
void validate(const ArrayConfig& config);

/// One pass: an M x K input block times a K x N weight block, accumulated into M x N
/// accumulators (the isa::matmul_pass_* contract). How M, K, N map onto the array depends on
/// the dataflow (docs/mxu.md): WS holds a K x N weight tile and streams M input vectors,
/// IS holds a K x M input tile and streams N weight vectors, OS holds the M x N outputs and
/// streams K steps.
struct PassSpec {
  int m = 1;
  int k = 1;
  int n = 1;
  /// WS/IS: shift a new stationary tile in before streaming (ISA matmul pop=1); false
  /// reuses the tile already in the array (pop=0; same tile shape required). Ignored by OS.
  bool load = true;
  /// Add the pass result to the accumulators (true) or overwrite them (false).
  bool accumulate = false;
  /// Cycle from which this pass's weights can enter the array (they have arrived from
  /// memory): WS gates the first weight-shift cycle, OS and IS the first streamed vector.
  int64_t weights_ready_cycle = 0;
  /// Cycle from which the pass's first streamed vector may enter (inputs and the issuing
  /// instruction are ready). Waiting for it is an input stall.
  int64_t inputs_ready_cycle = 0;
};

/// Dataflow-neutral view of a pass's shape on the array.
struct PassGeometry {
  int stationary_rows = 0;  ///< array rows the pass uses (WS, IS: K; OS: M)
  int stationary_cols = 0;  ///< array columns the pass uses (WS: N; IS: M; OS: N)
  int streamed = 0;         ///< T: vectors streamed, one per cycle (WS: M; IS: N; OS: K)
};

/// The geometry of `pass` on `config`.
PassGeometry geometry(const ArrayConfig& config, const PassSpec& pass);

/// Throws std::invalid_argument when the pass does not fit the array or has a size < 1.
void check_pass(const ArrayConfig& config, const PassSpec& pass);

/// Timing and traffic of one pass. Cycles are absolute: cycle 0 is the first cycle of the
/// sequence. Every cycle of [window_start, window_end) is counted in exactly one of busy,
/// weight_shift_stall, weight_stall, input_stall, fill_drain; the windows of consecutive
/// passes tile the sequence without gaps.
struct PassTiming {
  int64_t shift_start_cycle = -1;         ///< first issue cycle of the stationary tile (-1: none)
  int64_t stream_start_cycle = 0;         ///< s: cycle the first streamed vector enters
  int64_t first_output_cycle = 0;         ///< cycle the first result element leaves the array
  int64_t last_output_cycle = 0;          ///< cycle the last result element leaves the array
  int64_t window_start = 0;               ///< first cycle accounted to this pass
  int64_t window_end = 0;                 ///< one past the last cycle accounted to this pass
  int64_t busy_cycles = 0;                ///< cycles a streamed vector of this pass enters (= T)
  int64_t weight_shift_stall_cycles = 0;  ///< waiting while the stationary tile shifts in
  int64_t weight_stall_cycles = 0;        ///< waiting for weights to arrive (weights_ready_cycle)
  int64_t input_stall_cycles = 0;         ///< waiting for inputs (inputs_ready_cycle)
  int64_t fill_drain_cycles = 0;          ///< waiting for results to drain; the final drain
  int64_t ub_read_values = 0;             ///< input elements read from the unified buffer (M*K)
  int64_t acc_read_values = 0;            ///< accumulator elements read (M*N when accumulating)
  int64_t acc_write_values = 0;           ///< accumulator elements written (M*N)
  int64_t useful_macs = 0;                ///< M*K*N
  int64_t window_cycles() const { return window_end - window_start; }
  /// useful_macs / (R * C * window_cycles); 0 for an empty window.
  double utilization(const ArrayConfig& config) const;
  /// used rows * used columns / (R * C).
  double mapping_efficiency = 0;
};

bool operator==(const PassTiming& a, const PassTiming& b);

}  // namespace tpu::sim
