// The reference network evaluator: computes a workload directly, op by op, with plain loop
// nests over the isa numerics (a convolution as the textbook seven-deep loop, no tiling, no
// bands, no fusion). Its outputs are what a compiled program run on the interpreter or the
// timed chip must reproduce bit for bit. Data come from compiler/params (the same seeds).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "compiler/workload.h"
#include "isa/isa_table.h"

namespace tpu::compiler {

/// Output tensors of the workload (batch included), by op name, as little-endian bytes.
/// The fp32 summation order of bf16 matrix ops follows the numerics contract of a compiled
/// layer (docs/compiler.md): kernel taps in row-major order, then input channels in chunks
/// of `mxu.rows`, each chunk summed from +0.0 and added to the running sum.
std::map<std::string, std::vector<uint8_t>> reference_outputs(const arch::ArchConfig& arch,
                                                              const Workload& w,
                                                              isa::MatType dtype);

}  // namespace tpu::compiler
