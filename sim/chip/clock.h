// Simulated time in cycles. The chip model runs with one cycle = 1 ns of SystemC time, so
// cycle counts stay integers whatever the clock; seconds are derived from clock_mhz only
// when a report is written.
#pragma once

#include <systemc>

#include <cstdint>

namespace tpu::sim {

/// The current simulated cycle.
inline int64_t now_cycle() {
  // The time resolution is SystemC's default (1 ps) in every context tpusim creates.
  static const sc_dt::uint64 kTicksPerCycle = sc_core::sc_time(1, sc_core::SC_NS).value();
  return static_cast<int64_t>(sc_core::sc_time_stamp().value() / kTicksPerCycle);
}

/// Timed wake-ups land on a unit's own slot within the cycle (a cycle is 1000 ps of SystemC
/// time): units that wake in the same cycle then run, and reserve shared resources, in slot
/// order. SystemC orders processes whose timed waits end at the same instant as its event
/// queue happens to hold them, and that order changes when other chips share the simulation;
/// with slots a chip's timing is the same alone or in a pod. Slots by unit (docs/chip.md):
/// memory scheduler 0, sequencers 1 + core, activation DMAs 100 + core, weight DMAs 200 +
/// core, MXUs 300 + index, vector units 400 + core, ICI units 500 + core, the pod fabric 600.
namespace slot {
inline constexpr int kMemory = 0, kSequencer = 1, kDmaAct = 100, kDmaWeight = 200, kMxu = 300, kVector = 400,
                     kIci = 500, kFabric = 600;
}

/// The time from now until `cycle` at sub-cycle slot `slot` (zero if that instant has passed).
inline sc_core::sc_time until(int64_t cycle, int slot) {
  sc_dt::uint64 now = sc_core::sc_time_stamp().value();
  static const sc_dt::uint64 kTicksPerCycle = sc_core::sc_time(1, sc_core::SC_NS).value();
  static const sc_dt::uint64 kTicksPerSlot = sc_core::sc_time(1, sc_core::SC_PS).value();
  sc_dt::uint64 target = static_cast<sc_dt::uint64>(cycle) * kTicksPerCycle + static_cast<sc_dt::uint64>(slot) * kTicksPerSlot;
  return target > now ? sc_core::sc_time::from_value(target - now) : sc_core::SC_ZERO_TIME;
}

/// Suspends the calling SC_THREAD until `cycle` at sub-cycle slot `slot` (returns at once if
/// that instant has passed).
inline void wait_until(int64_t cycle, int slot) {
  sc_core::sc_time d = until(cycle, slot);
  if (d > sc_core::SC_ZERO_TIME) sc_core::wait(d);
}

}  // namespace tpu::sim
