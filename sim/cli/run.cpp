// tpusim compile and tpusim run: workloads through the compiler onto the chip model, with the
// per-layer report (report.json "layers", layers.csv) and the golden-numerics check.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "arch/pod_config.h"
#include "compiler/compiler.h"
#include "compiler/parallel.h"
#include "compiler/reference.h"
#include "compiler/training.h"
#include "isa/assembler.h"
#include "isa/encoding.h"
#include "isa/interpreter.h"
#include "sim/chip/chip.h"
#include "sim/chip/region_lifetimes.h"
#include "sim/chip/report.h"
#include "sim/cli/commands.h"
#include "sim/pod/pod_sim.h"

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

// The workload file with the command line's seed, if any (every tensor is generated from it).
compiler::Workload load_seeded(const std::string& workload, int64_t seed) {
  compiler::Workload w = compiler::load_workload(workload);
  if (seed >= 0) w.seed = static_cast<uint64_t>(seed);
  return w;
}

compiler::Compiled compile_from(const arch::ArchConfig& a, const std::string& workload,
                                const std::string& dtype, int64_t batch, bool no_fusion,
                                const std::string& mode, int64_t seed = -1, bool no_ub_activations = false) {
  bool training = parse_training(mode);
  compiler::Workload w = load_seeded(workload, seed);
  compiler::CompileOptions opt;
  opt.dtype = parse_dtype(dtype);
  if (batch != kBatchUnset) {
    if (batch < 1 || batch > compiler::kMaxBatch) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--batch",
                       fmt::format("an integer in [1, {}]", compiler::kMaxBatch), std::to_string(batch));
    }
    opt.batch = batch;
  }
  opt.fusion = !no_fusion;
  opt.ub_activations = !no_ub_activations;
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
    // 100 TB/s, over 10^4 bytes per cycle) with no latency and no refresh.
    sets.push_back("memory.bandwidth_gbps=1000000");
    sets.push_back("memory.latency_ns=0");
    sets.push_back("memory.refresh_interval_ns=0");
    sets.push_back("memory.refresh_ns=0");
    sets.push_back("host_link.bandwidth_gbps=100000");
    sets.push_back("host_link.latency_ns=0");
  }
  return arch::load_arch(path, sets);
}

// Off-chip bytes each instruction moves (DMA rows, weight tiles read from off-chip memory).
int64_t offchip_bytes(const arch::ArchConfig& a, const isa::Instruction& in) {
  using isa::Fid;
  switch (in.op) {
    case isa::Opcode::kDmaLoad:
      if (in.get(Fid::kDmaLoad_space) == static_cast<int>(isa::Space::kUb)) return 0;
      return in.get(Fid::kDmaLoad_rows) * in.get(Fid::kDmaLoad_row_bytes);
    case isa::Opcode::kDmaStore:
      if (in.get(Fid::kDmaStore_space) == static_cast<int>(isa::Space::kUb)) return 0;
      return in.get(Fid::kDmaStore_rows) * in.get(Fid::kDmaStore_row_bytes);
    case isa::Opcode::kLoadWeights:
      if (in.get(Fid::kLoadWeights_space) == static_cast<int>(isa::WeightSource::kMem) && a.mxu.weight_whole_tiles) {
        return a.mxu.rows * a.mxu.cols * isa::mat_bytes(in.get(Fid::kLoadWeights_dtype));
      }
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
      bytes[li] += offchip_bytes(a, prog.code[i]);
      if (prog.code[i].op == isa::Opcode::kMatmul) {
        for (std::size_t k = 0; k < 6; ++k) mxu[li][k] += timing[i].mxu[k];
        per_mxu[li][{core, prog.code[i].get(isa::Fid::kMatmul_mxu)}] += timing[i].mxu[0] + timing[i].mxu[1];
      }
    }
  }
  double peak = static_cast<double>((c.dtype == isa::MatType::kInt8 ? a.derived.peak_macs_per_cycle_int8 : a.derived.peak_macs_per_cycle_bf16));
  double bytes_per_cycle = a.derived.memory_sustained_bytes_per_cycle;
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

// A run the watchdog stopped: its report so far, and what every stuck unit waits for.
int watchdog_stop(const std::string& dir, const nlohmann::json& report, const char* what, int64_t cycle,
                  const std::vector<std::string>& stuck) {
  write_text(dir + "/report.json", report.dump(2) + "\n");
  std::string msg =
      fmt::format("tpusim: error: the watchdog stopped the {} at cycle {}: no unit can make progress\n", what, cycle);
  for (const auto& s : stuck) msg += "  " + s + "\n";
  std::cerr << msg;
  return 1;
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// The workload-level fields of report.json (useful MACs are the workload's, not the
// array's) and one row per layer; returns the rows and sets *csv to layers.csv.
std::vector<LayerRow> fill_report(nlohmann::json& report, const arch::ArchConfig& a, const compiler::Compiled& c,
                                  const sim::ChipResult& r, const RunOptions& o, std::string* csv_out) {
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
                        {"ub_activations", c.ub_activations},
                        {"ideal_memory", o.ideal_memory},
                        {"instructions", c.program().code.size()},
                        {"cores_used", c.core_programs.size()}};
  report["memory"]["offchip_footprint_bytes"] = c.offchip_bytes;
  report["memory"]["offchip_footprint_fraction"] =
      a.memory.bytes > 0 ? static_cast<double>(c.offchip_bytes) / static_cast<double>(a.memory.bytes) : 0.0;
  report["memory"]["host_footprint_bytes"] = c.host_bytes;
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
  *csv_out = csv;
  return rows;
}

}  // namespace

int run_compile(const CompileCmdOptions& o) {
  arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
  compiler::Compiled c = compile_from(a, o.workload, o.dtype, o.batch, o.no_fusion, o.mode, -1, o.no_ub_activations);
  std::string text = isa::disassemble(c.program());
  if (!o.output.empty()) {
    if (o.output.size() > 5 && o.output.substr(o.output.size() - 5) == ".tbin") {
      auto bytes = isa::encode_program(c.program());
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

namespace {

SourceLocation command_line() { return SourceLocation{"<command line>", 0, 0}; }

// How the chips of a pod divide the work: tensor parallelism over the lowest pod dimensions
// whose product is the tensor degree, data parallelism over the rest.
struct ParallelPlan {
  int64_t data = 1, tensor = 1;
  unsigned data_mask = 0, tensor_mask = 0;
};

ParallelPlan parse_parallel(const std::string& text, const arch::PodConfig& pod) {
  ParallelPlan p;
  bool has_data = false, has_tensor = false;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t comma = text.find(',', at);
    std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? text.size() : comma + 1;
    std::size_t eq = item.find('=');
    std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    int64_t v = 0;
    std::size_t used = 0;
    try {
      v = std::stoll(value, &used);
    } catch (...) {
      used = 0;
    }
    if ((key != "data" && key != "tensor") || used == 0 || used != value.size() || v < 1) {
      throw InputError(command_line(), "--parallel", "data=D,tensor=T with positive integers", "'" + item + "'");
    }
    if (v > pod.chips) {
      throw InputError(command_line(), "--parallel", fmt::format("{} of at most the pod's {} chips", key, pod.chips),
                       "'" + item + "'");
    }
    bool& seen = key == "data" ? has_data : has_tensor;
    if (seen) {
      throw InputError(command_line(), "--parallel", fmt::format("{}= at most once", key), "'" + text + "'");
    }
    seen = true;
    (key == "data" ? p.data : p.tensor) = v;
  }
  if (!has_data) {
    if (pod.chips % p.tensor != 0) {
      throw InputError(command_line(), "--parallel", fmt::format("tensor= a divisor of the pod's {} chips", pod.chips),
                       std::to_string(p.tensor));
    }
    p.data = pod.chips / p.tensor;
  }
  if (p.data * p.tensor != pod.chips) {
    throw InputError(command_line(), "--parallel", fmt::format("data x tensor = the pod's {} chips", pod.chips),
                     fmt::format("data={} tensor={}", p.data, p.tensor));
  }
  int64_t product = 1;
  std::size_t d = 0;
  std::string prefixes = "1";
  while (product < p.tensor && d < pod.dims.size()) {
    product *= pod.dims[d];
    p.tensor_mask |= 1u << d;
    prefixes += fmt::format(", {}", product);
    ++d;
  }
  if (product != p.tensor) {
    throw InputError(command_line(), "--parallel",
                     fmt::format("tensor= a product of the pod's leading dimensions ({})", prefixes),
                     std::to_string(p.tensor));
  }
  p.data_mask = ((1u << pod.dims.size()) - 1) & ~p.tensor_mask;
  return p;
}

// The program with its collectives turned into nops: the same step without communication.
isa::Program without_collectives(const isa::Program& p) {
  isa::Program q = p;
  for (auto& in : q.code) {
    if (in.op == isa::Opcode::kCollective) in = isa::Instruction::make(isa::Opcode::kNop);
  }
  return q;
}

// A sub-pod of n chips for --scaling: the leading dimensions filled first.
arch::PodConfig sub_pod(const arch::PodConfig& pod, int64_t n) {
  arch::PodConfig p = pod;
  int64_t left = n;
  for (auto& d : p.dims) {
    int64_t take = std::min(d, left);
    while (take > 1 && left % take != 0) --take;
    d = std::max<int64_t>(take, 1);
    left /= d;
  }
  p.chips = 1;
  for (auto d : p.dims) p.chips *= d;
  p.name = fmt::format("{} ({} chips)", pod.name, p.chips);
  return p;
}

struct PodStep {
  compiler::Compiled compiled;
  pod::PodResult result;
  pod::Backend backend = pod::Backend::kDetailed;
  int64_t compute_cycles = 0;  ///< the same step without collectives, one chip
};

}  // namespace

static int run_pod_mode(const RunOptions& o, const arch::ArchConfig& a) {
  arch::PodConfig pod = arch::load_pod(o.pod, o.pod_sets, "--pod-set");
  ParallelPlan plan = parse_parallel(o.parallel, pod);
  if (o.backend != "auto" && o.backend != "detailed" && o.backend != "symmetric") {
    throw InputError(command_line(), "--backend", "detailed|symmetric|auto", "'" + o.backend + "'");
  }
  bool training = parse_training(o.mode);
  if (!(o.bucket_mb >= 0 && o.bucket_mb <= 65536)) {
    throw InputError(command_line(), "--bucket-mb", "a size in MiB from 0 to 65536", fmt::format("{}", o.bucket_mb));
  }
  const int64_t bucket_bytes = static_cast<int64_t>(o.bucket_mb * 1048576.0);
  compiler::Workload w0 = load_seeded(o.workload, o.seed);
  // Default: every data-parallel group runs the workload's batch (weak scaling).
  int64_t global = o.batch != kBatchUnset ? o.batch : w0.batch * plan.data;
  if (o.batch == kBatchUnset && global > compiler::kMaxBatch) {
    throw InputError(command_line(), "--batch",
                     fmt::format("a global batch of at most {} (default: the workload's batch {} x data={})",
                                 compiler::kMaxBatch, w0.batch, plan.data),
                     std::to_string(global));
  }
  if (global < 1 || global > compiler::kMaxBatch) {
    throw InputError(command_line(), "--batch", fmt::format("an integer in [1, {}]", compiler::kMaxBatch),
                     std::to_string(global));
  }
  if (global % plan.data != 0) {
    throw InputError(command_line(), "--batch", fmt::format("a multiple of data={} (each data group gets an equal share)", plan.data),
                     std::to_string(global));
  }
  const int64_t group_batch = global / plan.data;  // samples of one data-parallel group
  auto compile_step = [&](const ParallelPlan& pp) {
    compiler::Workload w = w0;
    w.batch = group_batch;
    compiler::infer_shapes(w);
    std::set<std::string> sharded;
    w = compiler::shard_tensor(w, pp.tensor, &sharded);
    if (training) {
      w = compiler::training_step(w, group_batch, compiler::TrainOptions{});
      w = compiler::insert_gradient_collectives(w, pp.data, sharded, bucket_bytes);
    }
    compiler::CompileOptions opt;
    opt.dtype = parse_dtype(o.dtype);
    opt.fusion = !o.no_fusion;
    opt.ub_activations = !o.no_ub_activations;
    opt.comm_masks = {pp.data_mask, pp.tensor_mask};
    return compiler::compile(a, w, opt);
  };
  auto run_step = [&](const arch::PodConfig& p, const ParallelPlan& pp, bool record) {
    PodStep s;
    s.compiled = compile_step(pp);
    s.backend = o.backend == "symmetric" || (o.backend == "auto" && p.chips > 64) ? pod::Backend::kSymmetric
                                                                                 : pod::Backend::kDetailed;
    std::vector<sim::CoreProgram> cores;
    for (const auto& prog : s.compiled.core_programs) cores.push_back({&prog, nullptr});
    std::size_t copies = s.backend == pod::Backend::kSymmetric ? 1 : static_cast<std::size_t>(p.chips);
    pod::PodRunOptions po;
    po.backend = s.backend;
    po.chip.functional = false;
    po.chip.record_instructions = record;
    po.chip.trace = record && o.trace;
    s.result = pod::run_pod(a, p, std::vector<std::vector<sim::CoreProgram>>(copies, cores), po);
    // The same step with its collectives removed, on one chip: the compute time.
    std::vector<isa::Program> quiet;
    for (const auto& prog : s.compiled.core_programs) quiet.push_back(without_collectives(prog));
    std::vector<sim::CoreProgram> qcores;
    for (const auto& prog : quiet) qcores.push_back({&prog, nullptr});
    sim::ChipOptions co;
    co.functional = false;
    s.compute_cycles = sim::run_chip(a, qcores, co).cycles;
    return s;
  };

  // One chip running a data group's samples alone, every layer whole: the scaling baseline.
  ParallelPlan single;
  compiler::Compiled one = compile_step(single);
  std::vector<sim::CoreProgram> one_cores;
  for (const auto& prog : one.core_programs) one_cores.push_back({&prog, nullptr});
  sim::ChipOptions one_opt;
  one_opt.functional = false;
  int64_t one_cycles = sim::run_chip(a, one_cores, one_opt).cycles;
  int64_t model_macs = 0;  // useful MACs of one data group's step
  for (const auto& l : one.layers) model_macs += l.macs;

  PodStep step = run_step(pod, plan, true);
  const compiler::Compiled& c = step.compiled;
  const pod::PodResult& pr = step.result;
  RunDir run_dir(o.out_dir.empty() ? "runs/" + c.workload.name : o.out_dir);
  const std::string& dir = run_dir.path();
  write_text(dir + "/config.resolved.yaml", arch::dump_arch(a) + arch::dump_derived(a) + "# pod\n" + arch::dump_pod(pod));
  std::vector<const isa::Program*> listing;
  for (const auto& p : c.core_programs) listing.push_back(&p);
  const sim::ChipResult& r0 = pr.chips.front();
  nlohmann::json report = sim::make_report(a, listing, c.workload.name, r0, false);
  if (!pr.completed) {
    run_dir.keep();
    return watchdog_stop(dir, report, "pod", pr.cycles, pr.stuck);
  }
  std::string csv;
  auto rows = fill_report(report, a, c, r0, o, &csv);

  double hz = a.clock_mhz * 1e6;
  double peak_macs = static_cast<double>(c.dtype == isa::MatType::kInt8 ? a.derived.peak_macs_per_cycle_int8
                                                                         : a.derived.peak_macs_per_cycle_bf16);
  auto pod_figures = [&](const arch::PodConfig& p, const ParallelPlan& pp, const PodStep& s) {
    double step_s = static_cast<double>(s.result.cycles) / hz;
    double compute_s = static_cast<double>(s.compute_cycles) / hz;
    double comm_s = 0;
    for (const auto& col : s.result.collectives) comm_s += static_cast<double>(col.end_cycle - col.start_cycle) / hz;
    double samples = static_cast<double>(group_batch * pp.data);
    double flops = 2.0 * static_cast<double>(model_macs) * static_cast<double>(pp.data);
    nlohmann::json j = {
        {"chips", p.chips},
        {"pod", p.name},
        {"topology", arch::dump_pod(p)},
        {"backend", pod::kBackendNames[static_cast<int>(s.backend)]},
        {"parallel", {{"data", pp.data}, {"tensor", pp.tensor}, {"data_dims_mask", pp.data_mask},
                      {"tensor_dims_mask", pp.tensor_mask}}},
        {"global_batch", group_batch * pp.data},
        {"step_cycles", s.result.cycles},
        {"step_seconds", step_s},
        {"throughput", step_s > 0 ? samples / step_s : 0.0},
        {"tflops", step_s > 0 ? flops / step_s / 1e12 : 0.0},
        {"fraction_of_peak", step_s > 0 ? flops / step_s / (2.0 * peak_macs * hz * static_cast<double>(p.chips)) : 0.0},
        {"compute_seconds", compute_s},
        {"comm_seconds", comm_s},
        {"exposed_comm_seconds", std::max(0.0, step_s - compute_s)},
        {"scaling_efficiency", s.result.cycles > 0 ? static_cast<double>(one_cycles) /
                                                         (static_cast<double>(pp.tensor) * static_cast<double>(s.result.cycles))
                                                   : 0.0},
        {"link_bytes", s.result.link_bytes},
        {"busiest_link_busy_fraction", step_s > 0 ? s.result.max_link_busy / step_s : 0.0}};
    // Tokens: a workload whose first input is a sequence [S, D] processes S tokens per sample.
    if (!w0.inputs.empty() && w0.inputs.front().shape.dims.size() == 2) {
      j["tokens_per_second"] = step_s > 0 ? samples * static_cast<double>(w0.inputs.front().shape.dims[0]) / step_s : 0.0;
    }
    std::map<std::tuple<std::string, std::string, std::string, int64_t>, std::array<double, 3>> table;
    for (const auto& col : s.result.collectives) {
      std::string group = col.mask == pp.data_mask ? "data" : col.mask == pp.tensor_mask ? "tensor" : "other";
      auto& e = table[{group, col.op, col.algorithm, col.chips}];
      e[0] += 1;
      e[1] += static_cast<double>(col.bytes);
      e[2] += static_cast<double>(col.end_cycle - col.start_cycle) / hz;
    }
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& [k, v] : table) {
      cols.push_back({{"group", std::get<0>(k)}, {"op", std::get<1>(k)}, {"algorithm", std::get<2>(k)},
                      {"group_chips", std::get<3>(k)},
                      {"count", static_cast<int64_t>(v[0])}, {"bytes", static_cast<int64_t>(v[1])}, {"seconds", v[2]}});
    }
    j["collectives"] = cols;
    return j;
  };
  nlohmann::json pj = pod_figures(pod, plan, step);
  report["workload"]["batch_per_data_group"] = group_batch;
  report["workload"]["global_batch"] = global;

  std::string scaling_text;
  if (o.scaling) {
    nlohmann::json series = nlohmann::json::array();
    scaling_text = fmt::format("  {:>6} {:>6} {:>6} {:>12} {:>14} {:>10} {:>8}\n", "chips", "data", "tensor", "step ms",
                               "samples/s", "TFLOPS", "eff%");
    std::vector<int64_t> sizes;
    for (int64_t n = plan.tensor; n < pod.chips; n *= 2) sizes.push_back(n);
    sizes.push_back(pod.chips);
    for (int64_t n : sizes) {
      arch::PodConfig sp = sub_pod(pod, n);
      if (sp.chips != n) continue;
      ParallelPlan pp = parse_parallel(fmt::format("tensor={}", plan.tensor), sp);
      nlohmann::json f = n == pod.chips ? pj : pod_figures(sp, pp, run_step(sp, pp, false));
      series.push_back(f);
      scaling_text += fmt::format("  {:>6} {:>6} {:>6} {:>12.3f} {:>14.1f} {:>10.1f} {:>8.1f}\n", n, pp.data, pp.tensor,
                                  f["step_seconds"].get<double>() * 1e3, f["throughput"].get<double>(),
                                  f["tflops"].get<double>(), 100 * f["scaling_efficiency"].get<double>());
    }
    pj["scaling"] = series;
  }
  report["pod"] = pj;
  write_text(dir + "/report.json", report.dump(2) + "\n");
  write_text(dir + "/layers.csv", csv);
  if (o.trace) write_text(dir + "/timeline.json", r0.timeline_json);

  std::cout << fmt::format("tpusim run: {} ({}) on {} ({} chips, {} backend), data={} tensor={}, global batch {}\n",
                           c.workload.name, o.mode, pod.name, pod.chips, pj["backend"].get<std::string>(), plan.data,
                           plan.tensor, global);
  auto line = [](const std::string& k, const std::string& v, const std::string& unit) {
    std::cout << fmt::format("  {:<28}{:>16} {}\n", k, v, unit);
  };
  line("step time", fmt::format("{:.3f}", pj["step_seconds"].get<double>() * 1e3), "ms");
  line("throughput", fmt::format("{:.1f}", pj["throughput"].get<double>()), "samples/s");
  if (pj.contains("tokens_per_second")) line("", fmt::format("{:.0f}", pj["tokens_per_second"].get<double>()), "tokens/s");
  line("achieved", fmt::format("{:.1f}", pj["tflops"].get<double>()), "TFLOPS");
  line("fraction of pod peak", fmt::format("{:.1f}", 100 * pj["fraction_of_peak"].get<double>()), "%");
  line("compute (one chip, no comm)", fmt::format("{:.3f}", pj["compute_seconds"].get<double>() * 1e3), "ms");
  line("communication", fmt::format("{:.3f}", pj["comm_seconds"].get<double>() * 1e3), "ms (collectives of chip 0)");
  line("exposed communication", fmt::format("{:.3f}", pj["exposed_comm_seconds"].get<double>() * 1e3), "ms");
  line("scaling efficiency", fmt::format("{:.1f}", 100 * pj["scaling_efficiency"].get<double>()), "% of one chip x chips");
  for (const auto& col : pj["collectives"]) {
    std::cout << fmt::format("  {:>5} x {:<15} {:<11} over {:>5} chips ({:<6} group) {:>14} bytes {:>10.3f} ms\n",
                             col["count"].get<int64_t>(), col["op"].get<std::string>(), col["algorithm"].get<std::string>(),
                             col["group_chips"].get<int64_t>(), col["group"].get<std::string>(), col["bytes"].get<int64_t>(),
                             col["seconds"].get<double>() * 1e3);
  }
  if (o.scaling) std::cout << "  scaling (weak: each data group keeps its batch)\n" << scaling_text;
  std::cout << fmt::format("  run directory: {}\n", dir);
  run_dir.keep();
  return 0;
}

int run_run(const RunOptions& o) {
  arch::ArchConfig a = load_arch_for_run(o.arch, o.sets, o.ideal_memory);
  if (!o.pod.empty()) return run_pod_mode(o, a);
  compiler::Compiled c = compile_from(a, o.workload, o.dtype, o.batch, o.no_fusion, o.mode, o.seed, o.no_ub_activations);
  if (o.check) {
    // The reference evaluator holds every tensor at once (a functional run stores only what
    // it writes), so --check keeps the bound on all region data.
    uint64_t data = 0;
    for (const isa::Region& r : c.program().regions) data += r.bytes();
    if (data > isa::kMaxRegionDataBytes) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--check",
                       fmt::format("a program with at most {} bytes of region data (the reference "
                                   "evaluator holds them all); run without --check",
                                   isa::kMaxRegionDataBytes),
                       fmt::format("{} bytes", data));
    }
  }
  RunDir run_dir(o.out_dir.empty() ? "runs/" + c.workload.name : o.out_dir);
  const std::string& dir = run_dir.path();
  write_text(dir + "/config.resolved.yaml", arch::dump_arch(a) + arch::dump_derived(a));

  bool functional = !o.no_functional;
  // One program per core used (the batch split over the cores), sharing off-chip memory.
  auto offchip = std::make_shared<isa::OffChipMemory>(a);
  std::vector<std::unique_ptr<isa::Interpreter>> interps;
  std::vector<sim::CoreProgram> cores;
  std::vector<const isa::Program*> listing;
  for (const auto& p : c.core_programs) {
    if (functional) interps.push_back(std::make_unique<isa::Interpreter>(a, &p, o.workload, offchip));
    cores.push_back({&p, functional ? interps.back().get() : nullptr});
    listing.push_back(&p);
  }
  // Outputs, and with --check their comparison with the reference network evaluator. An
  // output is written and digested as soon as its last access has executed, and every
  // off-chip or host tensor's pages are freed after its last access (sim::RegionLifetimes):
  // a run holds its live tensors, not all it has written. Outputs no instruction reaches
  // (none in a compiled network) are written after the run.
  std::map<std::string, std::vector<uint8_t>> ref;
  if (functional && o.check) ref = compiler::reference_outputs(a, c.workload, c.dtype);
  std::map<std::string, nlohmann::json> written;  // tensor -> its report entry
  int status = 0;
  auto write_output = [&](const std::string& tensor, const std::string& region) {
    isa::NpyArray arr = interps.front()->read_region(region);
    isa::write_npy(dir + "/" + tensor + ".npy", arr);
    nlohmann::json e = {{"name", tensor}, {"fnv1a", arch::fnv1a_hex(std::string(arr.data.begin(), arr.data.end()))}};
    if (o.check) {
      bool same = ref.at(tensor) == arr.data;
      e["matches_reference"] = same;
      if (!same) status = 1;
    }
    written[tensor] = e;
  };
  std::unique_ptr<sim::RegionLifetimes> lifetimes;
  if (functional) {
    std::multimap<std::string, std::string> tensors_of;  // region -> output tensors
    for (const auto& [tensor, region] : c.outputs) tensors_of.emplace(region, tensor);
    lifetimes = std::make_unique<sim::RegionLifetimes>(listing, [&, tensors_of](const isa::Region& r) {
      auto range = tensors_of.equal_range(r.name);
      for (auto it = range.first; it != range.second; ++it) write_output(it->second, it->first);
      offchip->release(r);
    });
    std::vector<isa::Interpreter*> attached;
    for (const auto& in : interps) attached.push_back(in.get());
    lifetimes->attach(attached);
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
    // A stopped run has no outputs: the ones already written go.
    for (const auto& w : written) std::filesystem::remove(dir + "/" + w.first + ".npy");
    run_dir.keep();
    return watchdog_stop(dir, report, "run", r.cycles, r.stuck);
  }

  std::string csv;
  auto rows = fill_report(report, a, c, r, o, &csv);

  if (functional) {
    nlohmann::json outs = nlohmann::json::array();
    for (const auto& [tensor, region] : c.outputs) {
      if (!written.count(tensor)) write_output(tensor, region);
      outs.push_back(written.at(tensor));
    }
    report["outputs"] = outs;
  }
  write_text(dir + "/report.json", report.dump(2) + "\n");
  write_text(dir + "/layers.csv", csv);
  if (o.trace) write_text(dir + "/timeline.json", r.timeline_json);
  if (o.vcd) write_text(dir + "/waves.vcd", r.waves_vcd);
  run_dir.keep();  // everything is written (a failure above, e.g. out of memory in --check, removes it)

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
