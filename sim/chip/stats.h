// Statistics: plain counters registered once by hierarchical path ("chip.core0.mxu1.busy_cycles")
// and incremented in place; ratios are computed only when a report is written.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tpu::sim {

class Stats {
 public:
  /// The counter at `path`, created at 0 on first use. The reference stays valid for the
  /// registry's lifetime.
  int64_t& counter(const std::string& path) { return counters_[path]; }
  const std::map<std::string, int64_t>& all() const { return counters_; }

 private:
  std::map<std::string, int64_t> counters_;
};

/// Accounts every cycle of a unit to exactly one state: the unit enters a state at a cycle
/// and the cycles since the previous change go to the previous state. Cycles not accounted
/// when the run ends are idle.
class Activity {
 public:
  /// Registers `<path>.<state>_cycles` for each state; state 0 is idle.
  Activity(Stats& stats, const std::string& path, const std::vector<std::string>& states);
  /// From `cycle` on the unit is in `state`.
  void enter(int state, int64_t cycle);
  /// Adds `cycles` to `state` directly (for units that account whole windows at once).
  void add(int state, int64_t cycles) { *counters_.at(state) += cycles; }
  /// Closes the account at `end`: the cycles since the last change go to the current state
  /// and every cycle not accounted up to `end` becomes idle.
  void close(int64_t end);
  int64_t accounted() const;

 private:
  std::vector<int64_t*> counters_;
  bool entered_ = false;
  int state_ = 0;
  int64_t since_ = 0;
};

}  // namespace tpu::sim
