// Timing of off-chip memory (bursts taking turns), host link, buffer ports and banks, weight
// FIFOs and accumulators.
#include "sim/chip/memory_units.h"

#include "sim/chip/clock.h"

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
      free_(static_cast<std::size_t>(arch.memory.channels), 0.0),
      busy_(static_cast<std::size_t>(arch.memory.channels), 0.0),
      bytes_per_cycle_per_channel_(arch.derived.memory_bytes_per_cycle /
                                   static_cast<double>(arch.memory.channels)),
      refresh_period_(arch.memory.refresh_interval_ns * arch.clock_mhz / 1000.0),
      refresh_cycles_(arch.memory.refresh_ns * arch.clock_mhz / 1000.0),
      burst_bytes_(static_cast<uint64_t>(arch.memory.burst_bytes)),
      turn_bytes_(static_cast<uint64_t>(arch.memory.burst_bytes) *
                  static_cast<uint64_t>(arch.memory.channels) * kTurnBursts),
      latency_cycles_(ns_to_cycles(arch.memory.latency_ns, arch.clock_mhz)),
      read_bytes_(stats.counter(path(*this, "read_bytes"))),
      write_bytes_(stats.counter(path(*this, "write_bytes"))) {
  SC_THREAD(scheduler);
}

int Hbm::add_requester() {
  requesters_.emplace_back();
  return static_cast<int>(requesters_.size()) - 1;
}

void Hbm::transfer(int requester, uint64_t addr, uint64_t bytes, bool write, Done done) {
  (write ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  Requester& r = requesters_.at(static_cast<std::size_t>(requester));
  Job job;
  job.next = addr;
  job.end = addr + bytes;
  job.done = std::move(done);
  bool idle = r.jobs.empty();
  r.jobs.push_back(std::move(job));
  if (!idle) return;  // starts when the requester's earlier transfers have had their turns
  serve(r, now_cycle());
  if (!r.jobs.empty()) wake_.notify(sc_core::SC_ZERO_TIME);
}

double Hbm::finish(double start, double dur) const {
  const double T = refresh_period_, R = refresh_cycles_;
  if (T <= 0) return start + dur;
  const double A = T - R;  // cycles that move data in each period
  double k = std::floor(start / T);
  double p = start - k * T;  // position in period k
  if (p >= A) {              // inside a refresh: wait for its end
    k += 1;
    p = 0;
  }
  if (dur <= A - p) return k * T + p + dur;
  double rest = dur - (A - p);  // left after period k's data time
  double n = std::floor(rest / A);
  double rem = rest - n * A;
  // Periods k+1 .. k+n are used whole; the remainder runs in period k+n+1 (or, when it is
  // 0, the data ended just as period k+n's refresh began).
  return rem > 0 ? (k + 1 + n) * T + rem : (k + n) * T + A;
}

bool Hbm::turn(Job& job, int64_t now, int64_t* wake) {
  double t = static_cast<double>(now);
  if (job.next == job.end) {  // an empty transfer
    job.start = job.last = t;
    return true;
  }
  // This turn: up to the next turn boundary, so a full turn puts kTurnBursts bursts on
  // every channel.
  uint64_t lo = job.next, hi = std::min(job.end, (lo / turn_bytes_ + 1) * turn_bytes_);
  job.next = hi;
  std::size_t n = free_.size();
  uint64_t bytes = hi - lo, first = lo / burst_bytes_, last = (hi - 1) / burst_bytes_;
  uint64_t bursts = last - first + 1;
  double first_end = -1;
  uint64_t assigned = 0;
  for (std::size_t k = 0; k < n && k < bursts; ++k) {
    // Channel of the k-th burst of the turn, and the bytes of the turn it carries (the
    // partial first and last bursts are spread evenly, as a burst-granular approximation).
    std::size_t c = static_cast<std::size_t>((first + k) % n);
    uint64_t count = (bursts - k + n - 1) / n;
    uint64_t share = k + 1 == std::min<uint64_t>(n, bursts) ? bytes - assigned : bytes * count / bursts;
    assigned += share;
    double start = std::max(t, free_[c]);
    double dur = static_cast<double>(share) / bytes_per_cycle_per_channel_;
    double end = finish(start, dur);
    free_[c] = end;
    busy_[c] += dur;
    job.start = job.started ? std::min(job.start, start) : start;
    job.started = true;
    job.last = std::max(job.last, end);
    first_end = first_end < 0 ? end : std::min(first_end, end);
  }
  // The next turn is taken in the cycle the first channel of this one runs dry, so a lone
  // stream keeps every channel busy and a competing stream that asked earlier goes first.
  *wake = std::max(now + 1, static_cast<int64_t>(std::floor(first_end)));
  return job.next == job.end;
}

void Hbm::serve(Requester& r, int64_t now) {
  while (!r.jobs.empty()) {
    Job& job = r.jobs.front();
    if (!turn(job, now, &r.wake)) return;
    Transfer t{static_cast<int64_t>(std::floor(job.start + 1e-9)),
               static_cast<int64_t>(std::ceil(job.last - 1e-9)) + latency_cycles_};
    Done done = std::move(job.done);
    r.jobs.pop_front();
    done(t);
  }
}

void Hbm::scheduler() {
  while (true) {
    int64_t now = now_cycle();
    int64_t next = -1;
    for (Requester& r : requesters_) {
      if (!r.jobs.empty() && r.wake <= now) serve(r, now);
      if (!r.jobs.empty()) next = next < 0 ? r.wake : std::min(next, r.wake);
    }
    if (next < 0) {
      sc_core::wait(wake_);
    } else {
      sc_core::wait(until(next, slot::kMemory), wake_);
    }
  }
}

int64_t Hbm::busy_cycles() const {
  double busy = 0;
  for (double b : busy_) busy = std::max(busy, b);
  return static_cast<int64_t>(std::ceil(busy - 1e-9));
}

HostLink::HostLink(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats)
    : sc_module(name),
      bytes_per_cycle_(arch.derived.host_bytes_per_cycle),
      latency_cycles_(ns_to_cycles(arch.host_link.latency_ns, arch.clock_mhz)),
      read_bytes_(stats.counter(path(*this, "to_device_bytes"))),
      write_bytes_(stats.counter(path(*this, "to_host_bytes"))),
      read_busy_cycles_(stats.counter(path(*this, "to_device_busy_cycles"))),
      write_busy_cycles_(stats.counter(path(*this, "to_host_busy_cycles"))) {}

Transfer HostLink::transfer(int64_t earliest, uint64_t bytes, bool to_host) {
  (to_host ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  int64_t dur = cycles_for(bytes, bytes_per_cycle_);
  (to_host ? write_busy_cycles_ : read_busy_cycles_) += dur;
  int64_t start = (to_host ? to_host_ : to_device_).reserve(earliest, dur);
  return {start, start + dur + latency_cycles_};
}

UnifiedBuffer::UnifiedBuffer(sc_core::sc_module_name name, const arch::ArchConfig& arch,
                             Stats& stats)
    : sc_module(name),
      ports_(static_cast<std::size_t>(arch.unified_buffer.ports)),
      port_bytes_(arch.unified_buffer.port_bytes_per_cycle),
      banks_(arch.unified_buffer.banks),
      read_bytes_(stats.counter(path(*this, "read_bytes"))),
      write_bytes_(stats.counter(path(*this, "write_bytes"))),
      bank_stall_cycles_(stats.counter(path(*this, "bank_stall_cycles"))) {}

int64_t UnifiedBuffer::bank_of(uint64_t addr) const {
  return static_cast<int64_t>((addr / static_cast<uint64_t>(port_bytes_)) %
                              static_cast<uint64_t>(banks_));
}

int64_t UnifiedBuffer::phase(int64_t bank, int64_t start) const {
  return ((bank - start) % banks_ + banks_) % banks_;
}

int64_t UnifiedBuffer::first_conflict_free(const std::vector<Stream>& live, int64_t from,
                                           int64_t dur, int64_t bank) const {
  auto collides = [&](int64_t s) {
    int64_t p = phase(bank, s);
    for (const Stream& o : live) {
      if (o.phase == p && o.start < s + dur && s < o.end) return true;
    }
    return false;
  };
  int64_t s = from;
  while (true) {
    // Each cycle of delay moves the stream to the next phase; at most as many tries as
    // there are colliding streams, unless every phase is taken.
    for (int64_t k = 0; k < banks_; ++k) {
      if (!collides(s + k)) return s + k;
    }
    // Every phase is taken by a stream that overlaps any start before the first of them
    // ends: the next candidate is that end.
    int64_t next = -1;
    for (const Stream& o : live) {
      if (o.end > s) next = next < 0 ? o.end : std::min(next, o.end);
    }
    s = next;
  }
}

Transfer UnifiedBuffer::access(int64_t earliest, uint64_t addr, uint64_t bytes, bool write) {
  (write ? write_bytes_ : read_bytes_) += static_cast<int64_t>(bytes);
  int64_t dur = cycles_for(bytes, static_cast<double>(port_bytes_));
  std::size_t port = ports_.first_free(earliest);
  int64_t from = std::max(earliest, ports_.at(port).next_free());
  int64_t start = from;
  if (dur > 0) {
    std::vector<Stream>& live = live_[write ? 1 : 0];
    // Callers reserve at their current cycle, so a stream ended by `earliest` never
    // collides again.
    live.erase(std::remove_if(live.begin(), live.end(),
                              [&](const Stream& o) { return o.end <= earliest; }),
               live.end());
    int64_t bank = bank_of(addr);
    start = first_conflict_free(live, from, dur, bank);
    live.push_back({start, start + dur, phase(bank, start)});
    bank_stall_cycles_ += start - from;
  }
  ports_.at(port).reserve(start, dur);
  return {start, start + dur};
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

int64_t WeightFifo::push() {
  tiles_.push_back(-1);
  return popped_ + static_cast<int64_t>(tiles_.size()) - 1;
}

void WeightFifo::arrive(int64_t ticket, int64_t arrival) {
  tiles_.at(static_cast<std::size_t>(ticket - popped_)) = arrival;
  changed_.notify(sc_core::SC_ZERO_TIME);
}

int64_t WeightFifo::pop() {
  while (tiles_.empty() || tiles_.front() < 0) sc_core::wait(changed_);
  int64_t arrival = tiles_.front();
  tiles_.pop_front();
  ++popped_;
  --occupancy_;
  changed_.notify(sc_core::SC_ZERO_TIME);
  return arrival;
}

Accumulators::Accumulators(sc_core::sc_module_name name, Stats& stats)
    : sc_module(name),
      writes_(stats.counter(path(*this, "write_values"))),
      reads_(stats.counter(path(*this, "read_values"))) {}

}  // namespace tpu::sim
