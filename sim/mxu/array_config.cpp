// ArrayConfig helpers: derivation from the architecture, validation, and the pass geometry
// that maps an M x K x N pass onto the array for each dataflow.
#include "sim/mxu/array_config.h"

#include <stdexcept>
#include <string>

namespace tpu::sim {

int ArrayConfig::shift_cycles() const {
  return (rows + weight_load_rows_per_cycle - 1) / weight_load_rows_per_cycle;
}

bool ArrayConfig::double_buffered() const {
  return weight_double_buffer && overlap == arch::Overlap::kPipelined;
}

ArrayConfig array_config_from_arch(const arch::ArchConfig& arch) {
  ArrayConfig c;
  c.rows = static_cast<int>(arch.mxu.rows);
  c.cols = static_cast<int>(arch.mxu.cols);
  c.dataflow = arch.mxu.dataflow;
  c.weight_load_rows_per_cycle = static_cast<int>(arch.mxu.weight_load_rows_per_cycle);
  c.overlap = arch.mxu.overlap;
  c.weight_double_buffer =
      arch.mxu.weight_double_buffer && arch.mxu.overlap == arch::Overlap::kPipelined;
  validate(c);
  return c;
}

void validate(const ArrayConfig& config) {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("mxu array config: " + what);
  };
  if (config.rows < 1) fail("rows must be >= 1, got " + std::to_string(config.rows));
  if (config.cols < 1) fail("cols must be >= 1, got " + std::to_string(config.cols));
  if (config.weight_load_rows_per_cycle < 1 || config.weight_load_rows_per_cycle > config.rows) {
    fail("weight_load_rows_per_cycle must be in [1, rows=" + std::to_string(config.rows) +
         "], got " + std::to_string(config.weight_load_rows_per_cycle));
  }
}

PassGeometry geometry(const ArrayConfig& config, const PassSpec& pass) {
  switch (config.dataflow) {
    case arch::Dataflow::kWeightStationary:
      return {pass.k, pass.n, pass.m};
    case arch::Dataflow::kInputStationary:
      return {pass.k, pass.m, pass.n};
    case arch::Dataflow::kOutputStationary:
      return {pass.m, pass.n, pass.k};
  }
  return {};
}

void check_pass(const ArrayConfig& config, const PassSpec& pass) {
  if (pass.m < 1 || pass.k < 1 || pass.n < 1) {
    throw std::invalid_argument("mxu pass: m, k, n must be >= 1, got " + std::to_string(pass.m) +
                                "x" + std::to_string(pass.k) + "x" + std::to_string(pass.n));
  }
  const PassGeometry g = geometry(config, pass);
  if (g.stationary_rows > config.rows || g.stationary_cols > config.cols) {
    throw std::invalid_argument("mxu pass: tile " + std::to_string(g.stationary_rows) + "x" +
                                std::to_string(g.stationary_cols) + " does not fit the " +
                                std::to_string(config.rows) + "x" + std::to_string(config.cols) +
                                " array");
  }
  if (pass.weights_ready_cycle < 0 || pass.inputs_ready_cycle < 0) {
    throw std::invalid_argument("mxu pass: ready cycles must be >= 0");
  }
}

double PassTiming::utilization(const ArrayConfig& config) const {
  const int64_t cycles = window_cycles();
  if (cycles <= 0) return 0;
  return static_cast<double>(useful_macs) /
         (static_cast<double>(config.rows) * config.cols * static_cast<double>(cycles));
}

bool operator==(const PassTiming& a, const PassTiming& b) {
  return a.shift_start_cycle == b.shift_start_cycle &&
         a.stream_start_cycle == b.stream_start_cycle &&
         a.first_output_cycle == b.first_output_cycle &&
         a.last_output_cycle == b.last_output_cycle && a.window_start == b.window_start &&
         a.window_end == b.window_end && a.busy_cycles == b.busy_cycles &&
         a.weight_shift_stall_cycles == b.weight_shift_stall_cycles &&
         a.weight_stall_cycles == b.weight_stall_cycles &&
         a.input_stall_cycles == b.input_stall_cycles &&
         a.fill_drain_cycles == b.fill_drain_cycles && a.ub_read_values == b.ub_read_values &&
         a.acc_read_values == b.acc_read_values && a.acc_write_values == b.acc_write_values &&
         a.useful_macs == b.useful_macs && a.mapping_efficiency == b.mapping_efficiency;
}

}  // namespace tpu::sim
