// Workload formats: the YAML graph and SCALE-Sim CSV topologies, shape inference, MAC
// counts of the bundled networks (against the independent generator's figures and the
// commonly cited ones), and one clear error per kind of bad input.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "arch/error.h"
#include "compiler/workload.h"

namespace tpu::compiler {
namespace {

const std::string kRoot = TPU_SOURCE_DIR;

TEST(Workloads, BundledMacCountsMatchTheGeneratorAndTheLiterature) {
  YAML::Node expected = YAML::LoadFile(kRoot + "/configs/workloads/expected_macs.yaml");
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kRoot + "/configs/workloads")) {
    std::string ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".csv") continue;
    std::string stem = entry.path().stem().string();
    if (stem == "expected_macs") continue;
    Workload w = load_workload(entry.path().string());
    ASSERT_TRUE(expected[stem]) << stem << " missing from expected_macs.yaml";
    EXPECT_EQ(w.macs_per_sample(), expected[stem].as<int64_t>()) << stem;
    ++checked;
  }
  EXPECT_GE(checked, 11);
  // Commonly cited figures (multiply-accumulates per image / per layer).
  auto macs = [&](const std::string& name) {
    return static_cast<double>(load_workload(kRoot + "/configs/workloads/" + name).macs_per_sample());
  };
  EXPECT_NEAR(macs("resnet50.yaml") / 4.1e9, 1.0, 0.01);      // ResNet-50 v1.5, 224x224
  EXPECT_NEAR(macs("mobilenet_v1.yaml") / 569e6, 1.0, 0.01);  // Howard et al. 2017
  EXPECT_NEAR(macs("mobilenet_v2.yaml") / 300e6, 1.0, 0.01);  // Sandler et al. 2018
  // BERT-base layer: 4 S d^2 + 2 S^2 d + 2 S d d_ff.
  for (int s : {128, 512}) {
    double f = 4.0 * s * 768 * 768 + 2.0 * s * s * 768 + 2.0 * s * 768 * 3072;
    EXPECT_EQ(macs("bert_base_" + std::to_string(s) + ".yaml"), f);
  }
}

// The TPU v1 application proxies (configs/workloads/tpu_v1) against J17 Table 1 as published
// (table1.yaml): layers by type exactly, the batch exactly, total weights and TPU ops (MACs)
// per weight byte (int8: one byte per weight) within 3%, counted here from the parsed ops.
TEST(Workloads, TpuV1ProxiesMatchTable1) {
  YAML::Node table = YAML::LoadFile(kRoot + "/configs/workloads/tpu_v1/table1.yaml");
  int checked = 0;
  for (const auto& app : table) {
    std::string name = app.first.as<std::string>();
    const YAML::Node& t = app.second;
    Workload w = load_workload(kRoot + "/configs/workloads/tpu_v1/" + name + ".yaml");
    std::map<std::string, int> layers;
    double weights = 0;
    for (const Op& op : w.ops) {
      switch (op.kind) {
        case OpKind::kConv2d:
          layers["conv"]++;
          weights += static_cast<double>(op.kh) * op.kw * (op.in[0].c / op.groups) * op.filters;
          break;
        case OpKind::kDepthwise:
          layers["conv"]++;
          weights += static_cast<double>(op.kh) * op.kw * op.out.c;
          break;
        case OpKind::kFullyConnected:
        case OpKind::kMatmul:
          ASSERT_EQ(op.inputs.size(), 1u) << name << " " << op.name;
          layers["fc"]++;
          weights += static_cast<double>(op.in[0].c) * op.filters;
          break;
        case OpKind::kMaxPool:
        case OpKind::kAvgPool:
          layers["pool"]++;
          break;
        case OpKind::kConcat:
        case OpKind::kReshape:
          break;  // layout, not a layer in J17's counts
        default:
          layers["vector"]++;
          break;
      }
    }
    for (const char* kind : {"fc", "conv", "vector", "pool"}) {
      EXPECT_EQ(layers[kind], t[kind].as<int>()) << name << " " << kind << " layers";
    }
    EXPECT_EQ(w.batch, t["batch"].as<int64_t>()) << name;
    EXPECT_NEAR(weights / t["weights"].as<double>(), 1.0, 0.03) << name << " weights " << weights;
    double ops_per_byte = static_cast<double>(w.macs_per_sample()) * static_cast<double>(w.batch) / weights;
    EXPECT_NEAR(ops_per_byte / t["ops_per_weight_byte"].as<double>(), 1.0, 0.03) << name << " " << ops_per_byte;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(Workloads, ShapesFollowTheConvolutionArithmetic) {
  Workload w = parse_workload_yaml(R"(
name: t
inputs: [{name: x, shape: [224, 224, 3]}]
ops:
  - {name: c1, op: conv2d, filters: 8, kernel: 3, stride: 2, padding: same}
  - {name: c2, op: conv2d, filters: 8, kernel: 3, dilation: 2, padding: 2, groups: 2}
  - {name: d1, op: depthwise_conv2d, kernel: [3, 5], padding: [1, 2, 1, 2], multiplier: 2}
  - {name: p1, op: max_pool, kernel: 2}
  - {name: g, op: avg_pool, global: true}
  - {name: f, op: fully_connected, units: 10}
)", "t.yaml");
  // same, stride 2 on 224: out 112, total padding 1: 0 above, 1 below (TensorFlow).
  EXPECT_EQ(w.ops[0].pad_top, 0);
  EXPECT_EQ(w.ops[0].pad_bottom, 1);
  EXPECT_EQ(w.ops[0].out.str(), "112x112x8");
  EXPECT_EQ(w.ops[0].macs, 112 * 112 * 8 * 9 * 3);
  EXPECT_EQ(w.ops[1].out.str(), "112x112x8");  // (112 + 4 - 5) / 1 + 1
  EXPECT_EQ(w.ops[1].macs, 112 * 112 * 8 * 9 * 4);
  EXPECT_EQ(w.ops[2].out.str(), "112x112x16");
  EXPECT_EQ(w.ops[2].macs, 112 * 112 * 16 * 15);
  EXPECT_EQ(w.ops[3].out.str(), "56x56x16");
  EXPECT_EQ(w.ops[4].out.str(), "1x1x16");
  EXPECT_EQ(w.ops[5].out.str(), "1x1x10");
  EXPECT_EQ(w.ops[5].macs, 160);
}

TEST(Workloads, AttentionMatmulShapes) {
  Workload w = parse_workload_yaml(R"(
name: t
inputs: [{name: x, shape: [16, 64]}]
ops:
  - {name: q, op: fully_connected, units: 64}
  - {name: k, op: fully_connected, input: x, units: 64}
  - {name: s, op: matmul, inputs: [q, k], transpose_b: true, heads: 4}
  - {name: p, op: softmax, segment: 16}
  - {name: o, op: matmul, inputs: [p, k], heads: 4}
)", "t.yaml");
  EXPECT_EQ(w.ops[2].out.str(), "16x64");  // 4 heads x 16 keys
  EXPECT_EQ(w.ops[2].macs, 16 * 4 * 16 * 16);
  EXPECT_EQ(w.ops[4].out.str(), "16x64");
  EXPECT_EQ(w.ops[4].macs, 16 * 4 * 16 * 16);
}

TEST(Workloads, ScaleSimTopologiesAreReadAsTheyAre) {
  Workload c = parse_scalesim_csv(
      "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
      "Conv1,224,224,11,11,3,96,4,\n"
      "Conv 2,27,27,5,5,96,256,1,\n",
      "alex.csv");
  ASSERT_EQ(c.ops.size(), 2u);
  EXPECT_TRUE(c.independent_layers);
  EXPECT_EQ(c.ops[0].out.str(), "54x54x96");  // (224 - 11) / 4 + 1
  EXPECT_EQ(c.ops[1].name, "Conv_2");
  EXPECT_EQ(c.ops[1].macs, 23 * 23 * 256 * 25 * 96);
  EXPECT_EQ(c.outputs.size(), 2u);
  Workload g = parse_scalesim_csv("Layer, M, N, K,\nfc1, 64, 32, 128,\n", "g.csv");
  EXPECT_EQ(g.ops[0].macs, 64 * 32 * 128);
  EXPECT_EQ(g.ops[0].out.str(), "64x32");
}

// Each bad input: the message names the file, line, key, what was expected and found.
struct BadCase {
  const char* text;
  const char* where;  // "file:line" prefix expected in the message
  const char* key;
  const char* found;
};

TEST(Workloads, BadInputGivesOneClearError) {
  const BadCase cases[] = {
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: conv2d, filters: 4, kernal: 3}\n",
       "t.yaml:4", "ops.a.kernal", "'kernal'"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: convolution}\n", "t.yaml:4",
       "ops.a.op", "'convolution'"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: relu, input: y}\n", "t.yaml:4",
       "ops.a.input", "'y'"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: conv2d, filters: 4, kernel: 9}\n",
       "t.yaml:4", "ops.a.kernel", "a window spanning 9"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: conv2d, filters: 4, kernel: 3, groups: 2}\n",
       "t.yaml:4", "ops.a.groups", "2"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: add, inputs: [x, x]}\n  - {name: b, op: add, inputs: [a, x]}\n  - {name: c, op: fully_connected, units: 0}\n",
       "t.yaml:6", "ops.c.units", "'0'"},
      {"name: t\ninputs: [{name: x, shape: [8, 8, 3]}]\nops:\n  - {name: a, op: reshape, shape: [8, 8, 4]}\n",
       "t.yaml:4", "ops.a.shape", "8x8x4 (256)"},
      {"name: t\nbatch: 0\ninputs: [{name: x, shape: [8]}]\nops: [{name: a, op: relu}]\n", "t.yaml:2", "batch", "'0'"},
      {"name: t\ninputs: [{name: x, shape: [8]}]\nops:\n  - {name: x, op: relu}\n", "t.yaml:4", "ops[0].name", "'x'"},
      {"name: t\ninputs: [{name: x, shape: [0, 3]}]\nops: [{name: a, op: relu}]\n", "t.yaml:2", "inputs[0].shape", "'0'"},
      {"name: t\ninputz: []\n", "t.yaml:2", "inputz", "'inputz'"},
      {"name: t\ninputs: [{name: x, shape: [8]}]\nops:\n  - {name: a__w, op: relu}\n", "t.yaml:4", "ops[0].name",
       "'a__w'"},
      {"name: t\ninputs: [{name: x, shape: [4, 4, 8]}]\nops:\n  - {name: g, op: avg_pool, global: true, padding: same}\n",
       "t.yaml:4", "ops.g.global", "global with a window"},
      {"name: t\ninputs: [{name: x, shape: [8]}\n", "t.yaml:", "YAML syntax error", ""},
      // A repeated key anywhere (yaml-cpp would keep both and lookups find the first).
      {"name: t\nbatch: 1\ninputs: [{name: x, shape: [8]}]\nbatch: 2\nops: [{name: a, op: relu}]\n", "t.yaml:4:1",
       "batch: expected each key once", "it given twice"},
      {"name: t\ninputs: [{name: x, shape: [8]}]\nops:\n  - {name: a, op: fully_connected, units: 4, units: 8}\n",
       "t.yaml:4:46", "ops[0].units", "it given twice"},
      {"name: t\ninputs: [{name: x, shape: [8], name: y}]\nops: [{name: a, op: relu}]\n", "t.yaml:2:32",
       "inputs[0].name", "it given twice"},
  };
  for (const auto& c : cases) {
    try {
      parse_workload_yaml(c.text, "t.yaml");
      ADD_FAILURE() << "accepted:\n" << c.text;
    } catch (const InputError& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind(c.where, 0), 0u) << m;
      EXPECT_NE(m.find(c.key), std::string::npos) << m;
      EXPECT_NE(m.find(c.found), std::string::npos) << m;
    }
  }
  // CSV: a header that is neither form, and a non-number.
  EXPECT_THROW(parse_scalesim_csv("a,b,c\n1,2,3\n", "x.csv"), InputError);
  try {
    parse_scalesim_csv("Layer, M, N, K,\nfc, 64, x, 8,\n", "x.csv");
    ADD_FAILURE();
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("x.csv:2"), std::string::npos) << m;
    EXPECT_NE(m.find("N"), std::string::npos) << m;
    EXPECT_NE(m.find("'x'"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace tpu::compiler
