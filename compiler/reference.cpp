#include "compiler/reference.h"

#include <algorithm>
#include <cstring>

#include "compiler/params.h"
#include "isa/interpreter.h"
#include "isa/kernels.h"
#include "isa/numerics.h"

namespace tpu::compiler {

namespace {

using Bytes = std::vector<uint8_t>;

struct Ctx {
  const arch::ArchConfig& arch;
  const Workload& w;
  isa::MatType dt;
  isa::NumericsOptions num;
  int eb;
  int64_t B;
  std::map<std::string, Bytes> t;  // tensors, whole batch
};

int8_t get_i8(const Bytes& b, int64_t i) { return static_cast<int8_t>(b[static_cast<std::size_t>(i)]); }
uint16_t get_bf(const Bytes& b, int64_t i) {
  uint16_t v;
  std::memcpy(&v, &b[static_cast<std::size_t>(2 * i)], 2);
  return v;
}
void put_bf(Bytes& b, int64_t i, uint16_t v) { std::memcpy(&b[static_cast<std::size_t>(2 * i)], &v, 2); }

Bytes region_bytes(const isa::Region& r, const isa::NumericsOptions& num) {
  return isa::Interpreter::random_fill(r, num).data;
}

// Output value of a matrix op from its int32 / fp32 sum (activation included).
struct Finish {
  const Ctx& c;
  const Op& op;
  std::vector<isa::RequantParams> rq;
  std::vector<float> bias;
  std::array<int8_t, 256> lut{};
  bool lut_after = false;
  int act_min = -128, act_max = 127;

  Finish(const Ctx& ctx, const Op& o) : c(ctx), op(o) {
    if (c.dt == isa::MatType::kInt8) {
      rq = requant_params(c.w, op);
      if (op.activation == isa::Activation::kRelu) act_min = 0;
      if (op.activation == isa::Activation::kRelu6) {
        act_min = 0;
        act_max = kInt8Relu6Max;
      }
      if (op.activation != isa::Activation::kNone && op.activation != isa::Activation::kRelu &&
          op.activation != isa::Activation::kRelu6) {
        lut_after = true;
        lut = int8_activation_table(op.activation);
      }
    } else if (op.bias) {
      Bytes b = region_bytes(bias_region(c.w, op), c.num);
      bias.resize(b.size() / 4);
      std::memcpy(bias.data(), b.data(), b.size());
    }
  }
  void int8(Bytes& out, int64_t i, int32_t acc, int64_t oc) const {
    int8_t q = isa::requantize(acc, rq[static_cast<std::size_t>(oc)], 0, act_min, act_max);
    if (lut_after) q = lut[static_cast<std::size_t>(q + 128)];
    out[static_cast<std::size_t>(i)] = static_cast<uint8_t>(q);
  }
  void bf16(Bytes& out, int64_t i, float acc, int64_t oc) const {
    float x = acc;
    if (!bias.empty()) x = x + bias[static_cast<std::size_t>(oc)];
    x = isa::apply_activation(x, op.activation);
    put_bf(out, i, isa::fp32_to_bf16(x, c.num));
  }
};

// conv2d / depthwise (any multiplier) / fully_connected / one-input matmul, directly.
Bytes conv(const Ctx& c, const Op& op) {
  const Shape& xs = op.in[0];
  const Shape& ys = op.out;
  const Bytes& x = c.t.at(op.inputs[0]);
  Bytes wt = region_bytes(weight_region(c.w, op, c.dt), c.num);
  Finish fin(c, op);
  bool depthwise = op.kind == OpKind::kDepthwise;
  int64_t groups = op.kind == OpKind::kConv2d ? op.groups : depthwise ? xs.c : 1;
  int64_t cin_g = xs.c / groups, cout_g = ys.c / groups;
  bool is_conv = op.kind == OpKind::kConv2d || depthwise;
  int kh = is_conv ? op.kh : 1, kw = is_conv ? op.kw : 1;
  int64_t chunk = depthwise && op.multiplier == 1 ? 1 : c.arch.mxu.rows;
  const bool packed = packs_kernel_rows(op, c.arch.mxu.rows);
  Bytes out(static_cast<std::size_t>(c.B * ys.elements() * c.eb));
  int64_t XH = is_conv ? xs.h : 1, XW = is_conv ? xs.w : xs.pixels();
  int64_t YH = is_conv ? ys.h : 1, YW = is_conv ? ys.w : ys.pixels();
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t oh = 0; oh < YH; ++oh) {
      for (int64_t ow = 0; ow < YW; ++ow) {
        for (int64_t oc = 0; oc < ys.c; ++oc) {
          int64_t g = oc / cout_g;
          int32_t acc_i = 0;
          float acc_f = 0.0f;
          bool first = true;
          for (int r = 0; r < kh; ++r) {
            // Packed kernel rows: one pass sums all (s, c) of row r; else one per chunk.
            float sum = 0.0f;
            for (int s = 0; s < kw; ++s) {
              int64_t ih = is_conv ? oh * op.sh - op.pad_top + int64_t{r} * op.dh : oh;
              int64_t iw = is_conv ? ow * op.sw - op.pad_left + int64_t{s} * op.dw : ow;
              bool inside = ih >= 0 && ih < XH && iw >= 0 && iw < XW;
              for (int64_t k0 = 0; k0 < cin_g; k0 += chunk) {
                if (!packed) sum = 0.0f;
                for (int64_t ci = k0; ci < std::min(cin_g, k0 + chunk); ++ci) {
                  int64_t xi = ((b * XH + ih) * XW + iw) * xs.c + g * cin_g + ci;
                  int64_t wi = ((int64_t{r} * kw + s) * cin_g + ci) * ys.c + oc;
                  if (c.dt == isa::MatType::kInt8) {
                    int32_t xv = inside ? get_i8(x, xi) : 0;
                    acc_i = isa::wrap_add(acc_i, xv * get_i8(wt, wi));
                  } else {
                    uint16_t xv = inside ? get_bf(x, xi) : 0;
                    sum = isa::fl32_add(sum, isa::bf16_mul(xv, get_bf(wt, wi), c.num));
                  }
                }
                if (!packed) {
                  acc_f = first ? sum : isa::fl32_add(acc_f, sum);
                  first = false;
                }
              }
            }
            if (packed) {
              acc_f = first ? sum : isa::fl32_add(acc_f, sum);
              first = false;
            }
          }
          int64_t oi = ((b * YH + oh) * YW + ow) * ys.c + oc;
          if (c.dt == isa::MatType::kInt8) {
            fin.int8(out, oi, acc_i, oc);
          } else {
            fin.bf16(out, oi, acc_f, oc);
          }
        }
      }
    }
  }
  return out;
}

// Two-input matmul (attention): per sample and head, a [P, K] times b [K, N] (or b^T).
Bytes matmul2(const Ctx& c, const Op& op) {
  const Shape& as = op.in[0];
  const Shape& bs = op.in[1];
  const Shape& ys = op.out;
  const Bytes& a = c.t.at(op.inputs[0]);
  const Bytes& bm = c.t.at(op.inputs[1]);
  Finish fin(c, op);
  int64_t K = as.c / op.heads, N = ys.c / op.heads, P = as.pixels();
  int64_t chunk = c.arch.mxu.rows;
  Bytes out(static_cast<std::size_t>(c.B * ys.elements() * c.eb));
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t h = 0; h < op.heads; ++h) {
        for (int64_t n = 0; n < N; ++n) {
          int32_t acc_i = 0;
          float acc_f = 0.0f;
          for (int64_t k0 = 0; k0 < K; k0 += chunk) {
            float sum = 0.0f;
            for (int64_t k = k0; k < std::min(K, k0 + chunk); ++k) {
              int64_t ai = (b * P + p) * as.c + h * K + k;
              int64_t bi = op.transpose_b ? (b * bs.pixels() + n) * bs.c + h * K + k
                                          : (b * bs.pixels() + k) * bs.c + h * N + n;
              if (c.dt == isa::MatType::kInt8) {
                acc_i = isa::wrap_add(acc_i, int32_t{get_i8(a, ai)} * get_i8(bm, bi));
              } else {
                sum = isa::fl32_add(sum, isa::bf16_mul(get_bf(a, ai), get_bf(bm, bi), c.num));
              }
            }
            acc_f = k0 == 0 ? sum : isa::fl32_add(acc_f, sum);
          }
          int64_t oi = (b * P + p) * ys.c + h * N + n;
          if (c.dt == isa::MatType::kInt8) {
            fin.int8(out, oi, acc_i, h * N + n);
          } else {
            fin.bf16(out, oi, acc_f, h * N + n);
          }
        }
      }
    }
  }
  return out;
}

Bytes pool(const Ctx& c, const Op& op) {
  const Shape& xs = op.in[0];
  const Shape& ys = op.out;
  const Bytes& x = c.t.at(op.inputs[0]);
  Bytes out(static_cast<std::size_t>(c.B * ys.elements() * c.eb));
  isa::PoolShape s;
  s.in_h = static_cast<int>(xs.h);
  s.in_w = static_cast<int>(xs.w);
  s.channels = static_cast<int>(xs.c);
  s.win_h = op.kh;
  s.win_w = op.kw;
  s.stride_h = op.sh;
  s.stride_w = op.sw;
  s.pad_top = op.pad_top;
  s.pad_left = op.pad_left;
  s.out_h = static_cast<int>(ys.h);
  s.out_w = static_cast<int>(ys.w);
  auto kind = op.kind == OpKind::kMaxPool ? isa::PoolKind::kMax : isa::PoolKind::kAvg;
  for (int64_t b = 0; b < c.B; ++b) {
    std::size_t xi = static_cast<std::size_t>(b * xs.elements() * c.eb);
    std::size_t yi = static_cast<std::size_t>(b * ys.elements() * c.eb);
    if (c.dt == isa::MatType::kInt8) {
      isa::pool_int8(reinterpret_cast<const int8_t*>(&x[xi]), reinterpret_cast<int8_t*>(&out[yi]), s, kind);
    } else {
      isa::pool_bf16(reinterpret_cast<const uint16_t*>(&x[xi]), reinterpret_cast<uint16_t*>(&out[yi]), s, kind, c.num);
    }
  }
  return out;
}

// f over every element: bf16 in fp32 then rounded; int8 relu as max(x, 0), others by table.
void unary(const Ctx& c, Bytes& v, isa::Activation f) {
  if (f == isa::Activation::kNone) return;
  std::size_t n = v.size() / static_cast<std::size_t>(c.eb);
  if (c.dt == isa::MatType::kInt8) {
    auto lut = int8_activation_table(f);
    for (std::size_t i = 0; i < n; ++i) {
      auto q = static_cast<int8_t>(v[i]);
      q = f == isa::Activation::kRelu ? std::max<int8_t>(q, 0) : lut[static_cast<std::size_t>(q + 128)];
      v[i] = static_cast<uint8_t>(q);
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    float x = isa::bf16_to_fp32(get_bf(v, static_cast<int64_t>(i)), c.num);
    put_bf(v, static_cast<int64_t>(i), isa::fp32_to_bf16(isa::apply_activation(x, f), c.num));
  }
}

Bytes binary(const Ctx& c, const Op& op) {
  const Bytes& a = c.t.at(op.inputs[0]);
  const Bytes& b = c.t.at(op.inputs[1]);
  Bytes out(a.size());
  auto vop = op.kind == OpKind::kAdd ? isa::VectorOp::kAdd : isa::VectorOp::kMul;
  std::size_t n = a.size() / static_cast<std::size_t>(c.eb);
  if (c.dt == isa::MatType::kInt8) {
    isa::elementwise_int8(vop, reinterpret_cast<const int8_t*>(a.data()), reinterpret_cast<const int8_t*>(b.data()),
                          reinterpret_cast<int8_t*>(out.data()), n);
  } else {
    isa::elementwise_bf16(vop, reinterpret_cast<const uint16_t*>(a.data()), reinterpret_cast<const uint16_t*>(b.data()),
                          reinterpret_cast<uint16_t*>(out.data()), n, c.num);
  }
  unary(c, out, op.activation);
  return out;
}

Bytes rowop(const Ctx& c, const Op& op) {
  const Bytes& x = c.t.at(op.inputs[0]);
  bool softmax = op.kind == OpKind::kSoftmax;
  int64_t cols = softmax ? op.segment : op.out.c;
  int64_t rows = static_cast<int64_t>(x.size()) / c.eb / cols;
  isa::RowQuant q;
  q.in_scale = q.out_scale = static_cast<float>(kInt8ActScale);
  std::vector<float> gamma, beta;
  if (!softmax) layer_norm_params(c.w, op, &gamma, &beta);
  float eps = static_cast<float>(op.eps);
  Bytes out(x.size());
  int n = static_cast<int>(cols);
  for (int64_t r0 = 0; r0 < rows; r0 += int64_t{1} << 20) {  // kernels take int row counts
    int r = static_cast<int>(std::min<int64_t>(int64_t{1} << 20, rows - r0));
    std::size_t at = static_cast<std::size_t>(r0 * cols);
    if (c.dt == isa::MatType::kInt8) {
      auto in = reinterpret_cast<const int8_t*>(x.data()) + at;
      auto o = reinterpret_cast<int8_t*>(out.data()) + at;
      if (softmax) {
        isa::softmax_int8(in, o, r, n, q);
      } else {
        isa::layer_norm_int8(in, o, r, n, q, eps, gamma.data(), beta.data());
      }
    } else {
      auto in = reinterpret_cast<const uint16_t*>(x.data()) + at;
      auto o = reinterpret_cast<uint16_t*>(out.data()) + at;
      if (softmax) {
        isa::softmax_bf16(in, o, r, n, c.num);
      } else {
        isa::layer_norm_bf16(in, o, r, n, eps, gamma.data(), beta.data(), c.num);
      }
    }
  }
  return out;
}

Bytes concat(const Ctx& c, const Op& op) {
  int64_t C = op.out.c, pixels = c.B * op.out.pixels();
  Bytes out(static_cast<std::size_t>(pixels * C * c.eb));
  int64_t off = 0;
  for (std::size_t k = 0; k < op.inputs.size(); ++k) {
    const Bytes& x = c.t.at(op.inputs[k]);
    int64_t ci = op.in[k].c;
    for (int64_t p = 0; p < pixels; ++p) {
      std::memcpy(&out[static_cast<std::size_t>((p * C + off) * c.eb)], &x[static_cast<std::size_t>(p * ci * c.eb)],
                  static_cast<std::size_t>(ci * c.eb));
    }
    off += ci;
  }
  return out;
}

}  // namespace

std::map<std::string, std::vector<uint8_t>> reference_outputs(const arch::ArchConfig& arch,
                                                              const Workload& w,
                                                              isa::MatType dtype) {
  Ctx c{arch, w, dtype, isa::NumericsOptions{arch.numerics.flush_subnormals},
        isa::mat_bytes(static_cast<int>(dtype)), w.batch, {}};
  for (const auto& in : w.inputs) c.t[in.name] = region_bytes(input_region(w, in, dtype, w.batch), c.num);
  for (const auto& op : w.ops) {
    Bytes y;
    switch (op.kind) {
      case OpKind::kConv2d:
      case OpKind::kDepthwise:
      case OpKind::kFullyConnected:
        y = conv(c, op);
        break;
      case OpKind::kMatmul:
        y = op.inputs.size() == 2 ? matmul2(c, op) : conv(c, op);
        break;
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
        y = pool(c, op);
        break;
      case OpKind::kAdd:
      case OpKind::kMul:
        y = binary(c, op);
        break;
      case OpKind::kSoftmax:
      case OpKind::kLayerNorm:
        y = rowop(c, op);
        break;
      case OpKind::kConcat:
        y = concat(c, op);
        break;
      case OpKind::kSlice: {
        const Bytes& x = c.t.at(op.inputs[0]);
        int64_t rows = op.out.pixels() * c.B, ci = op.in[0].c, co = op.out.c;
        y.resize(static_cast<std::size_t>(rows * co * c.eb));
        for (int64_t p = 0; p < rows; ++p) {
          std::memcpy(&y[static_cast<std::size_t>(p * co * c.eb)], &x[static_cast<std::size_t>((p * ci + op.slice_begin) * c.eb)],
                      static_cast<std::size_t>(co * c.eb));
        }
        break;
      }
      case OpKind::kReshape:
      case OpKind::kAllReduce:  // a chip alone is a pod of one
        y = c.t.at(op.inputs[0]);
        break;
      case OpKind::kAllGather:  // this chip's shard first (rank 0 of a pod of one), then zeros
        y = c.t.at(op.inputs[0]);
        y.resize(static_cast<std::size_t>(op.out.elements() * c.B * c.eb), 0);
        break;
      default:
        y = c.t.at(op.inputs[0]);
        unary(c, y, activation_of(op.kind));
        break;
    }
    c.t[op.name] = std::move(y);
  }
  std::map<std::string, std::vector<uint8_t>> out;
  for (const auto& name : w.outputs) out[name] = c.t.at(name);
  return out;
}

}  // namespace tpu::compiler
