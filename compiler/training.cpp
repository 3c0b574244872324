#include "compiler/training.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "compiler/params.h"

namespace tpu::compiler {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kForward:
      return "forward";
    case Phase::kBackward:
      return "backward";
    case Phase::kOptimizer:
      return "optimizer";
  }
  return "forward";
}

Phase phase_of(const std::string& name) {
  // Layers the compiler adds for an op of any phase take that op's phase: a host input's
  // staging (`inputs__from_host`, `x__from_host`) and a tensor-parallel all-gather (`__ag`).
  for (const std::string suffix : {"__from_host", "__ag"}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return phase_of(name.substr(0, name.size() - suffix.size()));
    }
  }
  if (name.find("__sgd") != std::string::npos) return Phase::kOptimizer;
  if (name.find("__") != std::string::npos) return Phase::kBackward;
  return Phase::kForward;
}

WeightGradSplit weight_grad_split(int64_t n, int64_t k, int64_t batch) {
  int64_t hi = std::max(n, k), lo = std::min(n, k);
  WeightGradSplit s;
  if (hi % batch == 0) {
    s.m = hi;
  } else if (lo % batch == 0) {
    s.m = lo;
  } else {
    s.m = hi;
  }
  s.out = s.m == n ? k : n;
  s.rows_per_sample = (s.m + batch - 1) / batch;
  return s;
}

namespace {

/// Builds the training workload op by op (names with the reserved "__", so never through the
/// parser).
class Builder {
 public:
  Builder(const Workload& fwd, int64_t batch, const TrainOptions& opt)
      : f_(fwd), opt_(opt), b_(batch) {
    t_ = fwd;
    t_.name = fwd.name + "_train";
    t_.batch = batch;
    // A SCALE-Sim topology's rows read generated stand-ins for the previous layer's output:
    // only the first row reads the network's input.
    if (fwd.independent_layers) {
      if (!fwd.ops.empty() && !fwd.ops.front().inputs.empty())
        network_inputs_.insert(fwd.ops.front().inputs[0]);
    } else {
      for (const auto& in : fwd.inputs) network_inputs_.insert(in.name);
    }
  }

  Workload run() {
    for (auto it = f_.ops.rbegin(); it != f_.ops.rend(); ++it) backward(*it);
    if (opt_.optimizer) {
      for (const auto& u : updates_) optimizer(u);
    }
    // Outputs: the forward ones and every transform result no later op reads.
    std::set<std::string> read;
    for (const auto& op : t_.ops) read.insert(op.inputs.begin(), op.inputs.end());
    for (std::size_t i = f_.ops.size(); i < t_.ops.size(); ++i) {
      if (!read.count(t_.ops[i].name)) {
        t_.outputs.push_back(t_.ops[i].name);
        t_.on_device.insert(t_.ops[i].name);
      }
    }
    infer_shapes(t_);
    return std::move(t_);
  }

 private:
  struct Update {
    const Op* op;
    std::string grad;           ///< the weight-gradient tensor
    std::vector<int64_t> dims;  ///< its per-sample shape
  };

  std::string input(const Op& at, const std::string& name, std::vector<int64_t> dims) {
    WorkloadInput in;
    in.name = name;
    in.shape = Shape::of(std::move(dims));
    in.where = at.where;
    t_.inputs.push_back(in);
    t_.on_device.insert(name);
    return name;
  }
  Op& add(const Op& at, const std::string& name, OpKind kind, std::vector<std::string> inputs) {
    Op op;
    op.name = name;
    op.kind = kind;
    op.inputs = std::move(inputs);
    op.where = at.where;
    op.bias = false;
    t_.ops.push_back(std::move(op));
    return t_.ops.back();
  }
  bool needs_grad(const std::string& tensor) const { return !network_inputs_.count(tensor); }

  /// The gradient arriving at `op`'s output: a seeded LAYER__dy, times the derivative of a
  /// fused activation (LAYER__dact, one mul by a seeded mask) when there is one.
  std::string output_grad(const Op& op) {
    std::string dy = input(op, op.name + "__dy", op.out.dims);
    if (op.activation == isa::Activation::kNone || !opt_.vector_backward) return dy;
    std::string mask = input(op, op.name + "__mask", op.out.dims);
    add(op, op.name + "__dact", OpKind::kMul, {dy, mask});
    return op.name + "__dact";
  }

  void backward(const Op& op) {
    if (op.is_matrix()) {
      if (op.kind == OpKind::kMatmul && op.inputs.size() == 2) {
        matmul2(op);
      } else if (op.kind == OpKind::kDepthwise) {
        depthwise(op);
      } else {
        gemm(op);
      }
      return;
    }
    if (!opt_.vector_backward) return;
    const Shape& x = op.in.at(0);
    switch (op.kind) {
      case OpKind::kRelu:
      case OpKind::kRelu6:
      case OpKind::kGelu:
      case OpKind::kSigmoid:
      case OpKind::kTanh:
        // dX = dY x f'(X): one mul by a seeded mask of the output's shape.
        if (needs_grad(op.inputs[0])) {
          add(op, op.name + "__dx", OpKind::kMul,
              {input(op, op.name + "__dy", op.out.dims),
               input(op, op.name + "__mask", op.out.dims)});
        }
        break;
      case OpKind::kAdd: {
        // The gradient passes through an add; where the two branches met at a fork, their
        // gradients are summed: one add of the output's size stands for that sum.
        std::string g = output_grad(op);
        if (needs_grad(op.inputs[0]) || needs_grad(op.inputs[1])) {
          add(op, op.name + "__dx", OpKind::kAdd, {g, input(op, op.name + "__dx_in", op.out.dims)});
        }
        break;
      }
      case OpKind::kMul: {
        // dA = dY x B, dB = dY x A.
        std::string g = output_grad(op);
        if (needs_grad(op.inputs[0])) {
          add(op, op.name + "__dx", OpKind::kMul,
              {g, input(op, op.name + "__dx_in", op.in[1].dims)});
        }
        if (needs_grad(op.inputs[1])) {
          add(op, op.name + "__dxb", OpKind::kMul,
              {g, input(op, op.name + "__dxb_in", op.in[0].dims)});
        }
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
        // dX has the input's size: the output gradient routed to the window maxima (or spread
        // over the window): one mul over the input's elements.
        if (needs_grad(op.inputs[0])) {
          add(op, op.name + "__dx", OpKind::kMul,
              {input(op, op.name + "__dx_in", x.dims), input(op, op.name + "__mask", x.dims)});
        }
        break;
      case OpKind::kSoftmax:
      case OpKind::kLayerNorm: {
        // A row reduction and a few elementwise passes: the same row op on the gradient.
        if (!needs_grad(op.inputs[0])) break;
        Op& d = add(op, op.name + "__dx", op.kind, {input(op, op.name + "__dy", op.out.dims)});
        d.segment = op.segment;
        d.eps = op.eps;
        break;
      }
      default:  // concat (a split), reshape: no arithmetic
        break;
    }
  }

  /// conv2d, fully_connected and one-input matmul: a GEMM of R x Kin x N per sample and group.
  void gemm(const Op& op) {
    const Shape& x = op.in.at(0);
    const Shape& y = op.out;
    const bool conv = op.kind == OpKind::kConv2d;
    const int64_t g = conv ? op.groups : 1;
    const int64_t kin = fan_in(op);  // per group: kh x kw x C / groups, or C
    const int64_t n = y.c;           // filters
    const int64_t rows = y.pixels();
    std::string grad = output_grad(op);

    if (needs_grad(op.inputs[0])) {
      // Input gradient: dX = dY W^T. A stride-1, undilated convolution whose output keeps the
      // input's size is the convolution of dY with the flipped kernel (padding k-1-p), which
      // yields dX itself; any other convolution yields the im2col columns of dX (R x Kin per
      // group, summed into dX by col2im, not modelled), as a 1x1 convolution (grouped) or a
      // fully_connected layer.
      int pt = op.kh - 1 - op.pad_top, pb = op.kh - 1 - op.pad_bottom;
      int pl = op.kw - 1 - op.pad_left, pr = op.kw - 1 - op.pad_right;
      bool transposed = conv && op.sh == 1 && op.sw == 1 && op.dh == 1 && op.dw == 1 &&
                        x.dims.size() == 3 && y.h == x.h && y.w == x.w &&
                        std::min({pt, pb, pl, pr}) >= 0 && std::max({pt, pb, pl, pr}) <= 255;
      if (transposed) {
        Op& d = add(op, op.name + "__dx", OpKind::kConv2d, {grad});
        d.kh = op.kh;
        d.kw = op.kw;
        d.pad_top = pt;
        d.pad_bottom = pb;
        d.pad_left = pl;
        d.pad_right = pr;
        d.groups = op.groups;
        d.filters = x.c;
      } else if (g > 1) {
        Op& d = add(op, op.name + "__dx", OpKind::kConv2d, {grad});
        d.groups = op.groups;
        d.filters = kin * g;
      } else {
        add(op, op.name + "__dx", OpKind::kFullyConnected, {grad}).filters = kin;
      }
    }

    // Weight gradient, per group dW^T = dY^T X (N x bR x Kin), or dW = X^T dY: the
    // contraction runs over the whole batch, so the GEMM's rows are split over the samples:
    // each sample holds M/b rows of the streamed operand (M x bR), the stationary operand
    // (bR x out, generated from the op's name) is shared.
    WeightGradSplit s = weight_grad_split(n / g, kin, b_);
    std::string in = input(op, op.name + "__dw_in", {s.rows_per_sample, g * b_ * rows});
    Op* d = nullptr;
    if (g == 1) {
      d = &add(op, op.name + "__dw", OpKind::kFullyConnected, {in});
      d->filters = s.out;
    } else {
      d = &add(op, op.name + "__dw", OpKind::kConv2d, {in});
      d->groups = op.groups;
      d->filters = g * s.out;
    }
    if (s.rows_per_sample * b_ != s.m) d->useful_macs = g * s.m * rows * s.out;
    updates_.push_back({&op, op.name + "__dw", {s.rows_per_sample, g * s.out}});
  }

  /// Depthwise convolution: per channel, dX and dW each take as many MACs as the forward op,
  /// modelled as depthwise ops of the forward's geometry (the diagonal mapping the forward
  /// gets). When the output keeps the input's shape the input gradient reads dY itself.
  void depthwise(const Op& op) {
    const Shape& x = op.in.at(0);
    std::string grad = output_grad(op);
    auto proxy = [&](const std::string& name, const std::string& in) {
      Op d = op;
      d.name = name;
      d.inputs = {in};
      d.bias = false;
      d.activation = isa::Activation::kNone;
      d.in.clear();
      t_.ops.push_back(std::move(d));
    };
    if (needs_grad(op.inputs[0])) {
      bool same = op.out.dims == x.dims;
      proxy(op.name + "__dx", same ? grad : input(op, op.name + "__dx_in", x.dims));
    }
    proxy(op.name + "__dw", input(op, op.name + "__dw_in", x.dims));
    // The update runs over the kh x kw x C x multiplier weights, split over the batch.
    int64_t weights = int64_t{op.kh} * op.kw * op.out.c;
    std::vector<int64_t> dims = {(weights + b_ - 1) / b_};
    updates_.push_back({&op, input(op, op.name + "__dw_g", dims), dims});
  }

  /// Two-input matmul Y = A B per sample and head (A [P, heads K], B [K, heads N] or, with
  /// transpose_b, [N, heads K]): dA = dY B^T and dB = A^T dY (or dY^T A), two two-input
  /// matmuls of the forward's MACs each, no weights to update.
  void matmul2(const Op& op) {
    const Shape& a = op.in.at(0);
    const Shape& bm = op.in.at(1);
    const int64_t p = a.pixels();
    std::string grad = output_grad(op);
    if (needs_grad(op.inputs[0])) {
      // dY [P, heads N] times B with the transposition flipped: contraction over N.
      Op& d = add(op, op.name + "__dx", OpKind::kMatmul,
                  {grad, input(op, op.name + "__dx_in", bm.dims)});
      d.heads = op.heads;
      d.transpose_b = !op.transpose_b;
    }
    if (needs_grad(op.inputs[1])) {
      // dB has B's shape [rows, heads cols]: (rows x P) per head times (P x cols), the
      // second operand dY itself when B is not transposed, else A's layout.
      std::string lhs = input(op, op.name + "__dxb_in", {bm.pixels(), op.heads * p});
      std::string rhs = op.transpose_b ? input(op, op.name + "__dxb_w", {p, a.c}) : grad;
      Op& d = add(op, op.name + "__dxb", OpKind::kMatmul, {lhs, rhs});
      d.heads = op.heads;
    }
  }

  /// SGD: W <- W + (-lr) dW as a mul by a seeded learning-rate tensor and an add of a seeded
  /// copy of the weights, over the gradient's (batch-split) shape.
  void optimizer(const Update& u) {
    const Op& op = *u.op;
    std::string lr = input(op, op.name + "__lr", u.dims);
    std::string w = input(op, op.name + "__wt", u.dims);
    add(op, op.name + "__sgd_lr", OpKind::kMul, {u.grad, lr});
    add(op, op.name + "__sgd", OpKind::kAdd, {op.name + "__sgd_lr", w});
  }

  const Workload& f_;
  TrainOptions opt_;
  int64_t b_;
  Workload t_;
  std::set<std::string> network_inputs_;
  std::vector<Update> updates_;
};

}  // namespace

Workload training_step(const Workload& fwd, int64_t batch, const TrainOptions& opt) {
  if (batch < 1 || batch > kMaxBatch) {
    throw InputError(SourceLocation{fwd.file, 0, 0}, "batch",
                     fmt::format("an integer in [1, {}]", kMaxBatch), std::to_string(batch));
  }
  Workload f = fwd;
  f.batch = batch;
  infer_shapes(f);
  return Builder(f, batch, opt).run();
}

}  // namespace tpu::compiler
