// Pod benchmarks (DESIGN.md section 7, issue 6): one data-parallel training step of
// ResNet-50 on the 4096-chip TPU v4 pod with the symmetric backend (target: under 10 s wall
// and 1 GiB), and the detailed backend's cost per chip on a 64-chip cube. Baseline measured
// in the same run: the same per-chip program simulated on one chip alone (no pod).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <set>
#include <string>

#include "arch/arch_config.h"
#include "bench_util.h"
#include "arch/pod_config.h"
#include "compiler/compiler.h"
#include "compiler/parallel.h"
#include "compiler/training.h"
#include "sim/chip/asan_options.h"
#include "sim/chip/chip.h"
#include "sim/pod/pod_sim.h"

extern "C" int sc_main(int, char**) { return 0; }

namespace {

using namespace tpu;

using bench::peak_rss_mib;
using bench::seconds_since;

std::string src(const std::string& rel) { return std::string(TPU_SOURCE_DIR) + "/" + rel; }

// One chip's training step for a pod of `data` x `tensor` chips (tensor over dimension 0).
compiler::Compiled training_program(const arch::ArchConfig& a, const std::string& workload, int64_t data,
                                    int64_t tensor, unsigned data_mask, unsigned tensor_mask) {
  compiler::Workload w = compiler::load_workload(src(workload));
  w.batch = 1;
  compiler::infer_shapes(w);
  std::set<std::string> sharded;
  w = compiler::shard_tensor(w, tensor, &sharded);
  w = compiler::training_step(w, 1, compiler::TrainOptions{});
  w = compiler::insert_gradient_collectives(w, data, sharded);
  compiler::CompileOptions opt;
  opt.comm_masks = {data_mask, tensor_mask};
  return compiler::compile(a, w, opt);
}

std::vector<sim::CoreProgram> cores_of(const compiler::Compiled& c) {
  std::vector<sim::CoreProgram> out;
  for (const auto& p : c.core_programs) out.push_back({&p, nullptr});
  return out;
}

double one_chip_seconds(const arch::ArchConfig& a, const compiler::Compiled& c) {
  sim::ChipOptions o;
  o.functional = false;
  auto t0 = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(sim::run_chip(a, cores_of(c), o).cycles);
  return seconds_since(t0);
}

void BM_Pod4096ResNet50TrainingStepSymmetric(benchmark::State& state) {
  arch::ArchConfig a = arch::load_arch(src("configs/arch/tpu_v4.yaml"));
  arch::PodConfig pod = arch::load_pod(src("configs/pod/v4_16x16x16.yaml"));
  double compile_s = 0, pod_s = 0, one_s = 0;
  int64_t cycles = 0, collectives = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    compiler::Compiled c = training_program(a, "configs/workloads/resnet50.yaml", pod.chips, 1, 7u, 0u);
    compile_s += seconds_since(t0);
    pod::PodRunOptions po;
    po.backend = pod::Backend::kSymmetric;
    po.chip.functional = false;
    t0 = std::chrono::steady_clock::now();
    pod::PodResult r = pod::run_pod(a, pod, {cores_of(c)}, po);
    pod_s += seconds_since(t0);
    cycles = r.cycles;
    collectives = static_cast<int64_t>(r.collectives.size());
    one_s += one_chip_seconds(a, c);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["wall_s"] = (compile_s + pod_s) / n;
  state.counters["compile_s"] = compile_s / n;
  state.counters["pod_sim_s"] = pod_s / n;
  state.counters["one_chip_s"] = one_s / n;
  state.counters["x_one_chip"] = pod_s / one_s;
  state.counters["step_cycles"] = static_cast<double>(cycles);
  state.counters["collectives"] = static_cast<double>(collectives);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_Pod4096ResNet50TrainingStepSymmetric)->Unit(benchmark::kMillisecond)->Iterations(2);

void BM_Pod64BertTrainingStepDetailed(benchmark::State& state) {
  arch::ArchConfig a = arch::load_arch(src("configs/arch/tpu_v4.yaml"));
  arch::PodConfig pod = arch::load_pod(src("configs/pod/v4_4x4x4.yaml"));
  // data=16 over dimensions 1 and 2, tensor=4 over dimension 0.
  compiler::Compiled c = training_program(a, "configs/workloads/bert_base_128.yaml", 16, 4, 6u, 1u);
  double pod_s = 0, one_s = 0;
  for (auto _ : state) {
    pod::PodRunOptions po;
    po.chip.functional = false;
    auto t0 = std::chrono::steady_clock::now();
    pod::PodResult r = pod::run_pod(a, pod, std::vector<std::vector<sim::CoreProgram>>(64, cores_of(c)), po);
    pod_s += seconds_since(t0);
    benchmark::DoNotOptimize(r.cycles);
    one_s += one_chip_seconds(a, c);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["wall_s"] = pod_s / n;
  state.counters["per_chip_s"] = pod_s / n / 64;
  state.counters["one_chip_s"] = one_s / n;
  state.counters["x_one_chip_per_chip"] = pod_s / 64 / one_s;
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(BM_Pod64BertTrainingStepDetailed)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
