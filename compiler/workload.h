// Workloads: a graph of named ops over named tensors, read from the YAML workload format
// (docs/workloads.md) or from a SCALE-Sim-style CSV topology. Shapes are inferred and checked
// here, before anything is compiled; MAC counts come from the shapes alone.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "arch/error.h"
#include "isa/isa_table.h"
#include "isa/kernels.h"

namespace tpu::compiler {

#define TPU_OP_KINDS(X)                                                            \
  X(kConv2d, "conv2d") X(kDepthwise, "depthwise_conv2d") X(kFullyConnected,       \
  "fully_connected") X(kMatmul, "matmul") X(kMaxPool, "max_pool")                 \
  X(kAvgPool, "avg_pool") X(kAdd, "add") X(kMul, "mul") X(kRelu, "relu")          \
  X(kRelu6, "relu6") X(kGelu, "gelu") X(kSigmoid, "sigmoid") X(kTanh, "tanh")     \
  X(kSoftmax, "softmax") X(kLayerNorm, "layer_norm") X(kConcat, "concat")         \
  X(kReshape, "reshape") X(kAllReduce, "all_reduce") X(kAllGather, "all_gather")    \
  X(kSlice, "slice")

enum class OpKind : uint8_t {
#define TPU_X(e, s) e,
  TPU_OP_KINDS(TPU_X)
#undef TPU_X
};
const char* op_kind_name(OpKind k);

/// A per-sample tensor shape as written ([C], [S, D] or [H, W, C]) and its NHWC view:
/// [C] is 1 x 1 x C, [S, D] is 1 x S x D. Matrix ops act on the last dimension, one row per
/// pixel (h, w).
struct Shape {
  std::vector<int64_t> dims;
  int64_t h = 1, w = 1, c = 1;
  static Shape of(std::vector<int64_t> dims);
  int64_t pixels() const { return h * w; }
  int64_t elements() const { return h * w * c; }
  std::string str() const;  ///< "224x224x3"
};

struct Op {
  std::string name;  ///< also the name of the tensor it produces
  OpKind kind = OpKind::kConv2d;
  std::vector<std::string> inputs;
  SourceLocation where;

  // Window ops (conv2d, depthwise_conv2d, pools).
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool same = false;     ///< padding: same (resolved from the input size at shape inference)
  int groups = 1;
  int multiplier = 1;    ///< depthwise channel multiplier
  bool global = false;   ///< pools: the whole H x W window
  // Matrix ops.
  int64_t filters = 0;   ///< conv2d output channels, fully_connected units
  bool bias = true;      ///< conv2d, depthwise, fully_connected
  isa::Activation activation = isa::Activation::kNone;  ///< fused activation
  bool transpose_b = false;  ///< matmul of two tensors: b is [N, heads*K]
  int heads = 1;             ///< matmul of two tensors: independent products per head
  int64_t segment = 0;       ///< softmax: normalise over segments of this length (0: all C)
  double eps = 1e-5;         ///< layer_norm
  std::vector<int64_t> reshape;  ///< reshape: the new per-sample shape
  /// all_reduce / all_gather (inserted by parallelize(), never written in a workload file):
  /// the parallel group (0 data, 1 tensor) and, for all_gather, the chips in it.
  int comm_group = 0;
  int64_t parts = 1;
  /// slice (inserted by gradient bucketing): values [slice_begin, slice_begin + filters) of
  /// the last dimension.
  int64_t slice_begin = 0;

  // Derived by shape inference.
  std::vector<Shape> in;
  Shape out;
  int64_t macs = 0;  ///< per sample: multiply-accumulates the op needs (useful work)
  /// Set by workload transforms (compiler/training.h) for an op whose rows include padding:
  /// when >= 0, shape inference sets `macs` to this instead of the shape's product, so the
  /// padding counts as array work but not as useful work.
  int64_t useful_macs = -1;

  bool is_matrix() const;  ///< runs on the MXU
  bool is_comm() const { return kind == OpKind::kAllReduce || kind == OpKind::kAllGather; }
  /// Ops that parallelize() inserts and workload files may not name.
  bool is_internal() const { return is_comm() || kind == OpKind::kSlice; }
};

struct WorkloadInput {
  std::string name;
  Shape shape;
  SourceLocation where;
};

struct Workload {
  std::string name;
  std::string file;
  int64_t batch = 1;
  std::optional<isa::MatType> dtype;  ///< none: the architecture's first dtype
  uint64_t seed = 1;
  std::vector<WorkloadInput> inputs;
  std::vector<Op> ops;
  std::vector<std::string> outputs;
  /// Inputs and outputs that stand for tensors a real step keeps in device memory: the
  /// training transform's seeded operands (incoming gradients, saved activations, weights)
  /// and its results. A host-attached accelerator (host_link.carries_io) keeps them in
  /// off-chip memory instead of moving them over the host link.
  std::set<std::string> on_device;
  /// SCALE-Sim topologies: every layer reads its own input (layers are independent).
  bool independent_layers = false;

  int64_t macs_per_sample() const;
  const Shape* tensor_shape(const std::string& name) const;
};

/// Limits that keep a malformed workload from exhausting memory.
inline constexpr std::size_t kMaxWorkloadBytes = 4u << 20;
inline constexpr std::size_t kMaxOps = 20000;
inline constexpr int64_t kMaxDim = 1 << 20;
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 32;
inline constexpr int64_t kMaxBatch = 1 << 16;
/// Longest op or input name (the compiler appends suffixes such as "__zeros").
inline constexpr std::size_t kMaxUserName = 100;

/// Loads a workload by extension: .yaml/.yml or .csv. Throws InputError naming file, line,
/// key, expected and found.
Workload load_workload(const std::string& path);
Workload parse_workload_yaml(const std::string& text, const std::string& file);
Workload parse_scalesim_csv(const std::string& text, const std::string& file);

/// Re-runs shape inference (after the batch or ops changed); throws InputError.
void infer_shapes(Workload& w);

}  // namespace tpu::compiler
