// report.json and the summary table. The TPU v1 Table 3 breakdown is computed over all MXUs
// of the chip: each row is a fraction of (cycles x MXUs).
#include "sim/chip/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace tpu::sim {

namespace {

int64_t sum_matching(const std::map<std::string, int64_t>& c, const std::string& prefix,
                     const std::string& suffix) {
  int64_t total = 0;
  for (const auto& [path, v] : c) {
    if (path.compare(0, prefix.size(), prefix) == 0 && path.size() >= suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      total += v;
    }
  }
  return total;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

int64_t counter(const std::map<std::string, int64_t>& c, const std::string& path) {
  auto it = c.find(path);
  return it == c.end() ? 0 : it->second;
}

// Sum of one state's cycles over every MXU of the chip ("chip.coreN.mxuM.<state>_cycles").
int64_t sum_mxu(const std::map<std::string, int64_t>& c, const std::string& state) {
  std::string suffix = "." + state + "_cycles";
  int64_t total = 0;
  for (const auto& [path, v] : c) {
    std::size_t p = path.rfind('.');
    std::size_t unit = path.rfind('.', p - 1);
    if (p == std::string::npos || unit == std::string::npos) continue;
    if (path.compare(unit + 1, 3, "mxu") == 0 && path.compare(p, std::string::npos, suffix) == 0) {
      total += v;
    }
  }
  return total;
}

/// Parameter bytes of the programs (isa::is_parameter regions): in total, resident in off-chip
/// memory (on an architecture with a parameter cache: cached on chip), in host memory, and
/// moved host -> device by the programs' DMA loads (every core's).
struct ParameterBytes {
  int64_t total = 0, resident = 0, host = 0, streamed = 0;
};

ParameterBytes parameter_bytes(const std::vector<const isa::Program*>& programs) {
  ParameterBytes p;
  if (programs.empty()) return p;
  std::map<uint64_t, std::pair<uint64_t, bool>> host;  // start -> (end, is parameter)
  for (const auto& r : programs.front()->regions) {
    bool param = isa::is_parameter(r);
    int64_t bytes = static_cast<int64_t>(r.bytes());
    if (param) p.total += bytes;
    if (r.space == isa::Space::kHost) {
      host[r.addr] = {r.addr + r.bytes(), param};
      if (param) p.host += bytes;
    } else if (param) {
      p.resident += bytes;
    }
  }
  for (const isa::Program* program : programs) {
    for (const auto& in : program->code) {
      if (in.op != isa::Opcode::kDmaLoad ||
          in.get(isa::Fid::kDmaLoad_space) != static_cast<int>(isa::Space::kHost)) {
        continue;
      }
      uint64_t src = static_cast<uint64_t>(in.get(isa::Fid::kDmaLoad_src));
      auto it = host.upper_bound(src);
      if (it == host.begin()) continue;
      --it;
      if (src < it->second.first && it->second.second) {
        p.streamed += in.get(isa::Fid::kDmaLoad_rows) * in.get(isa::Fid::kDmaLoad_row_bytes);
      }
    }
  }
  return p;
}

}  // namespace

nlohmann::json make_report(const arch::ArchConfig& arch,
                           const std::vector<const isa::Program*>& programs,
                           const std::string& program_name, const ChipResult& r,
                           bool functional) {
  const auto& c = r.counters;
  bool any_bf16 = false, any_int8 = false;
  for (const isa::Program* program : programs) {
    for (const auto& in : program->code) {
      if (in.op == isa::Opcode::kMatmul) {
        (in.get(isa::Fid::kMatmul_dtype) == 0 ? any_int8 : any_bf16) = true;
      }
    }
  }
  std::string dtype = any_bf16 ? (any_int8 ? "mixed" : "bf16") : (any_int8 ? "int8" : "none");
  int64_t peak_macs = any_bf16 ? arch.derived.peak_macs_per_cycle_bf16
                               : arch.derived.peak_macs_per_cycle_int8;
  double hz = arch.clock_mhz * 1e6;
  double cycles = static_cast<double>(r.cycles);
  double seconds = cycles / hz;
  int64_t macs = sum_matching(c, "chip.", ".useful_macs");
  double mxu_cycles = cycles * static_cast<double>(arch.derived.mxus);
  auto mxu_frac = [&](const std::string& state) {
    return ratio(static_cast<double>(sum_mxu(c, state)), mxu_cycles);
  };
  double busy = mxu_frac("busy");
  double fill_drain = mxu_frac("fill_drain");
  double active = busy + fill_drain;
  double useful = ratio(static_cast<double>(macs), static_cast<double>(peak_macs) * cycles);
  double weight_stall = mxu_frac("weight_stall");
  double weight_shift = mxu_frac("weight_shift_stall");
  int64_t hbm_read = counter(c, "chip.hbm.read_bytes");
  int64_t hbm_write = counter(c, "chip.hbm.write_bytes");

  nlohmann::json instructions = nlohmann::json::object();
  for (const auto& [path, v] : c) {
    std::size_t p = path.find(".count.");
    if (p == std::string::npos) continue;
    std::string op = path.substr(p + 7);  // summed over the cores
    instructions[op] = instructions.value(op, int64_t{0}) + v;
  }
  nlohmann::json units = nlohmann::json::object();
  for (const auto& [path, v] : c) units[path] = v;

  nlohmann::json j;
  j["schema_version"] = kReportSchemaVersion;
  j["arch"] = {{"name", arch.name},
               {"fingerprint", arch.fingerprint},
               {"clock_hz", hz},
               {"cores", arch.cores},
               {"mxus", arch.derived.mxus},
               {"peak_macs_per_cycle", peak_macs},
               {"peak_ops_per_cycle", 2 * peak_macs},
               {"memory_bandwidth_gbps", arch.memory.bandwidth_gbps}};
  j["workload"] = {{"name", program_name}, {"dtype", dtype}, {"batch", nullptr}, {"mode", "exec"}};
  j["functional"] = functional;
  j["completed"] = r.completed;
  j["total_cycles"] = r.cycles;
  j["seconds"] = seconds;
  j["macs"] = macs;
  j["utilization"] = useful;
  j["achieved_tops"] = ratio(2.0 * static_cast<double>(macs), seconds) / 1e12;
  j["stall_breakdown"] = {{"array_active", active},
                          {"useful_macs", useful},
                          {"unused_macs", std::max(0.0, active - useful)},
                          {"weight_stall", weight_stall},
                          {"weight_shift", weight_shift},
                          {"non_matrix", std::max(0.0, 1.0 - active - weight_stall - weight_shift)},
                          {"raw_stall", mxu_frac("raw_stall")},
                          {"input_stall", mxu_frac("input_stall")}};
  j["memory"] = {{"hbm_read_bytes", hbm_read},
                 {"hbm_write_bytes", hbm_write},
                 {"hbm_achieved_gbps", ratio(static_cast<double>(hbm_read + hbm_write), seconds) / 1e9},
                 {"hbm_busy_fraction", ratio(static_cast<double>(counter(c, "chip.hbm.busy_cycles")), cycles)},
                 {"host_to_device_bytes", counter(c, "chip.host_link.to_device_bytes")},
                 {"device_to_host_bytes", counter(c, "chip.host_link.to_host_bytes")},
                 {"ub_peak_bytes", r.ub_footprint_bytes},
                 {"ub_read_bytes", sum_matching(c, "chip.", ".ub.read_bytes")},
                 {"ub_write_bytes", sum_matching(c, "chip.", ".ub.write_bytes")}};
  ParameterBytes params = parameter_bytes(programs);
  int64_t to_device_busy = counter(c, "chip.host_link.to_device_busy_cycles");
  int64_t to_host_busy = counter(c, "chip.host_link.to_host_busy_cycles");
  auto& m = j["memory"];
  m["parameter_bytes"] = params.total;
  m["parameter_cache_bytes"] =
      arch.memory.kind == arch::MemoryKind::kNone ? 0 : arch.memory.parameter_cache_bytes;
  m["parameters_resident_bytes"] = params.resident;
  m["parameters_host_bytes"] = params.host;
  m["parameters_streamed_bytes"] = params.streamed;
  m["parameter_load_seconds"] =
      static_cast<double>(params.resident) / (arch.host_link.bandwidth_gbps * 1e9);
  m["host_to_device_busy_cycles"] = to_device_busy;
  m["device_to_host_busy_cycles"] = to_host_busy;
  m["host_link_busy_fraction"] =
      ratio(static_cast<double>(std::max(to_device_busy, to_host_busy)), cycles);
  j["instructions"] = instructions;
  j["units"] = units;
  j["layers"] = nlohmann::json::array();
  if (!r.completed) j["stuck"] = r.stuck;
  return j;
}

std::string summary_text(const nlohmann::json& j) {
  std::string out = fmt::format("tpusim: {} on {} [{}]{}\n", j["workload"]["name"].get<std::string>(),
                                j["arch"]["name"].get<std::string>(),
                                j["arch"]["fingerprint"].get<std::string>(),
                                j["functional"].get<bool>() ? "" : " (timing only)");
  auto row = [&](const std::string& k, const std::string& v, const std::string& unit) {
    out += fmt::format("  {:<26}{:>18} {}\n", k, v, unit);
  };
  row("cycles", fmt::format("{}", j["total_cycles"].get<int64_t>()), "cycles");
  row("time", fmt::format("{:.3f}", j["seconds"].get<double>() * 1e6), "us");
  row("MACs", fmt::format("{}", j["macs"].get<int64_t>()), "");
  row("utilization", fmt::format("{:.1f}", 100 * j["utilization"].get<double>()), "% of peak");
  row("achieved", fmt::format("{:.3f}", j["achieved_tops"].get<double>()), "TOPS");
  const auto& s = j["stall_breakdown"];
  for (const char* k : {"array_active", "weight_stall", "weight_shift", "non_matrix", "raw_stall",
                        "input_stall"}) {
    row(std::string("  ") + k, fmt::format("{:.1f}", 100 * s[k].get<double>()), "% of MXU cycles");
  }
  const auto& m = j["memory"];
  row("HBM read", fmt::format("{}", m["hbm_read_bytes"].get<int64_t>()), "bytes");
  row("HBM write", fmt::format("{}", m["hbm_write_bytes"].get<int64_t>()), "bytes");
  row("HBM achieved", fmt::format("{:.2f}", m["hbm_achieved_gbps"].get<double>()), "GB/s");
  row("UB peak", fmt::format("{}", m["ub_peak_bytes"].get<int64_t>()), "bytes");
  if (m.contains("offchip_footprint_bytes")) {
    row("off-chip footprint", fmt::format("{}", m["offchip_footprint_bytes"].get<int64_t>()),
        fmt::format("bytes ({:.1f}% of memory)", 100 * m["offchip_footprint_fraction"].get<double>()));
    if (m["host_footprint_bytes"].get<int64_t>() > 0) {
      row("host footprint", fmt::format("{}", m["host_footprint_bytes"].get<int64_t>()), "bytes");
    }
  }
  if (m.value("parameter_cache_bytes", int64_t{0}) > 0 || m.value("host_to_device_bytes", int64_t{0}) > 0 ||
      m.value("device_to_host_bytes", int64_t{0}) > 0) {
    row("parameters", fmt::format("{}", m["parameter_bytes"].get<int64_t>()), "bytes");
    row("  resident on chip", fmt::format("{}", m["parameters_resident_bytes"].get<int64_t>()),
        "bytes (loaded once, not in this time)");
    row("  streamed from host", fmt::format("{}", m["parameters_streamed_bytes"].get<int64_t>()),
        "bytes this run");
    row("host link in", fmt::format("{}", m["host_to_device_bytes"].get<int64_t>()),
        fmt::format("bytes, busy {:.1f}% of the run",
                    100 * ratio(static_cast<double>(m["host_to_device_busy_cycles"].get<int64_t>()),
                                static_cast<double>(j["total_cycles"].get<int64_t>()))));
    row("host link out", fmt::format("{}", m["device_to_host_bytes"].get<int64_t>()),
        fmt::format("bytes, busy {:.1f}% of the run",
                    100 * ratio(static_cast<double>(m["device_to_host_busy_cycles"].get<int64_t>()),
                                static_cast<double>(j["total_cycles"].get<int64_t>()))));
  }
  return out;
}

}  // namespace tpu::sim
