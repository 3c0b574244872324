// A shared resource (memory channel, buffer port, link) as a timeline of its next free
// cycle. Requests reserve in the order the simulator makes them, which is global time order
// because every caller reserves at its own current simulated time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tpu::sim {

class Timeline {
 public:
  /// Reserves `duration` cycles starting no earlier than `earliest`; returns the start.
  int64_t reserve(int64_t earliest, int64_t duration) {
    int64_t start = std::max(earliest, next_free_);
    next_free_ = start + duration;
    busy_cycles_ += duration;
    return start;
  }
  int64_t next_free() const { return next_free_; }
  int64_t busy_cycles() const { return busy_cycles_; }

 private:
  int64_t next_free_ = 0;
  int64_t busy_cycles_ = 0;
};

/// Several identical timelines (ports, channels); a request takes the one that can start it
/// first (lowest index on ties, so the choice is deterministic).
class TimelineSet {
 public:
  explicit TimelineSet(std::size_t count) : lines_(count) {}
  struct Grant {
    int64_t start;
    int64_t end;
    std::size_t index;
  };
  Grant reserve(int64_t earliest, int64_t duration) {
    std::size_t best = first_free(earliest);
    int64_t start = lines_[best].reserve(earliest, duration);
    return {start, start + duration, best};
  }
  /// The timeline that can start a request at `earliest` first (lowest index on ties).
  std::size_t first_free(int64_t earliest) const {
    std::size_t best = 0;
    for (std::size_t i = 1; i < lines_.size(); ++i) {
      if (std::max(earliest, lines_[i].next_free()) < std::max(earliest, lines_[best].next_free()))
        best = i;
    }
    return best;
  }
  std::size_t size() const { return lines_.size(); }
  const Timeline& at(std::size_t i) const { return lines_[i]; }
  Timeline& at(std::size_t i) { return lines_[i]; }

 private:
  std::vector<Timeline> lines_;
};

}  // namespace tpu::sim
