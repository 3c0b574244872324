// The chip: off-chip memory, host link and `cores` TensorCores built from the architecture
// config, and run_chip(), which simulates a program on it and returns every statistic.
#pragma once

#include <systemc>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/interpreter.h"
#include "isa/program.h"
#include "sim/chip/core.h"
#include "sim/chip/stats.h"
#include "sim/chip/trace.h"

namespace tpu::sim {

class Chip : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Chip);
  /// Core i runs programs[i] with functional[i] (both may be shorter than the core count).
  /// With stop_when_halted the chip ends the simulation once its cores halt (a chip alone).
  Chip(sc_core::sc_module_name name, ChipContext& ctx,
       const std::vector<const isa::Program*>& programs,
       const std::vector<isa::Interpreter*>& functional, bool stop_when_halted = true);
  Hbm hbm;
  HostLink host_link;
  std::vector<std::unique_ptr<Core>> cores;
  bool all_halted() const;
  int64_t end_cycle() const;
  /// Suspends the calling thread until every core has halted.
  void wait_halted();

 private:
  void watch();
};

struct ChipOptions {
  bool functional = true;  ///< move real data (bit-exact with the golden interpreter)
  bool trace = false;      ///< record timeline.json / waves.vcd spans
  std::string hang_unit;   ///< test hook for the watchdog (a unit path, e.g. "chip.core0.mxu0")
  bool record_instructions = false;  ///< fill ChipResult::instructions
  /// Called with each instruction index of core 0 as it issues (progress display).
  std::function<void(std::size_t)> progress;
};

/// Everything a run produces.
struct ChipResult {
  bool completed = false;            ///< false: the watchdog stopped a run that made no progress
  std::vector<std::string> stuck;    ///< when !completed: "unit: waiting for ..." per unit
  int64_t cycles = 0;                ///< halt of core 0: every instruction completed
  std::map<std::string, int64_t> counters;  ///< every registered statistic by path
  std::string timeline_json, waves_vcd;     ///< when ChipOptions::trace
  int64_t ub_footprint_bytes = 0;
  /// The most instruction records (sim::Op) one core's sequencer held at once.
  int64_t peak_live_ops = 0;
  /// Per core, per instruction (when ChipOptions::record_instructions).
  std::vector<std::vector<InstrTiming>> instructions;
};

/// One core's work: its program and, in functional mode, the interpreter holding its state.
/// The interpreters of one chip share off-chip memory (isa::OffChipMemory); programs of
/// different cores must not write the same off-chip bytes (not checked).
struct CoreProgram {
  const isa::Program* program = nullptr;
  isa::Interpreter* functional = nullptr;
};

/// Simulates programs[i] on core i of a chip built from `arch` (at most arch.cores). With
/// options.functional, each interpreter (regions initialised by this call) holds its core's
/// final state. May be called repeatedly in one process (each call gets a fresh SystemC
/// context).
ChipResult run_chip(const arch::ArchConfig& arch, const std::vector<CoreProgram>& programs,
                    const ChipOptions& options);

/// Building blocks of run_chip for simulations of several chips (sim/pod/pod_sim.cpp):
/// a fresh SystemC context, the fast kernels and initial regions of an interpreter, a check
/// that a chip alone runs no send/recv (InputError), and the result of a simulated chip
/// (accounts closed at its end; counters renamed to "chip.").
void fresh_context();
void prepare_functional(isa::Interpreter* func);
void require_no_ici_transfers(const isa::Program& p, const std::string& file);
void finish_chip(Chip& chip, const arch::ArchConfig& arch, Stats& stats, TraceRecorder& trace,
                 const ChipOptions& options, ChipResult& result);
/// One program on core 0.
ChipResult run_chip(const arch::ArchConfig& arch, const isa::Program& program,
                    isa::Interpreter* functional, const ChipOptions& options);

}  // namespace tpu::sim
