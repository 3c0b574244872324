#include "compiler/params.h"

#include <algorithm>
#include <cmath>

namespace tpu::compiler {

namespace {

// Uniform in [0, 1) from 53 bits.
double uniform(uint64_t& s) { return static_cast<double>(isa::splitmix64(s) >> 11) / 9007199254740992.0; }

isa::ElemType elem(isa::MatType dt) {
  return dt == isa::MatType::kInt8 ? isa::ElemType::kInt8 : isa::ElemType::kBf16;
}

}  // namespace

uint64_t tensor_seed(uint64_t workload_seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  uint64_t s = workload_seed ^ h;
  return isa::splitmix64(s) >> 33;  // 31 bits: assembly expressions hold it exactly
}

int64_t fan_in(const Op& op) {
  const Shape& x = op.in.at(0);
  switch (op.kind) {
    case OpKind::kConv2d:
      return int64_t{op.kh} * op.kw * (x.c / op.groups);
    case OpKind::kDepthwise:
      return int64_t{op.kh} * op.kw;
    case OpKind::kMatmul:
      if (op.in.size() == 2) return x.c / op.heads;
      return x.c;
    default:
      return x.c;
  }
}

isa::Region input_region(const Workload& w, const WorkloadInput& in, isa::MatType dt, int64_t batch) {
  isa::Region r;
  r.name = in.name;
  r.dtype = elem(dt);
  r.shape.push_back(static_cast<uint64_t>(batch));
  for (auto d : in.shape.dims) r.shape.push_back(static_cast<uint64_t>(d));
  r.role = isa::RegionRole::kInput;
  r.init = isa::RegionInit::kRandom;
  r.seed = tensor_seed(w.seed, in.name);
  return r;
}

isa::Region weight_region(const Workload& w, const Op& op, isa::MatType dt) {
  isa::Region r;
  r.name = op.name + "__w";
  r.dtype = elem(dt);
  const Shape& x = op.in.at(0);
  switch (op.kind) {
    case OpKind::kConv2d:
      r.shape = {uint64_t(op.kh), uint64_t(op.kw), uint64_t(x.c / op.groups), uint64_t(op.filters)};
      break;
    case OpKind::kDepthwise:  // [kh, kw, C, multiplier] flattened: output c*multiplier + j
      r.shape = {uint64_t(op.kh), uint64_t(op.kw), uint64_t(x.c) * uint64_t(op.multiplier)};
      break;
    default:
      r.shape = {uint64_t(x.c), uint64_t(op.filters)};
      break;
  }
  r.role = isa::RegionRole::kData;
  r.init = isa::RegionInit::kRandom;
  r.seed = tensor_seed(w.seed, r.name);
  if (dt == isa::MatType::kBf16) {
    r.scale = static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in(op))) / 2.0);
  }
  return r;
}

isa::Region bias_region(const Workload& w, const Op& op) {
  isa::Region r;
  r.name = op.name + "__b";
  r.dtype = isa::ElemType::kFp32;
  r.shape = {uint64_t(op.out.c)};
  r.role = isa::RegionRole::kData;
  r.init = isa::RegionInit::kRandom;
  r.seed = tensor_seed(w.seed, r.name);
  r.scale = 0.125f;
  return r;
}

std::vector<isa::RequantParams> requant_params(const Workload& w, const Op& op) {
  uint64_t s = tensor_seed(w.seed, op.name + "_q");
  int64_t k = fan_in(op);
  // Random int8 operands: products have a standard deviation of about 73^2; a sum of K of
  // them about 5400 sqrt(K). Scale that to an int8 standard deviation of about 32.
  double spread = 5400.0 * std::sqrt(static_cast<double>(k));
  std::vector<isa::RequantParams> out(static_cast<std::size_t>(op.out.c));
  for (auto& p : out) {
    double real = 32.0 / spread * (0.75 + 0.5 * uniform(s));
    isa::quantize_multiplier(real, &p.multiplier, &p.shift);
    p.bias = op.bias ? static_cast<int32_t>(std::llround((uniform(s) - 0.5) * spread)) : 0;
  }
  return out;
}

std::array<int8_t, 256> int8_activation_table(isa::Activation f) {
  std::array<int8_t, 256> t{};
  for (int q = -128; q <= 127; ++q) {
    double x = q * kInt8ActScale, y = x;
    switch (f) {
      case isa::Activation::kNone:
        break;
      case isa::Activation::kRelu:
        y = std::max(x, 0.0);
        break;
      case isa::Activation::kRelu6:
        y = std::min(std::max(x, 0.0), 6.0);
        break;
      case isa::Activation::kSigmoid:
        y = 1.0 / (1.0 + std::exp(-x));
        break;
      case isa::Activation::kTanh:
        y = std::tanh(x);
        break;
      case isa::Activation::kGelu:
        y = 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        break;
    }
    long v = std::lround(y / kInt8ActScale);
    t[static_cast<std::size_t>(q + 128)] = static_cast<int8_t>(std::clamp<long>(v, -128, 127));
  }
  return t;
}

void layer_norm_params(const Workload& w, const Op& op, std::vector<float>* gamma,
                       std::vector<float>* beta) {
  uint64_t s = tensor_seed(w.seed, op.name + "_ln");
  gamma->resize(static_cast<std::size_t>(op.out.c));
  beta->resize(static_cast<std::size_t>(op.out.c));
  for (auto& g : *gamma) g = static_cast<float>(1.0 + 0.5 * (uniform(s) - 0.5));
  for (auto& b : *beta) b = static_cast<float>(0.5 * (uniform(s) - 0.5));
}

bool packs_kernel_rows(const Op& op, int64_t array_rows) {
  return op.kind == OpKind::kConv2d && op.groups == 1 && op.dw == 1 && op.kw > 1 &&
         int64_t{op.kw} * op.in.at(0).c <= array_rows;
}

isa::Activation activation_of(OpKind k) {
  switch (k) {
    case OpKind::kRelu:
      return isa::Activation::kRelu;
    case OpKind::kRelu6:
      return isa::Activation::kRelu6;
    case OpKind::kGelu:
      return isa::Activation::kGelu;
    case OpKind::kSigmoid:
      return isa::Activation::kSigmoid;
    case OpKind::kTanh:
      return isa::Activation::kTanh;
    default:
      return isa::Activation::kNone;
  }
}

}  // namespace tpu::compiler
