// The chip's storage-side units: off-chip memory (Hbm), the host link, the unified buffer's
// ports, the weight FIFOs and the accumulators. Each is an sc_module for naming and
// statistics; none has a process of its own: transfers reserve their timelines.
#pragma once

#include <systemc>

#include <cstdint>
#include <deque>
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

/// Off-chip memory: `channels` timelines sharing the bandwidth equally; addresses interleave
/// over channels every kInterleaveBytes. A transfer reserves each channel it touches for its
/// share of the bytes (first come, first served) and completes `latency` after the last
/// channel finishes.
class Hbm : public sc_core::sc_module {
 public:
  static constexpr uint64_t kInterleaveBytes = 256;
  Hbm(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  Transfer transfer(int64_t earliest, uint64_t addr, uint64_t bytes, bool write);
  int64_t busy_cycles() const;

 private:
  TimelineSet channels_;
  std::vector<uint64_t> share_;  // scratch: bytes per channel of the current transfer
  double bytes_per_cycle_per_channel_;
  int64_t latency_cycles_;
  int64_t& read_bytes_;
  int64_t& write_bytes_;
};

/// The host link: one timeline per direction.
class HostLink : public sc_core::sc_module {
 public:
  HostLink(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  Transfer transfer(int64_t earliest, uint64_t bytes, bool to_host);

 private:
  Timeline to_device_, to_host_;
  double bytes_per_cycle_;
  int64_t latency_cycles_;
  int64_t& read_bytes_;
  int64_t& write_bytes_;
};

/// Unified-buffer ports shared by DMA, MXU input reads and the vector unit.
class UnifiedBuffer : public sc_core::sc_module {
 public:
  UnifiedBuffer(sc_core::sc_module_name name, const arch::ArchConfig& arch, Stats& stats);
  /// Reserves a port for `bytes`; returns when the port streams them.
  Transfer access(int64_t earliest, uint64_t bytes, bool write);
  /// Records that [lo, hi) holds data (for the occupancy high-water mark).
  void note_written(uint64_t lo, uint64_t hi);
  int64_t footprint_bytes() const { return footprint_; }

 private:
  TimelineSet ports_;
  int64_t port_bytes_;
  int64_t& read_bytes_;
  int64_t& write_bytes_;
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
  /// Weight DMA: the tile's last byte arrives at `arrival`.
  void push(int64_t arrival);
  /// MXU: waits for a tile and pops it; returns its arrival cycle.
  int64_t pop();

 private:
  int64_t depth_;
  int64_t occupancy_ = 0;
  std::deque<int64_t> tiles_;
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
