// The bisection bandwidth of a pod, measured on its network: every chip exchanges data with
// the chip half way round one dimension, so that all the traffic crosses the cut between the
// two halves of that dimension; the bytes the cut's links carried, divided by the simulated
// time, is the bisection bandwidth. See docs/pod.md and docs/validation-pods.md.
#pragma once

#include <cstdint>

#include "arch/pod_config.h"

namespace tpu::pod {

struct BisectionResult {
  int dim = 0;         ///< the pod dimension cut in half
  double seconds = 0;  ///< until the last byte arrived
  /// Directed links crossing the cut one way (lower half to upper half), wrap-around links
  /// included: 2 per line of chips along `dim` on a ring or torus dimension, 1 on a mesh.
  int64_t cut_links = 0;
  double link_bandwidth = 0;  ///< bytes per second of one such link (links_per_direction included)
  /// Bytes the cut's links carried from the lower half to the upper, and back (equal, by
  /// symmetry).
  double bytes_lower_to_upper = 0, bytes_upper_to_lower = 0;
  /// bytes_lower_to_upper / seconds: the bisection bandwidth in one direction (B/s).
  double bandwidth_per_direction() const {
    return seconds > 0 ? bytes_lower_to_upper / seconds : 0.0;
  }
  /// cut_links x link_bandwidth: what the link count alone gives (B/s, one direction).
  double cut_capacity_per_direction() const {
    return static_cast<double>(cut_links) * link_bandwidth;
  }
};

/// The dimension a bisection cuts: of the dimensions with an even number of chips (more than
/// one), the one whose cut crosses the fewest links (the pod's bisection); the lowest on a
/// tie. Throws InputError when no dimension can be cut in half (one chip, or only odd sizes).
int bisection_dim(const arch::PodConfig& pod);

/// Runs the bisection pattern on an idle network, all chips starting at 0: with n chips along
/// the cut dimension and h = n / 2, the chip at coordinate x sends `bytes` to the chip at
/// x + h (mod n), half of them each way round on a ring or torus dimension, all of them
/// across the middle on a mesh (the lower half forward, the upper half backward). The
/// transfers go in h rounds; in round k the chips at k and k + h send, whose routes together
/// hold every link of their line once, so the links the cut crosses are busy all the time.
/// Time advances only in the network's link timelines (no SystemC).
BisectionResult run_bisection(const arch::PodConfig& pod, double bytes);

}  // namespace tpu::pod
