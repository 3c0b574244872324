// The fast MAC-grid timing model: closed-form per-pass timing plus the little pipeline state
// that links consecutive passes. Equal, cycle for cycle, to the stepped oracle (SteppedArray).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/mxu/array_config.h"

namespace tpu::sim {

/// Times a sequence of passes one call at a time, never stepping cycles. The chip model owns
/// one per MXU and calls add() once per matmul pass, in program order. Pure bookkeeping: no
/// time advances anywhere; the returned cycles are absolute (cycle 0 = the first cycle of
/// the sequence).
class FastArrayTimer {
 public:
  /// Validates the config (std::invalid_argument on a bad value).
  explicit FastArrayTimer(const ArrayConfig& config);

  /// Times the next pass. Its window is [previous pass's stream end, own stream end); the
  /// drain after the final pass is accounted only by finish(). Throws std::invalid_argument
  /// for a pass that does not fit, or a reuse pass (load=false, WS/IS) without a tile in the
  /// array or with another tile shape.
  PassTiming add(const PassSpec& pass);

  /// Ends the sequence: extends `last` (the timing add() returned for the final pass) by the
  /// final drain (fill_drain_cycles, window_end) and returns the total cycles of the
  /// sequence (last result out + 1). The timer can be reused after reset().
  int64_t finish(PassTiming* last) const;

  /// Forgets all passes (the array is empty again, time restarts at cycle 0).
  void reset();

  const ArrayConfig& config() const { return config_; }

 private:
  ArrayConfig config_;
  int shift_cycles_ = 1;
  bool any_ = false;       // a pass has been added
  bool has_tile_ = false;  // a stationary tile is in the array
  int tile_rows_ = 0, tile_cols_ = 0;
  int64_t stream_end_ = 0;  // stream end of the previous pass
  int64_t prev_stream_start_ = 0;
  int64_t prev_streamed_ = 0;  // T of the previous pass
  int64_t prev_last_output_ = -1;
  int64_t max_last_output_ = -1;
  int64_t last_load_stream_start_ = 0;  // s of the last pass that shifted a tile in
};

/// Times a whole sequence: add() for every pass, finish() on the last. Returns one timing
/// per pass; *total_cycles (if not null) receives the sequence length in cycles.
std::vector<PassTiming> time_passes(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                                    int64_t* total_cycles = nullptr);

/// Cycle at which streamed vector v (0 <= v < T) of a pass enters the array (its element
/// for array row/column 0; element i follows i cycles later).
int64_t input_entry_cycle(const PassTiming& timing, int v);

/// Cycle at which result element (m, n) of `pass` (0 <= m < M, 0 <= n < N) leaves the
/// array, given the pass's timing (docs/mxu.md, "When each output leaves").
int64_t output_cycle(const ArrayConfig& config, const PassSpec& pass, const PassTiming& timing,
                     int m, int n);

}  // namespace tpu::sim
