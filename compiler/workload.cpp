#include "compiler/workload.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "arch/schema.h"
#include "isa/program.h"

namespace tpu::compiler {

namespace {

const char* const kOpKindNames[] = {
#define TPU_X(e, s) s,
    TPU_OP_KINDS(TPU_X)
#undef TPU_X
};
constexpr int kOpKindCount = sizeof(kOpKindNames) / sizeof(kOpKindNames[0]);

SourceLocation mark_of(const YAML::Node& n, const std::string& file) { return arch::yaml_location(n, file); }
std::string describe(const YAML::Node& n) { return arch::describe_yaml(n); }

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "|") + x;
  return s;
}

/// Reads typed values out of YAML nodes with file/line/column in every error.
struct Reader {
  std::string file;

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& expected) const {
    throw InputError(mark_of(n, file), key, expected, describe(n));
  }
  int64_t integer(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) const {
    std::string expected = fmt::format("an integer in [{}, {}]", lo, hi);
    if (!n.IsScalar()) fail(n, key, expected);
    const std::string& s = n.Scalar();
    std::string digits;
    for (char c : s) {
      if (c != '_') digits += c;
    }
    std::size_t pos = 0;
    long long v = 0;
    try {
      v = std::stoll(digits, &pos, 10);
    } catch (...) {
      fail(n, key, expected);
    }
    if (pos != digits.size() || v < lo || v > hi) fail(n, key, expected);
    return v;
  }
  double number(const YAML::Node& n, const std::string& key, double lo, double hi) const {
    std::string expected = fmt::format("a number in [{}, {}]", lo, hi);
    if (!n.IsScalar()) fail(n, key, expected);
    std::size_t pos = 0;
    double v = 0;
    try {
      v = std::stod(n.Scalar(), &pos);
    } catch (...) {
      fail(n, key, expected);
    }
    if (pos != n.Scalar().size() || !(v >= lo && v <= hi)) fail(n, key, expected);
    return v;
  }
  bool boolean(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "True" || s == "yes") return true;
      if (s == "false" || s == "False" || s == "no") return false;
    }
    fail(n, key, "true or false");
  }
  std::string name(const YAML::Node& n, const std::string& key) const {
    // "__" is reserved for the compiler's own names (weights, parameters, tables), and the
    // length leaves room for their suffixes.
    if (!n.IsScalar() || !isa::is_identifier(n.Scalar()) || n.Scalar().size() > kMaxUserName ||
        n.Scalar().find("__") != std::string::npos) {
      fail(n, key, fmt::format("a name ([A-Za-z_][A-Za-z0-9_]*, at most {} characters, no \"__\")", kMaxUserName));
    }
    return n.Scalar();
  }
  /// An int or a list of `count` ints.
  std::vector<int64_t> ints(const YAML::Node& n, const std::string& key, std::size_t count,
                            int64_t lo, int64_t hi) const {
    if (n.IsScalar()) return std::vector<int64_t>(count, integer(n, key, lo, hi));
    if (!n.IsSequence() || n.size() != count) {
      fail(n, key, fmt::format("an integer or a list of {} integers", count));
    }
    std::vector<int64_t> out;
    for (const auto& e : n) out.push_back(integer(e, key, lo, hi));
    return out;
  }
  std::vector<int64_t> dims(const YAML::Node& n, const std::string& key) const {
    if (!n.IsSequence() || n.size() < 1 || n.size() > 3) {
      fail(n, key, "a list of 1 to 3 dimensions ([C], [S, D] or [H, W, C])");
    }
    std::vector<int64_t> out;
    for (const auto& e : n) out.push_back(integer(e, key, 1, kMaxDim));
    return out;
  }
};

isa::Activation parse_activation(const Reader& r, const YAML::Node& n, const std::string& key) {
  if (n.IsScalar()) {
    for (int i = 0; i < isa::kActivationCount; ++i) {
      if (n.Scalar() == isa::kActivationNames[i]) return static_cast<isa::Activation>(i);
    }
  }
  r.fail(n, key, "none|relu|relu6|sigmoid|tanh|gelu");
}

// Keys each op kind accepts, besides name/op/input/inputs.
std::vector<std::string> keys_for(OpKind k) {
  switch (k) {
    case OpKind::kConv2d:
      return {"filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "activation"};
    case OpKind::kDepthwise:
      return {"kernel", "stride", "padding", "dilation", "multiplier", "bias", "activation"};
    case OpKind::kFullyConnected:
      return {"units", "bias", "activation"};
    case OpKind::kMatmul:
      return {"units", "bias", "activation", "transpose_b", "heads"};
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      return {"kernel", "stride", "padding", "global"};
    case OpKind::kAdd:
    case OpKind::kMul:
      return {"activation"};
    case OpKind::kSoftmax:
      return {"segment"};
    case OpKind::kLayerNorm:
      return {"eps"};
    case OpKind::kReshape:
      return {"shape"};
    default:
      return {};
  }
}

// Padding: an int, [top/bottom, left/right], [top, left, bottom, right], same or valid.
// `same` is resolved at shape inference (it depends on the input size).
struct PadSpec {
  bool same = false;
  int t = 0, l = 0, b = 0, r = 0;
};

Op parse_op(const Reader& r, const YAML::Node& n, std::size_t index, const std::string& prev) {
  std::string ctx = fmt::format("ops[{}]", index);
  if (!n.IsMap()) r.fail(n, ctx, "a mapping with name, op and the op's parameters");
  Op op;
  op.where = mark_of(n, r.file);
  if (!n["name"]) throw InputError(op.where, ctx + ".name", "a name for the op", "no name");
  op.name = r.name(n["name"], ctx + ".name");
  ctx = "ops." + op.name;
  if (!n["op"]) throw InputError(op.where, ctx + ".op", "an op kind", "no op");
  {
    const YAML::Node k = n["op"];
    bool found = false;
    for (int i = 0; i < kOpKindCount && k.IsScalar(); ++i) {
      if (k.Scalar() == kOpKindNames[i]) {
        op.kind = static_cast<OpKind>(i);
        found = true;
      }
    }
    if (!found) r.fail(k, ctx + ".op", join_names({std::begin(kOpKindNames), std::end(kOpKindNames)}));
    if (op.is_internal()) {
      r.fail(k, ctx + ".op", "an op of the model (all_reduce, all_gather and slice are inserted by tpusim run --pod)");
    }
  }
  std::vector<std::string> allowed = keys_for(op.kind);
  allowed.insert(allowed.end(), {"name", "op", "input", "inputs"});
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw InputError(mark_of(it->first, r.file), ctx + "." + key,
                       fmt::format("a key of {} ({})", kOpKindNames[static_cast<int>(op.kind)],
                                   join_names(allowed)),
                       "'" + key + "'");
    }
  }
  if (n["input"] && n["inputs"]) {
    throw InputError(mark_of(n["inputs"], r.file), ctx + ".inputs", "input or inputs", "both");
  }
  if (n["input"]) {
    op.inputs.push_back(r.name(n["input"], ctx + ".input"));
  } else if (n["inputs"]) {
    const YAML::Node l = n["inputs"];
    if (!l.IsSequence() || l.size() < 1 || l.size() > 64) r.fail(l, ctx + ".inputs", "a list of 1 to 64 tensor names");
    for (const auto& e : l) op.inputs.push_back(r.name(e, ctx + ".inputs"));
  } else if (!prev.empty()) {
    op.inputs.push_back(prev);
  } else {
    throw InputError(op.where, ctx + ".input", "an input tensor (the first op has no previous op)", "none");
  }

  auto get = [&](const char* key) { return n[key]; };
  if (auto k = get("kernel")) {
    auto v = r.ints(k, ctx + ".kernel", 2, 1, 255);
    op.kh = static_cast<int>(v[0]);
    op.kw = static_cast<int>(v[1]);
  }
  if (auto s = get("stride")) {
    auto v = r.ints(s, ctx + ".stride", 2, 1, 15);
    op.sh = static_cast<int>(v[0]);
    op.sw = static_cast<int>(v[1]);
  } else if (op.kind == OpKind::kMaxPool || op.kind == OpKind::kAvgPool) {
    op.sh = std::min(op.kh, 255);
    op.sw = std::min(op.kw, 255);
  }
  if (auto d = get("dilation")) {
    auto v = r.ints(d, ctx + ".dilation", 2, 1, 64);
    op.dh = static_cast<int>(v[0]);
    op.dw = static_cast<int>(v[1]);
  }
  if (auto p = get("padding")) {
    PadSpec ps;
    if (p.IsScalar() && (p.Scalar() == "same" || p.Scalar() == "valid")) {
      ps.same = p.Scalar() == "same";
    } else if (p.IsSequence() && p.size() == 4) {
      auto v = r.ints(p, ctx + ".padding", 4, 0, 255);
      ps = PadSpec{false, int(v[0]), int(v[1]), int(v[2]), int(v[3])};
    } else {
      if (!p.IsScalar() && !(p.IsSequence() && p.size() == 2)) {
        r.fail(p, ctx + ".padding", "same, valid, an integer, [vertical, horizontal] or [top, left, bottom, right]");
      }
      auto v = r.ints(p, ctx + ".padding", 2, 0, 255);
      ps = PadSpec{false, int(v[0]), int(v[1]), int(v[0]), int(v[1])};
    }
    op.same = ps.same;
    op.pad_top = ps.t;
    op.pad_left = ps.l;
    op.pad_bottom = ps.b;
    op.pad_right = ps.r;
  }
  if (auto g = get("groups")) op.groups = static_cast<int>(r.integer(g, ctx + ".groups", 1, 65535));
  if (auto m = get("multiplier")) op.multiplier = static_cast<int>(r.integer(m, ctx + ".multiplier", 1, 256));
  if (auto g = get("global")) op.global = r.boolean(g, ctx + ".global");
  if (auto f = get("filters")) op.filters = r.integer(f, ctx + ".filters", 1, kMaxDim);
  if (auto u = get("units")) op.filters = r.integer(u, ctx + ".units", 1, kMaxDim);
  if (auto b = get("bias")) op.bias = r.boolean(b, ctx + ".bias");
  if (op.kind == OpKind::kMatmul && !get("bias")) op.bias = false;
  if (auto a = get("activation")) op.activation = parse_activation(r, a, ctx + ".activation");
  if (auto t = get("transpose_b")) op.transpose_b = r.boolean(t, ctx + ".transpose_b");
  if (auto h = get("heads")) op.heads = static_cast<int>(r.integer(h, ctx + ".heads", 1, 4096));
  if (auto s = get("segment")) op.segment = r.integer(s, ctx + ".segment", 1, kMaxDim);
  if (auto e = get("eps")) op.eps = r.number(e, ctx + ".eps", 1e-12, 1.0);
  if (auto s = get("shape")) op.reshape = r.dims(s, ctx + ".shape");

  if ((op.kind == OpKind::kConv2d) && op.filters == 0) {
    throw InputError(op.where, ctx + ".filters", "the number of output channels", "none");
  }
  if (op.kind == OpKind::kFullyConnected && op.filters == 0) {
    throw InputError(op.where, ctx + ".units", "the number of outputs", "none");
  }
  if (op.kind == OpKind::kReshape && op.reshape.empty()) {
    throw InputError(op.where, ctx + ".shape", "the new per-sample shape", "none");
  }
  if (op.global && (get("kernel") || get("stride") || get("padding"))) {
    throw InputError(op.where, ctx + ".global", "a global pool without kernel, stride or padding",
                     "global with a window");
  }
  if ((op.kind == OpKind::kConv2d || op.kind == OpKind::kDepthwise ||
       op.kind == OpKind::kMaxPool || op.kind == OpKind::kAvgPool) &&
      !get("kernel") && !op.global) {
    throw InputError(op.where, ctx + ".kernel", "the window size", "none");
  }
  return op;
}

std::string read_file_bounded(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(SourceLocation{path, 0, 0}, "cannot open file");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxWorkloadBytes) {
      throw InputError(SourceLocation{path, 0, 0}, "<file>", "a workload of at most 4 MiB",
                       "a larger file");
    }
  }
  return text;
}

// Padding for `same`: TensorFlow's rule (the extra row/column goes at the bottom/right).
void resolve_same(int in, int k, int s, int d, int* before, int* after) {
  int out = (in + s - 1) / s;
  int total = std::max((out - 1) * s + (k - 1) * d + 1 - in, 0);
  *before = total / 2;
  *after = total - *before;
}

}  // namespace

const char* op_kind_name(OpKind k) { return kOpKindNames[static_cast<int>(k)]; }

Shape Shape::of(std::vector<int64_t> d) {
  Shape s;
  s.dims = std::move(d);
  if (s.dims.size() == 1) {
    s.c = s.dims[0];
  } else if (s.dims.size() == 2) {
    s.w = s.dims[0];
    s.c = s.dims[1];
  } else if (s.dims.size() == 3) {
    s.h = s.dims[0];
    s.w = s.dims[1];
    s.c = s.dims[2];
  }
  return s;
}

std::string Shape::str() const {
  std::string s;
  for (auto d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

bool Op::is_matrix() const {
  return kind == OpKind::kConv2d || kind == OpKind::kDepthwise ||
         kind == OpKind::kFullyConnected || kind == OpKind::kMatmul;
}

int64_t Workload::macs_per_sample() const {
  int64_t total = 0;
  for (const auto& op : ops) total += op.macs;
  return total;
}

const Shape* Workload::tensor_shape(const std::string& name) const {
  for (const auto& in : inputs) {
    if (in.name == name) return &in.shape;
  }
  for (const auto& op : ops) {
    if (op.name == name) return &op.out;
  }
  return nullptr;
}

namespace {

[[noreturn]] void shape_error(const Op& op, const std::string& key, const std::string& expected,
                              const std::string& found) {
  throw InputError(op.where, "ops." + op.name + (key.empty() ? "" : "." + key), expected, found);
}

int64_t window_out(const Op& op, int64_t in, int k, int s, int d, int pb, int pa,
                   const char* axis) {
  int64_t span = int64_t{k - 1} * d + 1;
  if (in + pb + pa < span) {
    shape_error(op, "kernel", fmt::format("a window that fits the padded input {} ({} + {} + {})",
                                          axis, in, pb, pa),
                fmt::format("a window spanning {}", span));
  }
  return (in + pb + pa - span) / s + 1;
}

void infer_op(Workload& w, Op& op, const std::map<std::string, Shape>& tensors) {
  op.in.clear();
  for (const auto& name : op.inputs) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      shape_error(op, "input", "a workload input or an earlier op's name", "'" + name + "'");
    }
    op.in.push_back(it->second);
  }
  auto need_inputs = [&](std::size_t lo, std::size_t hi) {
    if (op.in.size() < lo || op.in.size() > hi) {
      shape_error(op, "inputs", lo == hi ? fmt::format("{} input(s)", lo)
                                         : fmt::format("{} to {} inputs", lo, hi),
                  fmt::format("{}", op.in.size()));
    }
  };
  const Shape& x = op.in.empty() ? op.out : op.in[0];
  switch (op.kind) {
    case OpKind::kConv2d:
    case OpKind::kDepthwise:
    case OpKind::kMaxPool:
    case OpKind::kAvgPool: {
      need_inputs(1, 1);
      if (op.global) {
        op.kh = static_cast<int>(std::min<int64_t>(x.h, 255));
        op.kw = static_cast<int>(std::min<int64_t>(x.w, 255));
        op.sh = op.sw = 1;
        op.pad_top = op.pad_left = op.pad_bottom = op.pad_right = 0;
        if (x.h > 255 || x.w > 255) shape_error(op, "global", "an input of at most 255 x 255", x.str());
      }
      if (op.same) {
        resolve_same(static_cast<int>(x.h), op.kh, op.sh, op.dh, &op.pad_top, &op.pad_bottom);
        resolve_same(static_cast<int>(x.w), op.kw, op.sw, op.dw, &op.pad_left, &op.pad_right);
      }
      int64_t oh = window_out(op, x.h, op.kh, op.sh, op.dh, op.pad_top, op.pad_bottom, "height");
      int64_t ow = window_out(op, x.w, op.kw, op.sw, op.dw, op.pad_left, op.pad_right, "width");
      int64_t oc = x.c;
      if (op.kind == OpKind::kConv2d) {
        if (x.c % op.groups != 0 || op.filters % op.groups != 0) {
          shape_error(op, "groups", fmt::format("a divisor of the input channels ({}) and filters ({})", x.c, op.filters),
                      std::to_string(op.groups));
        }
        oc = op.filters;
        if (static_cast<double>(oh) * ow * oc * op.kh * op.kw * (x.c / op.groups) > 1e18) {
          shape_error(op, "", "at most 10^18 MACs per sample", "more");
        }
        op.macs = oh * ow * oc * op.kh * op.kw * (x.c / op.groups);
      } else if (op.kind == OpKind::kDepthwise) {
        oc = x.c * op.multiplier;
        op.filters = oc;
        op.groups = static_cast<int>(std::min<int64_t>(x.c, 65535));
        op.macs = oh * ow * oc * op.kh * op.kw;
      } else {
        op.macs = 0;
      }
      if (x.dims.size() == 3 || oh != 1) {
        op.out = Shape::of({oh, ow, oc});
      } else if (x.dims.size() == 2) {
        op.out = Shape::of({ow, oc});
      } else {
        op.out = ow == 1 ? Shape::of({oc}) : Shape::of({ow, oc});
      }
      break;
    }
    case OpKind::kFullyConnected:
    case OpKind::kMatmul: {
      if (op.in.size() == 1) {  // one input: a weight matrix of `units` columns
        if (op.filters == 0) shape_error(op, "units", "the number of outputs (or a second input)", "none");
        std::vector<int64_t> d = x.dims;
        d.back() = op.filters;
        op.out = Shape::of(d);
        if (static_cast<double>(x.pixels()) * x.c * op.filters > 1e18) shape_error(op, "", "at most 10^18 MACs per sample", "more");
        op.macs = x.pixels() * x.c * op.filters;
        break;
      }
      need_inputs(2, 2);
      const Shape& b = op.in[1];
      if (x.c % op.heads != 0 || b.c % op.heads != 0) {
        shape_error(op, "heads", "a divisor of both inputs' last dimension",
                    fmt::format("{} for {} and {}", op.heads, x.c, b.c));
      }
      int64_t k = x.c / op.heads;
      int64_t n = 0;
      if (op.transpose_b) {
        if (b.c / op.heads != k) {
          shape_error(op, "inputs", fmt::format("b with {} values per head (a's)", k),
                      fmt::format("{}", b.c / op.heads));
        }
        n = b.pixels();
      } else {
        if (b.pixels() != k) {
          shape_error(op, "inputs", fmt::format("b with {} rows (a's values per head)", k),
                      fmt::format("{} rows", b.pixels()));
        }
        n = b.c / op.heads;
      }
      std::vector<int64_t> d = x.dims;
      d.back() = n * op.heads;
      op.out = Shape::of(d);
      op.macs = x.pixels() * op.heads * k * n;
      break;
    }
    case OpKind::kAdd:
    case OpKind::kMul: {
      need_inputs(2, 2);
      if (op.in[0].elements() != op.in[1].elements() || op.in[0].c != op.in[1].c) {
        shape_error(op, "inputs", "two tensors of one shape",
                    op.in[0].str() + " and " + op.in[1].str());
      }
      op.out = op.in[0];
      op.macs = 0;
      break;
    }
    case OpKind::kRelu:
    case OpKind::kRelu6:
    case OpKind::kGelu:
    case OpKind::kSigmoid:
    case OpKind::kTanh:
    case OpKind::kLayerNorm:
      need_inputs(1, 1);
      op.out = x;
      op.macs = 0;
      break;
    case OpKind::kSoftmax:
      need_inputs(1, 1);
      if (op.segment == 0) op.segment = x.c;
      if (x.c % op.segment != 0) {
        shape_error(op, "segment", fmt::format("a divisor of the last dimension ({})", x.c),
                    std::to_string(op.segment));
      }
      op.out = x;
      op.macs = 0;
      break;
    case OpKind::kConcat: {
      need_inputs(2, 64);
      int64_t c = 0;
      for (const auto& s : op.in) {
        if (s.h != x.h || s.w != x.w) {
          shape_error(op, "inputs", "tensors that differ only in the last dimension",
                      x.str() + " and " + s.str());
        }
        c += s.c;
      }
      std::vector<int64_t> d = x.dims;
      d.back() = c;
      op.out = Shape::of(d);
      op.macs = 0;
      break;
    }
    case OpKind::kAllReduce:
      need_inputs(1, 1);
      op.out = x;
      op.macs = 0;
      break;
    case OpKind::kSlice: {
      need_inputs(1, 1);
      if (op.slice_begin < 0 || op.filters < 1 || op.slice_begin + op.filters > x.c) {
        shape_error(op, "slice", fmt::format("a range of the last dimension ({})", x.c),
                    fmt::format("[{}, {})", op.slice_begin, op.slice_begin + op.filters));
      }
      std::vector<int64_t> d = x.dims;
      d.back() = op.filters;
      op.out = Shape::of(d);
      op.macs = 0;
      break;
    }
    case OpKind::kAllGather: {
      need_inputs(1, 1);
      std::vector<int64_t> d = x.dims;
      d.back() *= op.parts;
      op.out = Shape::of(d);
      op.macs = 0;
      break;
    }
    case OpKind::kReshape: {
      need_inputs(1, 1);
      Shape s = Shape::of(op.reshape);
      if (s.elements() != x.elements()) {
        shape_error(op, "shape", fmt::format("{} elements (input {})", x.elements(), x.str()),
                    fmt::format("{} ({})", s.str(), s.elements()));
      }
      op.out = s;
      op.macs = 0;
      break;
    }
  }
  if (op.out.elements() > kMaxTensorElements / std::max<int64_t>(w.batch, 1)) {
    shape_error(op, "", "a tensor of at most 2^32 elements per batch", op.out.str());
  }
  if (op.useful_macs >= 0) op.macs = op.useful_macs;
}

}  // namespace

void infer_shapes(Workload& w) {
  std::map<std::string, Shape> tensors;
  for (const auto& in : w.inputs) {
    if (static_cast<double>(in.shape.elements()) * static_cast<double>(w.batch) > static_cast<double>(kMaxTensorElements)) {
      throw InputError(in.where, "inputs." + in.name + ".shape", "a tensor of at most 2^32 elements per batch",
                       in.shape.str() + fmt::format(" x batch {}", w.batch));
    }
    tensors[in.name] = in.shape;
  }
  for (auto& op : w.ops) {
    infer_op(w, op, tensors);
    tensors[op.name] = op.out;
  }
}

// yaml-cpp keeps every entry of a mapping that repeats a key and a lookup finds the first:
// `batch: 1` then `batch: 2` would silently run batch 1. Every mapping of the document is
// checked once; aliases are walked again each time they are used, so the walk is bounded.
void reject_repeated_keys(const YAML::Node& root, const std::string& file) {
  constexpr int64_t kMaxNodes = 2'000'000;
  int64_t budget = kMaxNodes;
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& n, const std::string& path) {
    if (--budget < 0) {
      throw InputError(mark_of(n, file), path.empty() ? "<document>" : path,
                       fmt::format("at most {} YAML nodes", kMaxNodes), "more (alias expansion?)");
    }
    if (n.IsMap()) {
      std::set<std::string> seen;
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (!it->first.IsScalar()) continue;  // reported where the key is read
        const std::string& key = it->first.Scalar();
        std::string sub = path.empty() ? key : path + "." + key;
        if (!seen.insert(key).second) throw InputError(mark_of(it->first, file), sub, "each key once", "it given twice");
        walk(it->second, sub);
      }
    } else if (n.IsSequence()) {
      std::size_t i = 0;
      for (auto it = n.begin(); it != n.end(); ++it) walk(*it, fmt::format("{}[{}]", path, i++));
    }
  };
  walk(root, "");
}

Workload parse_workload_yaml(const std::string& text, const std::string& file) {
  if (text.size() > kMaxWorkloadBytes) {
    throw InputError(SourceLocation{file, 0, 0}, "<file>", "a workload of at most 4 MiB", "a larger text");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourceLocation where{file, e.mark.is_null() ? 0 : e.mark.line + 1,
                         e.mark.is_null() ? 0 : e.mark.column + 1};
    throw InputError(where, "YAML syntax error: " + e.msg);
  }
  Reader r{file};
  if (!root.IsMap()) r.fail(root, "<document>", "a mapping with name, inputs and ops");
  static const std::vector<std::string> top = {"name", "batch", "dtype", "seed", "inputs", "ops", "outputs", "description"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (std::find(top.begin(), top.end(), key) == top.end()) {
      throw InputError(mark_of(it->first, file), key, "a workload key (" + join_names(top) + ")",
                       "'" + key + "'");
    }
  }
  reject_repeated_keys(root, file);
  Workload w;
  w.file = file;
  if (!root["name"]) throw InputError(SourceLocation{file, 1, 1}, "name", "the workload's name", "none");
  w.name = r.name(root["name"], "name");
  if (root["batch"]) w.batch = r.integer(root["batch"], "batch", 1, kMaxBatch);
  if (root["seed"]) w.seed = static_cast<uint64_t>(r.integer(root["seed"], "seed", 0, INT64_MAX));
  if (root["dtype"]) {
    const YAML::Node d = root["dtype"];
    if (d.IsScalar() && d.Scalar() == "int8") {
      w.dtype = isa::MatType::kInt8;
    } else if (d.IsScalar() && d.Scalar() == "bf16") {
      w.dtype = isa::MatType::kBf16;
    } else {
      r.fail(d, "dtype", "int8|bf16");
    }
  }
  const YAML::Node ins = root["inputs"];
  if (!ins || !ins.IsSequence() || ins.size() == 0 || ins.size() > 64) {
    if (!ins) throw InputError(SourceLocation{file, 1, 1}, "inputs", "a list of input tensors", "none");
    r.fail(ins, "inputs", "a list of 1 to 64 input tensors {name, shape}");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < ins.size(); ++i) {
    const YAML::Node n = ins[i];
    std::string ctx = fmt::format("inputs[{}]", i);
    if (!n.IsMap() || !n["name"] || !n["shape"] || n.size() != 2) {
      r.fail(n, ctx, "a mapping {name, shape}");
    }
    WorkloadInput in;
    in.name = r.name(n["name"], ctx + ".name");
    in.shape = Shape::of(r.dims(n["shape"], ctx + ".shape"));
    in.where = mark_of(n, file);
    if (!names.insert(in.name).second) r.fail(n["name"], ctx + ".name", "a name not used before");
    w.inputs.push_back(in);
  }
  const YAML::Node ops = root["ops"];
  if (!ops) throw InputError(SourceLocation{file, 1, 1}, "ops", "a list of ops", "none");
  if (!ops.IsSequence() || ops.size() == 0 || ops.size() > kMaxOps) {
    r.fail(ops, "ops", fmt::format("a list of 1 to {} ops", kMaxOps));
  }
  std::string prev = w.inputs.front().name;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Op op = parse_op(r, ops[i], i, prev);
    if (!names.insert(op.name).second) {
      r.fail(ops[i]["name"], "ops[" + std::to_string(i) + "].name", "a name not used before");
    }
    prev = op.name;
    w.ops.push_back(std::move(op));
  }
  if (root["outputs"]) {
    const YAML::Node o = root["outputs"];
    if (!o.IsSequence() || o.size() == 0) r.fail(o, "outputs", "a list of tensor names");
    for (const auto& e : o) {
      std::string n = r.name(e, "outputs");
      if (!names.count(n) || std::any_of(w.inputs.begin(), w.inputs.end(), [&](const auto& x) { return x.name == n; })) {
        r.fail(e, "outputs", "the name of an op");
      }
      w.outputs.push_back(n);
    }
  } else {
    w.outputs.push_back(w.ops.back().name);
  }
  // `same` padding depends on the input size: infer_op resolves it.
  infer_shapes(w);
  return w;
}

namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  for (auto& s : out) {
    std::size_t b = s.find_first_not_of(" \t");
    std::size_t e = s.find_last_not_of(" \t");
    s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A SCALE-Sim layer name as an identifier: other characters become '_', no "__" (reserved),
// at most 80 characters (room for a "_N" suffix and the compiler's own suffixes).
std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    char x = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (x == '_' && !out.empty() && out.back() == '_') continue;
    out += x;
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "layer_" + out;
  if (out.size() > 80) out = out.substr(0, 80);
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

}  // namespace

Workload parse_scalesim_csv(const std::string& text, const std::string& file) {
  if (text.size() > kMaxWorkloadBytes) {
    throw InputError(SourceLocation{file, 0, 0}, "<file>", "a topology of at most 4 MiB", "a larger text");
  }
  Workload w;
  w.file = file;
  w.independent_layers = true;
  std::string stem = file.substr(file.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find('.'));
  w.name = isa::is_identifier(sanitize(stem)) ? sanitize(stem) : "topology";
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  enum { kUnknown, kConv, kGemm } form = kUnknown;
  std::set<std::string> names;
  std::map<std::string, int64_t> repeats;
  while (std::getline(in, line)) {
    ++lineno;
    std::vector<std::string> f = split_csv(line);
    if (f.empty() || (f.size() == 1 && f[0].empty()) || (!f[0].empty() && f[0][0] == '#')) continue;
    SourceLocation where{file, lineno, 1};
    if (form == kUnknown) {
      std::string h1 = f.size() > 1 ? lower(f[1]) : "";
      if (h1.find("ifmap") != std::string::npos && f.size() >= 8) {
        form = kConv;
      } else if ((h1 == "m") && f.size() >= 4) {
        form = kGemm;
      } else {
        throw InputError(where, "header",
                         "a SCALE-Sim header: 'Layer name, IFMAP Height, IFMAP Width, Filter Height, "
                         "Filter Width, Channels, Num Filter, Strides' or 'Layer, M, N, K'",
                         "'" + line.substr(0, 80) + "'");
      }
      continue;
    }
    std::size_t need = form == kConv ? 8 : 4;
    if (f.size() < need) {
      throw InputError(where, "row", fmt::format("{} comma-separated fields", need),
                       fmt::format("{}", f.size()));
    }
    auto num = [&](std::size_t i, const char* col) {
      const std::string& s = f[i];
      std::size_t pos = 0;
      long long v = 0;
      try {
        v = std::stoll(s, &pos);
      } catch (...) {
        pos = 0;
      }
      if (s.empty() || pos != s.size() || v < 1 || v > kMaxDim) {
        throw InputError(SourceLocation{file, lineno, 0}, col,
                         fmt::format("an integer in [1, {}]", kMaxDim), "'" + s + "'");
      }
      return static_cast<int64_t>(v);
    };
    if (w.ops.size() >= kMaxOps) {
      throw InputError(where, "row", fmt::format("at most {} layers", kMaxOps), "more");
    }
    // Unique names: a repeated base name gets _2, _3, ... (one counter per base name).
    std::string base = sanitize(f[0]), name = base;
    if (names.count(name)) {
      int64_t& k = repeats[base];
      do {
        name = base + "_" + std::to_string(++k + 1);
      } while (names.count(name));
    }
    names.insert(name);
    Op op;
    op.name = name;
    op.where = where;
    op.bias = false;
    WorkloadInput input;
    input.name = name + "__in";  // "__": no layer name can take it
    input.where = where;
    if (form == kConv) {
      int64_t ih = num(1, "IFMAP Height"), iw = num(2, "IFMAP Width");
      int64_t fh = num(3, "Filter Height"), fw = num(4, "Filter Width");
      int64_t ch = num(5, "Channels"), nf = num(6, "Num Filter"), s = num(7, "Strides");
      if (fh > 255 || fw > 255 || s > 15) {
        throw InputError(where, "Filter Height/Filter Width/Strides",
                         "filters of at most 255 and strides of at most 15",
                         fmt::format("{}x{} stride {}", fh, fw, s));
      }
      input.shape = Shape::of({ih, iw, ch});
      op.kind = OpKind::kConv2d;
      op.kh = static_cast<int>(fh);
      op.kw = static_cast<int>(fw);
      op.sh = op.sw = static_cast<int>(s);
      op.filters = nf;
    } else {
      int64_t m = num(1, "M"), n = num(2, "N"), k = num(3, "K");
      input.shape = Shape::of({m, k});
      op.kind = OpKind::kMatmul;
      op.filters = n;
    }
    op.inputs = {input.name};
    w.inputs.push_back(input);
    w.outputs.push_back(op.name);
    w.ops.push_back(op);
  }
  if (w.ops.empty()) throw InputError(SourceLocation{file, lineno, 0}, "rows", "at least one layer", "none");
  infer_shapes(w);
  return w;
}

Workload load_workload(const std::string& path) {
  std::string text = read_file_bounded(path);
  std::string ext = path.size() >= 4 ? lower(path.substr(path.size() - 4)) : "";
  if (ext == ".csv") return parse_scalesim_csv(text, path);
  std::string ext5 = path.size() >= 5 ? lower(path.substr(path.size() - 5)) : "";
  if (ext5 == ".yaml" || ext == ".yml") return parse_workload_yaml(text, path);
  throw InputError(SourceLocation{path, 0, 0}, "--workload", "a .yaml/.yml workload or a .csv topology",
                   "'" + path + "'");
}

}  // namespace tpu::compiler
