// The architecture schema (the one place that declares every chip parameter), cross-field
// validation and the derived figures.
#include "arch/arch_config.h"

#include <fmt/format.h>

#include <algorithm>

namespace tpu::arch {

const std::vector<std::string>& dataflow_names() {
  static const std::vector<std::string> k = {"weight_stationary", "output_stationary",
                                             "input_stationary"};
  return k;
}

const std::vector<std::string>& dtype_names() {
  static const std::vector<std::string> k = {"int8", "bf16"};
  return k;
}

const std::string& dtype_name(DType d) { return dtype_names().at(static_cast<int>(d)); }

bool ArchConfig::supports(DType d) const {
  return std::find(mxu.dtypes.begin(), mxu.dtypes.end(), d) != mxu.dtypes.end();
}

namespace {

constexpr int64_t kTiB = int64_t{1} << 40;

Schema<ArchConfig> build_schema() {
  using C = ArchConfig;
  Schema<C> s;
  s.add_string("name", [](C& c) -> std::string& { return c.name; }, "custom",
               "Name of the design, shown in reports");
  s.add_float("clock_mhz", [](C& c) -> double& { return c.clock_mhz; }, "", 1, 100000, "MHz",
              "Core clock; every cycle count in a report is in this clock");
  s.add_int("cores", [](C& c) -> int64_t& { return c.cores; }, "1", 1, 64, "",
            "TensorCores per chip, identical, each with its own MXUs, buffer and accumulators");

  s.add_int("mxu.count", [](C& c) -> int64_t& { return c.mxu.count; }, "1", 1, 64, "",
            "Matrix units (systolic arrays) per core");
  s.add_int("mxu.rows", [](C& c) -> int64_t& { return c.mxu.rows; }, "", 1, 4096, "PEs",
            "Array rows: the reduction (K) size of a weight tile");
  s.add_int("mxu.cols", [](C& c) -> int64_t& { return c.mxu.cols; }, "", 1, 4096, "PEs",
            "Array columns: the output (N) size of a weight tile");
  s.add_enum<Dataflow>("mxu.dataflow", [](C& c) -> Dataflow& { return c.mxu.dataflow; },
                       "weight_stationary", dataflow_names(),
                       "Which operand stays in the PEs during a pass");
  s.add_enum_list<DType>("mxu.dtypes", [](C& c) -> std::vector<DType>& { return c.mxu.dtypes; },
                         "[int8]", dtype_names(), /*distinct=*/true, "Operand types the array multiplies");
  s.add_int("mxu.int8_macs_per_pe", [](C& c) -> int64_t& { return c.mxu.int8_macs_per_pe; },
            "1", 1, 4, "MACs/cycle", "int8 MACs per PE per cycle (bf16 is always 1)");
  s.add_int("mxu.weight_load_rows_per_cycle",
            [](C& c) -> int64_t& { return c.mxu.weight_load_rows_per_cycle; }, "1", 1, 4096,
            "rows/cycle", "Weight rows shifted into the array per cycle (weight bus width)");
  s.add_bool("mxu.weight_double_buffer", [](C& c) -> bool& { return c.mxu.weight_double_buffer; },
             "true", "Array holds a second weight tile that shifts in during compute (TPU v1)");
  s.add_int("mxu.weight_fifo_depth", [](C& c) -> int64_t& { return c.mxu.weight_fifo_depth; },
            "4", 1, 64, "tiles", "Weight tiles the FIFO in front of the array holds");
  s.add_bool("mxu.weight_whole_tiles", [](C& c) -> bool& { return c.mxu.weight_whole_tiles; }, "false",
             "A weight load from memory moves a whole rows x cols tile (weights stored as zero-padded tiles), "
             "whatever its k and n");
  s.add_enum<Overlap>("mxu.overlap", [](C& c) -> Overlap& { return c.mxu.overlap; }, "pipelined",
                      {"pipelined", "none"},
                      "none: each pass loads, streams and drains before the next (textbook "
                      "schedule; also disables weight double-buffering)");

  s.add_int("unified_buffer.bytes", [](C& c) -> int64_t& { return c.unified_buffer.bytes; }, "",
            1, int64_t{1} << 32, "bytes", "On-chip activation memory per core (UB / VMEM; at most 4 GiB, the ISA's 32-bit UB addresses)");
  s.add_int("unified_buffer.banks", [](C& c) -> int64_t& { return c.unified_buffer.banks; }, "1",
            1, 1024, "", "Independent banks; bytes must divide evenly among them");
  s.add_int("unified_buffer.port_bytes_per_cycle",
            [](C& c) -> int64_t& { return c.unified_buffer.port_bytes_per_cycle; }, "", 1,
            1 << 20, "bytes/cycle", "Width of one buffer port");
  s.add_int("unified_buffer.ports", [](C& c) -> int64_t& { return c.unified_buffer.ports; }, "2",
            1, 16, "", "Ports shared by MXU reads, vector unit and DMA");

  s.add_int("accumulators.entries", [](C& c) -> int64_t& { return c.accumulators.entries; }, "",
            2, 1 << 20, "rows", "Accumulator rows per MXU, each mxu.cols values wide (at least 2: a band takes at most half)");
  s.add_int("accumulators.width_bits", [](C& c) -> int64_t& { return c.accumulators.width_bits; },
            "32", 32, 32, "bits", "Accumulator word (int32 or fp32; only 32 is modelled)");

  s.add_int("vector_unit.lanes", [](C& c) -> int64_t& { return c.vector_unit.lanes; }, "", 1,
            1 << 20, "", "Vector unit lanes per core");
  s.add_int("vector_unit.ops_per_lane_per_cycle",
            [](C& c) -> int64_t& { return c.vector_unit.ops_per_lane_per_cycle; }, "1", 1, 64,
            "ops/cycle", "Elementwise operations each lane completes per cycle");

  s.add_int("vector_unit.latency_cycles",
            [](C& c) -> int64_t& { return c.vector_unit.latency_cycles; }, "8", 0, 1 << 16,
            "cycles", "Pipeline latency of one vector instruction");

  s.add_int("sequencer.issue_cycles", [](C& c) -> int64_t& { return c.sequencer.issue_cycles; },
            "1", 1, 1 << 16, "cycles", "Cycles to fetch, decode and issue one instruction");
  s.add_int("sequencer.queue_depth", [](C& c) -> int64_t& { return c.sequencer.queue_depth; },
            "16", 1, 4096, "instructions", "Depth of each unit's instruction queue");
  s.add_bool("sequencer.layer_sync", [](C& c) -> bool& { return c.sequencer.layer_sync; }, "false",
             "Each layer's first matrix pass waits for all earlier vector-unit work (sync units=vector), "
             "as TPU v1 synchronises Activate -> MatrixMultiply");

  s.add_enum<MemoryKind>("memory.kind", [](C& c) -> MemoryKind& { return c.memory.kind; }, "hbm",
                         {"none", "sram", "ddr3", "ddr4", "lpddr4", "gddr5", "hbm", "hbm2", "hbm2e"},
                         "Weight/tensor memory behind the DMA (sram: on-chip parameter cache; none: no local memory)");
  s.add_int("memory.bytes", [](C& c) -> int64_t& { return c.memory.bytes; }, "0", 0, 64 * kTiB,
            "bytes", "Off-chip memory capacity");
  s.add_float("memory.bandwidth_gbps", [](C& c) -> double& { return c.memory.bandwidth_gbps; },
              "0", 0, 1e6, "GB/s", "Off-chip bandwidth, all channels (1 GB = 1e9 bytes)");
  s.add_float("memory.latency_ns", [](C& c) -> double& { return c.memory.latency_ns; }, "100", 0,
              1e6, "ns", "Latency of one off-chip access");
  s.add_int("memory.channels", [](C& c) -> int64_t& { return c.memory.channels; }, "1", 1, 1024,
            "", "Independent channels sharing the bandwidth equally");
  s.add_int("memory.burst_bytes", [](C& c) -> int64_t& { return c.memory.burst_bytes; }, "256",
            32, 1 << 20, "bytes",
            "Channel interleave and arbitration unit: transfers are split into bursts that "
            "alternate over channels and take turns with other transfers in time order");
  s.add_int("memory.parameter_cache_bytes",
            [](C& c) -> int64_t& { return c.memory.parameter_cache_bytes; }, "0", 0, 64 * kTiB,
            "bytes",
            "Lowest bytes of memory reserved for parameters resident across inferences, placed "
            "whole in model order while they fit; a parameter that does not fit stays in host "
            "memory and crosses host_link on every inference (0: no cache, parameters and "
            "activations share memory)");
  s.add_float("memory.refresh_interval_ns",
              [](C& c) -> double& { return c.memory.refresh_interval_ns; }, "0", 0, 1e9, "ns",
              "DRAM refresh interval (tREFI): every channel refreshes all its banks once per "
              "interval, at the same phase (0: no refresh)");
  s.add_float("memory.refresh_ns", [](C& c) -> double& { return c.memory.refresh_ns; }, "0", 0,
              1e9, "ns",
              "Time one refresh holds a channel (tRFC): no transfer moves during it; at most "
              "half of memory.refresh_interval_ns");

  s.add_enum<HostLinkKind>("host_link.kind",
                           [](C& c) -> HostLinkKind& { return c.host_link.kind; }, "pcie",
                           {"pcie", "usb"}, "Link to the host");
  s.add_float("host_link.bandwidth_gbps",
              [](C& c) -> double& { return c.host_link.bandwidth_gbps; }, "", 1e-3, 1e5, "GB/s",
              "Host link bandwidth per direction");
  s.add_float("host_link.latency_ns", [](C& c) -> double& { return c.host_link.latency_ns; },
              "1000", 0, 1e9, "ns", "Host link latency");
  s.add_bool("host_link.carries_io", [](C& c) -> bool& { return c.host_link.carries_io; },
             "false",
             "Workload inputs and outputs stay in host memory: every inference moves its inputs "
             "over the link and its outputs back (an accelerator on USB or PCIe)");

  s.add_bool("numerics.flush_subnormals",
             [](C& c) -> bool& { return c.numerics.flush_subnormals; }, "true",
             "bf16 subnormals become signed zero on conversion (Cloud TPU behaviour)");

  s.add_float("published.peak_tops_int8",
              [](C& c) -> double& { return c.published.peak_tops_int8; }, "0", 0, 1e7, "TOPS",
              "Published int8 peak, for validation (0: none published)");
  s.add_float("published.peak_tflops_bf16",
              [](C& c) -> double& { return c.published.peak_tflops_bf16; }, "0", 0, 1e7,
              "TFLOPS", "Published bf16 peak, for validation (0: none published)");
  return s;
}

[[noreturn]] void inconsistent(const RawConfig& raw, const std::string& key,
                               const std::string& expected, const std::string& found) {
  throw InputError(raw.where(key), raw.label(key), expected, found);
}

void validate(const ArchConfig& c, const RawConfig& raw) {
  const auto& ub = c.unified_buffer;
  if (ub.bytes % ub.banks != 0) {
    inconsistent(raw, "unified_buffer.bytes",
                 fmt::format("a multiple of unified_buffer.banks ({})", ub.banks),
                 std::to_string(ub.bytes));
  }
  if (c.mxu.weight_load_rows_per_cycle > c.mxu.rows) {
    inconsistent(raw, "mxu.weight_load_rows_per_cycle",
                 fmt::format("at most mxu.rows ({})", c.mxu.rows),
                 std::to_string(c.mxu.weight_load_rows_per_cycle));
  }
  if (c.mxu.int8_macs_per_pe > 1 && !c.supports(DType::kInt8)) {
    inconsistent(raw, "mxu.int8_macs_per_pe", "1 when mxu.dtypes lacks int8",
                 std::to_string(c.mxu.int8_macs_per_pe));
  }
  if (c.memory.parameter_cache_bytes > c.memory.bytes) {
    inconsistent(raw, "memory.parameter_cache_bytes",
                 fmt::format("at most memory.bytes ({})", c.memory.bytes),
                 std::to_string(c.memory.parameter_cache_bytes));
  }
  if (c.memory.refresh_interval_ns == 0 && c.memory.refresh_ns != 0) {
    inconsistent(raw, "memory.refresh_ns", "0 when memory.refresh_interval_ns is 0 (no refresh)",
                 format_float(c.memory.refresh_ns));
  }
  // Real parts spend well under a quarter of the time refreshing; half bounds the slow-down a
  // config can ask for (a refresh close to its interval would stretch runs without bound).
  if (c.memory.refresh_interval_ns > 0 && !(c.memory.refresh_ns <= c.memory.refresh_interval_ns / 2)) {
    inconsistent(raw, "memory.refresh_ns",
                 fmt::format("at most half of memory.refresh_interval_ns ({})",
                             format_float(c.memory.refresh_interval_ns)),
                 format_float(c.memory.refresh_ns));
  }
  if (c.memory.refresh_interval_ns > 0 &&
      (c.memory.kind == MemoryKind::kNone || c.memory.kind == MemoryKind::kSram)) {
    inconsistent(raw, "memory.refresh_interval_ns", "0 for memory.kind none or sram (no DRAM)",
                 format_float(c.memory.refresh_interval_ns));
  }
  if (c.memory.kind == MemoryKind::kNone) {
    if (c.memory.bytes != 0) {
      inconsistent(raw, "memory.bytes", "0 when memory.kind is none",
                   std::to_string(c.memory.bytes));
    }
  } else {
    if (c.memory.bytes == 0) {
      inconsistent(raw, "memory.bytes", "a capacity > 0 (memory.kind is not none)", "0");
    }
    if (c.memory.bandwidth_gbps <= 0) {
      inconsistent(raw, "memory.bandwidth_gbps", "a bandwidth > 0 (memory.kind is not none)",
                   format_float(c.memory.bandwidth_gbps));
    }
  }
}

void derive(ArchConfig& c) {
  Derived& d = c.derived;
  d.mxus = c.cores * c.mxu.count;
  int64_t pes = d.mxus * c.mxu.rows * c.mxu.cols;
  d.peak_macs_per_cycle_int8 = c.supports(DType::kInt8) ? pes * c.mxu.int8_macs_per_pe : 0;
  d.peak_macs_per_cycle_bf16 = c.supports(DType::kBf16) ? pes : 0;
  double hz = c.clock_mhz * 1e6;
  d.peak_tops_int8 = 2.0 * static_cast<double>(d.peak_macs_per_cycle_int8) * hz / 1e12;
  d.peak_tflops_bf16 = 2.0 * static_cast<double>(d.peak_macs_per_cycle_bf16) * hz / 1e12;
  d.ub_bytes_per_cycle = c.unified_buffer.ports * c.unified_buffer.port_bytes_per_cycle;
  d.memory_bytes_per_cycle = c.memory.bandwidth_gbps * 1e9 / hz;
  d.memory_refresh_fraction =
      c.memory.refresh_interval_ns > 0 ? c.memory.refresh_ns / c.memory.refresh_interval_ns : 0;
  d.memory_sustained_bytes_per_cycle = d.memory_bytes_per_cycle * (1 - d.memory_refresh_fraction);
  d.host_bytes_per_cycle = c.host_link.bandwidth_gbps * 1e9 / hz;
  d.accumulator_bytes = c.accumulators.entries * c.mxu.cols * (c.accumulators.width_bits / 8);
  d.weight_tile_shift_cycles =
      (c.mxu.rows + c.mxu.weight_load_rows_per_cycle - 1) / c.mxu.weight_load_rows_per_cycle;
}

ArchConfig finish(const RawConfig& raw) {
  ArchConfig c = arch_schema().load(raw);
  validate(c, raw);
  derive(c);
  c.fingerprint = fnv1a_hex(arch_schema().canonical(c));
  return c;
}

}  // namespace

const Schema<ArchConfig>& arch_schema() {
  static const Schema<ArchConfig> s = build_schema();
  return s;
}

ArchConfig load_arch(const std::string& path, const std::vector<std::string>& overrides) {
  std::vector<std::string> keys = arch_schema().keys();
  RawConfig raw = RawConfig::from_file(path, keys);
  for (const auto& o : overrides) raw.apply_override(o, keys);
  return finish(raw);
}

ArchConfig load_arch_string(const std::string& yaml, const std::string& name,
                            const std::vector<std::string>& overrides) {
  std::vector<std::string> keys = arch_schema().keys();
  RawConfig raw = RawConfig::from_string(yaml, name, keys);
  for (const auto& o : overrides) raw.apply_override(o, keys);
  return finish(raw);
}

std::string dump_arch(const ArchConfig& c) {
  return fmt::format("# tpusim resolved architecture, fingerprint {}\n", c.fingerprint) +
         arch_schema().dump(c);
}

std::string dump_derived(const ArchConfig& c) {
  const Derived& d = c.derived;
  std::string out = "# derived (computed, not read):\n";
  out += fmt::format("#   mxus: {}\n", d.mxus);
  out += fmt::format("#   peak_macs_per_cycle_int8: {}\n", d.peak_macs_per_cycle_int8);
  out += fmt::format("#   peak_macs_per_cycle_bf16: {}\n", d.peak_macs_per_cycle_bf16);
  out += fmt::format("#   peak_tops_int8: {:.3f}\n", d.peak_tops_int8);
  out += fmt::format("#   peak_tflops_bf16: {:.3f}\n", d.peak_tflops_bf16);
  out += fmt::format("#   ub_bytes_per_cycle: {}\n", d.ub_bytes_per_cycle);
  out += fmt::format("#   memory_bytes_per_cycle: {:.3f}\n", d.memory_bytes_per_cycle);
  if (d.memory_refresh_fraction > 0) {
    out += fmt::format("#   memory_refresh_fraction: {:.4f}\n", d.memory_refresh_fraction);
    out += fmt::format("#   memory_sustained_bytes_per_cycle: {:.3f}\n",
                       d.memory_sustained_bytes_per_cycle);
  }
  out += fmt::format("#   host_bytes_per_cycle: {:.3f}\n", d.host_bytes_per_cycle);
  out += fmt::format("#   accumulator_bytes_per_mxu: {}\n", d.accumulator_bytes);
  out += fmt::format("#   weight_tile_shift_cycles: {}\n", d.weight_tile_shift_cycles);
  return out;
}

bool operator==(const ArchConfig& a, const ArchConfig& b) {
  return arch_schema().canonical(a) == arch_schema().canonical(b);
}

}  // namespace tpu::arch
