// Parallelism over a pod, as workload transformations that insert the communication ops the
// compiler lowers to collectives (docs/pod.md):
// - tensor parallelism shards every conv2d / fully_connected / one-input matmul whose output
//   channels divide by the tensor degree: each chip computes its share of the channels and
//   an all_gather over the tensor group rebuilds the whole activation;
// - data parallelism gives each chip batch / data samples; in training every weight
//   gradient (an op named L__dw) is all-reduced over the data group before the optimizer
//   reads it, and the input gradient of a tensor-sharded layer (L__dx, a partial sum over
//   the layer's shards) is all-reduced over the tensor group.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "compiler/workload.h"

namespace tpu::compiler {

/// Shards the matrix ops of a (forward) workload over `tensor` chips; returns the names of
/// the sharded ops in *sharded. Shapes are re-inferred.
Workload shard_tensor(const Workload& w, int64_t tensor, std::set<std::string>* sharded);

/// Inserts the gradient all-reduces of a training step: over the data group after every
/// L__dw (when data > 1) and over the tensor group after L__dx for every sharded L. Readers of
/// a reduced tensor read the reduced one. With bucket_bytes > 0, consecutive weight
/// gradients are gathered into buckets of at least that many bytes (at most 64 gradients):
/// each gradient is flattened and concatenated into the bucket when the bucket's last
/// gradient is ready, the bucket is all-reduced once, and each gradient's slice is copied
/// back out for the optimizer. Shapes are re-inferred.
Workload insert_gradient_collectives(const Workload& w, int64_t data, const std::set<std::string>& sharded,
                                     int64_t bucket_bytes = 0);

}  // namespace tpu::compiler
