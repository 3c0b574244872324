// Golden reference kernels: each function is the plainest loop nest that states the numerics
// contract of one compute instruction (docs/numerics.md). Clarity over speed, on purpose.
#include "isa/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tpu::isa {

namespace {

std::size_t idx(int row, std::size_t stride, int col) {
  return static_cast<std::size_t>(row) * stride + static_cast<std::size_t>(col);
}

// NHWC offset of (y, x, c) in an image that is `width` pixels wide with `channels` channels.
std::size_t nhwc(int y, int x, int c, int width, int channels) {
  return (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
          static_cast<std::size_t>(x)) *
             static_cast<std::size_t>(channels) +
         static_cast<std::size_t>(c);
}

}  // namespace

void matmul_pass_int8(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw, int m,
                      int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int32_t sum = accumulate ? acc[idx(i, ldacc, j)] : 0;
      for (int kk = 0; kk < k; ++kk) {
        // |int8 * int8| <= 2^14, so only the additions can overflow; they wrap.
        const int32_t product =
            static_cast<int32_t>(a[idx(i, lda, kk)]) * static_cast<int32_t>(w[idx(kk, ldw, j)]);
        sum = wrap_add(sum, product);
      }
      acc[idx(i, ldacc, j)] = sum;
    }
  }
}

void matmul_pass_bf16(const uint16_t* a, std::size_t lda, const uint16_t* w, std::size_t ldw, int m,
                      int k, int n, float* acc, std::size_t ldacc, bool accumulate,
                      const NumericsOptions& opt) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      // The partial sum enters the top PE row as +0.0f; row kk adds its product.
      float s = 0.0f;
      for (int kk = 0; kk < k; ++kk) {
        const float product = bf16_mul(a[idx(i, lda, kk)], w[idx(kk, ldw, j)], opt);
        s = fl32_add(s, product);
      }
      const std::size_t at = idx(i, ldacc, j);
      acc[at] = accumulate ? fl32_add(acc[at], s) : s;
    }
  }
}

float apply_activation(float x, Activation f) {
  switch (f) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      // Comparison form: NaN and -0.0f pass through unchanged.
      return x < 0.0f ? 0.0f : x;
    case Activation::kRelu6:
      return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case Activation::kSigmoid: {
      const float e = std::exp(-x);  // float overload: glibc expf
      const float denominator = 1.0f + e;
      return 1.0f / denominator;
    }
    case Activation::kTanh:
      return std::tanh(x);  // float overload: glibc tanhf
    case Activation::kGelu: {
      // Evaluation order pinned by docs/numerics.md; each line is one fp32 rounding.
      const float x2 = x * x;
      const float x3 = x2 * x;
      const float cubic = 0.044715f * x3;
      const float inner = x + cubic;
      const float u = 0.7978845608f * inner;
      const float t = std::tanh(u);
      const float half_x = 0.5f * x;
      const float one_plus_t = 1.0f + t;
      return half_x * one_plus_t;
    }
  }
  return x;  // unreachable for valid enumerators
}

void pool_int8(const int8_t* in, int8_t* out, const PoolShape& s, PoolKind kind) {
  for (int oy = 0; oy < s.out_h; ++oy) {
    for (int ox = 0; ox < s.out_w; ++ox) {
      for (int c = 0; c < s.channels; ++c) {
        int32_t max = 0;
        int32_t sum = 0;
        int32_t count = 0;
        for (int wy = 0; wy < s.win_h; ++wy) {
          const int y = oy * s.stride_h - s.pad_top + wy;
          if (y < 0 || y >= s.in_h) continue;
          for (int wx = 0; wx < s.win_w; ++wx) {
            const int x = ox * s.stride_w - s.pad_left + wx;
            if (x < 0 || x >= s.in_w) continue;
            const auto v = static_cast<int32_t>(in[nhwc(y, x, c, s.in_w, s.channels)]);
            if (count == 0 || v > max) max = v;
            sum += v;
            ++count;
          }
        }
        int32_t result = 0;  // a window with no valid element
        if (count > 0 && kind == PoolKind::kMax) result = max;
        if (count > 0 && kind == PoolKind::kAvg) {
          // TFLite reference_integer_ops::AveragePool: half away from zero (C++ division
          // truncates toward zero).
          result = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
        }
        out[nhwc(oy, ox, c, s.out_w, s.channels)] = static_cast<int8_t>(result);
      }
    }
  }
}

void pool_bf16(const uint16_t* in, uint16_t* out, const PoolShape& s, PoolKind kind,
               const NumericsOptions& opt) {
  for (int oy = 0; oy < s.out_h; ++oy) {
    for (int ox = 0; ox < s.out_w; ++ox) {
      for (int c = 0; c < s.channels; ++c) {
        float max = 0.0f;
        float sum = 0.0f;
        int count = 0;
        for (int wy = 0; wy < s.win_h; ++wy) {
          const int y = oy * s.stride_h - s.pad_top + wy;
          if (y < 0 || y >= s.in_h) continue;
          for (int wx = 0; wx < s.win_w; ++wx) {
            const int x = ox * s.stride_w - s.pad_left + wx;
            if (x < 0 || x >= s.in_w) continue;
            const float v = bf16_to_fp32(in[nhwc(y, x, c, s.in_w, s.channels)], opt);
            // Max: the first NaN in window order wins and sticks; otherwise a strictly greater
            // value replaces the current one, so ties (+0.0 vs -0.0) keep the earlier element.
            if (count == 0 || (!std::isnan(max) && (std::isnan(v) || v > max))) max = v;
            sum = sum + v;
            ++count;
          }
        }
        float result = 0.0f;  // a window with no valid element
        if (count > 0 && kind == PoolKind::kMax) result = max;
        if (count > 0 && kind == PoolKind::kAvg) result = sum / static_cast<float>(count);
        out[nhwc(oy, ox, c, s.out_w, s.channels)] = fp32_to_bf16(result, opt);
      }
    }
  }
}

bool is_binary(VectorOp op) {
  switch (op) {
    case VectorOp::kAdd:
    case VectorOp::kSub:
    case VectorOp::kMul:
    case VectorOp::kMax:
    case VectorOp::kMin:
      return true;
    default:
      return false;
  }
}

Activation vector_activation(VectorOp op) {
  switch (op) {
    case VectorOp::kRelu6:
      return Activation::kRelu6;
    case VectorOp::kSigmoid:
      return Activation::kSigmoid;
    case VectorOp::kTanh:
      return Activation::kTanh;
    case VectorOp::kGelu:
      return Activation::kGelu;
    default:
      return Activation::kNone;
  }
}

void elementwise_int8(VectorOp op, const int8_t* a, const int8_t* b, int8_t* out,
                      std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    const auto x = static_cast<int32_t>(a[i]);
    const auto y = is_binary(op) ? static_cast<int32_t>(b[i]) : 0;
    int32_t r = 0;
    switch (op) {
      case VectorOp::kAdd:
        r = x + y;
        break;
      case VectorOp::kSub:
        r = x - y;
        break;
      case VectorOp::kMul:
        r = x * y;
        break;
      case VectorOp::kMax:
        r = std::max(x, y);
        break;
      case VectorOp::kMin:
        r = std::min(x, y);
        break;
      case VectorOp::kRelu:
        r = std::max(x, 0);
        break;
      case VectorOp::kCopy:
        r = x;
        break;
      default:  // bf16-only functions (the verifier rejects them for int8)
        r = x;
        break;
    }
    out[i] = saturate_int8(r);
  }
}

void elementwise_bf16(VectorOp op, const uint16_t* a, const uint16_t* b, uint16_t* out,
                      std::size_t count, const NumericsOptions& opt) {
  for (std::size_t i = 0; i < count; ++i) {
    const float x = bf16_to_fp32(a[i], opt);
    const float y = is_binary(op) ? bf16_to_fp32(b[i], opt) : 0.0f;
    float r = 0.0f;
    switch (op) {
      case VectorOp::kAdd:
        r = x + y;
        break;
      case VectorOp::kSub:
        r = x - y;
        break;
      case VectorOp::kMul:
        r = x * y;
        break;
      case VectorOp::kMax:
        // NaN propagates (a's NaN first); on a tie (+0.0 vs -0.0) a is kept.
        r = std::isnan(x) ? x : (std::isnan(y) || y > x ? y : x);
        break;
      case VectorOp::kMin:
        r = std::isnan(x) ? x : (std::isnan(y) || y < x ? y : x);
        break;
      case VectorOp::kRelu:
        r = x < 0.0f ? 0.0f : x;
        break;
      case VectorOp::kCopy:
        r = x;
        break;
      default:
        r = apply_activation(x, vector_activation(op));
        break;
    }
    out[i] = fp32_to_bf16(r, opt);
  }
}

void softmax_row_fp32(const float* x, float* y, int cols) {
  // The max: the first NaN sticks; otherwise a strictly greater value replaces it.
  float m = x[0];
  for (int i = 1; i < cols; ++i) {
    if (!std::isnan(m) && (std::isnan(x[i]) || x[i] > m)) m = x[i];
  }
  if (std::isnan(m)) {
    // Defined here rather than left to the host's NaN propagation rules.
    for (int i = 0; i < cols; ++i) y[i] = m;
    return;
  }
  float s = 0.0f;
  for (int i = 0; i < cols; ++i) {
    const float d = x[i] - m;
    y[i] = std::exp(d);  // float overload: glibc expf
    s = s + y[i];
  }
  for (int i = 0; i < cols; ++i) y[i] = y[i] / s;
}

void layer_norm_row_fp32(const float* x, float* y, int cols, float eps, const float* gamma,
                         const float* beta) {
  const float n = static_cast<float>(cols);
  float sum = 0.0f;
  for (int i = 0; i < cols; ++i) sum = sum + x[i];
  const float mean = sum / n;
  float sq = 0.0f;
  for (int i = 0; i < cols; ++i) {
    const float d = x[i] - mean;
    const float d2 = d * d;
    sq = sq + d2;
  }
  const float var = sq / n;
  const float var_eps = var + eps;
  const float root = std::sqrt(var_eps);  // float overload: sqrtf (IEEE, correctly rounded)
  const float r = 1.0f / root;
  for (int i = 0; i < cols; ++i) {
    const float d = x[i] - mean;
    const float normed = d * r;
    const float scaled = normed * gamma[i];
    y[i] = scaled + beta[i];
  }
}

int8_t quantize_row_output(float y, const RowQuant& q) {
  const float scaled = y / q.out_scale;
  const float rounded = std::nearbyint(scaled);  // float overload; round to nearest even
  const float v = rounded + q.out_zero_point;
  if (std::isnan(v)) return static_cast<int8_t>(q.out_zero_point);
  if (v <= -128.0f) return -128;
  if (v >= 127.0f) return 127;
  return static_cast<int8_t>(v);
}

namespace {

float dequantize(int8_t v, const RowQuant& q) {
  const float shifted = static_cast<float>(v) - q.in_zero_point;
  return shifted * q.in_scale;
}

}  // namespace

void softmax_bf16(const uint16_t* in, uint16_t* out, int rows, int cols,
                  const NumericsOptions& opt) {
  std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) x[i] = bf16_to_fp32(in[idx(r, cols, i)], opt);
    softmax_row_fp32(x.data(), y.data(), cols);
    for (int i = 0; i < cols; ++i) out[idx(r, cols, i)] = fp32_to_bf16(y[i], opt);
  }
}

void layer_norm_bf16(const uint16_t* in, uint16_t* out, int rows, int cols, float eps,
                     const float* gamma, const float* beta, const NumericsOptions& opt) {
  std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) x[i] = bf16_to_fp32(in[idx(r, cols, i)], opt);
    layer_norm_row_fp32(x.data(), y.data(), cols, eps, gamma, beta);
    for (int i = 0; i < cols; ++i) out[idx(r, cols, i)] = fp32_to_bf16(y[i], opt);
  }
}

void softmax_int8(const int8_t* in, int8_t* out, int rows, int cols, const RowQuant& q) {
  std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) x[i] = dequantize(in[idx(r, cols, i)], q);
    softmax_row_fp32(x.data(), y.data(), cols);
    for (int i = 0; i < cols; ++i) out[idx(r, cols, i)] = quantize_row_output(y[i], q);
  }
}

void layer_norm_int8(const int8_t* in, int8_t* out, int rows, int cols, const RowQuant& q,
                     float eps, const float* gamma, const float* beta) {
  std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) x[i] = dequantize(in[idx(r, cols, i)], q);
    layer_norm_row_fp32(x.data(), y.data(), cols, eps, gamma, beta);
    for (int i = 0; i < cols; ++i) out[idx(r, cols, i)] = quantize_row_output(y[i], q);
  }
}

void lut_int8(const int8_t* in, int8_t* out, std::size_t count, const int8_t* table) {
  for (std::size_t i = 0; i < count; ++i) out[i] = table[static_cast<int>(in[i]) + 128];
}

}  // namespace tpu::isa
