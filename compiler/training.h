// Training mode as a workload transformation: one training step is the forward workload
// followed by the backward GEMMs of every matrix layer (input and weight gradients), a
// backward vector op per non-matrix op and an SGD update, all as ordinary workload ops, so
// the compiler, the chip model and the reference evaluator handle it unchanged
// (docs/training.md).
#pragma once

#include <cstdint>
#include <string>

#include "compiler/workload.h"

namespace tpu::compiler {

struct TrainOptions {
  bool optimizer = true;        ///< append the SGD update of every weight tensor
  bool vector_backward = true;  ///< backward ops of non-matrix ops and fused activations
};

/// Phases of a training step, told apart by the reserved suffixes of the op names.
enum class Phase : uint8_t { kForward, kBackward, kOptimizer };
const char* phase_name(Phase p);  ///< "forward", "backward", "optimizer"
/// The phase of an op or layer named `name`: names with "__sgd" are optimizer ops, other
/// names with the compiler-reserved "__" are backward ops (user names never contain "__"),
/// except the layers the compiler adds for an op of any phase (suffixes "__from_host" and
/// "__ag"), which take the phase of the name without the suffix.
Phase phase_of(const std::string& name);

/// One training step of `fwd` at `batch` samples: the forward ops unchanged, then for each
/// layer in reverse order its backward ops, then the optimizer ops. Backward operands are
/// new seeded workload inputs (LAYER__dy, LAYER__dx_in, LAYER__dw_in, ...): no gradient
/// values flow between layers, but every backward GEMM has its true shape and MAC count, so
/// time, traffic and arithmetic are modelled. Backward ops: LAYER__dact (the fused
/// activation's derivative), LAYER__dx (input gradient; none for layers reading a network
/// input), LAYER__dxb (second-operand gradient of mul and two-input matmul), LAYER__dw
/// (weight gradient, the batch contraction split over the batch along its rows); optimizer:
/// LAYER__sgd_lr (lr x dW) and LAYER__sgd (W + that). Outputs: the forward outputs and every
/// backward or optimizer result no later op reads. Throws InputError (naming the forward op)
/// when a backward op's shape is out of bounds.
Workload training_step(const Workload& fwd, int64_t batch, const TrainOptions& opt);

/// The rows (M) and output columns of the weight-gradient GEMM of a layer with per-group
/// output channels `n` and fan-in `k`, split over `batch` samples: the larger of n and k if
/// the batch divides it, else the other if it does, else the larger rounded up (padding).
/// `rows_per_sample` = ceil(M / batch).
struct WeightGradSplit {
  int64_t m = 0, out = 0, rows_per_sample = 0;
};
WeightGradSplit weight_grad_split(int64_t n, int64_t k, int64_t batch);

}  // namespace tpu::compiler
