// A pod of chips in one SystemC simulation, behind one interface with two backends:
// detailed (every chip a Chip module running its own programs, every transfer on its link of
// the shared network, data moved between the chips' memories) and symmetric (one
// representative chip whose collectives take the time the same schedule takes on an idle
// pod, for pods of thousands of chips). See docs/pod.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "arch/pod_config.h"
#include "sim/chip/chip.h"

namespace tpu::pod {

enum class Backend : uint8_t { kDetailed, kSymmetric };
inline constexpr const char* kBackendNames[] = {"detailed", "symmetric"};

/// Largest pod the detailed backend simulates (every chip is a module with its own state).
inline constexpr int64_t kMaxDetailedChips = 512;
/// Largest number of instructions, over all chips, the detailed backend simulates.
inline constexpr double kMaxDetailedInstructions = 8e6;

struct PodRunOptions {
  Backend backend = Backend::kDetailed;
  sim::ChipOptions chip;  ///< functional, trace (chip 0 only), watchdog hook
};

/// One collective of chip 0 (the representative), as it ran.
struct CollectiveRecord {
  std::size_t index = 0;      ///< instruction index in core 0's program
  std::string op, algorithm;  ///< resolved algorithm
  int64_t bytes = 0;          ///< each chip's buffer
  int64_t chips = 0;          ///< chips in the group
  unsigned mask = 0;          ///< pod dimensions the group spans (bit d: dimension d)
  int64_t start_cycle = 0, end_cycle = 0;
};

struct PodResult {
  bool completed = false;
  std::vector<std::string> stuck;  ///< when !completed: what each stuck unit waits for
  int64_t cycles = 0;              ///< the last chip's halt
  /// detailed: one per chip; symmetric: the representative chip only.
  std::vector<sim::ChipResult> chips;
  std::vector<CollectiveRecord> collectives;
  double link_bytes = 0;     ///< bytes that crossed links (every hop; symmetric: collectives of one group)
  double max_link_busy = 0;  ///< seconds the busiest link was busy
};

/// Simulates `programs[c]` (the core programs of chip c) on every chip of `pod`
/// (detailed: programs.size() == pod.chips, at most kMaxDetailedChips; symmetric: exactly one
/// entry, the representative chip, timing only). Throws InputError for programs the pod cannot
/// run (a send/recv dimension the pod lacks or a neighbour past a mesh edge, ICI instructions
/// on a core other than 0, chips of one collective that disagree).
PodResult run_pod(const arch::ArchConfig& arch, const arch::PodConfig& pod,
                  const std::vector<std::vector<sim::CoreProgram>>& programs, const PodRunOptions& options);

}  // namespace tpu::pod
