#include "sim/pod/network.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "arch/error.h"

namespace tpu::pod {

Network::Network(const arch::PodConfig& pod) : pod_(pod) {
  std::size_t n = static_cast<std::size_t>(pod.chips) * pod.dims.size() * 2;
  next_free_.assign(n, 0.0);
  busy_.assign(n, 0.0);
  seconds_per_byte_ = 1.0 / (pod.link_bandwidth_gbps * 1e9 * static_cast<double>(pod.links_per_direction));
}

std::vector<int64_t> Network::coords(int64_t chip) const {
  std::vector<int64_t> c(pod_.dims.size());
  for (std::size_t d = 0; d < c.size(); ++d) {
    c[d] = chip % pod_.dims[d];
    chip /= pod_.dims[d];
  }
  return c;
}

int64_t Network::chip_at(const std::vector<int64_t>& c) const {
  int64_t chip = 0;
  for (std::size_t d = c.size(); d-- > 0;) chip = chip * pod_.dims[d] + c[d];
  return chip;
}

int64_t Network::step(int64_t chip, int dim, int64_t steps) const {
  auto c = coords(chip);
  int64_t n = pod_.dims[static_cast<std::size_t>(dim)];
  int64_t v = c[static_cast<std::size_t>(dim)] + steps;
  if (wraps(dim)) {
    v = ((v % n) + n) % n;
  } else if (v < 0 || v >= n) {
    return -1;
  }
  c[static_cast<std::size_t>(dim)] = v;
  return chip_at(c);
}

double Network::max_link_busy() const {
  return busy_.empty() ? 0.0 : *std::max_element(busy_.begin(), busy_.end());
}

namespace {

// Reserves every link of a path for one window (cut-through) and returns the arrival time.
double reserve(std::vector<double>& next_free, std::vector<double>& busy, const std::vector<std::size_t>& path,
               double duration, double ready, double hop_latency, double router_latency) {
  double start = ready;
  for (std::size_t l : path) start = std::max(start, next_free[l]);
  for (std::size_t l : path) {
    next_free[l] = start + duration;
    busy[l] += duration;
  }
  double hops = static_cast<double>(path.size());
  return start + duration + hops * hop_latency + std::max(0.0, hops - 1) * router_latency;
}

}  // namespace

double Network::send(int64_t chip, int dim, int dir, int64_t hops, double bytes, double ready) {
  std::vector<std::size_t> path;
  int64_t at = chip;
  for (int64_t h = 0; h < hops; ++h) {
    path.push_back(link(at, dim, dir));
    at = step(at, dim, dir);
    if (at < 0) throw std::logic_error("pod: a path leaves a mesh dimension");
  }
  link_bytes_ += bytes * static_cast<double>(hops);
  return reserve(next_free_, busy_, path, bytes * seconds_per_byte_, ready, hop_latency(), router_latency());
}

double Network::send_to(int64_t from, int64_t to, double bytes, double ready, bool backward_on_tie) {
  if (from == to) return ready;
  auto a = coords(from), b = coords(to);
  std::vector<std::size_t> path;
  int64_t at = from;
  for (int d = 0; d < dims(); ++d) {
    int64_t n = pod_.dims[static_cast<std::size_t>(d)];
    int64_t delta = b[static_cast<std::size_t>(d)] - a[static_cast<std::size_t>(d)];
    if (wraps(d)) {
      delta = ((delta % n) + n) % n;
      if (delta > n / 2 || (backward_on_tie && 2 * delta == n)) delta -= n;  // the shorter way round
    }
    int dir = delta >= 0 ? 1 : -1;
    for (int64_t h = 0; h < std::abs(delta); ++h) {
      path.push_back(link(at, d, dir));
      at = step(at, d, dir);
    }
  }
  link_bytes_ += bytes * static_cast<double>(path.size());
  return reserve(next_free_, busy_, path, bytes * seconds_per_byte_, ready, hop_latency(), router_latency());
}

namespace {

// Chips in boustrophedon (snake) order through every dimension: consecutive chips are
// neighbours, so a ring over this order uses one-hop links (plus the closing edge).
std::vector<int64_t> snake_order(const Network& net) {
  const auto& dims = net.config().dims;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < net.chips(); ++i) {
    std::vector<int64_t> c(dims.size());
    int64_t rest = i;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      int64_t digit = rest % dims[d];
      int64_t higher = rest / dims[d];
      c[d] = digit;
      rest = higher;
    }
    // Reflect each digit when the digits above it form an odd count (reflected mixed radix).
    for (std::size_t d = 0; d < dims.size(); ++d) {
      int64_t above = i;
      for (std::size_t e = 0; e <= d; ++e) above /= dims[e];
      if (above % 2 == 1) c[d] = dims[d] - 1 - c[d];
    }
    order.push_back(net.chip_at(c));
  }
  return order;
}

// Steps of a ring reduce-scatter or all-gather over groups of chips (each group a cyclic
// order), all groups at once: `steps` rounds, each chip sending `chunk` bytes to its
// successor (and with bidir the same to its predecessor, each half the data).
void ring_rounds(Network& net, const std::vector<std::vector<int64_t>>& groups, double chunk, bool bidir,
                 int64_t steps, std::vector<double>& ready) {
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<double> next = ready;
    for (const auto& g : groups) {
      std::size_t n = g.size();
      for (std::size_t k = 0; k < n; ++k) {
        int64_t me = g[k], succ = g[(k + 1) % n], pred = g[(k + n - 1) % n];
        double part = bidir ? chunk / 2 : chunk;
        next[static_cast<std::size_t>(succ)] =
            std::max(next[static_cast<std::size_t>(succ)], net.send_to(me, succ, part, ready[static_cast<std::size_t>(me)]));
        if (bidir) {
          next[static_cast<std::size_t>(pred)] =
              std::max(next[static_cast<std::size_t>(pred)], net.send_to(me, pred, part, ready[static_cast<std::size_t>(me)], true));
        }
      }
    }
    ready = std::move(next);
  }
}

// The rings along dimension d: one per combination of the other coordinates.
std::vector<std::vector<int64_t>> dim_rings(const Network& net, int d) {
  std::vector<std::vector<int64_t>> groups;
  for (int64_t chip = 0; chip < net.chips(); ++chip) {
    if (net.coords(chip)[static_cast<std::size_t>(d)] != 0) continue;
    std::vector<int64_t> g;
    for (int64_t i = 0; i < net.config().dims[static_cast<std::size_t>(d)]; ++i) g.push_back(net.step(chip, d, i));
    groups.push_back(std::move(g));
  }
  return groups;
}

void require_wrap(const arch::PodConfig& pod, const std::vector<int>& dims_used, Algorithm a) {
  for (int d : dims_used) {
    if (pod.topology[static_cast<std::size_t>(d)] == arch::DimTopology::kMesh && pod.dims[static_cast<std::size_t>(d)] > 2) {
      throw InputError(SourceLocation{pod.name, 0, 0}, "--algorithm",
                       fmt::format("a topology with wrap-around links for {} (dimension {} is a mesh)",
                                   kAlgorithmNames[static_cast<int>(a)], d),
                       "mesh");
    }
  }
}

Algorithm resolve(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm a) {
  if (a != Algorithm::kAuto) return a;
  if (op == CollectiveOp::kBroadcast || bytes < 64.0 * 1024) return Algorithm::kTree;
  int used = 0;
  for (auto d : pod.dims) used += d > 1 ? 1 : 0;
  return used > 1 ? Algorithm::kTorus : Algorithm::kBidirRing;
}

}  // namespace

double closed_form(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm a) {
  double beta = 1.0 / (pod.link_bandwidth_gbps * 1e9 * static_cast<double>(pod.links_per_direction));
  double alpha = pod.link_latency_ns * 1e-9;
  double p = static_cast<double>(pod.chips);
  double phases = op == CollectiveOp::kAllReduce ? 2 : 1;
  switch (a) {
    case Algorithm::kRing:
      return phases * (p - 1) * (bytes / p * beta + alpha);
    case Algorithm::kBidirRing:
      return phases * (p - 1) * (bytes / (2 * p) * beta + alpha);
    case Algorithm::kTorus: {
      double t = 0, d_bytes = bytes;
      for (auto n64 : pod.dims) {
        double n = static_cast<double>(n64);
        if (n64 < 2) continue;
        t += (n - 1) * (d_bytes / (2 * n) * beta + alpha);
        d_bytes /= n;
      }
      return phases * t;
    }
    case Algorithm::kTree: {
      // Binary tree over the ring order of a one-dimensional ring: level l spans 2^l hops.
      double t = 0;
      for (int64_t span = 1; span < pod.chips; span *= 2) {
        double s = static_cast<double>(std::min<int64_t>(span, pod.chips - span));
        t += bytes * beta + s * alpha + std::max(0.0, s - 1) * pod.router_latency_ns * 1e-9;
      }
      return (op == CollectiveOp::kAllReduce ? 2 : 1) * t;
    }
    default:
      return 0;
  }
}

CollectiveResult run_collective(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm algorithm) {
  Network net(pod);
  CollectiveResult r;
  r.algorithm = resolve(pod, op, bytes, algorithm);
  std::vector<double> ready(static_cast<std::size_t>(pod.chips), 0.0);
  double p = static_cast<double>(pod.chips);
  std::vector<int> all_dims;
  for (int d = 0; d < net.dims(); ++d) {
    if (pod.dims[static_cast<std::size_t>(d)] > 1) all_dims.push_back(d);
  }
  if (pod.chips > 1) {
    switch (r.algorithm) {
      case Algorithm::kRing:
      case Algorithm::kBidirRing: {
        if (op == CollectiveOp::kBroadcast) {
          throw InputError(SourceLocation{"<command line>", 0, 0}, "--algorithm", "tree or auto for broadcast",
                           kAlgorithmNames[static_cast<int>(r.algorithm)]);
        }
        require_wrap(pod, all_dims, r.algorithm);
        std::vector<std::vector<int64_t>> ring = {snake_order(net)};
        bool bidir = r.algorithm == Algorithm::kBidirRing;
        int64_t steps = pod.chips - 1;
        if (op != CollectiveOp::kAllGather) ring_rounds(net, ring, bytes / p, bidir, steps, ready);
        if (op != CollectiveOp::kReduceScatter) ring_rounds(net, ring, bytes / p, bidir, steps, ready);
        break;
      }
      case Algorithm::kTorus: {
        if (op == CollectiveOp::kBroadcast) {
          throw InputError(SourceLocation{"<command line>", 0, 0}, "--algorithm", "tree or auto for broadcast", "torus");
        }
        require_wrap(pod, all_dims, r.algorithm);
        std::vector<double> sizes;  // data per chip entering each dimension's phase
        double d_bytes = bytes;
        for (int d : all_dims) {
          sizes.push_back(d_bytes);
          d_bytes /= static_cast<double>(pod.dims[static_cast<std::size_t>(d)]);
        }
        if (op != CollectiveOp::kAllGather) {
          for (std::size_t i = 0; i < all_dims.size(); ++i) {
            int d = all_dims[i];
            double n = static_cast<double>(pod.dims[static_cast<std::size_t>(d)]);
            ring_rounds(net, dim_rings(net, d), sizes[i] / n, true, pod.dims[static_cast<std::size_t>(d)] - 1, ready);
          }
        }
        if (op != CollectiveOp::kReduceScatter) {
          for (std::size_t i = all_dims.size(); i-- > 0;) {
            int d = all_dims[i];
            double n = static_cast<double>(pod.dims[static_cast<std::size_t>(d)]);
            ring_rounds(net, dim_rings(net, d), sizes[i] / n, true, pod.dims[static_cast<std::size_t>(d)] - 1, ready);
          }
        }
        break;
      }
      case Algorithm::kTree: {
        // Binary tree over the snake order: reduce towards position 0, then broadcast back.
        std::vector<int64_t> order = snake_order(net);
        int64_t n = pod.chips;
        std::vector<int64_t> spans;
        for (int64_t span = 1; span < n; span *= 2) spans.push_back(span);
        auto level = [&](int64_t span, bool up) {
          std::vector<double> next = ready;
          for (int64_t k = 0; k + span < n; k += 2 * span) {
            int64_t a = order[static_cast<std::size_t>(k)], b = order[static_cast<std::size_t>(k + span)];
            int64_t from = up ? b : a, to = up ? a : b;
            double t = net.send_to(from, to, bytes, ready[static_cast<std::size_t>(from)]);
            next[static_cast<std::size_t>(to)] = std::max(next[static_cast<std::size_t>(to)], t);
          }
          ready = std::move(next);
        };
        if (op == CollectiveOp::kAllReduce || op == CollectiveOp::kReduceScatter) {
          for (int64_t s : spans) level(s, true);
        }
        if (op != CollectiveOp::kReduceScatter) {
          for (std::size_t i = spans.size(); i-- > 0;) level(spans[i], false);
        }
        break;
      }
      case Algorithm::kAuto:
        break;
    }
  }
  r.seconds = *std::max_element(ready.begin(), ready.end());
  r.closed_form_seconds = closed_form(pod, op, bytes, r.algorithm);
  r.link_bytes = net.link_bytes();
  r.max_link_busy = net.max_link_busy();
  return r;
}

}  // namespace tpu::pod
