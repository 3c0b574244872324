// Chip elaboration and the simulation entry point, including the watchdog: SystemC ends a
// run when no event is pending, so a run that stops before every core halted is a deadlock,
// reported with what each unit waits for.
#include "sim/chip/chip.h"

#include <fmt/format.h>

#include <cstdlib>
#include <vector>

#include "arch/error.h"
#include "sim/chip/clock.h"
#include "sim/mxu/fast_kernels.h"

namespace tpu::sim {

Chip::Chip(sc_core::sc_module_name name, ChipContext& ctx,
           const std::vector<const isa::Program*>& programs,
           const std::vector<isa::Interpreter*>& functional, bool stop_when_halted)
    : sc_module(name), hbm("hbm", ctx.arch, ctx.stats), host_link("host_link", ctx.arch, ctx.stats) {
  ctx.hbm = &hbm;
  ctx.host = &host_link;
  for (int i = 0; i < ctx.arch.cores; ++i) {
    std::size_t k = static_cast<std::size_t>(i);
    cores.push_back(std::make_unique<Core>(fmt::format("core{}", i).c_str(), ctx, i,
                                           k < programs.size() ? programs[k] : nullptr,
                                           k < functional.size() ? functional[k] : nullptr));
  }
  if (stop_when_halted) SC_THREAD(watch);
}

bool Chip::all_halted() const {
  for (const auto& c : cores) {
    if (!c->seq.halted()) return false;
  }
  return true;
}

int64_t Chip::end_cycle() const {
  int64_t end = 0;
  for (const auto& c : cores) end = std::max(end, c->seq.end_cycle());
  return end;
}

void Chip::wait_halted() {
  for (const auto& c : cores) {
    while (!c->seq.halted()) sc_core::wait(c->halted_event);
  }
}

void Chip::watch() {
  wait_halted();
  sc_core::sc_stop();
}

// SystemC keeps one global simulation context; a second run in the same process needs a
// fresh one (the previous run's modules are destroyed first). Old contexts are kept, not
// deleted: SystemC's static events point at the first one until exit, and freeing a context
// would hand its coroutine stacks (holding frames abandoned mid-simulation) back to the
// allocator. tpusim runs one simulation per process; only test binaries run several.
void fresh_context() {
  static bool used = false;
  if (used) {
    static std::vector<sc_core::sc_simcontext*> retired;
    retired.push_back(sc_core::sc_curr_simcontext);
    sc_core::sc_curr_simcontext = new sc_core::sc_simcontext;
    sc_core::sc_default_global_context = sc_core::sc_curr_simcontext;
  }
  used = true;
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  sc_core::sc_report_handler::set_actions(sc_core::SC_WARNING, sc_core::SC_DO_NOTHING);
}

void prepare_functional(isa::Interpreter* func) {
  if (!func) return;
  func->set_matmul_kernels(&matmul_pass_int8_fast, &matmul_pass_bf16_fast);
  func->init_regions();
}

void require_no_ici_transfers(const isa::Program& p, const std::string& file) {
  for (std::size_t i = 0; i < p.code.size(); ++i) {
    if (p.code[i].op == isa::Opcode::kSend || p.code[i].op == isa::Opcode::kRecv) {
      throw InputError(SourceLocation{file, i < p.lines.size() ? p.lines[i] : 0, 0}, fmt::format("instruction {}", i),
                       "a pod for send and recv (a chip alone has no neighbours: tpusim run --pod)",
                       isa::opcode_spec(p.code[i].op).mnemonic);
    }
  }
}

void finish_chip(Chip& chip, const arch::ArchConfig& arch, Stats& stats, TraceRecorder& trace,
                 const ChipOptions& options, ChipResult& result) {
  result.completed = chip.all_halted();
  int64_t end = result.completed ? chip.end_cycle() : now_cycle();
  for (const auto& c : chip.cores) {
    if (!result.completed) {
      auto s = stuck_units(*c);
      result.stuck.insert(result.stuck.end(), s.begin(), s.end());
    }
    for (const auto& m : c->mxu) m->close(end);
    c->dma.close(end);
    c->vpu.close(end);
    c->ici.close(end);
    c->seq.close(end);
  }
  result.cycles = end;
  std::string prefix = chip.name();
  stats.counter(prefix + ".cycles") = end;
  stats.counter(prefix + ".hbm.busy_cycles") = chip.hbm.busy_cycles();
  for (const auto& c : chip.cores) {
    result.ub_footprint_bytes = std::max(result.ub_footprint_bytes, c->ub.footprint_bytes());
    result.peak_live_ops = std::max(result.peak_live_ops, c->seq.peak_live_ops());
  }
  if (options.record_instructions) {
    for (const auto& c : chip.cores) {
      result.instructions.push_back(c->seq.timings());
    }
  }
  if (options.trace) {
    result.timeline_json = trace.chrome_json(arch.clock_mhz);
    result.waves_vcd = trace.vcd();
  }
  // Counters are reported under "chip." whatever the module's name (chips of a pod are chipN).
  for (const auto& [path, value] : stats.all()) {
    std::string key = path;
    if (prefix != "chip" && key.compare(0, prefix.size() + 1, prefix + ".") == 0) {
      key = "chip" + key.substr(prefix.size());
    }
    result.counters[key] = value;
  }
}

ChipResult run_chip(const arch::ArchConfig& arch, const isa::Program& program,
                    isa::Interpreter* functional, const ChipOptions& options) {
  return run_chip(arch, {CoreProgram{&program, functional}}, options);
}

ChipResult run_chip(const arch::ArchConfig& arch, const std::vector<CoreProgram>& programs,
                    const ChipOptions& options) {
  if (programs.size() > static_cast<std::size_t>(arch.cores)) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "programs",
                     fmt::format("at most one per core ({})", arch.cores),
                     fmt::format("{}", programs.size()));
  }
  fresh_context();
  Stats stats;
  TraceRecorder trace(options.trace);
  ChipContext ctx{arch, stats, trace, nullptr, nullptr, options.hang_unit,
                  options.progress ? &options.progress : nullptr, nullptr, 0, {}};
  std::vector<const isa::Program*> progs;
  std::vector<isa::Interpreter*> funcs;
  for (const CoreProgram& cp : programs) {
    if (cp.program) require_no_ici_transfers(*cp.program, "<program>");
    progs.push_back(cp.program);
    funcs.push_back(options.functional ? cp.functional : nullptr);
    prepare_functional(funcs.back());
  }
  ChipResult result;
  {
    Chip chip("chip", ctx, progs, funcs);
    sc_core::sc_start();
    if (ctx.error) std::rethrow_exception(ctx.error);
    finish_chip(chip, arch, stats, trace, options, result);
  }
  return result;
}

}  // namespace tpu::sim
