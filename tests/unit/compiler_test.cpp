// The compiler against the reference network evaluator: every bundled workload (reduced in
// size) compiled for int8 and bf16 arrays and run on the golden interpreter gives the
// reference's outputs bit for bit; tiling corner cases on tiny architectures (many bands,
// K chunks, column tiles, weight groups, host spill); fusion changes traffic, not bits.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "compiler/compiler.h"
#include "compiler/reference.h"
#include "compiler/training.h"
#include "isa/interpreter.h"
#include "isa/verifier.h"
#include "golden_util.h"

namespace tpu::compiler {
namespace {

const std::string kRoot = TPU_SOURCE_DIR;

arch::ArchConfig preset(const std::string& name, std::vector<std::string> sets = {}) {
  return arch::load_arch(kRoot + "/configs/arch/" + name + ".yaml", sets);
}

/// A bundled workload at a size the reference loops evaluate quickly: images at most
/// `side` x `side`, sequences at most 16 positions (softmax segments follow).
Workload reduced(const std::string& file, int64_t side = 32) {
  Workload w = load_workload(kRoot + "/configs/workloads/" + file);
  std::map<int64_t, int64_t> seq;
  for (auto& in : w.inputs) {
    auto& d = in.shape.dims;
    if (d.size() == 3) {
      d[0] = std::min(d[0], side);
      d[1] = std::min(d[1], side);
    } else if (d.size() == 2 && d[0] > 16) {
      seq[d[0]] = 16;
      d[0] = 16;
    }
    in.shape = Shape::of(d);
  }
  for (auto& op : w.ops) {
    if (op.kind == OpKind::kSoftmax && seq.count(op.segment)) op.segment = seq[op.segment];
  }
  infer_shapes(w);
  return w;
}

using test::expect_golden;

class BundledGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(BundledGolden, Int8OnTpuV1AndBf16OnTpuV4MatchTheReference) {
  Workload w = reduced(GetParam());
  expect_golden(preset("tpu_v1"), w);
  expect_golden(preset("tpu_v4"), w);
}

INSTANTIATE_TEST_SUITE_P(Workloads, BundledGolden,
                         ::testing::Values("resnet50.yaml", "mobilenet_v1.yaml", "mobilenet_v2.yaml",
                                           "bert_base_128.yaml", "gpt_decoder.yaml", "gemm_1024.yaml",
                                           "gemm_tall.yaml", "gemm_mlp.yaml", "gemm_scalesim.csv"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

TEST(Compiler, ScaleSimConvTopologyRunsUnchanged) {
  expect_golden(preset("edgetpu"), reduced("alexnet_scalesim.csv", 16));
}

// A tiny array with a small UB and few accumulators forces every tiling path: many output
// bands, K chunks, column tiles, several MXUs, dilation, stride, asymmetric padding, groups.
const char* kConvNet = R"(
name: tiles
batch: 2
inputs: [{name: x, shape: [13, 11, 20]}, {name: z, shape: [9, 10, 2]}]
ops:
  - {name: pk, op: conv2d, input: z, filters: 11, kernel: [2, 3], stride: [2, 1], padding: [1, 1, 0, 2]}
  - {name: c1, op: conv2d, input: x, filters: 19, kernel: 3, stride: 2, padding: same, activation: relu}
  - {name: c2, op: conv2d, filters: 12, kernel: [3, 2], dilation: [2, 1], padding: [2, 0, 1, 1], groups: 1}
  - {name: g1, op: conv2d, filters: 12, kernel: 3, padding: 1, groups: 3, activation: relu6}
  - {name: d1, op: depthwise_conv2d, kernel: 3, padding: 1, stride: [1, 2]}
  - {name: d2, op: depthwise_conv2d, kernel: 3, padding: 1, multiplier: 2}
  - {name: p1, op: max_pool, kernel: 3, stride: 2, padding: 1}
  - {name: a1, op: avg_pool, kernel: 2, stride: 1}
  - {name: f1, op: fully_connected, units: 17, activation: tanh}
  - {name: f2, op: fully_connected, input: a1, units: 24}
  - {name: cat, op: concat, inputs: [f1, f2]}
  - {name: r, op: reshape, shape: [2, 41]}
  - {name: s, op: sigmoid}
outputs: [s, c2, pk]
)";

TEST(Compiler, TilingCornerCasesOnATinyArray) {
  Workload w = parse_workload_yaml(kConvNet, "tiles.yaml");
  for (const char* base : {"tpu_v4", "tpu_v1"}) {
    std::vector<std::string> sets = {"mxu.rows=8", "mxu.cols=8", "accumulators.entries=64",
                                     "unified_buffer.bytes=24KiB", "mxu.count=2", "unified_buffer.banks=1"};
    arch::ArchConfig a = preset(base, sets);
    Compiled c = expect_golden(a, w);
    bool several_bands = false;
    for (const auto& l : c.layers) several_bands = several_bands || l.bands > 2;
    EXPECT_TRUE(several_bands);
    // pk packs its kernel rows (3 taps x 2 channels <= 8 array rows): one pass per row.
    // (TPU v1 receives its inputs from the host first: host_link.carries_io.)
    const LayerPlan& pk = c.layers[a.host_link.carries_io ? 1 : 0];
    EXPECT_EQ(pk.name, "pk");
    EXPECT_EQ(pk.k_chunks, 2);
  }
}

// Contraction in slices: fully connected layers whose rows are long next to the UB (a weight
// gradient's b x R values a row) hold a slice of the contraction for many rows per band
// instead of few whole rows, the accumulators summing over the slices, with the reference's
// bits: bf16 on TPU v4's two cores (one column tile, the band's rows split over four MXUs),
// int8 on TPU v1, on a tiny four-MXU array with more column tiles than MXUs (several items
// per MXU keep their slots over the slices), with a fused activation and elementwise chain,
// and as a training step's weight gradients. Each sliced layer moves fewer bytes or takes
// fewer bands than the whole-row order it replaces (every band loads every weight tile
// again).
TEST(Compiler, LongRowsContractInSlicesWithTheSameBits) {
  Workload w = parse_workload_yaml(R"(
name: longfc
batch: 6
inputs: [{name: x, shape: [5, 9000]}]
ops:
  - {name: fc1, op: fully_connected, units: 100, activation: relu}
  - {name: fc2, op: fully_connected, units: 700}
  - {name: r, op: relu, inputs: [fc2]}
  - {name: s, op: add, inputs: [r, fc2]}
)", "longfc.yaml");
  // The sliced layers. None is a sliced copy of the weight-groups order (only the streaming
  // and staged orders are sliced). On one core (options count bands over the whole batch,
  // which is then the core's): the whole-row order that would have been chosen (the first of
  // least traffic; none here is preferred) moves more bytes or takes more bands.
  auto sliced = [](const Compiled& c) {
    std::vector<std::string> names;
    auto bands = [](const std::string& o) { return std::stoll(o.substr(o.rfind(" of them off chip, ") + 19)); };
    auto traffic = [](const std::string& o) { return std::stoll(o.substr(o.rfind(": ") + 2)); };
    for (const auto& l : c.layers) {
      if (l.loop_order.find("contraction in slices") == std::string::npos) continue;
      names.push_back(l.name);
      EXPECT_EQ(l.loop_order.find("weight groups"), std::string::npos) << l.loop_order;
      auto chosen = std::find_if(l.options.begin(), l.options.end(),
                                 [&](const std::string& o) { return o.rfind(l.loop_order + ":", 0) == 0; });
      if (chosen == l.options.end()) {
        ADD_FAILURE() << l.name << ": no option " << l.loop_order;
        continue;
      }
      if (c.core_programs.size() != 1) continue;
      const std::string* whole = nullptr;
      for (const auto& o : l.options) {
        if (o.find("slices") != std::string::npos || o.find("does not fit") != std::string::npos) continue;
        if (!whole || traffic(o) < traffic(*whole)) whole = &o;
      }
      if (!whole) continue;
      EXPECT_TRUE(traffic(*chosen) < traffic(*whole) ||
                  (traffic(*chosen) == traffic(*whole) && bands(*chosen) < bands(*whole)))
          << l.name << ": " << *chosen << " against " << *whole;
    }
    return names;
  };
  Compiled v4 = expect_golden(preset("tpu_v4", {"unified_buffer.bytes=512KiB"}), w);
  EXPECT_EQ(v4.core_programs.size(), 2u);
  EXPECT_EQ(sliced(v4), std::vector<std::string>{"fc1"}) << v4.explain();
  CompileOptions i8;
  i8.dtype = isa::MatType::kInt8;
  Compiled v1 = expect_golden(preset("tpu_v1", {"unified_buffer.bytes=256KiB"}), w, i8);
  EXPECT_EQ(sliced(v1), std::vector<std::string>{"fc1"}) << v1.explain();
  // Four 16 x 16 MXUs with 256 accumulator rows, and a UB of `ub`.
  auto tiny_with = [](const std::string& ub) {
    return preset("tpu_v4", {"mxu.rows=16", "mxu.cols=16", "mxu.count=4", "accumulators.entries=256",
                             "unified_buffer.bytes=" + ub, "unified_buffer.banks=1"});
  };
  arch::ArchConfig tiny = tiny_with("192KiB");
  Compiled t = expect_golden(tiny, w);
  EXPECT_EQ(sliced(t), std::vector<std::string>{"fc1"}) << t.explain();
  EXPECT_GT(t.layers.at(0).n_tiles, tiny.mxu.count);  // 7 column tiles: two items on some MXUs
  // On TPU v4 fc1's one column tile is split four ways, one row part per MXU.
  EXPECT_EQ(v4.layers.at(0).n_tiles, 1);
  Workload f = parse_workload_yaml(R"(
name: mlp
batch: 8
inputs: [{name: x, shape: [64, 40]}]
ops:
  - {name: a, op: fully_connected, units: 48, activation: relu}
  - {name: b, op: fully_connected, units: 24}
)", "mlp.yaml");
  Compiled step = expect_golden(tiny_with("96KiB"), training_step(f, 8, TrainOptions{}));
  std::vector<std::string> in_step = sliced(step);
  EXPECT_TRUE(std::any_of(in_step.begin(), in_step.end(),
                          [](const std::string& n) { return n.find("__dw") != std::string::npos; }))
      << step.explain();
}

// A two-input matmul whose second operand spilled to host memory (load_weights reads mem or
// ub) stages each sample's operand through the UB, two buffers when they fit (one when only
// one does), with the reference's bits: attention-like products at batch 3 on TPU v4's two
// cores (bf16) and on the Edge TPU (int8), with 24 and 4 KiB of off-chip memory. (Before, this
// was an error naming the layer: BERT-base 512 at batch 3 on the Edge TPU presets.)
TEST(Compiler, SpilledSecondMatmulOperandIsStagedThroughTheUnifiedBuffer) {
  Workload w = parse_workload_yaml(R"(
name: att
batch: 3
inputs: [{name: x, shape: [32, 64]}]
ops:
  - {name: k, op: fully_connected, units: 64}
  - {name: s, op: matmul, inputs: [x, k], transpose_b: true}
  - {name: v, op: fully_connected, input: x, units: 48}
  - {name: o, op: matmul, inputs: [s, v]}
)", "att.yaml");
  // The staged layers' names, each with its number of buffers checked.
  auto staged = [](const Compiled& c, bool one_buffer) {
    std::vector<std::string> names;
    for (const auto& l : c.layers) {
      if (l.loop_order.rfind("stage each sample's b", 0) != 0) continue;
      names.push_back(l.name);
      EXPECT_EQ(l.weights_in, "host -> ub") << l.name;
      EXPECT_EQ(l.loop_order.find(", one buffer") != std::string::npos, one_buffer) << l.loop_order;
    }
    return names;
  };
  Compiled v4 = expect_golden(preset("tpu_v4", {"memory.bytes=24KiB"}), w);
  EXPECT_EQ(v4.core_programs.size(), 2u);
  EXPECT_FALSE(staged(v4, false).empty()) << v4.explain();
  CompileOptions i8;
  i8.dtype = isa::MatType::kInt8;
  Compiled e = expect_golden(preset("edgetpu", {"memory.bytes=4KiB", "memory.parameter_cache_bytes=0"}), w, i8);
  EXPECT_FALSE(staged(e, false).empty()) << e.explain();
  Compiled one = expect_golden(preset("tpu_v4", {"memory.bytes=24KiB", "unified_buffer.bytes=16KiB", "unified_buffer.banks=1",
                                                 "mxu.rows=16", "mxu.cols=16", "accumulators.entries=128"}), w);
  EXPECT_FALSE(staged(one, true).empty()) << one.explain();
}

// The off-chip estimate (--explain's "chosen: ... bytes off chip") leaves out operands read
// and written in place in the UB: with activations on chip a middle FC layer moves its
// weights only; with them off chip, its input and output too.
TEST(Compiler, OffChipEstimateLeavesOutOperandsKeptInTheUnifiedBuffer) {
  Workload w = parse_workload_yaml(R"(
name: mlp3
batch: 16
inputs: [{name: x, shape: [512]}]
ops:
  - {name: f1, op: fully_connected, units: 512}
  - {name: f2, op: fully_connected, units: 512}
  - {name: f3, op: fully_connected, units: 512}
)", "mlp3.yaml");
  arch::ArchConfig a = preset("tpu_v4", {"cores=1"});
  const int64_t weights = 512 * 512 * 2, activation = 16 * 512 * 2;  // bf16
  for (bool on_chip : {true, false}) {
    SCOPED_TRACE(on_chip ? "activations in the UB" : "activations off chip");
    CompileOptions opt;
    opt.ub_activations = on_chip;
    Compiled c = compile(a, w, opt);
    ASSERT_EQ(c.ub_activations, on_chip);
    auto f2 = std::find_if(c.layers.begin(), c.layers.end(), [](const LayerPlan& l) { return l.name == "f2"; });
    ASSERT_NE(f2, c.layers.end());
    EXPECT_EQ(f2->est_hbm_bytes, on_chip ? weights : weights + 2 * activation) << c.explain();
  }
}

// Several cores: each core keeps its own samples' intermediates in its own UB (sized for the
// largest share, here 3 of 5 samples), while off-chip memory is still never reused. On TPU v4
// (two cores) at batch 5 (2 + 3 samples) a middle FC layer moves its weights only, no DMA of
// any core touches off-chip memory outside the declared regions (inputs, outputs, weights,
// parameters), and the outputs are the reference's bit for bit.
TEST(Compiler, EachCoreKeepsItsSamplesActivationsInItsOwnUnifiedBuffer) {
  Workload w = parse_workload_yaml(R"(
name: mlp3
batch: 5
inputs: [{name: x, shape: [512]}]
ops:
  - {name: f1, op: fully_connected, units: 512, activation: relu}
  - {name: f2, op: fully_connected, units: 512}
  - {name: f3, op: fully_connected, units: 512}
)", "mlp3.yaml");
  arch::ArchConfig a = preset("tpu_v4");
  ASSERT_EQ(a.cores, 2);
  const int64_t weights = 512 * 512 * 2;
  for (bool on_chip : {true, false}) {
    SCOPED_TRACE(on_chip ? "activations in the UB" : "activations off chip");
    CompileOptions opt;
    opt.ub_activations = on_chip;
    Compiled c = expect_golden(a, w, opt);
    ASSERT_EQ(c.core_programs.size(), 2u);
    EXPECT_EQ(c.ub_activations, on_chip);
    auto f2 = std::find_if(c.layers.begin(), c.layers.end(), [](const LayerPlan& l) { return l.name == "f2"; });
    ASSERT_NE(f2, c.layers.end());
    if (on_chip) {
      EXPECT_EQ(f2->est_hbm_bytes, weights) << c.explain();
    } else {
      EXPECT_GT(f2->est_hbm_bytes, weights) << c.explain();
    }
    // Off-chip bytes a DMA touches outside every region: activations.
    for (const auto& p : c.core_programs) {
      int64_t outside = 0;
      for (const auto& in : p.code) {
        bool load = in.op == isa::Opcode::kDmaLoad;
        if (!load && in.op != isa::Opcode::kDmaStore) continue;
        if (in.get(load ? isa::Fid::kDmaLoad_space : isa::Fid::kDmaStore_space) != static_cast<int>(isa::Space::kMem)) continue;
        uint64_t at = static_cast<uint64_t>(in.get(load ? isa::Fid::kDmaLoad_src : isa::Fid::kDmaStore_dst));
        bool in_region = std::any_of(p.regions.begin(), p.regions.end(), [&](const isa::Region& r) {
          return r.space == isa::Space::kMem && at >= r.addr && at < r.addr + r.bytes();
        });
        if (!in_region) outside += in.get(load ? isa::Fid::kDmaLoad_rows : isa::Fid::kDmaStore_rows);
      }
      if (on_chip) {
        EXPECT_EQ(outside, 0);
      } else {
        EXPECT_GT(outside, 0);
      }
    }
  }
}

TEST(Compiler, WeightGroupOrderAndHostSpillKeepTheNumbers) {
  // Weights larger than the UB's share force the weight-group order; 1 MiB of off-chip
  // memory pushes tensors and weights to the host link.
  Workload w = parse_workload_yaml(R"(
name: wide
batch: 3
inputs: [{name: x, shape: [6, 6, 64]}]
ops:
  - {name: c, op: conv2d, filters: 96, kernel: 3, padding: 1}
  - {name: f, op: fully_connected, units: 80, activation: relu}
)", "wide.yaml");
  arch::ArchConfig a = preset("tpu_v4", {"mxu.rows=16", "mxu.cols=16", "unified_buffer.bytes=64KiB",
                                         "unified_buffer.banks=1", "accumulators.entries=128"});
  Compiled c = expect_golden(a, w);
  bool grouped = false;
  for (const auto& l : c.layers) grouped = grouped || l.loop_order.find("groups outer") != std::string::npos;
  EXPECT_TRUE(grouped) << c.explain();
  arch::ArchConfig small = preset("edgetpu", {"memory.bytes=64KiB", "memory.parameter_cache_bytes=0",
                                              "unified_buffer.bytes=96KiB", "unified_buffer.banks=1"});
  Compiled h = expect_golden(small, w);
  bool host = false;
  for (const auto& r : h.program().regions) host = host || r.space == isa::Space::kHost;
  EXPECT_TRUE(host);
}

TEST(Compiler, FusionChangesTrafficNotBits) {
  Workload w = reduced("resnet50.yaml", 32);
  arch::ArchConfig a = preset("tpu_v4");
  auto bytes = [](const Compiled& c) {
    int64_t total = 0;
    for (const auto& in : c.program().code) {
      if (in.op == isa::Opcode::kDmaLoad) total += in.get(isa::Fid::kDmaLoad_rows) * in.get(isa::Fid::kDmaLoad_row_bytes);
      if (in.op == isa::Opcode::kDmaStore) total += in.get(isa::Fid::kDmaStore_rows) * in.get(isa::Fid::kDmaStore_row_bytes);
    }
    return total;
  };
  CompileOptions off;
  off.fusion = false;
  Compiled fused = expect_golden(a, w);
  Compiled unfused = expect_golden(a, w, off);
  EXPECT_LT(bytes(fused), bytes(unfused));
  EXPECT_LT(fused.layers.size(), unfused.layers.size());
}

// Activations kept in the UB between layers (one core): the same bits as with every
// activation off chip, fewer off-chip bytes, and the copies stay within the UB's top part
// (the working buffers below it). With two cores, each keeps its own samples' in its own UB.
TEST(Compiler, ResidentActivationsMoveTrafficOnChipNotBits) {
  Workload w = reduced("resnet50.yaml", 32);
  arch::ArchConfig a = preset("tpu_v1");
  struct Bytes {
    int64_t offchip = 0, ub = 0;
    uint64_t ub_low = UINT64_MAX;
  };
  auto bytes = [](const isa::Program& p) {
    Bytes b;
    for (const auto& in : p.code) {
      bool load = in.op == isa::Opcode::kDmaLoad;
      if (!load && in.op != isa::Opcode::kDmaStore) continue;
      int64_t n = in.get(load ? isa::Fid::kDmaLoad_rows : isa::Fid::kDmaStore_rows) *
                  in.get(load ? isa::Fid::kDmaLoad_row_bytes : isa::Fid::kDmaStore_row_bytes);
      if (in.get(load ? isa::Fid::kDmaLoad_space : isa::Fid::kDmaStore_space) == static_cast<int>(isa::Space::kUb)) {
        b.ub += n;
        b.ub_low = std::min<uint64_t>(b.ub_low, in.get(load ? isa::Fid::kDmaLoad_src : isa::Fid::kDmaStore_dst));
      } else {
        b.offchip += n;
      }
    }
    return b;
  };
  CompileOptions off;
  off.ub_activations = false;
  Compiled on = expect_golden(a, w), offc = expect_golden(a, w, off);
  EXPECT_TRUE(on.ub_activations);
  EXPECT_FALSE(offc.ub_activations);
  Bytes on_chip = bytes(on.program());
  Bytes off_chip = bytes(offc.program());
  EXPECT_EQ(off_chip.ub, 0);
  EXPECT_GT(on_chip.ub, 0);
  EXPECT_LT(on_chip.offchip, off_chip.offchip);
  EXPECT_GE(on_chip.ub_low, static_cast<uint64_t>(a.unified_buffer.bytes) / 2);
  // TPU v4 at batch 3 splits the batch over its two cores (1 + 2 samples): each keeps its
  // samples' activations in its own UB, with the same bits.
  Workload w2 = w;
  w2.batch = 3;
  Compiled two = expect_golden(preset("tpu_v4"), w2), two_off = expect_golden(preset("tpu_v4"), w2, off);
  ASSERT_EQ(two.core_programs.size(), 2u);
  EXPECT_TRUE(two.ub_activations);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_GT(bytes(two.core_programs[k]).ub, 0);
    EXPECT_EQ(bytes(two_off.core_programs[k]).ub, 0);
    EXPECT_LT(bytes(two.core_programs[k]).offchip, bytes(two_off.core_programs[k]).offchip);
  }
  // Full-size ResNet-50 on the Edge TPU: a layer needs the UB the reservation would take, so
  // the compiler falls back to every activation off chip and says so.
  Compiled edge = compile(preset("edgetpu"), load_workload(kRoot + "/configs/workloads/resnet50.yaml"), {});
  EXPECT_FALSE(edge.ub_activations);
  EXPECT_EQ(bytes(edge.program()).ub, 0);
}

// Image groups: a window layer whose band is a whole image shares each weight tile among
// several images (matmul pop=0 after the first), with the same bits; on one MXU and on two
// (each with its own column tile), with a fused residual add.
TEST(Compiler, ImageGroupsShareWeightTilesNotBits) {
  Workload w = parse_workload_yaml(R"(
name: groups
batch: 6
inputs: [{name: x, shape: [12, 12, 16]}]
ops:
  - {name: c1, op: conv2d, filters: 32, kernel: 3, padding: 1, activation: relu}
  - {name: c2, op: conv2d, filters: 32, kernel: 3, padding: 1}
  - {name: r, op: add, inputs: [c2, c1], activation: relu}
  - {name: c3, op: conv2d, filters: 24, kernel: 3, stride: 2, padding: 1}
)", "groups.yaml");
  for (int mxus : {1, 2}) {
    arch::ArchConfig a = preset("tpu_v1", {"mxu.rows=16", "mxu.cols=16", "mxu.count=" + std::to_string(mxus)});
    Compiled c = expect_golden(a, w);
    int shared = 0, loads = 0, passes = 0;
    for (const auto& in : c.program().code) {
      if (in.op == isa::Opcode::kLoadWeights) ++loads;
      if (in.op != isa::Opcode::kMatmul) continue;
      ++passes;
      if (in.get(isa::Fid::kMatmul_pop) == 0) ++shared;
    }
    EXPECT_GT(shared, 0) << mxus << " MXUs";
    EXPECT_EQ(loads + shared, passes) << mxus << " MXUs";
    EXPECT_LE(2 * loads, passes) << mxus << " MXUs: most passes reuse a tile";
  }
}

// sequencer.layer_sync (TPU v1): every layer's first pass after the first layer is preceded
// by `sync units=vector`, and no other pass is; off, the program has no sync at all. Same bits.
TEST(Compiler, LayerSyncPrecedesEachLayersFirstPass) {
  Workload w = reduced("gemm_mlp.yaml");
  for (bool on : {true, false}) {
    arch::ArchConfig a = preset("tpu_v1", {std::string("sequencer.layer_sync=") + (on ? "true" : "false")});
    Compiled c = expect_golden(a, w);
    int syncs = 0, first_passes = 0;
    for (const auto& l : c.layers) {
      bool seen = false;
      for (std::size_t i = l.first; i < l.end; ++i) {
        const auto& in = c.program().code[i];
        if (in.op == isa::Opcode::kSync) {
          ++syncs;
          EXPECT_EQ(in.get(isa::Fid::kSync_units), 4) << l.name;
          ASSERT_LT(i + 1, l.end);
          EXPECT_EQ(c.program().code[i + 1].op, isa::Opcode::kMatmul) << l.name;
        }
        if (in.op == isa::Opcode::kMatmul && !seen) {
          seen = true;
          ++first_passes;
        }
      }
    }
    EXPECT_EQ(syncs, on ? first_passes - 1 : 0) << on;
    EXPECT_GE(first_passes, 4);
  }
}

TEST(Compiler, EveryPresetCompilesEveryBundledWorkload) {
  for (const char* p : {"tpu_v1", "tpu_v2", "tpu_v3", "tpu_v4", "tpu_v5e", "edgetpu"}) {
    arch::ArchConfig a = preset(p);
    for (const auto& e : std::filesystem::directory_iterator(kRoot + "/configs/workloads")) {
      std::string ext = e.path().extension().string();
      if ((ext != ".yaml" && ext != ".csv") || e.path().stem() == "expected_macs") continue;
      Workload w = load_workload(e.path().string());
      Compiled c = compile(a, w, {});
      EXPECT_NO_THROW(isa::verify_program(c.program(), a, w.name)) << p << " " << e.path();
      int64_t macs = 0;
      for (const auto& l : c.layers) macs += l.macs;
      EXPECT_EQ(macs, w.macs_per_sample() * w.batch) << p << " " << e.path();
      // The array never performs fewer MACs than the workload needs.
      int64_t array = 0;
      for (const auto& l : c.layers) array += l.array_macs;
      EXPECT_GE(array, macs) << p << " " << e.path();
    }
  }
}

TEST(Compiler, ClearErrorsForWhatCanNeverFit) {
  Workload w = parse_workload_yaml(R"(
name: big
inputs: [{name: x, shape: [4, 4096, 8]}]
ops:
  - {name: wide_conv, op: conv2d, filters: 8, kernel: 3, padding: 1}
)", "big.yaml");
  arch::ArchConfig a = preset("tpu_v1");  // 4096 accumulator rows: half is 2048 < 4096 pixels
  try {
    compile(a, w, {});
    ADD_FAILURE();
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("big.yaml:5"), std::string::npos) << m;
    EXPECT_NE(m.find("ops.wide_conv"), std::string::npos) << m;
  }
  CompileOptions bf;
  bf.dtype = isa::MatType::kBf16;
  EXPECT_THROW(compile(a, w, bf), InputError);  // TPU v1 has no bf16
}

}  // namespace
}  // namespace tpu::compiler

namespace tpu::compiler {
namespace {

// The whole matrix (label long): every bundled workload, reduced, on every preset in every
// dtype its array supports, against the reference.
TEST(CompilerLong, EveryWorkloadOnEveryPresetAndDtypeMatchesTheReference) {
  for (const char* p : {"tpu_v1", "tpu_v2", "tpu_v3", "tpu_v4", "tpu_v5e", "edgetpu"}) {
    arch::ArchConfig a = preset(p);
    for (const auto& e : std::filesystem::directory_iterator(kRoot + "/configs/workloads")) {
      std::string ext = e.path().extension().string();
      if ((ext != ".yaml" && ext != ".csv") || e.path().stem() == "expected_macs") continue;
      Workload w = reduced(e.path().filename().string(), 16);
      for (arch::DType d : a.mxu.dtypes) {
        SCOPED_TRACE(std::string(p) + " " + e.path().filename().string() + " " + arch::dtype_name(d));
        CompileOptions opt;
        opt.dtype = arch::dtype_name(d) == "int8" ? isa::MatType::kInt8 : isa::MatType::kBf16;
        expect_golden(a, w, opt);
      }
    }
  }
}

}  // namespace
}  // namespace tpu::compiler

namespace tpu::compiler {
namespace {

// Corner cases a review found: a SCALE-Sim layer named like another layer's generated input,
// a reshape as the workload output, bf16 gelu/sigmoid/tanh with fusion off, a 1-D conv whose
// band rows are split over MXUs far down a long input.
TEST(Compiler, NamesReshapedOutputsAndUnfusedBf16Activations) {
  Workload csv = parse_scalesim_csv(
      "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
      "a_in,8,8,3,3,4,8,1,\na,16,16,3,3,2,8,1,\n",
      "coll.csv");
  EXPECT_EQ(csv.ops[1].out.str(), "14x14x8");  // its own 16x16x2 input, not a_in's output
  expect_golden(preset("tpu_v4"), csv);
  Workload w = parse_workload_yaml(R"(
name: t
inputs: [{name: x, shape: [6, 6, 8]}, {name: s, shape: [4000, 1, 1]}]
ops:
  - {name: c1, op: conv2d, input: x, filters: 8, kernel: 3, padding: 1, activation: gelu}
  - {name: c2, op: conv2d, filters: 8, kernel: 3, padding: 1, activation: sigmoid}
  - {name: f, op: fully_connected, units: 6, activation: tanh}
  - {name: flat, op: reshape, shape: [216]}
  - {name: a1, op: conv2d, input: s, filters: 16, kernel: [80, 1], stride: [4, 1]}
outputs: [flat, a1]
)", "t.yaml");
  arch::ArchConfig a = preset("tpu_v4");
  expect_golden(a, w);
  CompileOptions off;
  off.fusion = false;
  expect_golden(a, w, off);
}

}  // namespace
}  // namespace tpu::compiler

namespace tpu::compiler {
namespace {

// The off-chip footprint the report gives (memory.offchip_footprint_bytes): every region of
// the program plus the activations live at once. A chain of fully connected layers with
// every activation off chip holds two at a time (a layer's input and its output), so the
// footprint is the regions' 64-byte-aligned sizes, read from the program, plus two
// activations; with several cores nothing is reused and every activation stays.
TEST(Compiler, OffChipFootprintIsTheRegionsPlusTheLiveActivations) {
  auto chain = [](int hidden) {
    std::string text = "name: chain\ninputs: [{name: x, shape: [64]}]\nops:\n";
    for (int i = 0; i <= hidden; ++i) text += fmt::format("  - {{name: fc{}, op: fully_connected, units: 64}}\n", i);
    return parse_workload_yaml(text, "chain.yaml");
  };
  auto aligned_regions = [](const Compiled& c) {
    uint64_t sum = 0;
    for (const auto& r : c.program().regions) {
      if (r.space == isa::Space::kMem) sum += (std::max<uint64_t>(r.bytes(), 1) + 63) / 64 * 64;
    }
    return sum;
  };
  CompileOptions off;
  off.ub_activations = false;
  for (int64_t batch : {1, 3}) {
    for (int hidden : {2, 5}) {
      SCOPED_TRACE(fmt::format("batch {} hidden {}", batch, hidden));
      off.batch = batch;
      uint64_t act = (static_cast<uint64_t>(batch) * 64 * 2 + 63) / 64 * 64;  // bf16
      Compiled one = compile(preset("tpu_v4", {"cores=1"}), chain(hidden), off);
      EXPECT_EQ(one.offchip_bytes, aligned_regions(one) + 2 * act);
      EXPECT_EQ(one.host_bytes, 0u);
      if (batch > 1) {  // two cores: every hidden activation keeps its own bytes
        Compiled two = compile(preset("tpu_v4"), chain(hidden), off);
        ASSERT_EQ(two.core_programs.size(), 2u);
        EXPECT_EQ(two.offchip_bytes, aligned_regions(two) + static_cast<uint64_t>(hidden) * act);
      }
    }
  }
}

}  // namespace
}  // namespace tpu::compiler
