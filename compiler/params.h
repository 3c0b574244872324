// Deterministic data of a workload: inputs, weights, biases, quantization parameters and
// activation tables, all generated from the workload's seed and the tensor's name. The
// compiler puts them into the program (as init=random regions or literal values) and the
// reference network evaluator regenerates the same bytes from the same descriptions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/workload.h"
#include "isa/numerics.h"
#include "isa/program.h"

namespace tpu::compiler {

/// int8 activations: every tensor has scale 1/16 and zero point 0 (docs/compiler.md).
inline constexpr double kInt8ActScale = 1.0 / 16.0;
/// relu6 as an int8 clamp at that scale: 6 / (1/16).
inline constexpr int kInt8Relu6Max = 96;

/// Seed of a tensor: the workload seed mixed with the tensor's name (FNV-1a).
uint64_t tensor_seed(uint64_t workload_seed, const std::string& name);

/// Input vectors of the matrix op per output (its fan-in K).
int64_t fan_in(const Op& op);

/// The init=random region holding a workload input (batch x per-sample shape).
isa::Region input_region(const Workload& w, const WorkloadInput& in, isa::MatType dt, int64_t batch);

/// The init=random region of a matrix op's weights, in its logical layout:
/// conv2d [kh, kw, C/groups, filters] (HWIO), depthwise [kh, kw, C] (multiplier 1),
/// fully_connected / one-input matmul [C, units]. bf16 weights are scaled by
/// sqrt(3 / K) / 2 so activations keep their magnitude through deep networks.
isa::Region weight_region(const Workload& w, const Op& op, isa::MatType dt);

/// bf16 biases of a matrix op: fp32 [filters], init=random scaled by 1/8.
isa::Region bias_region(const Workload& w, const Op& op);

/// int8 requantization per output channel of a matrix op: {bias, multiplier, shift}, chosen
/// so that the int8 outputs spread over the range for random int8 operands.
std::vector<isa::RequantParams> requant_params(const Workload& w, const Op& op);

/// int8 activation function as a 256-entry table at kInt8ActScale: t[q + 128] =
/// clamp(round(f(q / 16) * 16)), computed in double.
std::array<int8_t, 256> int8_activation_table(isa::Activation f);

/// layer_norm parameters: gamma (about 1) and beta (about 0) per feature, fp32.
void layer_norm_params(const Workload& w, const Op& op, std::vector<float>* gamma,
                       std::vector<float>* beta);

/// True when a conv2d is lowered one pass per kernel row (its kw taps packed into one input
/// vector of kw x C values): groups 1, no horizontal dilation, kw > 1 and kw x C <= the
/// array's rows. This changes the bf16 summation order (docs/compiler.md), so the
/// compiler and the reference evaluator share this rule.
bool packs_kernel_rows(const Op& op, int64_t array_rows);

/// The activation function an elementwise op kind applies (relu .. tanh), else kNone.
isa::Activation activation_of(OpKind k);

}  // namespace tpu::compiler
