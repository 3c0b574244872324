// The inter-chip interconnect (ICI) of a pod and collectives on it. Every directed link is a
// next-free-time timeline; a transfer reserves every link of its path for bytes / bandwidth
// (cut-through: the path's links are held together) and arrives after the links' and
// routers' latencies. Collectives are schedules of such transfers between all chips, so link
// contention is real: two transfers on one link share it. Plain C++ (no SystemC): the same
// network serves both pod backends. Collectives on it: sim/pod/collective.h. See docs/pod.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/pod_config.h"

namespace tpu::pod {

/// A non-negative chip, dimension or count as a container index.
inline std::size_t at(int64_t i) { return static_cast<std::size_t>(i); }

class Network {
 public:
  explicit Network(const arch::PodConfig& pod);

  const arch::PodConfig& config() const { return pod_; }
  int64_t chips() const { return pod_.chips; }
  int dims() const { return static_cast<int>(pod_.dims.size()); }
  /// Coordinates of a chip (dimension 0 fastest) and back.
  std::vector<int64_t> coords(int64_t chip) const;
  int64_t coord(int64_t chip, int dim) const {
    return coord_[static_cast<std::size_t>(chip) * pod_.dims.size() + static_cast<std::size_t>(dim)];
  }
  int64_t chip_at(const std::vector<int64_t>& c) const;
  /// The chip `steps` hops from `chip` along `dim` (wrapping on ring/torus dimensions);
  /// -1 when a mesh dimension ends first.
  int64_t step(int64_t chip, int dim, int64_t steps) const;
  bool wraps(int dim) const { return pod_.topology[static_cast<std::size_t>(dim)] != arch::DimTopology::kMesh; }

  /// Sends `bytes` from `chip` `hops` hops along `dim` in direction `dir` (+1 or -1), not
  /// before `ready` (seconds). Returns the arrival time at the destination.
  double send(int64_t chip, int dim, int dir, int64_t hops, double bytes, double ready);
  /// Dimension-ordered route (dimension 0 first, shortest way round on a ring; half way
  /// round goes forward, or backward with `backward_on_tie`: the two directions of a
  /// bidirectional ring of two chips use the two links between them).
  double send_to(int64_t from, int64_t to, double bytes, double ready, bool backward_on_tie = false);

  double link_seconds_per_byte() const { return seconds_per_byte_; }
  double hop_latency() const { return pod_.link_latency_ns * 1e-9; }
  double router_latency() const { return pod_.router_latency_ns * 1e-9; }
  /// Bytes that crossed links in all (every hop counted).
  double link_bytes() const { return link_bytes_; }
  /// Bytes that left their source chips (each transfer counted once, whatever its hops): the
  /// bytes the chips injected into the network.
  double injected_bytes() const { return injected_bytes_; }
  /// Busy seconds of the busiest link.
  double max_link_busy() const;
  int64_t links() const { return static_cast<int64_t>(next_free_.size()); }
  /// Busy seconds and bytes of the link leaving `chip` along `dim` in direction `dir`.
  double link_busy(int64_t chip, int dim, int dir) const { return busy_[link(chip, dim, dir)]; }
  double link_bytes(int64_t chip, int dim, int dir) const { return bytes_[link(chip, dim, dir)]; }

 private:
  std::size_t link(int64_t chip, int dim, int dir) const {
    return static_cast<std::size_t>((chip * dims() + dim) * 2 + (dir > 0 ? 1 : 0));
  }
  arch::PodConfig pod_;
  std::vector<double> next_free_, busy_, bytes_;
  std::vector<int64_t> stride_;     // chips between neighbours along each dimension
  std::vector<int64_t> coord_;      // per chip, per dimension
  std::vector<int64_t> hop_;        // per link: the chip it leads to (-1 past a mesh edge)
  std::vector<std::size_t> path_;   // scratch route of send / send_to
  double seconds_per_byte_ = 0;
  double link_bytes_ = 0;
  double injected_bytes_ = 0;
};

}  // namespace tpu::pod
