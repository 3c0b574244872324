// Activity accounting.
#include "sim/chip/stats.h"

namespace tpu::sim {

Activity::Activity(Stats& stats, const std::string& path, const std::vector<std::string>& states) {
  for (const auto& s : states) counters_.push_back(&stats.counter(path + "." + s + "_cycles"));
}

void Activity::enter(int state, int64_t cycle) {
  entered_ = true;
  if (cycle > since_) {
    *counters_[state_] += cycle - since_;
    since_ = cycle;
  }
  state_ = state;
}

void Activity::close(int64_t end) {
  if (entered_) enter(0, end);
  int64_t total = accounted();
  if (total < end) *counters_[0] += end - total;
}

int64_t Activity::accounted() const {
  int64_t total = 0;
  for (const int64_t* c : counters_) total += *c;
  return total;
}

}  // namespace tpu::sim
