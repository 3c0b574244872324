// Training mode (compiler/training.h): the backward MACs of every bundled workload are exactly
// twice the forward MACs less the input gradients of layers reading a network input; the
// weight-gradient split over the batch reports its padding as non-useful work; a training
// step runs through `tpusim run --mode training --check` bit-exact on int8 TPU v1 and bf16
// TPU v4; every preset compiles every bundled training step; bad modes exit 2 with one
// message. Long: every reduced bundled network of traces/ as a training step equals the
// reference on the golden interpreter.
#include "compiler/training.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "arch/arch_config.h"
#include "compiler/compiler.h"
#include "compiler/reference.h"
#include "isa/interpreter.h"
#include "cli_util.h"
#include "test_util.h"

namespace tpu::compiler {
namespace {

// Backward matrix MACs (whole batch) a training step must have, from the forward workload
// alone: every matrix op's two gradients, less the gradient of an operand that is a network
// input (for a SCALE-Sim topology only the first row reads one).
int64_t expected_backward_macs(const Workload& f, int64_t batch) {
  std::set<std::string> network;
  if (f.independent_layers) {
    network.insert(f.ops.front().inputs[0]);
  } else {
    for (const auto& in : f.inputs) network.insert(in.name);
  }
  int64_t total = 0;
  for (const auto& op : f.ops) {
    if (!op.is_matrix()) continue;
    int64_t m = op.macs * batch;
    bool two_input = op.kind == OpKind::kMatmul && op.inputs.size() == 2;
    total += 2 * m;
    if (network.count(op.inputs[0])) total -= m;
    if (two_input && network.count(op.inputs[1])) total -= m;
  }
  return total;
}

TEST(Training, BackwardMacsAreTwiceForwardLessNetworkInputGradientsOnEveryBundledWorkload) {
  int checked = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(test::source_path("configs/workloads"))) {
    std::string ext = e.path().extension().string();
    if ((ext != ".yaml" && ext != ".csv") || e.path().stem() == "expected_macs") continue;
    Workload f = load_workload(e.path().string());
    for (int64_t b : {1, 3, 8}) {
      SCOPED_TRACE(e.path().filename().string() + " batch " + std::to_string(b));
      Workload t = training_step(f, b, TrainOptions{});
      EXPECT_EQ(t.batch, b);
      ASSERT_GE(t.ops.size(), f.ops.size());
      int64_t forward = 0, backward = 0, optimizer = 0;
      for (std::size_t i = 0; i < t.ops.size(); ++i) {
        const Op& op = t.ops[i];
        Phase p = phase_of(op.name);
        // Forward ops first and unchanged, then backward, then optimizer ops.
        EXPECT_EQ(p == Phase::kForward, i < f.ops.size()) << op.name;
        if (i < f.ops.size()) {
          EXPECT_EQ(op.name, f.ops[i].name);
        }
        if (i > 0) {
          EXPECT_GE(static_cast<int>(p), static_cast<int>(phase_of(t.ops[i - 1].name))) << op.name;
        }
        int64_t m = op.macs * b;
        (p == Phase::kForward ? forward : p == Phase::kBackward ? backward : optimizer) += m;
        if (p != Phase::kForward) {
          EXPECT_TRUE(op.name.find("__") != std::string::npos);
        }
      }
      EXPECT_EQ(forward, f.macs_per_sample() * b);
      EXPECT_EQ(backward, expected_backward_macs(f, b));
      EXPECT_EQ(optimizer, 0);
      for (const auto& o : f.outputs) {
        EXPECT_NE(std::find(t.outputs.begin(), t.outputs.end(), o), t.outputs.end()) << o;
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 11);
}

// Layers the compiler adds around an op take its phase: the host-input staging layer of an
// inference run is forward (it was reported as backward), a forward op's tensor-parallel
// all-gather is forward, a gradient's all-reduce backward.
TEST(Training, CompilerAddedLayersTakeTheirOpsPhase) {
  EXPECT_EQ(phase_of("inputs__from_host"), Phase::kForward);
  EXPECT_EQ(phase_of("x__from_host"), Phase::kForward);
  EXPECT_EQ(phase_of("fc1__ag"), Phase::kForward);
  EXPECT_EQ(phase_of("fc1__dx__ag"), Phase::kBackward);
  EXPECT_EQ(phase_of("fc1__dw__ar"), Phase::kBackward);
  EXPECT_EQ(phase_of("fc1__sgd"), Phase::kOptimizer);
  EXPECT_EQ(phase_of("__ag"), Phase::kBackward);  // nothing before the suffix: a reserved name
  // And in a compiled inference run with host inputs (TPU v1 carries its I/O over PCIe),
  // every layer is forward.
  Workload f = load_workload(test::source_path("configs/workloads/gemm_1024.yaml"));
  arch::ArchConfig a = arch::load_arch(test::source_path("configs/arch/tpu_v1.yaml"));
  Compiled c = compile(a, f, CompileOptions{});
  ASSERT_EQ(c.layers.front().name, "inputs__from_host");
  for (const auto& l : c.layers) EXPECT_EQ(phase_of(l.name), Phase::kForward) << l.name;
}

TEST(Training, WithoutVectorOpsAndOptimizerOnlyTheBackwardGemmsRemain) {
  Workload f = load_workload(test::source_path("configs/workloads/bert_base_128.yaml"));
  TrainOptions o;
  o.optimizer = false;
  o.vector_backward = false;
  Workload t = training_step(f, 2, o);
  int64_t backward = 0;
  for (std::size_t i = f.ops.size(); i < t.ops.size(); ++i) {
    EXPECT_TRUE(t.ops[i].is_matrix()) << t.ops[i].name;
    EXPECT_EQ(phase_of(t.ops[i].name), Phase::kBackward) << t.ops[i].name;
    backward += t.ops[i].macs * 2;
  }
  EXPECT_EQ(backward, expected_backward_macs(f, 2));
}

TEST(Training, WeightGradientSplitPrefersTheLargerDimensionTheBatchDivides) {
  auto s = weight_grad_split(64, 147, 1);  // ResNet-50 conv1 at batch 1: M = Kin
  EXPECT_EQ(s.m, 147);
  EXPECT_EQ(s.out, 64);
  EXPECT_EQ(s.rows_per_sample, 147);
  s = weight_grad_split(64, 147, 2);  // 147 is odd: M = N
  EXPECT_EQ(s.m, 64);
  EXPECT_EQ(s.out, 147);
  EXPECT_EQ(s.rows_per_sample, 32);
  s = weight_grad_split(7, 5, 3);  // neither: 7 rows rounded up to 9
  EXPECT_EQ(s.m, 7);
  EXPECT_EQ(s.out, 5);
  EXPECT_EQ(s.rows_per_sample, 3);
}

TEST(Training, PaddedWeightGradientRowsAreArrayWorkNotUsefulMacs) {
  // fc: 4 pixels x 7 inputs -> 5 units at batch 3: dW is 7 x 5 (or 5 x 7) contracted over
  // 3 x 4 rows; neither 7 nor 5 divides by 3, so 7 rows become 3 per sample (9).
  Workload f = parse_workload_yaml(R"(
name: pad
inputs: [{name: x, shape: [4, 7]}]
ops:
  - {name: fc, op: fully_connected, units: 5}
)",
                                   "pad.yaml");
  Workload t = training_step(f, 3, TrainOptions{});
  const Op* dw = nullptr;
  for (const auto& op : t.ops) {
    if (op.name == "fc__dw") dw = &op;
  }
  ASSERT_NE(dw, nullptr);
  EXPECT_EQ(dw->in[0].str(), "3x12");
  EXPECT_EQ(dw->out.str(), "3x5");
  EXPECT_EQ(dw->macs * 3, 7 * 12 * 5);  // useful: the true dW MACs
  Compiled c =
      compile(arch::load_arch(test::source_path("configs/arch/tpu_v4.yaml")), t, CompileOptions{});
  bool found = false;
  for (const auto& l : c.layers) {
    if (l.name != "fc__dw") continue;
    found = true;
    EXPECT_EQ(l.macs, 7 * 12 * 5);
    EXPECT_EQ(l.array_macs, 9 * 12 * 5);  // k x n x rows streamed, over both cores
  }
  EXPECT_TRUE(found);
}

// The transform's output for a small network, op by op (reviewed golden text): kind, inputs,
// per-sample output shape and useful MACs per sample.
TEST(Training, SmallNetworkLowersToTheReviewedOps) {
  Workload f = parse_workload_yaml(R"(
name: g
inputs: [{name: x, shape: [8, 8, 4]}]
ops:
  - {name: c1, op: conv2d, filters: 6, kernel: 3, padding: same, activation: relu}
  - {name: c1s, op: conv2d, filters: 6, kernel: 3, padding: same}
  - {name: c2, op: conv2d, filters: 4, kernel: 3, stride: 2, padding: 1}
  - {name: p, op: avg_pool, global: true}
  - {name: fc, op: fully_connected, units: 3}
)",
                                   "g.yaml");
  Workload t = training_step(f, 2, TrainOptions{});
  std::string got;
  for (const auto& op : t.ops) {
    std::string ins;
    for (const auto& i : op.inputs) ins += (ins.empty() ? "" : ",") + i;
    got += op.name + " " + op_kind_name(op.kind) + "(" + ins + ") -> " + op.out.str() + " " +
           std::to_string(op.macs) + "\n";
  }
  std::string outs;
  for (const auto& o : t.outputs) outs += o + " ";
  EXPECT_EQ(got, R"(c1 conv2d(x) -> 8x8x6 13824
c1s conv2d(c1) -> 8x8x6 20736
c2 conv2d(c1s) -> 4x4x4 3456
p avg_pool(c2) -> 1x1x4 0
fc fully_connected(p) -> 1x1x3 12
fc__dx fully_connected(fc__dy) -> 1x1x4 12
fc__dw fully_connected(fc__dw_in) -> 2x3 12
p__dx mul(p__dx_in,p__mask) -> 4x4x4 0
c2__dx fully_connected(c2__dy) -> 4x4x54 3456
c2__dw fully_connected(c2__dw_in) -> 27x4 3456
c1s__dx conv2d(c1s__dy) -> 8x8x6 20736
c1s__dw fully_connected(c1s__dw_in) -> 27x6 20736
c1__dact mul(c1__dy,c1__mask) -> 8x8x6 0
c1__dw fully_connected(c1__dw_in) -> 18x6 13824
fc__sgd_lr mul(fc__dw,fc__lr) -> 2x3 0
fc__sgd add(fc__sgd_lr,fc__wt) -> 2x3 0
c2__sgd_lr mul(c2__dw,c2__lr) -> 27x4 0
c2__sgd add(c2__sgd_lr,c2__wt) -> 27x4 0
c1s__sgd_lr mul(c1s__dw,c1s__lr) -> 27x6 0
c1s__sgd add(c1s__sgd_lr,c1s__wt) -> 27x6 0
c1__sgd_lr mul(c1__dw,c1__lr) -> 18x6 0
c1__sgd add(c1__sgd_lr,c1__wt) -> 18x6 0
)");
  EXPECT_EQ(outs, "fc fc__dx p__dx c2__dx c1s__dx c1__dact fc__sgd c2__sgd c1s__sgd c1__sgd ");
  // Every tensor the transform adds as an input or an output stands for one a real step keeps
  // on the device; the network's input x and output fc do not.
  std::set<std::string> want;
  for (const auto& in : t.inputs) {
    if (in.name != "x") want.insert(in.name);
  }
  for (const auto& o : t.outputs) {
    if (o != "fc") want.insert(o);
  }
  EXPECT_EQ(t.on_device, want);
  EXPECT_EQ(want.size(), 28u);  // 19 seeded operands and 9 results, as listed above
}

// On a host-attached accelerator (TPU v1: inputs and outputs over PCIe) a training step moves
// only the network's input and output over the host link: its seeded operands and results
// are off-chip memory regions, as the tensors they stand for would be.
TEST(Training, AHostAttachedChipMovesOnlyTheNetworksInputAndOutputOverTheLink) {
  arch::ArchConfig a = arch::load_arch(test::source_path("configs/arch/tpu_v1.yaml"));
  ASSERT_TRUE(a.host_link.carries_io);
  Workload f = load_workload(test::source_path("configs/workloads/tpu_v1/mlp0.yaml"));
  Workload t = training_step(f, 8, TrainOptions{});
  Compiled c = compile(a, t, CompileOptions{});
  std::set<std::string> network_io;
  for (const auto& in : f.inputs) network_io.insert(in.name);
  network_io.insert(f.outputs.begin(), f.outputs.end());
  int on_host = 0, off_chip = 0;
  for (const auto& r : c.program().regions) {
    if (r.role == isa::RegionRole::kData) continue;
    bool network = network_io.count(r.name) > 0;
    EXPECT_EQ(r.space, network ? isa::Space::kHost : isa::Space::kMem) << r.name;
    (network ? on_host : off_chip) += 1;
  }
  EXPECT_EQ(on_host, static_cast<int>(network_io.size()));
  EXPECT_GT(off_chip, 10);
  // The staging layer copies the network's input alone.
  auto staging = std::find_if(c.layers.begin(), c.layers.end(),
                              [](const LayerPlan& l) { return l.name == "inputs__from_host"; });
  ASSERT_NE(staging, c.layers.end());
  uint64_t host_reads = 0;
  for (std::size_t i = staging->first; i < staging->end; ++i) {
    const isa::Instruction& in = c.program().code[i];
    if (in.op == isa::Opcode::kDmaLoad && in.get(isa::Fid::kDmaLoad_space) == static_cast<int>(isa::Space::kHost)) {
      host_reads += static_cast<uint64_t>(in.get(isa::Fid::kDmaLoad_rows) * in.get(isa::Fid::kDmaLoad_row_bytes));
    }
  }
  uint64_t input_bytes = 0;
  for (const auto& in : f.inputs) input_bytes += static_cast<uint64_t>(in.shape.elements() * 8);  // int8, batch 8
  EXPECT_EQ(host_reads, input_bytes);
}

// The weight gradients' contraction runs over the whole batch (rows of b x R values): held
// in slices, each band keeps many rows, so the program grows linearly with the batch (with
// whole rows the bands shrank as the batch grew and ResNet-50 passed the 2^20-instruction
// bound at batch 24 on TPU v4; on TPU v2 a row passed matmul's ub_stride at batch 64).
TEST(Training, LargeBatchWeightGradientsGrowTheProgramLinearly) {
  Workload f = load_workload(test::source_path("configs/workloads/resnet50.yaml"));
  auto size = [&](const char* preset, int64_t batch) {
    arch::ArchConfig a = arch::load_arch(test::source_path(std::string("configs/arch/") + preset + ".yaml"));
    Compiled c = compile(a, training_step(f, batch, TrainOptions{}), CompileOptions{});
    int sliced = 0;
    for (const auto& l : c.layers) {
      if (l.loop_order.find("contraction in slices") == std::string::npos) continue;
      ++sliced;
      EXPECT_EQ(l.loop_order.find("weight groups"), std::string::npos) << l.name << ": " << l.loop_order;
    }
    EXPECT_GT(sliced, 0) << preset << " batch " << batch;
    return static_cast<double>(c.program().code.size());
  };
  double b16 = size("tpu_v4", 16), b32 = size("tpu_v4", 32);
  EXPECT_LT(b32, 2.2 * b16);
  size("tpu_v2", 64);  // compiles (an InputError fails the test), with sliced layers
}

TEST(Training, OutOfRangeBatchIsAnInputError) {
  Workload f = load_workload(test::source_path("configs/workloads/gemm_mlp.yaml"));
  auto e = test::expect_input_error([&] { training_step(f, 0, TrainOptions{}); });
  EXPECT_NE(std::string(e.what()).find("batch"), std::string::npos) << e.what();
}

// Every reduced bundled network of traces/ (net_*) as a training step at batch 2, compiled
// for int8 TPU v1 and bf16 TPU v4 and run on the golden interpreter, equals the reference
// evaluator bit for bit on every output (forward outputs, input gradients, updated weights).
TEST(TrainingLong, EveryReducedBundledNetworkMatchesTheReference) {
  int cases = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_path("traces"))) {
    if (e.path().filename().string().rfind("net_", 0) != 0) continue;
    std::string wl = (e.path() / "workload.yaml").string();
    if (!std::filesystem::exists(wl)) wl = (e.path() / "topology.csv").string();
    Workload t = training_step(load_workload(wl), 2, TrainOptions{});
    for (const char* name : {"tpu_v1", "tpu_v4"}) {
      SCOPED_TRACE(e.path().filename().string() + " on " + name);
      arch::ArchConfig a =
          arch::load_arch(test::source_path(std::string("configs/arch/") + name + ".yaml"));
      CompileOptions opt;
      opt.dtype = std::string(name) == "tpu_v1" ? isa::MatType::kInt8 : isa::MatType::kBf16;
      Compiled c = compile(a, t, opt);
      auto offchip = std::make_shared<isa::OffChipMemory>(a);
      std::vector<std::unique_ptr<isa::Interpreter>> cores;
      for (const auto& p : c.core_programs) {
        cores.push_back(std::make_unique<isa::Interpreter>(a, p, t.name, offchip));
        cores.back()->run();
      }
      auto ref = reference_outputs(a, c.workload, c.dtype);
      ASSERT_EQ(ref.size(), c.outputs.size());
      for (const auto& [tensor, region] : c.outputs) {
        EXPECT_TRUE(cores.front()->read_region(region).data == ref.at(tensor)) << tensor;
      }
    }
    ++cases;
  }
  EXPECT_GE(cases, 10);
}

// Every bundled workload at full size compiles as a training step on every preset. On the
// Edge TPU presets (USB and PCIe) the longer transformers' (S = 256, 512) backward operands
// fill the memory left beside the parameter cache and attention's operands spill to host
// memory; each sample's operand is then staged through the UB (docs/compiler.md).
TEST(Training, EveryPresetCompilesEveryBundledTrainingStep) {
  for (const auto& p : std::filesystem::directory_iterator(test::source_path("configs/arch"))) {
    if (p.path().extension() != ".yaml") continue;
    arch::ArchConfig a = arch::load_arch(p.path().string());
    for (const auto& e :
         std::filesystem::directory_iterator(test::source_path("configs/workloads"))) {
      std::string ext = e.path().extension().string();
      if ((ext != ".yaml" && ext != ".csv") || e.path().stem() == "expected_macs") continue;
      SCOPED_TRACE(e.path().filename().string() + " on " + p.path().filename().string());
      Workload f = load_workload(e.path().string());
      EXPECT_NO_THROW(compile(a, training_step(f, f.batch, TrainOptions{}), CompileOptions{}));
    }
  }
}

// ---- through the tpusim command ----

using Result = test::CliResult;
Result tpusim(const std::string& args) { return test::run_tpusim(args); }

nlohmann::json load_json(const std::string& path) {
  return nlohmann::json::parse(test::read_text(path));
}

// Every kind of backward lowering in one small network: a strided conv reading the network
// input (no input gradient), a same-size conv (transposed-convolution input gradient),
// grouped convs both ways, depthwise with and without a multiplier, a residual add, pools,
// a reshape, fully_connected layers (one with a padded weight-gradient split at batch 3),
// attention (two-input matmuls with and without transpose_b, softmax), layer_norm, gelu,
// mul and concat.
constexpr const char* kTiny = R"(name: tiny
batch: 3
inputs:
  - {name: image, shape: [12, 12, 3]}
  - {name: tokens, shape: [8, 16]}
ops:
  - {name: c1, op: conv2d, filters: 8, kernel: 3, stride: 2, padding: same, activation: relu}
  - {name: c2, op: conv2d, filters: 8, kernel: 3, padding: 1, activation: relu6}
  - {name: g1, op: conv2d, filters: 12, kernel: 3, stride: 2, padding: 1, groups: 2}
  - {name: g2, op: conv2d, filters: 12, kernel: 3, padding: 1, groups: 4}
  - {name: d1, op: depthwise_conv2d, kernel: 3, padding: 1}
  - {name: s, op: add, inputs: [d1, g2], activation: relu}
  - {name: d2, op: depthwise_conv2d, kernel: 3, stride: 2, padding: 1, multiplier: 2}
  - {name: p, op: max_pool, kernel: 2}
  - {name: flat, op: reshape, shape: [24]}
  - {name: fc1, op: fully_connected, units: 7, activation: tanh}
  - {name: fc2, op: fully_connected, units: 5}
  - {name: q, op: fully_connected, input: tokens, units: 16}
  - {name: k, op: fully_connected, input: tokens, units: 16}
  - {name: v, op: fully_connected, input: tokens, units: 16}
  - {name: scores, op: matmul, inputs: [q, k], transpose_b: true, heads: 2}
  - {name: sm, op: softmax, segment: 8}
  - {name: ctx, op: matmul, inputs: [sm, v], heads: 2}
  - {name: ln, op: layer_norm}
  - {name: gl, op: gelu}
  - {name: m, op: mul, inputs: [gl, ln]}
  - {name: cat, op: concat, inputs: [m, ctx]}
outputs: [fc2, cat]
)";

class TrainingRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tpusim_train_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::ofstream(path("tiny.yaml")) << kTiny;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(TrainingRun, TrainingStepsMatchTheReferenceOnInt8V1AndBf16V4) {
  for (const char* arch : {"tpu_v1", "tpu_v4"}) {
    SCOPED_TRACE(arch);
    std::string base = std::string("run --arch ") +
                       test::source_path(std::string("configs/arch/") + arch + ".yaml");
    std::string out = path(std::string("t_") + arch);
    Result r =
        tpusim(base + " --workload " + path("tiny.yaml") + " --mode training --check --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    auto rep = load_json(out + "/report.json");
    EXPECT_EQ(rep["workload"]["mode"], "training");
    EXPECT_EQ(rep["workload"]["batch"], 3);
    int backward_layers = 0;
    for (const auto& o : rep["outputs"])
      EXPECT_TRUE(o["matches_reference"].get<bool>()) << o["name"];
    EXPECT_GT(rep["outputs"].size(), 20u);
    int64_t cycles = 0;
    for (const auto& [phase, p] : rep["phases"].items()) cycles += p["cycles"].get<int64_t>();
    EXPECT_EQ(cycles, rep["total_cycles"].get<int64_t>());
    for (const auto& l : rep["layers"]) {
      std::string name = l["name"];
      // TPU v1's host-input staging layer belongs to the forward pass.
      std::string want = name == "inputs__from_host"                 ? "forward"
                         : name.find("__sgd") != std::string::npos ? "optimizer"
                         : name.find("__") != std::string::npos  ? "backward"
                                                                 : "forward";
      EXPECT_EQ(l["phase"], want) << name;
      backward_layers += want == "backward";
    }
    EXPECT_GT(backward_layers, 20);
    std::string csv = test::read_text(out + "/layers.csv");
    EXPECT_EQ(csv.substr(0, csv.find('\n')).substr(csv.find('\n') - 6), ",phase");
  }
  // The reduced MobileNet v2 of traces/ (depthwise, strided, residual, relu6) on both.
  for (const char* arch : {"tpu_v1", "tpu_v4"}) {
    std::string out = path(std::string("mnv2_") + arch);
    Result r =
        tpusim("run --arch " + test::source_path(std::string("configs/arch/") + arch + ".yaml") +
               " --workload " + test::source_path("traces/net_mobilenet_v2/workload.yaml") +
               " --mode training --check --out " + out);
    ASSERT_EQ(r.code, 0) << arch << r.out;
    EXPECT_EQ(load_json(out + "/report.json")["workload"]["mode"], "training");
  }
}

TEST_F(TrainingRun, AStepTakesLongerThanInferenceAndNoMoreThanPeakAllows) {
  std::string base = "run --arch " + test::source_path("configs/arch/tpu_v4.yaml") +
                     " --workload " + test::source_path("traces/net_resnet50/workload.yaml") +
                     " --no-functional --batch 2";
  ASSERT_EQ(tpusim(base + " --out " + path("i")).code, 0);
  Result r = tpusim(base + " --mode training --out " + path("t"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto inf = load_json(path("i/report.json")), tr = load_json(path("t/report.json"));
  EXPECT_EQ(inf["workload"]["mode"], "inference");
  EXPECT_GT(tr["total_cycles"].get<int64_t>(), inf["total_cycles"].get<int64_t>());
  // Forward MACs unchanged; backward MACs exactly 2x forward less conv1's input gradient.
  Workload f = load_workload(test::source_path("traces/net_resnet50/workload.yaml"));
  EXPECT_EQ(tr["phases"]["forward"]["macs"], inf["macs"]);
  EXPECT_EQ(tr["phases"]["backward"]["macs"].get<int64_t>(), expected_backward_macs(f, 2));
  EXPECT_EQ(tr["macs"].get<int64_t>(), inf["macs"].get<int64_t>() + expected_backward_macs(f, 2));
  // No run can beat the chip's peak: cycles >= MACs / peak MACs per cycle.
  EXPECT_LE(tr["utilization"].get<double>(), 1.0);
  EXPECT_GE(tr["total_cycles"].get<double>() * tr["arch"]["peak_macs_per_cycle"].get<double>(),
            tr["macs"].get<double>());
}

TEST_F(TrainingRun, BadModeExitsTwoWithOneMessage) {
  for (const char* cmd : {"run", "compile"}) {
    Result r =
        tpusim(std::string(cmd) + " --arch " + test::source_path("configs/arch/tpu_v4.yaml") +
               " --workload " + path("tiny.yaml") + " --mode foo");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("--mode"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("inference|training"), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

// --check keeps the bound on all region data (the reference evaluator holds every tensor):
// the CNN1 proxy's bf16 training step, which a functional run can hold, is refused with --check
// before anything runs or is written.
TEST_F(TrainingRun, CheckRefusesAStepTooLargeForTheReferenceEvaluator) {
  std::string out = path("big");
  Result r = tpusim("run --arch " + test::source_path("configs/arch/tpu_v4.yaml") + " --workload " +
                    test::source_path("configs/workloads/tpu_v1/cnn1.yaml") + " --mode training --check --out " + out);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("tpusim: error: <command line>: --check: expected a program with at most 2147483648 bytes "
                       "of region data (the reference evaluator holds them all); run without --check, found "),
            std::string::npos)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace tpu::compiler
