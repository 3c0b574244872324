// Reference kernels: plain loop nests that state the numerics contract of every compute
// instruction (matrix pass, activation, pooling, elementwise, row ops). They are the golden model;
// fast paths elsewhere must reproduce their bits exactly. See docs/numerics.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "isa/numerics.h"

namespace tpu::isa {

// ---- Matrix passes ----

/// One pass of an M x K input block through a K x N weight tile, int8 operands, int32
/// accumulators: acc[m][n] = (accumulate ? acc[m][n] : 0) + sum_k a[m][k] * w[k][n], every
/// addition wrapping in two's complement, k in increasing order.
/// a: M rows of K values, row stride lda elements. w: K rows of N values, row stride ldw.
/// acc: M rows, row stride ldacc elements.
void matmul_pass_int8(const int8_t* a, std::size_t lda, const int8_t* w, std::size_t ldw,
                      int m, int k, int n, int32_t* acc, std::size_t ldacc, bool accumulate);

/// The same pass for bf16 operands (bit patterns) and fp32 accumulators, in the pinned order:
/// s = +0.0f; for k = 0..K-1: s = fl32(s + fl32(a[m][k] * w[k][n])); then
/// acc[m][n] = accumulate ? fl32(acc[m][n] + s) : s.
void matmul_pass_bf16(const uint16_t* a, std::size_t lda, const uint16_t* w, std::size_t ldw,
                      int m, int k, int n, float* acc, std::size_t ldacc, bool accumulate,
                      const NumericsOptions& opt = {});

// ---- Activation functions (fp32, bf16 mode) ----

enum class Activation : uint8_t { kNone, kRelu, kRelu6, kSigmoid, kTanh, kGelu };
inline constexpr const char* kActivationNames[] = {"none",    "relu", "relu6",
                                                   "sigmoid", "tanh", "gelu"};
inline constexpr int kActivationCount = 6;

/// f(x) in fp32. relu = x < 0 ? 0 : x and relu6 likewise clamped at 6 (NaN and -0.0 pass
/// through); sigmoid = 1 / (1 + expf(-x)); tanh = tanhf(x); gelu is the tanh form
/// 0.5x(1 + tanhf(0.7978845608f * (x + 0.044715f x^3))) evaluated in the order written in
/// docs/numerics.md (glibc libm, so results are reproducible on one platform).
float apply_activation(float x, Activation f);

// ---- Pooling over NHWC (one image), windows clipped at the padding ----

enum class PoolKind : uint8_t { kMax, kAvg };
inline constexpr const char* kPoolKindNames[] = {"max", "avg"};
inline constexpr int kPoolKindCount = 2;

struct PoolShape {
  int in_h = 0, in_w = 0, channels = 0;
  int win_h = 1, win_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0;
  int out_h = 0, out_w = 0;
};

/// int8 pooling as TFLite's reference kernels: max over the valid (unpadded) window
/// elements; avg = int32 sum of valid elements divided by their count, rounded half away
/// from zero. An output whose window holds no valid element is 0 (max: -128 is not used).
void pool_int8(const int8_t* in, int8_t* out, const PoolShape& s, PoolKind kind);

/// bf16 pooling: max of valid elements (compared as fp32; a NaN anywhere in the window makes
/// the result NaN, the first one in window order; on equal values, +0.0 vs -0.0 included, the
/// earlier element wins); avg = fp32 sum, starting at +0.0f, over valid elements in row-major
/// window order divided by their count (fp32), rounded to bf16. An empty window gives +0.0.
void pool_bf16(const uint16_t* in, uint16_t* out, const PoolShape& s, PoolKind kind,
               const NumericsOptions& opt = {});

// ---- Elementwise vector ops ----

enum class VectorOp : uint8_t {
  kAdd, kSub, kMul, kMax, kMin, kRelu, kCopy, kRelu6, kSigmoid, kTanh, kGelu
};
inline constexpr const char* kVectorOpNames[] = {"add",  "sub",   "mul",     "max",
                                                 "min",  "relu",  "copy",    "relu6",
                                                 "sigmoid", "tanh", "gelu"};
inline constexpr int kVectorOpCount = 11;

/// The activation function of relu6/sigmoid/tanh/gelu (bf16 only), else kNone.
Activation vector_activation(VectorOp op);

/// True when the op reads a second operand.
bool is_binary(VectorOp op);

/// int8 elementwise on operands of one scale: the int32 result of the op, saturated to int8.
/// Unary ops ignore b (which may be null).
void elementwise_int8(VectorOp op, const int8_t* a, const int8_t* b, int8_t* out,
                      std::size_t count);

/// bf16 elementwise: widen to fp32, one fp32 operation, round to bf16. max/min propagate a
/// NaN (a's if both are NaN) and keep a on equal values; relu is x < 0 ? 0 : x.
void elementwise_bf16(VectorOp op, const uint16_t* a, const uint16_t* b, uint16_t* out,
                      std::size_t count, const NumericsOptions& opt = {});

// ---- Row ops (rowop): softmax, layer_norm, lookup table over rows of a matrix ----

enum class RowOpKind : uint8_t { kSoftmax, kLayerNorm, kLut };
inline constexpr const char* kRowOpKindNames[] = {"softmax", "layer_norm", "lut"};
inline constexpr int kRowOpKindCount = 3;

/// Affine int8 quantization of a row op's input and output: real = (q - zero_point) * scale.
/// Zero points hold exact integers in [-128, 127]; scales are finite and > 0.
struct RowQuant {
  float in_scale = 1.0f, in_zero_point = 0.0f, out_scale = 1.0f, out_zero_point = 0.0f;
};

/// Softmax of one row of fp32 values, every operation one fp32 rounding:
/// m = max_i x[i] (the first NaN of the row, if any, is the max and every y[i] is that NaN);
/// e[i] = expf(x[i] - m); s = +0.0f, s = s + e[i] for i = 0..cols-1; y[i] = e[i] / s.
void softmax_row_fp32(const float* x, float* y, int cols);

/// Layer normalization of one row of fp32 values: sum = +0.0f, sum += x[i] in order;
/// mean = sum / (float)cols; sq = +0.0f, d = x[i] - mean, sq += d * d in order;
/// var = sq / (float)cols; r = 1.0f / sqrtf(var + eps); y[i] = ((x[i] - mean) * r) * gamma[i]
/// + beta[i].
void layer_norm_row_fp32(const float* x, float* y, int cols, float eps, const float* gamma,
                         const float* beta);

/// int8 output quantization of one fp32 value: v = nearbyintf(y / out_scale) (ties to even)
/// + out_zero_point, clamped to [-128, 127]; a NaN v gives out_zero_point.
int8_t quantize_row_output(float y, const RowQuant& q);

/// bf16 softmax over `rows` contiguous rows of `cols` values: widen (bf16_to_fp32),
/// softmax_row_fp32, round each result with fp32_to_bf16.
void softmax_bf16(const uint16_t* in, uint16_t* out, int rows, int cols,
                  const NumericsOptions& opt = {});

/// bf16 layer_norm over contiguous rows: widen, layer_norm_row_fp32 (one gamma/beta of `cols`
/// fp32 values shared by every row), round to bf16.
void layer_norm_bf16(const uint16_t* in, uint16_t* out, int rows, int cols, float eps,
                     const float* gamma, const float* beta, const NumericsOptions& opt = {});

/// int8 softmax: x = ((float)q - in_zero_point) * in_scale (two fp32 roundings),
/// softmax_row_fp32, quantize_row_output.
void softmax_int8(const int8_t* in, int8_t* out, int rows, int cols, const RowQuant& q);

/// int8 layer_norm: dequantize as softmax_int8, layer_norm_row_fp32, quantize_row_output.
void layer_norm_int8(const int8_t* in, int8_t* out, int rows, int cols, const RowQuant& q,
                     float eps, const float* gamma, const float* beta);

/// int8 table lookup: out[i] = table[in[i] + 128] (table has 256 entries).
void lut_int8(const int8_t* in, int8_t* out, std::size_t count, const int8_t* table);

}  // namespace tpu::isa
