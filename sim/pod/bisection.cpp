#include "sim/pod/bisection.h"

#include <fmt/format.h>

#include <algorithm>

#include "arch/error.h"
#include "sim/pod/collective.h"
#include "sim/pod/network.h"

namespace tpu::pod {

namespace {

// Directed links crossing the cut of dimension `d` one way.
int64_t cut_links(const Network& net, int d) {
  int64_t n = net.config().dims[static_cast<std::size_t>(d)];
  return net.chips() / n * (net.wraps(d) ? 2 : 1);
}

}  // namespace

int bisection_dim(const arch::PodConfig& pod) {
  Network net(pod);
  int best = -1;
  for (int d = 0; d < net.dims(); ++d) {
    int64_t n = pod.dims[static_cast<std::size_t>(d)];
    if (n < 2 || n % 2 != 0) continue;
    if (best < 0 || cut_links(net, d) < cut_links(net, best)) best = d;
  }
  if (best < 0) {
    std::string dims;
    for (int64_t n : pod.dims) dims += (dims.empty() ? "" : "x") + std::to_string(n);
    throw InputError(SourceLocation{pod.origin(), 0, 0}, "dims",
                     "a dimension with an even number of chips to cut in half (for --op bisection)",
                     dims);
  }
  return best;
}

BisectionResult run_bisection(const arch::PodConfig& pod, double bytes) {
  BisectionResult r;
  r.dim = bisection_dim(pod);
  Network net(pod);
  const int d = r.dim;
  const int64_t n = pod.dims[static_cast<std::size_t>(d)], h = n / 2;
  const bool ring = net.wraps(d);
  // Every chip of the two facing planes sends h hops (both ways on a ring): host time grows
  // with chips x h, so a long thin pod is refused rather than run for minutes.
  const double crossings = static_cast<double>(net.chips()) * static_cast<double>(h) * (ring ? 2 : 1);
  if (crossings > kMaxScheduleTransfers) {
    std::string dims;
    for (int64_t m : pod.dims) dims += (dims.empty() ? "" : "x") + std::to_string(m);
    throw InputError(SourceLocation{pod.origin(), 0, 0}, "dims",
                     fmt::format("a pod whose bisection traffic takes at most {:.0f} link hops "
                                 "(chips x half the cut dimension{})",
                                 kMaxScheduleTransfers, ring ? " x 2 directions" : ""),
                     fmt::format("{}: {:.0f} hops across dimension {}", dims, crossings, d));
  }
  double end = 0;
  for (int64_t k = 0; k < h; ++k) {
    for (int64_t chip = 0; chip < net.chips(); ++chip) {
      int64_t x = net.coord(chip, d);
      if (x != k && x != k + h) continue;
      if (ring) {
        end = std::max(end, net.send(chip, d, +1, h, bytes / 2, 0.0));
        end = std::max(end, net.send(chip, d, -1, h, bytes / 2, 0.0));
      } else {
        end = std::max(end, net.send(chip, d, x < h ? +1 : -1, h, bytes, 0.0));
      }
    }
  }
  r.seconds = end;
  r.cut_links = cut_links(net, d);
  r.link_bandwidth = 1.0 / net.link_seconds_per_byte();
  // Count what the cut's links carried: lower half [0, h), upper half [h, n).
  for (int64_t chip = 0; chip < net.chips(); ++chip) {
    int64_t x = net.coord(chip, d);
    if (x == h - 1) r.bytes_lower_to_upper += net.link_bytes(chip, d, +1);
    if (x == h) r.bytes_upper_to_lower += net.link_bytes(chip, d, -1);
    if (ring && x == 0) r.bytes_lower_to_upper += net.link_bytes(chip, d, -1);
    if (ring && x == n - 1) r.bytes_upper_to_lower += net.link_bytes(chip, d, +1);
  }
  return r;
}

}  // namespace tpu::pod
