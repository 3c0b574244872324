// The chip's storage-side units: off-chip memory (Hbm), the host link, the unified buffer's
// ports and banks, the weight FIFOs and the accumulators. Each is an sc_module for naming and
// statistics; only Hbm has a process of its own (it hands out the turns of long transfers).
#pragma once

#include <systemc>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "sim/chip/stats.h"
#include "sim/chip/timeline.h"

namespace tpu::sim {

/// When a transfer could start and when its last byte arrived (cycles, latency included).
struct Transfer {
  int64_t start = 0;
  int64_t end = 0;
};

/// Off-chip memory: `memory.channels` channels sharing the bandwidth equally; addresses
/// interleave over channels every `memory.burst_bytes`. A transfer is split into bursts; a
/// requester (a DMA engine) runs its transfers in the order it starts them, and the
/// requesters take turns on the channels in time order, kTurnBursts bursts per channel per
/// turn, so that concurrent streams share the bandwidth instead of waiting for each other.
/// Channel time is kept in fractional cycles (no rounding per burst). With
/// `memory.refresh_interval_ns` set, every channel is refreshed at the same phase: in each
/// interval [kT, (k+1)T) the last R cycles (`memory.refresh_ns`) move no data, and a burst
/// that meets a refresh pauses and resumes after it.
class Hbm : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Hbm);
  /// Bursts per channel that one turn reserves: the granule of fairness between concurrent
  /// transfers, chosen for host cost (one SystemC wake-up per turn of a long transfer).
  static constexpr uint64_t kTurnBursts = 16;
  using Done = std::function<void(const Transfer&)>;
  Hbm(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  /// Registers a requester; its transfers are served in the order they are started.
  int add_requester();
  /// Starts a transfer of [addr, addr + bytes) at the current cycle. `done` receives the
  /// cycle its first burst started and the cycle its last byte arrived (latency included)
  /// as soon as its last burst is reserved: before this call returns when the requester is
  /// free and the transfer fits in one turn, otherwise later from the memory's own thread
  /// (`done` must not wait).
  void transfer(int requester, uint64_t addr, uint64_t bytes, bool write, Done done);
  int64_t busy_cycles() const;
  /// When data that starts moving at `start` (cycles) and needs `dur` cycles of channel time
  /// finishes, refresh windows skipped (closed form: no loop over refresh periods).
  double finish(double start, double dur) const;

 private:
  struct Job {
    uint64_t next = 0, end = 0;  // byte cursor and end of [addr, addr + bytes)
    Done done;
    bool started = false;
    double start = 0, last = 0;  // first burst start, last byte (fractional cycles)
  };
  struct Requester {
    std::deque<Job> jobs;
    int64_t wake = 0;  // cycle at which the head job takes its next turn
  };
  /// Reserves the next turn of `r`'s head job at `now`; finishes and starts jobs as needed.
  void serve(Requester& r, int64_t now);
  /// Reserves one turn of `job` at `now`; returns true when it was the job's last.
  bool turn(Job& job, int64_t now, int64_t* wake);
  void scheduler();
  std::vector<double> free_, busy_;  // per channel: next free and busy time (cycles)
  std::vector<Requester> requesters_;
  double bytes_per_cycle_per_channel_;
  double refresh_period_, refresh_cycles_;  // T and R in cycles (T = 0: no refresh)
  uint64_t burst_bytes_, turn_bytes_;
  int64_t latency_cycles_;
  int64_t& read_bytes_;
  int64_t& write_bytes_;
  sc_core::sc_event wake_;
};

/// The host link: one timeline per direction.
class HostLink : public sc_core::sc_module {
 public:
  HostLink(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  /// Reserves ceil(bytes / bytes per cycle) cycles of one direction from `earliest` (or when
  /// the direction frees up); the transfer ends that long after its start plus the latency.
  Transfer transfer(int64_t earliest, uint64_t bytes, bool to_host);

 private:
  Timeline to_device_, to_host_;
  double bytes_per_cycle_;
  int64_t latency_cycles_;
  int64_t& read_bytes_;
  int64_t& write_bytes_;
  int64_t& read_busy_cycles_;
  int64_t& write_busy_cycles_;
};

/// The unified buffer: `unified_buffer.ports` ports shared by DMA, MXU input reads and the
/// vector unit, and `unified_buffer.banks` banks interleaved every line (the
/// port_bytes_per_cycle a port moves per cycle). An access streams one line per cycle through
/// consecutive banks; each bank reads one line and writes one line per cycle (1R1W). Two
/// streams in the same direction collide iff they overlap in time and sit at the same bank
/// phase ((first bank - start cycle) mod banks); the later one then starts a cycle later.
class UnifiedBuffer : public sc_core::sc_module {
 public:
  UnifiedBuffer(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  /// Reserves a port and the bank cycles for streaming `bytes` from `addr`, starting no
  /// earlier than `earliest` (the caller's current cycle: reservations are in time order).
  Transfer access(int64_t earliest, uint64_t addr, uint64_t bytes, bool write);
  /// The bank holding byte `addr`.
  int64_t bank_of(uint64_t addr) const;
  /// Records that [lo, hi) holds data (for the occupancy high-water mark).
  void note_written(uint64_t lo, uint64_t hi);
  int64_t footprint_bytes() const { return footprint_; }

 private:
  struct Stream {
    int64_t start, end, phase;
  };
  /// The first cycle >= `from` at which a stream of `dur` cycles from `bank` collides with no
  /// stream of `live`.
  int64_t first_conflict_free(const std::vector<Stream>& live, int64_t from, int64_t dur,
                              int64_t bank) const;
  int64_t phase(int64_t bank, int64_t start) const;
  TimelineSet ports_;
  int64_t port_bytes_;
  int64_t banks_;
  std::vector<Stream> live_[2];  // streams not yet ended, per direction (0 read, 1 write)
  int64_t& read_bytes_;
  int64_t& write_bytes_;
  int64_t& bank_stall_cycles_;
  std::map<uint64_t, uint64_t> written_;  // disjoint [lo, hi) ranges
  int64_t footprint_ = 0;
};

/// The weight FIFO of one MXU: tiles loaded by the weight DMA, popped by matmul. A slot is
/// taken when a load starts and freed when a matmul pops the tile.
class WeightFifo : public sc_core::sc_module {
 public:
  WeightFifo(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  /// Weight DMA: waits (in simulated time) for a free slot and takes it.
  void take_slot();
  /// Weight DMA: appends the tile of the slot it took, its arrival not yet known; returns
  /// the tile's ticket for arrive().
  int64_t push();
  /// Weight DMA: the last byte of tile `ticket` arrives at `arrival`.
  void arrive(int64_t ticket, int64_t arrival);
  /// MXU: waits for the oldest tile's arrival to be known, pops it and returns that cycle.
  int64_t pop();

 private:
  int64_t depth_;
  int64_t occupancy_ = 0;
  std::deque<int64_t> tiles_;  // arrival cycles in load order, -1 while not known
  int64_t popped_ = 0;         // tickets popped so far (the ticket of tiles_.front())
  sc_core::sc_event changed_;
  int64_t& max_occupancy_;
};

/// The accumulators of one MXU: counts of values written by passes and read by activate.
class Accumulators : public sc_core::sc_module {
 public:
  Accumulators(sc_core::sc_module_name name, Stats& stats);
  void wrote(int64_t values) { writes_ += values; }
  void read(int64_t values) { reads_ += values; }

 private:
  int64_t& writes_;
  int64_t& reads_;
};

}  // namespace tpu::sim
