// MAC-grid benchmarks: fast-model timing throughput in simulated cycles per host second (and
// its speed-up over the stepped oracle on the same passes), and the fast int8/bf16 pass
// kernels against Eigen's fp32 GEMM of the same size, both measured in the same run.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "sim/mxu/fast_kernels.h"
#include "sim/mxu/fast_timing.h"
#include "sim/mxu/stepped_array.h"

namespace {

using tpu::sim::ArrayConfig;
using tpu::sim::PassSpec;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ArrayConfig array(int side, int bus_rows) {
  ArrayConfig c;
  c.rows = side;
  c.cols = side;
  c.weight_load_rows_per_cycle = bus_rows;
  return c;
}

// A long matmul: full tiles, `rows` streamed vectors per pass, accumulating over K tiles.
std::vector<PassSpec> long_matmul(const ArrayConfig& c, int passes, int rows) {
  std::vector<PassSpec> seq(static_cast<std::size_t>(passes));
  for (int i = 0; i < passes; ++i) {
    PassSpec& p = seq[static_cast<std::size_t>(i)];
    p.m = rows;
    p.k = c.rows;
    p.n = c.cols;
    p.accumulate = i % 4 != 0;
  }
  return seq;
}

// Simulated cycles per host second of the stepped oracle on a short prefix of the same
// sequence (timing only), measured once per shape.
double stepped_cycles_per_second(const ArrayConfig& c, int rows) {
  static std::map<std::pair<int, int>, double> cache;
  const auto key = std::make_pair(c.rows * 100 + c.weight_load_rows_per_cycle, rows);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const std::vector<PassSpec> seq = long_matmul(c, 3, rows);
  tpu::sim::SteppedOptions o;
  o.record_events = false;
  const auto t0 = std::chrono::steady_clock::now();
  const tpu::sim::SteppedResult r = tpu::sim::run_stepped(c, seq, {}, o);
  const double rate = static_cast<double>(r.total_cycles) / seconds_since(t0);
  cache[key] = rate;
  return rate;
}

// args: array side, weight bus rows per cycle, rows streamed per pass.
void BM_FastModelTiming(benchmark::State& state) {
  const ArrayConfig c = array(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const int rows = static_cast<int>(state.range(2));
  const std::vector<PassSpec> seq = long_matmul(c, 10000, rows);
  tpu::sim::FastArrayTimer timer(c);
  int64_t cycles = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    timer.reset();
    tpu::sim::PassTiming last;
    for (const PassSpec& p : seq) last = timer.add(p);
    cycles += timer.finish(&last);
    benchmark::DoNotOptimize(last);
  }
  const double fast_rate = static_cast<double>(cycles) / seconds_since(t0);
  const double stepped = stepped_cycles_per_second(c, rows);
  state.counters["sim_cycles_per_s"] = fast_rate;
  state.counters["stepped_cycles_per_s"] = stepped;
  state.counters["speedup_vs_stepped"] = fast_rate / stepped;
}
BENCHMARK(BM_FastModelTiming)
    ->Args({128, 8, 128})
    ->Args({128, 8, 512})
    ->Args({256, 1, 256})
    ->Unit(benchmark::kMillisecond);

// ---- Functional kernels against Eigen's fp32 GEMM ----

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Seconds per fp32 GEMM of M x K by K x N with Eigen, measured right after the kernel's own
// loop so that both see the same machine load.
double eigen_seconds(int m, int k, int n) {
  RowMajor a = RowMajor::Random(m, k), b = RowMajor::Random(k, n), out(m, n);
  out.noalias() = a * b;  // warm up
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    out.noalias() = a * b;
    benchmark::DoNotOptimize(out.data());
    ++calls;
  } while (seconds_since(t0) < 0.2);
  return seconds_since(t0) / calls;
}

// `seconds`: wall time of the state's timed loop (measured around it by the caller).
void report_kernel(benchmark::State& state, int m, int k, int n, double seconds) {
  const double macs = static_cast<double>(m) * k * n;
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["macs_per_s"] = macs * iterations / seconds;
  const double eigen = eigen_seconds(m, k, n);
  state.counters["eigen_fp32_macs_per_s"] = macs / eigen;
  // Seconds per pass over Eigen's seconds per GEMM of the same size. Target: <= 3.
  state.counters["x_slower_than_eigen"] = seconds / iterations / eigen;
}

void BM_PassKernelInt8(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  std::mt19937_64 rng(1);
  std::vector<int8_t> a(static_cast<std::size_t>(m) * k), w(static_cast<std::size_t>(k) * n);
  for (auto& v : a) v = static_cast<int8_t>(rng());
  for (auto& v : w) v = static_cast<int8_t>(rng());
  std::vector<int32_t> acc(static_cast<std::size_t>(m) * n);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    tpu::sim::matmul_pass_int8_fast(a.data(), static_cast<std::size_t>(k), w.data(),
                                    static_cast<std::size_t>(n), m, k, n, acc.data(),
                                    static_cast<std::size_t>(n), true);
    benchmark::DoNotOptimize(acc.data());
  }
  report_kernel(state, m, k, n, seconds_since(t0));
}

void BM_PassKernelBf16(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  std::mt19937_64 rng(2);
  std::vector<uint16_t> a(static_cast<std::size_t>(m) * k), w(static_cast<std::size_t>(k) * n);
  for (auto& v : a) v = static_cast<uint16_t>(0x3C00 + rng() % 0x0800);
  for (auto& v : w) v = static_cast<uint16_t>(0x3C00 + rng() % 0x0800);
  std::vector<float> acc(static_cast<std::size_t>(m) * n);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    tpu::sim::matmul_pass_bf16_fast(a.data(), static_cast<std::size_t>(k), w.data(),
                                    static_cast<std::size_t>(n), m, k, n, acc.data(),
                                    static_cast<std::size_t>(n), true);
    benchmark::DoNotOptimize(acc.data());
  }
  report_kernel(state, m, k, n, seconds_since(t0));
}

void BM_EigenFp32Gemm(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  RowMajor a = RowMajor::Random(m, k), b = RowMajor::Random(k, n), out(m, n);
  for (auto _ : state) {
    out.noalias() = a * b;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["macs_per_s"] =
      benchmark::Counter(static_cast<double>(m) * k * n * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

#define TPU_KERNEL_SIZES ->Args({128, 128, 128})->Args({256, 128, 128})->Args({256, 256, 256})
BENCHMARK(BM_PassKernelInt8) TPU_KERNEL_SIZES;
BENCHMARK(BM_PassKernelBf16) TPU_KERNEL_SIZES;
BENCHMARK(BM_EigenFp32Gemm) TPU_KERNEL_SIZES;
#undef TPU_KERNEL_SIZES

}  // namespace

BENCHMARK_MAIN();
