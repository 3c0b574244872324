// When each off-chip and host tensor of a chip's programs has had its last use: every
// instruction of every core whose accesses overlap its region has executed. `tpusim run` then
// writes an output tensor to its file and frees the pages of any tensor, so a functional run
// holds the tensors that are still live, not every tensor it has written (docs/performance.md).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "isa/interpreter.h"
#include "isa/program.h"

namespace tpu::sim {

class RegionLifetimes {
 public:
  /// Called once per region, when its last access has executed.
  using Ended = std::function<void(const isa::Region&)>;

  /// `programs[i]`: core i's program (null: an idle core). The off-chip and host regions of
  /// all of them are tracked; a region several cores declare alike (name, space, address,
  /// size) is one. If regions of different cores overlap otherwise, nothing is tracked (no
  /// region ever ends): a release could not be told safe.
  RegionLifetimes(const std::vector<const isa::Program*>& programs, Ended ended);

  /// Instruction `index` of core `core` has applied its effect (Interpreter's after-execute
  /// hook); calls `ended` for every region whose last access it was.
  void executed(std::size_t core, std::size_t index);
  /// Sets each core's interpreter (cores[i] runs programs[i]) to call executed() after every
  /// instruction; this object must outlive their runs.
  void attach(const std::vector<isa::Interpreter*>& cores);

  /// Whether the named region has ended (false for one no instruction accesses, or whose
  /// accesses did not all execute, e.g. after a halt).
  bool ended(const std::string& name) const;
  /// Regions tracked (0 when disabled by overlapping declarations).
  std::size_t tracked() const { return spaces_[0].size() + spaces_[1].size(); }

 private:
  struct Entry {
    const isa::Region* region;
    uint64_t lo, hi;
    uint64_t pending = 0;  ///< accesses not yet executed
    bool ended = false;
  };
  /// Calls f(entry) for each tracked region that instruction `in` accesses (once per access).
  template <class F>
  void for_each_access(const isa::Instruction& in, F f);

  std::vector<const isa::Program*> programs_;
  std::array<std::vector<Entry>, 2> spaces_;  ///< off-chip, host: disjoint, sorted by address
  Ended ended_;
};

}  // namespace tpu::sim
