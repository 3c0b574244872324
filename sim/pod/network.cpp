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
  bytes_.assign(n, 0.0);
  seconds_per_byte_ = 1.0 / (pod.link_bandwidth_gbps * 1e9 * static_cast<double>(pod.links_per_direction));
  int64_t stride = 1;
  for (int64_t d : pod.dims) {
    stride_.push_back(stride);
    stride *= d;
  }
  // Coordinates and one-hop neighbours of every chip, looked up on the hot path.
  std::size_t nd = pod.dims.size();
  coord_.resize(static_cast<std::size_t>(pod.chips) * nd);
  hop_.resize(n);
  for (int64_t chip = 0; chip < pod.chips; ++chip) {
    for (std::size_t d = 0; d < nd; ++d) {
      coord_[static_cast<std::size_t>(chip) * nd + d] = chip / stride_[d] % pod.dims[d];
    }
  }
  for (int64_t chip = 0; chip < pod.chips; ++chip) {
    for (int d = 0; d < dims(); ++d) {
      for (int dir : {-1, 1}) {
        std::size_t dd = static_cast<std::size_t>(d);
        int64_t c = coord(chip, d), v = c + dir, m = pod.dims[dd];
        if (wraps(d)) v = (v + m) % m;
        hop_[link(chip, d, dir)] = v < 0 || v >= m ? -1 : chip + (v - c) * stride_[dd];
      }
    }
  }
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
  if (steps == 1 || steps == -1) return hop_[link(chip, dim, static_cast<int>(steps))];
  std::size_t d = static_cast<std::size_t>(dim);
  int64_t n = pod_.dims[d];
  int64_t c = coord(chip, dim);
  int64_t v = c + steps;
  if (wraps(dim)) {
    v = ((v % n) + n) % n;
  } else if (v < 0 || v >= n) {
    return -1;
  }
  return chip + (v - c) * stride_[d];
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
  std::vector<std::size_t>& path = path_;
  path.clear();
  int64_t at = chip;
  for (int64_t h = 0; h < hops; ++h) {
    path.push_back(link(at, dim, dir));
    at = step(at, dim, dir);
    if (at < 0) throw std::logic_error("pod: a path leaves a mesh dimension");
  }
  link_bytes_ += bytes * static_cast<double>(hops);
  injected_bytes_ += hops > 0 ? bytes : 0.0;
  for (std::size_t l : path) bytes_[l] += bytes;
  return reserve(next_free_, busy_, path, bytes * seconds_per_byte_, ready, hop_latency(), router_latency());
}

double Network::send_to(int64_t from, int64_t to, double bytes, double ready, bool backward_on_tie) {
  if (from == to) return ready;
  std::vector<std::size_t>& path = path_;
  path.clear();
  int64_t at = from;
  for (int d = 0; d < dims(); ++d) {
    int64_t n = pod_.dims[static_cast<std::size_t>(d)];
    int64_t delta = coord(to, d) - coord(from, d);
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
  injected_bytes_ += bytes;
  for (std::size_t l : path) bytes_[l] += bytes;
  return reserve(next_free_, busy_, path, bytes * seconds_per_byte_, ready, hop_latency(), router_latency());
}

}  // namespace tpu::pod
