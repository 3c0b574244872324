// tpusim compile and tpusim run: workloads through the compiler onto the chip model, with the
// per-layer report (report.json "layers", layers.csv) and the golden-numerics check.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "compiler/compiler.h"
#include "compiler/reference.h"
#include "compiler/training.h"
#include "isa/assembler.h"
#include "isa/encoding.h"
#include "isa/interpreter.h"
#include "sim/chip/chip.h"
#include "sim/chip/report.h"
#include "sim/cli/commands.h"

namespace tpu::cli {

namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw InputError(SourceLocation{path, 0, 0}, "cannot write file");
}

std::optional<isa::MatType> parse_dtype(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s == "int8") return isa::MatType::kInt8;
  if (s == "bf16") return isa::MatType::kBf16;
  throw InputError(SourceLocation{"<command line>", 0, 0}, "--dtype", "int8|bf16", "'" + s + "'");
}

bool parse_training(const std::string& mode) {
  if (mode == "inference" || mode == "training") return mode == "training";
  throw InputError(SourceLocation{"<command line>", 0, 0}, "--mode", "inference|training", "'" + mode + "'");
}

compiler::Compiled compile_from(const arch::ArchConfig& a, const std::string& workload,
                                const std::string& dtype, int64_t batch, bool no_fusion,
                                const std::string& mode) {
  bool training = parse_training(mode);
  compiler::Workload w = compiler::load_workload(workload);
  compiler::CompileOptions opt;
  opt.dtype = parse_dtype(dtype);
  if (batch != -1) {
    if (batch < 1 || batch > compiler::kMaxBatch) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--batch",
                       fmt::format("an integer in [1, {}]", compiler::kMaxBatch), std::to_string(batch));
    }
    opt.batch = batch;
  }
  opt.fusion = !no_fusion;
  if (training) {
    // The training step is a workload of its own, built for the batch it runs at.
    w = compiler::training_step(w, opt.batch.value_or(w.batch), compiler::TrainOptions{});
    opt.batch.reset();
  }
  return compiler::compile(a, w, opt);
}

arch::ArchConfig load_arch_for_run(const std::string& path, std::vector<std::string> sets, bool ideal) {
  if (ideal) {
    // Off-chip memory and the host link become as fast as the schema allows (1 PB/s and
    // 100 TB/s, over 10^4 bytes per cycle) with no latency.
    sets.push_back("memory.bandwidth_gbps=1000000");
    sets.push_back("memory.latency_ns=0");
    sets.push_back("host_link.bandwidth_gbps=100000");
    sets.push_back("host_link.latency_ns=0");
  }
  return arch::load_arch(path, sets);
}

// Off-chip bytes each instruction moves (DMA rows, weight tiles read from off-chip memory).
int64_t offchip_bytes(const isa::Instruction& in) {
  using isa::Fid;
  switch (in.op) {
    case isa::Opcode::kDmaLoad:
      return in.get(Fid::kDmaLoad_rows) * in.get(Fid::kDmaLoad_row_bytes);
    case isa::Opcode::kDmaStore:
      return in.get(Fid::kDmaStore_rows) * in.get(Fid::kDmaStore_row_bytes);
    case isa::Opcode::kLoadWeights:
      return in.get(Fid::kLoadWeights_space) == static_cast<int>(isa::WeightSource::kMem)
                 ? in.get(Fid::kLoadWeights_k) * (in.get(Fid::kLoadWeights_diag) ? 1 : in.get(Fid::kLoadWeights_n)) *
                       isa::mat_bytes(in.get(Fid::kLoadWeights_dtype))
                 : 0;
    default:
      return 0;
  }
}

struct LayerRow {
  std::string name, op, shape, bound, phase;
  int64_t macs = 0, array_macs = 0, cycles = 0, compute_cycles = 0, hbm_bytes = 0;
  int64_t start = 0, end = 0;
  double utilization = 0, mapping_efficiency = 0;
  std::array<int64_t, 6> mxu{};  // busy, fill_drain, weight_shift, weight_stall, raw, input
};

std::vector<LayerRow> layer_rows(const arch::ArchConfig& a, const compiler::Compiled& c,
                                 const sim::ChipResult& r) {
  std::vector<LayerRow> rows;
  // Per layer, over every core: the last completion, off-chip bytes, MXU state cycles, and
  // compute cycles per (core, MXU).
  std::size_t nl = c.layers.size();
  std::vector<int64_t> last_done(nl, 0), bytes(nl, 0);
  std::vector<std::array<int64_t, 6>> mxu(nl, std::array<int64_t, 6>{});
  std::vector<std::map<std::pair<std::size_t, int64_t>, int64_t>> per_mxu(nl);
  for (std::size_t core = 0; core < c.core_programs.size(); ++core) {
    const auto& prog = c.core_programs[core];
    const auto& timing = r.instructions.at(core);
    for (std::size_t i = 0; i < prog.code.size(); ++i) {
      int l = c.core_layer_of[core][i];
      if (l < 0) continue;
      auto li = static_cast<std::size_t>(l);
      last_done[li] = std::max(last_done[li], timing[i].done);
      bytes[li] += offchip_bytes(prog.code[i]);
      if (prog.code[i].op == isa::Opcode::kMatmul) {
        for (std::size_t k = 0; k < 6; ++k) mxu[li][k] += timing[i].mxu[k];
        per_mxu[li][{core, prog.code[i].get(isa::Fid::kMatmul_mxu)}] += timing[i].mxu[0] + timing[i].mxu[1];
      }
    }
  }
  double peak = static_cast<double>((c.dtype == isa::MatType::kInt8 ? a.derived.peak_macs_per_cycle_int8 : a.derived.peak_macs_per_cycle_bf16));
  double bytes_per_cycle = a.derived.memory_bytes_per_cycle;
  int64_t prev_end = 0;
  for (std::size_t li = 0; li < nl; ++li) {
    const auto& l = c.layers[li];
    LayerRow row;
    row.name = l.name;
    row.op = l.op;
    row.shape = l.shape;
    row.phase = compiler::phase_name(compiler::phase_of(l.name));
    row.macs = l.macs;
    row.array_macs = l.array_macs;
    row.mapping_efficiency = l.array_mac_slots ? static_cast<double>(l.macs) / static_cast<double>(l.array_mac_slots) : 0;
    int64_t end = std::max(prev_end, last_done[li]);
    row.hbm_bytes = bytes[li];
    row.mxu = mxu[li];
    row.start = prev_end;
    row.end = end;
    row.cycles = end - prev_end;
    prev_end = end;
    for (const auto& [m, cyc] : per_mxu[li]) row.compute_cycles = std::max(row.compute_cycles, cyc);
    row.utilization = row.cycles ? static_cast<double>(row.macs) / (static_cast<double>(row.cycles) * peak) : 0;
    double mem_cycles = bytes_per_cycle > 0 ? static_cast<double>(row.hbm_bytes) / bytes_per_cycle : 0;
    if (!l.matrix) {
      row.bound = mem_cycles >= 0.5 * static_cast<double>(row.cycles) ? "memory" : "vector";
    } else if (row.compute_cycles >= mem_cycles) {
      row.bound = static_cast<double>(row.compute_cycles) >= 0.5 * static_cast<double>(row.cycles) ? "compute" : "vector";
    } else {
      row.bound = "memory";
    }
    rows.push_back(row);
  }
  return rows;
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

}  // namespace

int run_compile(const CompileCmdOptions& o) {
  arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
  compiler::Compiled c = compile_from(a, o.workload, o.dtype, o.batch, o.no_fusion, o.mode);
  std::string text = isa::disassemble(c.program);
  if (!o.output.empty()) {
    if (o.output.size() > 5 && o.output.substr(o.output.size() - 5) == ".tbin") {
      auto bytes = isa::encode_program(c.program);
      std::ofstream out(o.output, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      if (!out) throw InputError(SourceLocation{o.output, 0, 0}, "cannot write file");
    } else {
      write_text(o.output, text);
    }
  }
  if (o.explain) std::cout << c.explain();
  if (o.output.empty() && !o.explain) std::cout << text;
  return 0;
}

int run_run(const RunOptions& o) {
  arch::ArchConfig a = load_arch_for_run(o.arch, o.sets, o.ideal_memory);
  compiler::Compiled c = compile_from(a, o.workload, o.dtype, o.batch, o.no_fusion, o.mode);
  std::string dir = o.out_dir.empty() ? "runs/" + c.workload.name : o.out_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(SourceLocation{dir, 0, 0}, "cannot create run directory: " + ec.message());
  write_text(dir + "/config.resolved.yaml", arch::dump_arch(a) + arch::dump_derived(a));

  bool functional = !o.no_functional;
  // One program per core used (the batch split over the cores), sharing off-chip memory.
  auto offchip = std::make_shared<isa::OffChipMemory>(a);
  std::vector<std::unique_ptr<isa::Interpreter>> interps;
  std::vector<sim::CoreProgram> cores;
  std::vector<const isa::Program*> listing;
  for (const auto& p : c.core_programs) {
    if (functional) interps.push_back(std::make_unique<isa::Interpreter>(a, p, o.workload, offchip));
    cores.push_back({&p, functional ? interps.back().get() : nullptr});
    listing.push_back(&p);
  }
  sim::ChipOptions opt;
  opt.functional = functional;
  opt.trace = o.trace || o.vcd;
  opt.record_instructions = true;
  bool tty = isatty(fileno(stderr)) != 0;
  std::size_t nlayers = c.layers.size();
  int last_layer = -1;
  if (tty) {
    opt.progress = [&](std::size_t index) {
      int l = index < c.layer_of.size() ? c.layer_of[index] : -1;
      if (l <= last_layer) return;
      last_layer = l;
      int width = 30;
      int filled = static_cast<int>(static_cast<double>(l + 1) / static_cast<double>(nlayers) * width);
      std::fprintf(stderr, "\r[%s%s] layer %d of %zu %-30.30s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), l + 1, nlayers,
                   c.layers[static_cast<std::size_t>(l)].name.c_str());
      std::fflush(stderr);
    };
  }
  sim::ChipResult r = sim::run_chip(a, cores, opt);
  if (tty) std::fprintf(stderr, "\r%80s\r", "");
  nlohmann::json report = sim::make_report(a, listing, c.workload.name, r, functional);
  if (!r.completed) {
    write_text(dir + "/report.json", report.dump(2) + "\n");
    std::string msg = fmt::format("tpusim: error: the watchdog stopped the run at cycle {}: no unit can make progress\n", r.cycles);
    for (const auto& s : r.stuck) msg += "  " + s + "\n";
    std::cerr << msg;
    return 1;
  }

  // Workload-level figures: useful MACs are the workload's, not the array's.
  auto rows = layer_rows(a, c, r);
  int64_t macs = 0, array_macs = 0;
  for (const auto& l : c.layers) {
    macs += l.macs;
    array_macs += l.array_macs;
  }
  double seconds = report["seconds"].get<double>();
  double peak = static_cast<double>((c.dtype == isa::MatType::kInt8 ? a.derived.peak_macs_per_cycle_int8 : a.derived.peak_macs_per_cycle_bf16));
  report["workload"] = {{"name", c.workload.name},
                        {"file", o.workload},
                        {"dtype", isa::kMatTypeNames[static_cast<int>(c.dtype)]},
                        {"batch", c.batch},
                        {"mode", o.mode},
                        {"fusion", !o.no_fusion},
                        {"ideal_memory", o.ideal_memory},
                        {"instructions", c.program.code.size()},
                        {"cores_used", c.core_programs.size()}};
  report["macs"] = macs;
  report["array_macs"] = array_macs;
  report["utilization"] = r.cycles ? static_cast<double>(macs) / (static_cast<double>(r.cycles) * peak) : 0.0;
  report["achieved_tops"] = seconds > 0 ? 2.0 * static_cast<double>(macs) / seconds / 1e12 : 0.0;
  report["throughput_samples_per_s"] = seconds > 0 ? static_cast<double>(c.batch) / seconds : 0.0;
  nlohmann::json layers = nlohmann::json::array();
  std::string csv = "name,op,shape,macs,array_macs,cycles,compute_cycles,utilization,mapping_efficiency,"
                    "weight_stall,weight_shift,input_stall,raw_stall,fill_drain,hbm_bytes,bound,phase\n";
  for (const auto& l : rows) {
    layers.push_back({{"name", l.name},
                      {"op", l.op},
                      {"shape", l.shape},
                      {"macs", l.macs},
                      {"array_macs", l.array_macs},
                      {"cycles", l.cycles},
                      {"start_cycle", l.start},
                      {"end_cycle", l.end},
                      {"compute_cycles", l.compute_cycles},
                      {"utilization", l.utilization},
                      {"mapping_efficiency", l.mapping_efficiency},
                      {"stalls", {{"weight_stall", l.mxu[3]}, {"weight_shift", l.mxu[2]},
                                  {"input_stall", l.mxu[5]}, {"raw_stall", l.mxu[4]},
                                  {"fill_drain", l.mxu[1]}}},
                      {"hbm_bytes", l.hbm_bytes},
                      {"bound", l.bound},
                      {"phase", l.phase}});
    csv += fmt::format("{},{},{},{},{},{},{},{:.6f},{:.6f},{},{},{},{},{},{},{},{}\n", csv_escape(l.name),
                       csv_escape(l.op), l.shape, l.macs, l.array_macs, l.cycles, l.compute_cycles,
                       l.utilization, l.mapping_efficiency, l.mxu[3], l.mxu[2], l.mxu[5], l.mxu[4],
                       l.mxu[1], l.hbm_bytes, l.bound, l.phase);
  }
  report["layers"] = layers;
  if (o.mode == "training") {
    nlohmann::json phases = nlohmann::json::object();
    for (const char* p : {"forward", "backward", "optimizer"}) phases[p] = {{"cycles", 0}, {"macs", 0}, {"hbm_bytes", 0}};
    for (const auto& l : rows) {
      auto& p = phases[l.phase];
      p["cycles"] = p["cycles"].get<int64_t>() + l.cycles;
      p["macs"] = p["macs"].get<int64_t>() + l.macs;
      p["hbm_bytes"] = p["hbm_bytes"].get<int64_t>() + l.hbm_bytes;
    }
    report["phases"] = phases;
  }

  int status = 0;
  if (functional) {
    // Outputs, and with --check the comparison against the reference network evaluator.
    std::map<std::string, std::vector<uint8_t>> ref;
    if (o.check) ref = compiler::reference_outputs(a, c.workload, c.dtype);
    nlohmann::json outs = nlohmann::json::array();
    for (const auto& [tensor, region] : c.outputs) {
      isa::NpyArray arr = interps.front()->read_region(region);
      isa::write_npy(dir + "/" + tensor + ".npy", arr);
      nlohmann::json e = {{"name", tensor}, {"fnv1a", arch::fnv1a_hex(std::string(arr.data.begin(), arr.data.end()))}};
      if (o.check) {
        bool same = ref.at(tensor) == arr.data;
        e["matches_reference"] = same;
        if (!same) status = 1;
      }
      outs.push_back(e);
    }
    report["outputs"] = outs;
  }
  write_text(dir + "/report.json", report.dump(2) + "\n");
  write_text(dir + "/layers.csv", csv);
  if (o.trace) write_text(dir + "/timeline.json", r.timeline_json);
  if (o.vcd) write_text(dir + "/waves.vcd", r.waves_vcd);

  // Human summary.
  std::cout << sim::summary_text(report);
  std::size_t wname = 5;
  for (const auto& l : rows) wname = std::max(wname, std::min<std::size_t>(l.name.size(), 28));
  std::cout << fmt::format("  {:<{}} {:<22} {:>12} {:>12} {:>6} {:>6} {:>12} {}\n", "layer", wname, "op", "MACs",
                           "cycles", "util%", "map%", "HBM bytes", "bound");
  std::size_t shown = 0;
  for (const auto& l : rows) {
    if (rows.size() > 40 && shown >= 30 && shown + 5 < rows.size()) {
      if (shown == 30) std::cout << fmt::format("  ... {} more layers in layers.csv ...\n", rows.size() - 35);
      ++shown;
      continue;
    }
    ++shown;
    std::cout << fmt::format("  {:<{}} {:<22} {:>12} {:>12} {:>6.1f} {:>6.1f} {:>12} {}\n", l.name.substr(0, 28), wname,
                             l.op.substr(0, 22), l.macs, l.cycles, 100 * l.utilization,
                             100 * l.mapping_efficiency, l.hbm_bytes, l.bound);
  }
  if (functional) {
    for (const auto& e : report["outputs"]) {
      std::cout << fmt::format("  output {:<20} fnv1a {}{}\n", e["name"].get<std::string>(), e["fnv1a"].get<std::string>(),
                               e.contains("matches_reference")
                                   ? (e["matches_reference"].get<bool>() ? "  matches the reference" : "  DIFFERS from the reference")
                                   : "");
    }
  }
  if (report.contains("phases")) {
    const auto& ph = report["phases"];
    std::cout << fmt::format("  training step: forward {} cycles, backward {}, optimizer {}\n",
                             ph["forward"]["cycles"].get<int64_t>(), ph["backward"]["cycles"].get<int64_t>(),
                             ph["optimizer"]["cycles"].get<int64_t>());
  }
  std::cout << fmt::format("  run directory: {}\n", dir);
  if (status) std::cerr << "tpusim: error: outputs differ from the reference network evaluator\n";
  return status;
}

}  // namespace tpu::cli
