// Timing of off-chip memory, host link, buffer ports, weight FIFOs and accumulators.
#include "sim/chip/memory_units.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tpu::sim {

namespace {

int64_t cycles_for(uint64_t bytes, double bytes_per_cycle) {
  if (bytes == 0) return 0;
  return static_cast<int64_t>(std::ceil(static_cast<double>(bytes) / bytes_per_cycle - 1e-9));
}

int64_t ns_to_cycles(double ns, double clock_mhz) {
  return static_cast<int64_t>(std::llround(ns * clock_mhz / 1000.0));
}

std::string path(const sc_core::sc_module& m, const char* counter) {
  return std::string(m.name()) + "." + counter;
}

}  // namespace

Hbm::Hbm(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats)
    : sc_module(name),
      channels_(static_cast<std::size_t>(arch.memory.channels)),
      share_(static_cast<std::size_t>(arch.memory.channels)),
      bytes_per_cycle_per_channel_(arch.derived.memory_bytes_per_cycle /
                                   static_cast<double>(arch.memory.channels)),
      latency_cycles_(ns_to_cycles(arch.memory.latency_ns, arch.clock_mhz)),
      read_bytes_(stats.counter(path(*this, "read_bytes"))),
      write_bytes_(stats.counter(path(*this, "write_bytes"))) {}

Transfer Hbm::transfer(int64_t earliest, uint64_t addr, uint64_t bytes, bool write) {
  (write ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  std::size_t n = channels_.size();
  // Bytes per channel under kInterleaveBytes interleaving of [addr, addr + bytes).
  std::vector<uint64_t>& share = share_;
  uint64_t first = addr / kInterleaveBytes, last = (addr + bytes - 1) / kInterleaveBytes;
  uint64_t chunks = last - first + 1;
  for (std::size_t c = 0; c < n; ++c) {
    uint64_t offset = (c + n - first % n) % n;  // index of the first chunk on channel c
    uint64_t count = offset < chunks ? (chunks - offset + n - 1) / n : 0;
    share[c] = bytes * count / chunks;
  }
  uint64_t assigned = 0;
  for (uint64_t s : share) assigned += s;
  share[first % n] += bytes - assigned;
  Transfer t{earliest, earliest};
  bool any = false;
  for (std::size_t c = 0; c < n; ++c) {
    if (share[c] == 0) continue;
    int64_t dur = cycles_for(share[c], bytes_per_cycle_per_channel_);
    int64_t start = channels_.at(c).reserve(earliest, dur);
    t.start = any ? std::min(t.start, start) : start;
    t.end = std::max(t.end, start + dur);
    any = true;
  }
  t.end += latency_cycles_;
  return t;
}

int64_t Hbm::busy_cycles() const {
  int64_t busy = 0;
  for (std::size_t c = 0; c < channels_.size(); ++c) busy = std::max(busy, channels_.at(c).busy_cycles());
  return busy;
}

HostLink::HostLink(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats)
    : sc_module(name),
      bytes_per_cycle_(arch.derived.host_bytes_per_cycle),
      latency_cycles_(ns_to_cycles(arch.host_link.latency_ns, arch.clock_mhz)),
      read_bytes_(stats.counter(path(*this, "to_device_bytes"))),
      write_bytes_(stats.counter(path(*this, "to_host_bytes"))) {}

Transfer HostLink::transfer(int64_t earliest, uint64_t bytes, bool to_host) {
  (to_host ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  int64_t dur = cycles_for(bytes, bytes_per_cycle_);
  int64_t start = (to_host ? to_host_ : to_device_).reserve(earliest, dur);
  return {start, start + dur + latency_cycles_};
}

UnifiedBuffer::UnifiedBuffer(sc_core::sc_module_name name, const arch::ArchConfig& arch,
                             Stats& stats)
    : sc_module(name),
      ports_(static_cast<std::size_t>(arch.unified_buffer.ports)),
      port_bytes_(arch.unified_buffer.port_bytes_per_cycle),
      read_bytes_(stats.counter(path(*this, "read_bytes"))),
      write_bytes_(stats.counter(path(*this, "write_bytes"))) {}

Transfer UnifiedBuffer::access(int64_t earliest, uint64_t bytes, bool write) {
  (write ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  int64_t dur = cycles_for(bytes, static_cast<double>(port_bytes_));
  TimelineSet::Grant g = ports_.reserve(earliest, dur);
  return {g.start, g.end};
}

void UnifiedBuffer::note_written(uint64_t lo, uint64_t hi) {
  // Merge [lo, hi) into the disjoint set of written ranges.
  auto it = written_.upper_bound(lo);
  if (it != written_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= lo) {
      lo = prev->first;
      hi = std::max(hi, prev->second);
      footprint_ -= static_cast<int64_t>(prev->second - prev->first);
      it = written_.erase(prev);
    }
  }
  while (it != written_.end() && it->first <= hi) {
    hi = std::max(hi, it->second);
    footprint_ -= static_cast<int64_t>(it->second - it->first);
    it = written_.erase(it);
  }
  written_[lo] = hi;
  footprint_ += static_cast<int64_t>(hi - lo);
}

WeightFifo::WeightFifo(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats)
    : sc_module(name),
      depth_(arch.mxu.weight_fifo_depth),
      max_occupancy_(stats.counter(path(*this, "max_tiles"))) {}

void WeightFifo::take_slot() {
  while (occupancy_ >= depth_) sc_core::wait(changed_);
  ++occupancy_;
  max_occupancy_ = std::max(max_occupancy_, occupancy_);
}

void WeightFifo::push(int64_t arrival) {
  tiles_.push_back(arrival);
  changed_.notify(sc_core::SC_ZERO_TIME);
}

int64_t WeightFifo::pop() {
  while (tiles_.empty()) sc_core::wait(changed_);
  int64_t arrival = tiles_.front();
  tiles_.pop_front();
  --occupancy_;
  changed_.notify(sc_core::SC_ZERO_TIME);
  return arrival;
}

Accumulators::Accumulators(sc_core::sc_module_name name, Stats& stats)
    : sc_module(name),
      writes_(stats.counter(path(*this, "write_values"))),
      reads_(stats.counter(path(*this, "read_values"))) {}

}  // namespace tpu::sim
