// The compiler: lowers a workload to an isa::Program for one architecture. Matrix ops become
// matrix passes (convolutions through the matmul instruction's window addressing, never an
// im2col copy), the rest vector-unit instructions; everything is tiled against the array,
// the accumulators, the unified buffer and the weight FIFO. See docs/compiler.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "compiler/params.h"
#include "compiler/workload.h"
#include "isa/program.h"

namespace tpu::compiler {

/// Bound on the size of a compiled program (host memory stays in the hundreds of MiB).
inline constexpr std::size_t kMaxCompiledInstructions = std::size_t{1} << 20;

struct CompileOptions {
  std::optional<isa::MatType> dtype;  ///< overrides the workload's dtype
  std::optional<int64_t> batch;       ///< overrides the workload's batch
  bool fusion = true;                 ///< fuse bias/activation/elementwise into the matrix op
  /// Keep intermediate activations in the unified buffer between layers when they fit
  /// (with several cores, each core's own samples in its own UB; docs/compiler.md). Off:
  /// every activation goes through off-chip memory.
  bool ub_activations = true;
  /// Bound on each core's program (an InputError names the layer that passes it).
  std::size_t max_instructions = kMaxCompiledInstructions;
  /// Pod dimensions (bit d: dimension d) of the data- and tensor-parallel groups that
  /// all_reduce / all_gather ops (comm_group 0 / 1) run over.
  std::array<unsigned, 2> comm_masks{7u, 7u};
};

/// One workload op (or a fused group led by it) as compiled.
struct LayerPlan {
  std::string name;
  std::string op;                    ///< op kind, "+"-joined with the ops fused into it
  std::string shape;                 ///< output shape per sample
  std::vector<std::string> fused;    ///< names of the ops fused into this layer
  bool matrix = false;               ///< runs passes on the MXUs
  int64_t macs = 0;                  ///< useful MACs, whole batch
  int64_t array_macs = 0;            ///< MACs the passes occupy (k x n x rows, whole batch)
  int64_t array_mac_slots = 0;       ///< rows x cols x rows-streamed of those passes
  std::size_t first = 0, end = 0;    ///< instruction range [first, end)
  std::string loop_order;            ///< the chosen order and why
  int64_t est_hbm_bytes = 0;         ///< off-chip traffic estimate of the chosen order
  std::vector<std::string> options;  ///< every order considered with its estimate
  int64_t bands = 1, n_tiles = 1, k_chunks = 1;
  std::string weights_in;            ///< where the weights stream from (mem, ub, host)
};

struct Compiled {
  /// One program per core used: the batch is split over min(cores, batch) cores, every
  /// program declaring the same regions; core_layer_of[c][i] is program c's layer of
  /// instruction i. LayerPlan ranges and macs refer to core 0 / the whole batch.
  std::vector<isa::Program> core_programs;
  /// Core 0's program (held once: a long program is hundreds of megabytes).
  const isa::Program& program() const { return core_programs.front(); }
  isa::Program& program() { return core_programs.front(); }
  std::vector<std::vector<int>> core_layer_of;
  std::vector<LayerPlan> layers;
  std::vector<int> layer_of;   ///< per instruction: index into layers (-1: none)
  isa::MatType dtype = isa::MatType::kBf16;
  int64_t batch = 1;
  /// Activations kept in the UB between layers (CompileOptions::ub_activations, a range of
  /// each core's UB reserved). False when it was asked for but a layer (on any core) needed
  /// the UB it would take, so the workload was compiled with every activation off chip.
  bool ub_activations = false;
  /// Off-chip memory the program occupies at its high-water mark (parameters, regions and
  /// the activations live at once; with several cores, one core's allocation, which every
  /// core shares) and the bytes it places in host memory. Training steps count their
  /// backward operands as regions (docs/training.md).
  uint64_t offchip_bytes = 0, host_bytes = 0;
  Workload workload;           ///< with shapes for the compiled batch
  /// Output tensor name -> region name in the program.
  std::vector<std::pair<std::string, std::string>> outputs;
  std::string explain() const;
};

/// Compiles; throws InputError naming the layer when something can never fit or is not
/// supported.
Compiled compile(const arch::ArchConfig& arch, const Workload& workload, const CompileOptions& opt);

/// The dtype a workload runs in on `arch` (option, then workload, then the arch's first
/// dtype); InputError when the array does not support it.
isa::MatType resolve_dtype(const arch::ArchConfig& arch, const Workload& w,
                           std::optional<isa::MatType> override_dtype);

}  // namespace tpu::compiler
