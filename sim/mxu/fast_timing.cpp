// Closed forms of the MAC-grid schedule (docs/mxu.md, "Fast model"): each pass's stream start
// is the latest of the constraints that the stepped model's controller waits for, and its
// window splits into stall kinds in the same precedence the stepped model classifies cycles.
#include "sim/mxu/fast_timing.h"

#include <algorithm>
#include <stdexcept>

namespace tpu::sim {

namespace {

// Length of [lo, hi) intersected with [a, b).
int64_t overlap(int64_t lo, int64_t hi, int64_t a, int64_t b) {
  return std::max<int64_t>(0, std::min(hi, b) - std::max(lo, a));
}

}  // namespace

FastArrayTimer::FastArrayTimer(const ArrayConfig& config) : config_(config) {
  validate(config_);
  shift_cycles_ = config_.shift_cycles();
}

void FastArrayTimer::reset() { *this = FastArrayTimer(config_); }

PassTiming FastArrayTimer::add(const PassSpec& pass) {
  check_pass(config_, pass);
  const PassGeometry g = geometry(config_, pass);
  const auto R = static_cast<int64_t>(config_.rows);
  const int64_t S = shift_cycles_;
  const int64_t T = g.streamed;
  const bool ws = config_.dataflow == arch::Dataflow::kWeightStationary;
  const bool os = config_.dataflow == arch::Dataflow::kOutputStationary;
  const bool none = config_.overlap == arch::Overlap::kNone;
  const bool load = os ? false : pass.load;
  if (!os && !pass.load &&
      (!has_tile_ || g.stationary_rows != tile_rows_ || g.stationary_cols != tile_cols_)) {
    throw std::invalid_argument(
        "mxu pass: load=false needs a tile of the same shape already in the array");
  }

  PassTiming t;
  const int64_t g0 = any_ ? stream_end_ : 0;  // the input port is free from here
  // D: the stream may not start before the previous results have drained far enough.
  int64_t drain_until = g0;
  if (any_ && none) drain_until = std::max(drain_until, prev_last_output_ + 1);
  if (any_ && os && !none) {
    drain_until = std::max(drain_until, prev_stream_start_ + prev_streamed_ + R - T);
  }
  const int64_t gated_by_weights = ws ? 0 : pass.weights_ready_cycle;  // OS, IS: stream gate
  int64_t s = std::max({g0, drain_until, pass.inputs_ready_cycle, gated_by_weights});
  int64_t t0 = -1;
  if (load) {
    int64_t buffer_free = 0;  // earliest first issue cycle allowed by the target registers
    if (any_) {
      if (none) {
        buffer_free = prev_last_output_ + 1;
      } else if (config_.double_buffered()) {
        buffer_free = has_tile_ ? last_load_stream_start_ : 0;
      } else {
        buffer_free = stream_end_ - 1;  // with the previous pass's last input
      }
    }
    t0 = std::max(buffer_free, ws ? pass.weights_ready_cycle : int64_t{0});
    s = std::max(s, t0 + S);
  }
  t.shift_start_cycle = t0;
  t.stream_start_cycle = s;

  // Split [g0, s) by precedence: drain, shift in progress, weights missing, inputs missing.
  t.window_start = g0;
  t.window_end = s + T;
  t.busy_cycles = T;
  t.fill_drain_cycles = std::max<int64_t>(0, std::min(drain_until, s) - g0);
  const int64_t a0 = std::min(std::max(g0, drain_until), s);
  int64_t shift = 0, weight = 0;
  if (load) {
    shift = overlap(a0, s, t0, t0 + S);
    weight = ws ? overlap(a0, s, a0, t0) : overlap(a0, s, t0 + S, pass.weights_ready_cycle);
  } else if (!ws) {
    weight = overlap(a0, s, a0, pass.weights_ready_cycle);
  }
  t.weight_shift_stall_cycles = shift;
  t.weight_stall_cycles = weight;
  t.input_stall_cycles = (s - a0) - shift - weight;

  // Results (docs/mxu.md, "When each output leaves").
  const int64_t cols_used = g.stationary_cols;
  if (os) {
    t.first_output_cycle = s + T + 2 * R - 2 - pass.m;
    t.last_output_cycle = s + T + 2 * R + cols_used - 4;
  } else {
    t.first_output_cycle = s + R - 1;
    t.last_output_cycle = s + T + R + cols_used - 3;
  }

  const auto M = static_cast<int64_t>(pass.m), K = static_cast<int64_t>(pass.k),
             N = static_cast<int64_t>(pass.n);
  t.ub_read_values = M * K;
  t.acc_read_values = pass.accumulate ? M * N : 0;
  t.acc_write_values = M * N;
  t.useful_macs = M * K * N;
  t.mapping_efficiency = static_cast<double>(g.stationary_rows) * g.stationary_cols /
                         (static_cast<double>(config_.rows) * config_.cols);

  any_ = true;
  if (load) {
    has_tile_ = true;
    tile_rows_ = g.stationary_rows;
    tile_cols_ = g.stationary_cols;
    last_load_stream_start_ = s;
  }
  prev_stream_start_ = s;
  prev_streamed_ = T;
  stream_end_ = s + T;
  prev_last_output_ = t.last_output_cycle;
  max_last_output_ = std::max(max_last_output_, t.last_output_cycle);
  return t;
}

int64_t FastArrayTimer::finish(PassTiming* last) const {
  if (!any_) return 0;
  const int64_t end = max_last_output_ + 1;
  if (last != nullptr) {
    last->fill_drain_cycles += end - last->window_end;
    last->window_end = end;
  }
  return end;
}

std::vector<PassTiming> time_passes(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                                    int64_t* total_cycles) {
  FastArrayTimer timer(config);
  std::vector<PassTiming> out;
  out.reserve(passes.size());
  for (const PassSpec& p : passes) out.push_back(timer.add(p));
  const int64_t total = timer.finish(out.empty() ? nullptr : &out.back());
  if (total_cycles != nullptr) *total_cycles = total;
  return out;
}

int64_t input_entry_cycle(const PassTiming& timing, int v) { return timing.stream_start_cycle + v; }

int64_t output_cycle(const ArrayConfig& config, const PassSpec& pass, const PassTiming& timing,
                     int m, int n) {
  const int64_t s = timing.stream_start_cycle;
  const int64_t R = config.rows;
  switch (config.dataflow) {
    case arch::Dataflow::kWeightStationary:  // vector m leaves the bottom of column n
      return s + m + R - 1 + n;
    case arch::Dataflow::kInputStationary:  // vector n leaves the bottom of column m
      return s + n + R - 1 + m;
    case arch::Dataflow::kOutputStationary:  // column n drains bottom row first
      return s + pass.k + 2 * R - 3 + n - m;
  }
  return 0;
}

}  // namespace tpu::sim
