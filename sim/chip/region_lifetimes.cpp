// RegionLifetimes: a count of pending accesses per region, taken from the same access sets
// the sequencer's scoreboard uses (bounding ranges: a strided access counts for every region
// its range overlaps, which can only delay an end).
#include "sim/chip/region_lifetimes.h"

#include <algorithm>
#include <tuple>

#include "sim/chip/op.h"

namespace tpu::sim {

RegionLifetimes::RegionLifetimes(const std::vector<const isa::Program*>& programs, Ended ended)
    : programs_(programs), ended_(std::move(ended)) {
  for (const isa::Program* p : programs_) {
    if (!p) continue;
    for (const isa::Region& r : p->regions) {
      if (r.space == isa::Space::kUb || r.bytes() == 0) continue;
      spaces_[r.space == isa::Space::kHost ? 1 : 0].push_back({&r, r.addr, r.addr + r.bytes()});
    }
  }
  for (auto& entries : spaces_) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.lo, a.hi, a.region->name) < std::tie(b.lo, b.hi, b.region->name);
    });
    // The same region declared by several cores is kept once.
    entries.erase(std::unique(entries.begin(), entries.end(),
                              [](const Entry& a, const Entry& b) {
                                return a.lo == b.lo && a.hi == b.hi && a.region->name == b.region->name;
                              }),
                  entries.end());
  }
  for (auto& entries : spaces_) {
    for (std::size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].lo < entries[i - 1].hi) {
        spaces_[0].clear();
        spaces_[1].clear();
        return;
      }
    }
  }
  for (const isa::Program* p : programs_) {
    if (!p) continue;
    for (const isa::Instruction& in : p->code) for_each_access(in, [](Entry& e) { ++e.pending; });
  }
}

template <class F>
void RegionLifetimes::for_each_access(const isa::Instruction& in, F f) {
  for (const Access& a : accesses_of(in)) {
    if ((a.space != Access::kMem && a.space != Access::kHost) || a.lo >= a.hi) continue;
    auto& entries = spaces_[a.space == Access::kHost ? 1 : 0];
    // The first region ending after a.lo; the regions are disjoint, so their ends are sorted.
    auto it = std::upper_bound(entries.begin(), entries.end(), a.lo,
                               [](uint64_t lo, const Entry& e) { return lo < e.hi; });
    for (; it != entries.end() && it->lo < a.hi; ++it) f(*it);
  }
}

void RegionLifetimes::executed(std::size_t core, std::size_t index) {
  if (core >= programs_.size() || !programs_[core] || index >= programs_[core]->code.size()) return;
  for_each_access(programs_[core]->code[index], [&](Entry& e) {
    if (e.pending > 0 && --e.pending == 0) {
      e.ended = true;
      ended_(*e.region);
    }
  });
}

void RegionLifetimes::attach(const std::vector<isa::Interpreter*>& cores) {
  for (std::size_t i = 0; i < cores.size(); ++i) {
    cores[i]->set_after_execute([this, i](std::size_t index) { executed(i, index); });
  }
}

bool RegionLifetimes::ended(const std::string& name) const {
  for (const auto& entries : spaces_) {
    for (const Entry& e : entries) {
      if (e.region->name == name) return e.ended;
    }
  }
  return false;
}

}  // namespace tpu::sim
