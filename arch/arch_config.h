// The chip architecture: one plain struct per unit, filled from YAML through the schema in
// arch_config.cpp, validated, and with its derived figures computed once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/schema.h"

namespace tpu::arch {

enum class Dataflow : uint8_t { kWeightStationary, kOutputStationary, kInputStationary };
enum class DType : uint8_t { kInt8, kBf16 };
enum class Overlap : uint8_t { kPipelined, kNone };
enum class MemoryKind : uint8_t { kNone, kSram, kDdr3, kDdr4, kLpddr4, kGddr5, kHbm, kHbm2, kHbm2e };
enum class HostLinkKind : uint8_t { kPcie, kUsb };

const std::vector<std::string>& dataflow_names();
const std::vector<std::string>& dtype_names();
const std::string& dtype_name(DType d);

/// The systolic arrays of one core (all MXUs of a core are identical).
struct MxuConfig {
  int64_t count = 1;  ///< MXUs per core
  int64_t rows = 0;   ///< array rows: the reduction (K) dimension of a weight tile
  int64_t cols = 0;   ///< array columns: the output (N) dimension of a weight tile
  Dataflow dataflow = Dataflow::kWeightStationary;
  std::vector<DType> dtypes;
  int64_t int8_macs_per_pe = 1;  ///< int8 MACs per PE per cycle (2 on v5e)
  int64_t weight_load_rows_per_cycle = 1;
  bool weight_double_buffer = true;
  int64_t weight_fifo_depth = 4;  ///< tiles
  /// load_weights from memory moves a whole rows x cols tile (weight memory holds tiles
  /// zero-padded to the array's size), whatever the tile's k and n.
  bool weight_whole_tiles = false;
  Overlap overlap = Overlap::kPipelined;
};

struct UnifiedBufferConfig {
  int64_t bytes = 0;
  int64_t banks = 1;
  int64_t port_bytes_per_cycle = 0;
  int64_t ports = 2;
};

struct AccumulatorConfig {
  int64_t entries = 0;  ///< rows of mxu.cols 32-bit values, per MXU
  int64_t width_bits = 32;
};

struct VectorUnitConfig {
  int64_t lanes = 0;
  int64_t ops_per_lane_per_cycle = 1;
  int64_t latency_cycles = 8;  ///< pipeline depth: first result after this many cycles
};

/// Instruction issue (TPU v1: a 4-stage CISC pipeline feeding decoupled unit queues).
struct SequencerConfig {
  int64_t issue_cycles = 1;   ///< cycles to fetch, decode and issue one instruction
  int64_t queue_depth = 16;   ///< instructions each unit queue holds
  /// The compiler makes each layer's first matrix pass wait for every vector-unit
  /// instruction before it (`sync units=vector`): TPU v1's explicit synchronisation of
  /// Activate -> MatrixMultiply through the UB, instead of the scoreboard's per-byte order.
  bool layer_sync = false;
};

struct MemoryConfig {
  MemoryKind kind = MemoryKind::kHbm;
  int64_t bytes = 0;
  double bandwidth_gbps = 0;  ///< GB/s (1e9 bytes per second), all channels together
  double latency_ns = 0;
  int64_t channels = 1;
  int64_t burst_bytes = 256;  ///< channel interleave and arbitration unit
  /// Lowest bytes of the memory reserved for parameters that stay resident across
  /// inferences (0: none; parameters and activations share the memory first fit).
  int64_t parameter_cache_bytes = 0;
  /// All-bank refresh: every channel is unavailable for refresh_ns (tRFC) once every
  /// refresh_interval_ns (tREFI); 0: no refresh.
  double refresh_interval_ns = 0;
  double refresh_ns = 0;
};

struct HostLinkConfig {
  HostLinkKind kind = HostLinkKind::kPcie;
  double bandwidth_gbps = 0;  ///< GB/s, each direction
  double latency_ns = 0;
  /// Workload inputs and outputs stay in host memory and cross the link every inference.
  bool carries_io = false;
};

struct NumericsConfig {
  bool flush_subnormals = true;
};

/// Published figures carried by a preset for validation (0 = not published).
struct PublishedConfig {
  double peak_tops_int8 = 0;
  double peak_tflops_bf16 = 0;
};

/// Figures computed once from the config (never read from YAML).
struct Derived {
  int64_t mxus = 0;                    ///< total MXUs on the chip
  int64_t peak_macs_per_cycle_int8 = 0;  ///< 0 when int8 is not supported
  int64_t peak_macs_per_cycle_bf16 = 0;  ///< 0 when bf16 is not supported
  double peak_tops_int8 = 0;           ///< 2 ops per MAC
  double peak_tflops_bf16 = 0;
  int64_t ub_bytes_per_cycle = 0;      ///< all ports together
  double memory_bytes_per_cycle = 0;       ///< peak, all channels
  double memory_refresh_fraction = 0;      ///< refresh_ns / refresh_interval_ns (0: no refresh)
  double memory_sustained_bytes_per_cycle = 0;  ///< peak less refresh: what a long stream gets
  double host_bytes_per_cycle = 0;
  int64_t accumulator_bytes = 0;       ///< per MXU
  int64_t weight_tile_shift_cycles = 0;  ///< cycles to shift one full weight tile in
};

struct ArchConfig {
  std::string name;
  double clock_mhz = 0;
  int64_t cores = 1;
  MxuConfig mxu;
  UnifiedBufferConfig unified_buffer;
  AccumulatorConfig accumulators;
  VectorUnitConfig vector_unit;
  SequencerConfig sequencer;
  MemoryConfig memory;
  HostLinkConfig host_link;
  NumericsConfig numerics;
  PublishedConfig published;

  Derived derived;      ///< filled by load_arch
  std::string fingerprint;  ///< 16 hex digits over the canonical resolved config

  bool supports(DType d) const;
};

/// The schema (every key, default, unit, range and description).
const Schema<ArchConfig>& arch_schema();

/// Loads, applies `--set` overrides (each "dotted.key=value"), validates (types, ranges and
/// cross-field consistency) and derives. Throws InputError on any bad input.
ArchConfig load_arch(const std::string& path, const std::vector<std::string>& overrides = {});
ArchConfig load_arch_string(const std::string& yaml, const std::string& name,
                            const std::vector<std::string>& overrides = {});

/// Every field as commented YAML; load_arch_string(dump_arch(c)) == c.
std::string dump_arch(const ArchConfig& c);
/// The derived figures as YAML comments (so a dump with them appended still loads).
std::string dump_derived(const ArchConfig& c);

/// Equality of every schema field.
bool operator==(const ArchConfig& a, const ArchConfig& b);

}  // namespace tpu::arch
