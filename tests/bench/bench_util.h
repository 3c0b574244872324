// Wall-clock and peak-memory figures the benchmarks print.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace tpu::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Peak resident memory of the process so far.
inline double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

}  // namespace tpu::bench
