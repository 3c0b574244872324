// SystemC chip-model benchmarks: a long tiled bf16 GEMM on the TPU v4 preset, timing-only and
// functional, in simulated cycles and instructions per host second. Baselines measured in the
// same run: the MXU fast timing model alone (FastArrayTimer::add for every matmul of the same
// program), the golden interpreter (isa::Interpreter::run) on the functional program, and the
// Program's own size for the process's peak resident memory.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "isa/verifier.h"
#include "sim/chip/asan_options.h"
#include "sim/chip/chip.h"
#include "sim/mxu/array_config.h"
#include "sim/mxu/fast_timing.h"

// libsystemc's main() references sc_main; this program has Google Benchmark's main and starts
// simulations through tpu::sim::run_chip, so this is never called.
extern "C" int sc_main(int, char**) { return 0; }

namespace {

using tpu::sim::ChipOptions;
using tpu::sim::ChipResult;
using tpu::sim::PassSpec;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The TPU v4 preset with one TensorCore (the chip model runs the program on core 0; a second
// core would only halt at once). Four 128 x 128 bf16 MXUs.
const tpu::arch::ArchConfig& tpu_v4() {
  static const tpu::arch::ArchConfig a =
      tpu::arch::load_arch(std::string(TPU_SOURCE_DIR) + "/configs/arch/tpu_v4.yaml", {"cores=1"});
  return a;
}

constexpr int kTile = 128;  // MXU side
constexpr int kRows = 512;  // input rows per chunk (streamed vectors per pass)
constexpr int kK = 1024;    // reduction size: 8 weight tiles deep
constexpr int kN = 1024;    // outputs: 8 weight tiles wide, two per MXU
constexpr int kMxus = 4;
constexpr int kYSlots = 8;  // rotating UB buffers for activated output tiles

// y = relu(x @ w), x (chunks * 512) x 1024, w 1024 x 1024, bf16, on the 4 MXUs of a v4 core.
// Per chunk of 512 rows: one dma_load (double-buffered: chunk c+1 loads while c computes),
// then for each group of 4 output tiles (one per MXU) 8 k steps of load_weights + matmul on
// every MXU (interleaved so that the single weight DMA feeds all four), 4 activates and 4
// dma_stores: 1 + 2 * (8 * 4 * 2 + 4 + 4) = 145 instructions and 64 passes of 512 rows; a
// halt ends the program.
tpu::isa::Program gemm_program(int chunks) {
  const uint64_t x_bytes = uint64_t{1} * chunks * kRows * kK * 2;
  const uint64_t w_addr = (x_bytes + 0xFFFFF) & ~uint64_t{0xFFFFF};
  const uint64_t y_addr = w_addr + ((uint64_t{kK} * kN * 2 + 0xFFFFF) & ~uint64_t{0xFFFFF});
  const uint64_t chunk_ub = uint64_t{kRows} * kK * 2;   // 1 MiB per input chunk
  const uint64_t y_ub = 2 * chunk_ub;                   // then kYSlots output tiles
  const uint64_t y_tile = uint64_t{kRows} * kTile * 2;  // 128 KiB
  std::string s;
  s += fmt::format(".region x addr={} dtype=bf16 shape={}x{} role=input init=random seed=1\n", 0,
                   chunks * kRows, kK);
  s += fmt::format(".region w addr={} dtype=bf16 shape={}x{} role=data init=random seed=2\n",
                   w_addr, kK, kN);
  s += fmt::format(".region y addr={} dtype=bf16 shape={}x{} role=output\n", y_addr, chunks * kRows,
                   kN);
  auto load_chunk = [&](int c) {
    s += fmt::format("    dma_load src=x+{} ub={} rows={} row_bytes={}\n", c * chunk_ub,
                     (c % 2) * chunk_ub, kRows, kK * 2);
  };
  load_chunk(0);
  int slot = 0;
  for (int c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) load_chunk(c + 1);
    const uint64_t x_ub = (c % 2) * chunk_ub;
    for (int g = 0; g < kN / kTile / kMxus; ++g) {
      // Accumulator rows: double-buffered over chunks and tile groups (4 x 512 <= 4096).
      const int acc = ((c % 2) * 2 + g % 2) * kRows;
      for (int kt = 0; kt < kK / kTile; ++kt) {
        for (int m = 0; m < kMxus; ++m) {
          const int j = g * kMxus + m;  // output tile
          s +=
              fmt::format("    load_weights src=w+{} k={} n={} stride={} dtype=bf16 mxu={}\n",
                          (uint64_t{1} * kt * kTile * kN + j * kTile) * 2, kTile, kTile, kN * 2, m);
          s += fmt::format(
              "    matmul mxu={} dtype=bf16 ub={} ub_stride={} acc={} rows={} k={} n={} pop=1 "
              "accumulate={}\n",
              m, x_ub + kt * kTile * 2, kK * 2, acc, kRows, kTile, kTile, kt > 0 ? 1 : 0);
        }
      }
      for (int m = 0; m < kMxus; ++m) {
        const int j = g * kMxus + m;
        const uint64_t ub = y_ub + (slot++ % kYSlots) * y_tile;
        s += fmt::format("    activate mxu={} acc={} rows={} n={} ub={} mode=bf16 func=relu\n", m,
                         acc, kRows, kTile, ub);
        s += fmt::format("    dma_store dst=y+{} ub={} rows={} row_bytes={} dst_stride={}\n",
                         (uint64_t{1} * c * kRows * kN + j * kTile) * 2, ub, kRows, kTile * 2,
                         kN * 2);
      }
    }
  }
  s += "    halt\n";
  tpu::isa::Program p = tpu::isa::assemble(s, fmt::format("gemm{}.tasm", chunks));
  tpu::isa::verify_program(p, tpu_v4(), "gemm.tasm");
  return p;
}

// Timing-only: 200 chunks (29,001 instructions, 12,800 passes, about 2.3 million cycles).
// Functional: 2 chunks (291 instructions, 128 passes, 1.07e9 bf16 MACs), a few seconds a run.
constexpr int kTimingChunks = 200;
constexpr int kFunctionalChunks = 2;

// Heap and inline bytes of the Program (its instructions, source lines, notes and regions).
double program_bytes(const tpu::isa::Program& p) {
  double b = sizeof(p) + static_cast<double>(p.code.capacity() * sizeof(tpu::isa::Instruction)) +
             static_cast<double>(p.lines.capacity() * sizeof(int)) +
             static_cast<double>(p.notes.capacity() * sizeof(std::string)) +
             static_cast<double>(p.regions.capacity() * sizeof(tpu::isa::Region));
  for (const std::string& n : p.notes)
    b += n.capacity() > 15 ? static_cast<double>(n.capacity()) : 0;
  return b;
}

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux: KiB
}

double current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// Once per benchmark, before its first run: free heap handed back to the system (so that the
// runs' allocations show up as growth, not as reuse of the program generator's garbage), the
// peak (ru_maxrss) reset to the resident set (Linux >= 4.0, /proc/self/clear_refs "5") so that
// the figure after the runs is their own high-water mark; returns the resident set.
double start_rss_accounting() {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  return current_rss_bytes();
}

// The MXU fast model alone on the program's passes: one FastArrayTimer per MXU, add() for
// every matmul in program order, finish() on each. Returns simulated cycles per host second
// (cycles: the longest MXU sequence) and the host seconds of one sequence through *seconds.
double fast_model_cycles_per_second(const tpu::isa::Program& p, double* seconds) {
  using tpu::isa::Fid;
  std::vector<std::vector<PassSpec>> per_mxu(kMxus);
  for (const tpu::isa::Instruction& in : p.code) {
    if (in.op != tpu::isa::Opcode::kMatmul) continue;
    PassSpec ps;
    ps.m = static_cast<int>(in.get(Fid::kMatmul_rows));
    ps.k = static_cast<int>(in.get(Fid::kMatmul_k));
    ps.n = static_cast<int>(in.get(Fid::kMatmul_n));
    ps.load = in.get(Fid::kMatmul_pop) != 0;
    ps.accumulate = in.get(Fid::kMatmul_accumulate) != 0;
    per_mxu[static_cast<std::size_t>(in.get(Fid::kMatmul_mxu))].push_back(ps);
  }
  std::vector<tpu::sim::FastArrayTimer> timers(
      kMxus, tpu::sim::FastArrayTimer(tpu::sim::array_config_from_arch(tpu_v4())));
  int64_t cycles = 0;
  int sequences = 0;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    int64_t longest = 0;
    for (int m = 0; m < kMxus; ++m) {
      tpu::sim::FastArrayTimer& t = timers[static_cast<std::size_t>(m)];
      t.reset();
      tpu::sim::PassTiming last;
      for (const PassSpec& ps : per_mxu[static_cast<std::size_t>(m)]) last = t.add(ps);
      longest = std::max(longest, t.finish(&last));
      benchmark::DoNotOptimize(last);
    }
    cycles += longest;
    ++sequences;
  } while (seconds_since(t0) < 0.2);
  const double elapsed = seconds_since(t0);
  *seconds = elapsed / sequences;
  return static_cast<double>(cycles) / elapsed;
}

// Seconds per isa::Interpreter::run() of `p` (the interpreter built outside the timing).
double interpreter_seconds(const tpu::isa::Program& p) {
  double total = 0;
  int runs = 0;
  do {
    tpu::isa::Interpreter golden(tpu_v4(), p, "gemm.tasm");
    const auto t0 = std::chrono::steady_clock::now();
    golden.run();
    total += seconds_since(t0);
    benchmark::DoNotOptimize(golden.stats());
    ++runs;
  } while (total < 0.5);
  return total / runs;
}

void report(benchmark::State& state, const tpu::isa::Program& p, const ChipResult& last,
            double seconds, int runs, double rss_before) {
  // SystemC delta cycles of the last run (its context stays current until the next run_chip).
  state.counters["deltas_per_instruction"] =
      static_cast<double>(sc_core::sc_delta_count()) / static_cast<double>(p.code.size());
  const double cycles = static_cast<double>(last.cycles);
  const double instructions = static_cast<double>(p.code.size());
  const double chip_rate = cycles * runs / seconds;
  state.counters["instructions"] = instructions;
  state.counters["sim_cycles"] = cycles;
  state.counters["sim_cycles_per_s"] = chip_rate;
  state.counters["instructions_per_s"] = instructions * runs / seconds;
  // DESIGN.md section 7: ResNet-50 timing-only under 1 s; it is on the order of 1e5
  // instructions, so this must stay below 1.
  state.counters["s_per_1e5_instructions"] = 1e5 * seconds / (instructions * runs);
  double fast_seconds = 0;
  const double fast_rate = fast_model_cycles_per_second(p, &fast_seconds);
  state.counters["fast_model_cycles_per_s"] = fast_rate;
  state.counters["rate_vs_fast_model"] = chip_rate / fast_rate;
  state.counters["x_slower_than_fast_model"] = seconds / runs / fast_seconds;
  const double mxu0_busy = static_cast<double>(last.counters.at("chip.core0.mxu0.busy_cycles"));
  state.counters["mxu0_busy_fraction"] = mxu0_busy / cycles;
  double macs = 0;
  for (int m = 0; m < kMxus; ++m) {
    macs += static_cast<double>(last.counters.at(fmt::format("chip.core0.mxu{}.useful_macs", m)));
  }
  state.counters["macs_per_s"] = macs * runs / seconds;
  // Memory: the process's high-water mark over the runs, the resident set before the first
  // run, and the Program's own bytes as the baseline.
  const double rss = peak_rss_bytes(), prog = program_bytes(p);
  state.counters["peak_rss_MiB"] = rss / (1 << 20);
  state.counters["rss_before_runs_MiB"] = rss_before / (1 << 20);
  state.counters["program_MiB"] = prog / (1 << 20);
  state.counters["rss_over_program"] = rss / prog;
}

void BM_ChipTimingOnly(benchmark::State& state) {
  static const tpu::isa::Program p = gemm_program(kTimingChunks);
  static const double rss_before = start_rss_accounting();
  ChipOptions opt;
  opt.functional = false;
  ChipResult r;
  double seconds = 0;
  int runs = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    r = tpu::sim::run_chip(tpu_v4(), p, nullptr, opt);
    seconds += seconds_since(t0);
    ++runs;
    if (!r.completed) state.SkipWithError("the chip model did not complete the program");
  }
  report(state, p, r, seconds, runs, rss_before);
}
BENCHMARK(BM_ChipTimingOnly)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ChipFunctional(benchmark::State& state) {
  static const tpu::isa::Program p = gemm_program(kFunctionalChunks);
  static const double rss_before = start_rss_accounting();
  ChipOptions opt;
  opt.functional = true;
  ChipResult r;
  double seconds = 0;
  int runs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    tpu::isa::Interpreter data(tpu_v4(), p, "gemm.tasm");
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    r = tpu::sim::run_chip(tpu_v4(), p, &data, opt);
    seconds += seconds_since(t0);
    ++runs;
    benchmark::DoNotOptimize(data.stats());
    if (!r.completed) state.SkipWithError("the chip model did not complete the program");
  }
  report(state, p, r, seconds, runs, rss_before);
  // Second baseline: the golden interpreter alone on the same program (same numerics, no
  // time). The chip's functional mode executes each instruction through it.
  const double golden = interpreter_seconds(p);
  state.counters["interpreter_s"] = golden;
  state.counters["x_slower_than_interpreter"] = seconds / runs / golden;
}
BENCHMARK(BM_ChipFunctional)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
