// tpusim run --pod: the pod section of report.json against its definitions, the two
// backends agreeing, parallel plans and their errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "arch/arch_config.h"
#include "cli_util.h"
#include "test_util.h"

namespace tpu {
namespace {

using test::run_tpusim;

class PodRun : public test::ScratchDir {
 protected:
  void SetUp() override {
    ScratchDir::SetUp();
    write("mlp.yaml",
          "name: mlp\nbatch: 8\ndtype: bf16\ninputs: [{name: x, shape: [64, 256]}]\nops:\n"
          "  - {name: fc1, op: fully_connected, units: 512, activation: relu}\n"
          "  - {name: fc2, op: fully_connected, units: 256}\n"
          "  - {name: fc3, op: fully_connected, units: 128}\n");
    write("pod.yaml",
          "name: p2x2\ntopology: [torus, torus]\ndims: [2, 2]\nlink_bandwidth_gbps: 50\nlink_latency_ns: 500\n"
          "ports_per_chip: 4\n");
  }
  nlohmann::json report(const std::string& args, const std::string& out, const std::string& arch = "tpu_v4",
                        const std::string& workload = "") {
    test::CliResult r = run_tpusim("run --arch " + test::source_path("configs/arch/" + arch + ".yaml") + " --workload " +
                                   (workload.empty() ? path("mlp.yaml") : test::source_path(workload)) + " --pod " +
                                   path("pod.yaml") + " --out " + path(out) + " " + args);
    EXPECT_EQ(r.code, 0) << r.out;
    std::ifstream f(path(out) + "/report.json");
    return nlohmann::json::parse(f);
  }
};

TEST_F(PodRun, ThePodSectionFollowsItsDefinitions) {
  nlohmann::json j = report("--parallel data=2,tensor=2 --batch 8", "run");
  const auto& p = j["pod"];
  arch::ArchConfig a = arch::load_arch(test::source_path("configs/arch/tpu_v4.yaml"));
  double hz = a.clock_mhz * 1e6;
  EXPECT_EQ(p["chips"], 4);
  EXPECT_EQ(p["parallel"]["data"], 2);
  EXPECT_EQ(p["parallel"]["tensor"], 2);
  EXPECT_EQ(p["parallel"]["tensor_dims_mask"], 1);  // dimension 0
  EXPECT_EQ(p["parallel"]["data_dims_mask"], 2);    // dimension 1
  EXPECT_EQ(p["global_batch"], 8);
  double step = p["step_seconds"];
  EXPECT_DOUBLE_EQ(step, p["step_cycles"].get<double>() / hz);
  EXPECT_DOUBLE_EQ(p["throughput"].get<double>(), 8 / step);
  EXPECT_DOUBLE_EQ(p["tokens_per_second"].get<double>(), 8 * 64 / step);
  double macs = 64.0 * 8 * (256 * 512 + 512 * 256 + 256 * 128);
  EXPECT_NEAR(p["tflops"].get<double>(), 2 * macs / step / 1e12, 1e-9);
  EXPECT_NEAR(p["fraction_of_peak"].get<double>(),
              p["tflops"].get<double>() * 1e12 / (4 * 2.0 * a.derived.peak_macs_per_cycle_bf16 * hz), 1e-12);
  EXPECT_DOUBLE_EQ(p["exposed_comm_seconds"].get<double>(),
                   std::max(0.0, step - p["compute_seconds"].get<double>()));
  // Three sharded layers, each followed by an all-gather over the two chips of dimension 0.
  ASSERT_EQ(p["collectives"].size(), 1u);
  EXPECT_EQ(p["collectives"][0]["op"], "all-gather");
  EXPECT_EQ(p["collectives"][0]["group"], "tensor");
  EXPECT_EQ(p["collectives"][0]["group_chips"], 2);
  EXPECT_EQ(p["collectives"][0]["count"], 3);
  // bf16, batch 4 per data group: 2 samples on each of the chip's two cores (core 0's shown).
  EXPECT_EQ(p["collectives"][0]["bytes"], 2 * 2 * 64 * (512 + 256 + 128));
  EXPECT_GT(p["comm_seconds"].get<double>(), 0.0);
  EXPECT_GT(p["scaling_efficiency"].get<double>(), 0.0);
  EXPECT_LE(p["scaling_efficiency"].get<double>(), 1.0);
  // Sharding halves each layer's useful MACs on a chip.
  int64_t chip_macs = 0;
  for (const auto& l : j["layers"]) chip_macs += l["macs"].get<int64_t>();
  EXPECT_EQ(chip_macs, static_cast<int64_t>(macs / 2 / 2));
}

TEST_F(PodRun, DetailedAndSymmetricBackendsAgree) {
  // One core per chip (TPU v5e): collectives of a chip never overlap, and on these
  // symmetric programs, with units ordered within a cycle, the two backends agree exactly.
  for (const char* mode : {"inference", "training"}) {
    for (const char* plan : {"data=4", "data=2,tensor=2", "tensor=4"}) {
      SCOPED_TRACE(std::string(mode) + " " + plan);
      std::string args = std::string("--mode ") + mode + " --parallel " + plan;
      nlohmann::json d = report(args + " --backend detailed", "d", "tpu_v5e");
      nlohmann::json s = report(args + " --backend symmetric", "s", "tpu_v5e");
      EXPECT_EQ(d["pod"]["backend"], "detailed");
      EXPECT_EQ(s["pod"]["backend"], "symmetric");
      EXPECT_EQ(s["pod"]["step_cycles"], d["pod"]["step_cycles"]);
    }
  }
  // Two communicating cores per chip (TPU v4, batch 2 per data group): the symmetric
  // backend replays the representative's collectives on the shared network; within 1%.
  for (const char* plan : {"data=4", "data=2,tensor=2"}) {
    SCOPED_TRACE(std::string("bert ") + plan);
    std::string args = std::string("--mode training --batch ") + (std::string(plan) == "data=4" ? "8" : "4") +
                       " --parallel " + plan;
    nlohmann::json d = report(args + " --backend detailed", "bd", "tpu_v4", "configs/workloads/bert_base_128.yaml");
    nlohmann::json s = report(args + " --backend symmetric", "bs", "tpu_v4", "configs/workloads/bert_base_128.yaml");
    EXPECT_EQ(d["workload"]["cores_used"], 2);
    EXPECT_NEAR(s["pod"]["step_seconds"].get<double>() / d["pod"]["step_seconds"].get<double>(), 1.0, 0.01);
  }
}

TEST_F(PodRun, ScalingRunsEverySubPodSize) {
  nlohmann::json j = report("--parallel tensor=2 --scaling", "sc");
  const auto& series = j["pod"]["scaling"];
  ASSERT_EQ(series.size(), 2u);  // 2 and 4 chips
  EXPECT_EQ(series[0]["chips"], 2);
  EXPECT_EQ(series[1]["chips"], 4);
  EXPECT_EQ(series[1]["global_batch"], 2 * series[0]["global_batch"].get<int64_t>());
}

TEST_F(PodRun, BadParallelPlansExitTwoWithOneMessage) {
  std::string base = "run --arch " + test::source_path("configs/arch/tpu_v4.yaml") + " --workload " + path("mlp.yaml") +
                     " --out " + path("bad");
  for (const auto& [args, key] : std::vector<std::pair<std::string, std::string>>{
           {"--pod " + path("pod.yaml") + " --parallel data=3", "--parallel"},
           {"--pod " + path("pod.yaml") + " --parallel tensor=3,data=1", "--parallel"},
           {"--pod " + path("pod.yaml") + " --parallel model=2", "--parallel"},
           {"--pod " + path("pod.yaml") + " --parallel data=2,data=4", "data= at most once"},
           {"--pod " + path("pod.yaml") + " --parallel tensor=3", "a divisor of the pod's 4 chips, found 3"},
           {"--pod " + path("pod.yaml") + " --parallel ''", "found an empty value"},
           {"--pod " + path("pod.yaml") + " --batch 6", "--batch"},
           {"--pod " + path("pod.yaml") + " --backend fast", "--backend"},
           {"--pod " + path("pod.yaml") + " --pod-set dimz=3",
            "<command line>: --pod-set dimz: expected a known key (did you mean 'dims'?)"},
           {"--pod " + path("pod.yaml") + " --pod-set dims", "--pod-set: expected KEY=VALUE"},
           {"--parallel data=2", "--parallel"}}) {
    test::CliResult r = run_tpusim(base + " " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(key), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

}  // namespace
}  // namespace tpu

namespace tpu {
namespace {

// Every pod preset runs a data-parallel and a tensor-parallel training step (issue 6).
TEST_F(PodRun, EveryPresetRunsDataAndTensorParallelTrainingSteps) {
  for (const auto& [pod_file, arch_file, first_dim] : std::vector<std::tuple<std::string, std::string, int64_t>>{
           {"v2_16x16", "tpu_v2", 16},
           {"v3_32x32", "tpu_v3", 32},
           {"v4_4x4x4", "tpu_v4", 4},
           {"v4_16x16x16", "tpu_v4", 16},
           {"v5e_16x16", "tpu_v5e", 16}}) {
    for (bool tensor : {false, true}) {
      SCOPED_TRACE(pod_file + (tensor ? " tensor" : " data"));
      std::string out = path(pod_file + (tensor ? "_t" : "_d"));
      test::CliResult r = run_tpusim("run --arch " + test::source_path("configs/arch/" + arch_file + ".yaml") +
                                     " --workload " + path("mlp.yaml") + " --pod " +
                                     test::source_path("configs/pod/" + pod_file + ".yaml") + " --mode training --out " +
                                     out + (tensor ? " --parallel tensor=" + std::to_string(first_dim) : ""));
      ASSERT_EQ(r.code, 0) << r.out;
      std::ifstream f(out + "/report.json");
      nlohmann::json j = nlohmann::json::parse(f);
      const auto& p = j["pod"];
      EXPECT_EQ(j["workload"]["mode"], "training");
      int64_t chips = p["chips"];
      EXPECT_EQ(p["parallel"]["data"].get<int64_t>() * p["parallel"]["tensor"].get<int64_t>(), chips);
      // Three weight gradients all-reduced over the data group; with tensor parallelism the
      // three layers' outputs are gathered and the sharded layers' input gradients reduced
      // (fc1 reads the network input: no input gradient).
      int64_t grad_reduces = 0, gathers = 0, dx_reduces = 0;
      int64_t data_chips = p["parallel"]["data"], tensor_chips = p["parallel"]["tensor"];
      for (const auto& c : p["collectives"]) {
        EXPECT_EQ(c["group_chips"], c["group"] == "data" ? data_chips : tensor_chips);
        if (c["op"] == "all-reduce" && c["group"] == "data") grad_reduces += c["count"].get<int64_t>();
        if (c["op"] == "all-reduce" && c["group"] == "tensor") dx_reduces += c["count"].get<int64_t>();
        if (c["op"] == "all-gather" && c["group"] == "tensor") gathers += c["count"].get<int64_t>();
      }
      EXPECT_EQ(grad_reduces, data_chips > 1 ? 3 : 0);
      EXPECT_EQ(gathers, tensor ? 3 : 0);
      EXPECT_EQ(dx_reduces, tensor ? 2 : 0);
      EXPECT_GT(p["step_seconds"].get<double>(), 0.0);
      EXPECT_GE(p["step_seconds"].get<double>() + 1e-12, p["compute_seconds"].get<double>() * 0.99);
    }
  }
}

}  // namespace
}  // namespace tpu
