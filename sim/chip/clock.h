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

/// Suspends the calling SC_THREAD until `cycle` (returns at once if it has passed).
inline void wait_until(int64_t cycle) {
  int64_t now = now_cycle();
  if (cycle > now) sc_core::wait(sc_core::sc_time(static_cast<double>(cycle - now), sc_core::SC_NS));
}

}  // namespace tpu::sim
