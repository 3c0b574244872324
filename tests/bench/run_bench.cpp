// Whole-network benchmarks (DESIGN.md section 7, issue 5): ResNet-50 batch 1 on the TPU v4
// preset, compiled and simulated timing-only and functionally. Baselines measured in the same
// run: for timing-only, the MXU fast model alone over the program's passes; for functional,
// single-threaded Eigen fp32 GEMMs of the same layers (each matrix layer as one
// pixels x fan-in x outputs GEMM, the physical floor of computing its numbers). Peak resident
// memory of the process is printed with each. Also the peak memory of `tpusim run` on the
// largest bundled run, against the same run timing-only.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Dense>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "bench_util.h"
#include "compiler/compiler.h"
#include "compiler/params.h"
#include "isa/interpreter.h"
#include "sim/chip/asan_options.h"
#include "sim/chip/chip.h"
#include "sim/mxu/array_config.h"
#include "sim/mxu/fast_timing.h"

extern "C" int sc_main(int, char**) { return 0; }

namespace {

using namespace tpu;

using bench::peak_rss_mib;
using bench::seconds_since;

const arch::ArchConfig& v4() {
  static const arch::ArchConfig a = arch::load_arch(std::string(TPU_SOURCE_DIR) + "/configs/arch/tpu_v4.yaml", {});
  return a;
}

const compiler::Compiled& resnet50() {
  static const compiler::Compiled c = compiler::compile(
      v4(), compiler::load_workload(std::string(TPU_SOURCE_DIR) + "/configs/workloads/resnet50.yaml"), {});
  return c;
}

// The MXU fast model alone over the program's matmuls (per MXU, in program order).
double fast_model_seconds(const compiler::Compiled& c) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<sim::FastArrayTimer> timers;
  sim::ArrayConfig cfg = sim::array_config_from_arch(v4());
  for (int m = 0; m < v4().mxu.count; ++m) timers.emplace_back(cfg);
  std::vector<sim::PassTiming> last(timers.size());
  for (const auto& in : c.program().code) {
    if (in.op != isa::Opcode::kMatmul) continue;
    sim::PassSpec s;
    s.m = static_cast<int>(in.get(isa::Fid::kMatmul_rows));
    s.k = static_cast<int>(in.get(isa::Fid::kMatmul_k));
    s.n = static_cast<int>(in.get(isa::Fid::kMatmul_n));
    s.load = in.get(isa::Fid::kMatmul_pop) != 0;
    s.accumulate = in.get(isa::Fid::kMatmul_accumulate) != 0;
    auto m = static_cast<std::size_t>(in.get(isa::Fid::kMatmul_mxu));
    last[m] = timers[m].add(s);
  }
  for (std::size_t m = 0; m < timers.size(); ++m) benchmark::DoNotOptimize(timers[m].finish(&last[m]));
  return seconds_since(t0);
}

void BM_ResNet50TimingOnly(benchmark::State& state) {
  const compiler::Compiled& c = resnet50();
  sim::ChipOptions opt;
  opt.functional = false;
  double sim_s = 0, fast_s = 0;
  int64_t cycles = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    sim::ChipResult r = sim::run_chip(v4(), c.program(), nullptr, opt);
    sim_s += seconds_since(t0);
    cycles = r.cycles;
    fast_s += fast_model_seconds(c);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["wall_s"] = sim_s / n;
  state.counters["instructions"] = static_cast<double>(c.program().code.size());
  state.counters["sim_cycles"] = static_cast<double>(cycles);
  state.counters["fast_model_s"] = fast_s / n;
  state.counters["x_fast_model"] = sim_s / fast_s;
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_ResNet50TimingOnly)->Unit(benchmark::kMillisecond)->Iterations(5);

// Eigen fp32 GEMMs of every matrix layer (M pixels x K fan-in x N outputs).
double eigen_seconds(const compiler::Compiled& c) {
  double total = 0;
  for (const auto& op : c.workload.ops) {
    if (!op.is_matrix()) continue;
    int64_t m = op.out.pixels() * c.batch, k = compiler::fan_in(op), n = op.out.c;
    if (op.kind == compiler::OpKind::kDepthwise) {  // per channel: a 1-wide GEMM each
      m = op.out.pixels() * op.out.c;
      n = 1;
    }
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n), y(m, n);
    auto t0 = std::chrono::steady_clock::now();
    y.noalias() = a * b;
    total += seconds_since(t0);
    benchmark::DoNotOptimize(y.data());
  }
  return total;
}

void BM_ResNet50Functional(benchmark::State& state) {
  const compiler::Compiled& c = resnet50();
  double sim_s = 0, eigen_s = 0;
  for (auto _ : state) {
    isa::Interpreter interp(v4(), c.program(), "resnet50");
    auto t0 = std::chrono::steady_clock::now();
    sim::ChipResult r = sim::run_chip(v4(), c.program(), &interp, sim::ChipOptions{});
    sim_s += seconds_since(t0);
    benchmark::DoNotOptimize(r.cycles);
    eigen_s += eigen_seconds(c);
  }
  double n = static_cast<double>(state.iterations());
  int64_t macs = 0;
  for (const auto& l : c.layers) macs += l.macs;
  state.counters["wall_s"] = sim_s / n;
  state.counters["MAC_per_s"] = static_cast<double>(macs) / (sim_s / n);
  state.counters["eigen_fp32_s"] = eigen_s / n;
  state.counters["x_eigen"] = sim_s / eigen_s;
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_ResNet50Functional)->Unit(benchmark::kMillisecond)->Iterations(2);

// Peak resident memory of `tpusim run` as a child process (its ru_maxrss from wait4), in MiB,
// and its wall time through *seconds; output to /dev/null, run directory removed after.
double tpusim_peak_mib(const std::vector<std::string>& args, double* seconds) {
  std::string dir = "/tmp/tpusim_bench_peak_" + std::to_string(getpid());
  std::vector<std::string> all = {TPUSIM_BIN, "run"};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), {"--out", dir});
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage u{};
  wait4(pid, &status, 0, &u);
  *seconds = seconds_since(t0);
  std::filesystem::remove_all(dir);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;  // reported as a negative peak
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

// DESIGN.md section 7's memory target (under 1 GiB for any preset and bundled workload) on its
// worst case: of all 210 preset x workload x mode runs (docs/performance.md), the bf16 CNN1
// training step on TPU v4 peaks highest. Baseline in the same run: the same command
// timing-only (--no-functional: the compiled program and the timing model, no data).
void BM_LargestBundledRunPeakMemory(benchmark::State& state) {
  const std::string src = TPU_SOURCE_DIR;
  std::vector<std::string> args = {"--arch", src + "/configs/arch/tpu_v4.yaml", "--workload",
                                   src + "/configs/workloads/tpu_v1/cnn1.yaml", "--mode", "training"};
  double peak = 0, base = 0, wall = 0, base_wall = 0;
  for (auto _ : state) {
    peak = tpusim_peak_mib(args, &wall);
    args.push_back("--no-functional");
    base = tpusim_peak_mib(args, &base_wall);
    args.pop_back();
  }
  state.counters["peak_MiB"] = peak;
  state.counters["wall_s"] = wall;
  state.counters["timing_only_MiB"] = base;
  state.counters["x_timing_only"] = peak / base;
  state.counters["of_1GiB_target"] = peak / 1024.0;
}
BENCHMARK(BM_LargestBundledRunPeakMemory)->Unit(benchmark::kSecond)->Iterations(1);

void BM_ResNet50Compile(benchmark::State& state) {
  compiler::Workload w = compiler::load_workload(std::string(TPU_SOURCE_DIR) + "/configs/workloads/resnet50.yaml");
  for (auto _ : state) benchmark::DoNotOptimize(compiler::compile(v4(), w, {}).program().code.size());
}
BENCHMARK(BM_ResNet50Compile)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
