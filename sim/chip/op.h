// An instruction in flight in the timed model: what it reads and writes (for the
// sequencer's scoreboard), which earlier instructions it must wait for, and when it
// completes.
#pragma once

#include <systemc>

#include <array>
#include <cstdint>
#include <vector>

#include "arch/arch_config.h"
#include "isa/program.h"

namespace tpu::sim {

/// A byte range of a memory (or a row range of one MXU's accumulators) an instruction
/// touches. Strided accesses are covered by their bounding range (conservative).
struct Access {
  enum Space : uint8_t { kUb, kMem, kHost, kAcc };
  Space space = kUb;
  uint8_t mxu = 0;  ///< kAcc only
  bool write = false;
  uint64_t lo = 0, hi = 0;  ///< [lo, hi)

  /// True when the two accesses overlap and at least one writes (RAW, WAR or WAW).
  bool conflicts(const Access& o) const {
    return space == o.space && (space != kAcc || mxu == o.mxu) && (write || o.write) &&
           lo < o.hi && o.lo < hi;
  }
};

/// The accesses of one instruction (empty for nop/halt/sync).
std::vector<Access> accesses_of(const isa::Instruction& in);

/// Units that take instructions from the sequencer.
enum class UnitKind : uint8_t { kDma, kWeightDma, kMxu, kVector, kIci, kNone };
UnitKind unit_of(const isa::Instruction& in);

/// When and how one instruction ran (ChipOptions::record_instructions).
struct InstrTiming {
  int64_t issue = -1, done = -1;  ///< -1: not issued (sync, nop, halt) or never completed
  /// matmul only: busy, fill/drain, weight shift, weight stall, RAW stall, input stall cycles.
  std::array<int64_t, 6> mxu{};
};

struct Op {
  std::size_t index = 0;  ///< position in the program
  const isa::Instruction* inst = nullptr;
  UnitKind unit = UnitKind::kNone;
  int64_t issue_cycle = 0;
  std::vector<Access> accesses;
  std::vector<Op*> deps;  ///< earlier instructions in flight with a conflicting access
  /// The sync just before this instruction waited for the vector unit from this cycle (-1:
  /// none): a pass held back by it is in a RAW stall (sequencer.layer_sync).
  int64_t vector_sync_from = -1;

  /// Matrix passes: the array's cycles of this pass window by state (for per-layer reports):
  /// busy, fill/drain, weight shift, weight stall, RAW stall, input stall (idle excluded).
  std::array<int64_t, 6> mxu_cycles{};

  // Lifetime: the sequencer frees an op, keeping its InstrTiming, once its unit has released
  // it, it has retired and no op holding it in its deps is left (Sequencer::free_if_done).
  // An op holds its deps until its own unit has released it (Sequencer::drop_deps).
  bool released = false;  ///< its unit has finished with it (set by the unit, last)
  bool retired = false;   ///< done and out of the sequencer's in-flight list
  int dependents = 0;     ///< ops not yet released that list this one in their deps
  bool parked = false;    ///< retired before its release: freed from the sequencer's list only

  bool scheduled = false;  ///< done_cycle is known
  int64_t done_cycle = 0;  ///< first cycle at which the results are visible
  sc_core::sc_event scheduled_event;

  /// Fixes the completion cycle (may lie in the future) and wakes every waiter.
  void complete_at(int64_t cycle) {
    done_cycle = cycle;
    scheduled = true;
    scheduled_event.notify(sc_core::SC_ZERO_TIME);
  }
  bool done_by(int64_t cycle) const { return scheduled && done_cycle <= cycle; }
};

/// Suspends the calling thread until `op` has completed (waking at sub-cycle `slot`).
void wait_done(const Op* op, int slot);

/// Suspends until every dependency of `op` has completed. Returns the producer that
/// completed last if that was after `since` (the cycle the caller started waiting), else
/// null: the unit did not have to wait.
const Op* wait_deps(const Op* op, int64_t since, int slot);

}  // namespace tpu::sim
