// The pod: chips joined by an inter-chip interconnect (ICI), 1 to 3 dimensions, each a ring
// (torus) or a mesh. Loaded through a Schema like the chip config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/schema.h"

namespace tpu::arch {

enum class DimTopology : uint8_t { kRing, kMesh, kTorus };

struct PodConfig {
  std::string name;
  std::vector<DimTopology> topology;  ///< one per dimension
  std::vector<int64_t> dims;          ///< chips along each dimension
  int64_t links_per_direction = 1;
  double link_bandwidth_gbps = 0;     ///< GB/s per link per direction
  double link_latency_ns = 0;
  double router_latency_ns = 0;       ///< per hop
  int64_t ports_per_chip = 0;         ///< ICI ports the chip has

  int64_t chips = 0;                  ///< derived: product of dims
  int64_t ports_used = 0;             ///< derived: ports one chip needs for this topology
  std::string fingerprint;
  std::string file;                   ///< where it was loaded from
  std::string overrides;              ///< the command-line overrides, "--set k=v ..." (or empty)

  /// What messages about the loaded pod name: the file and, when given, its overrides,
  /// "v5e_16x16.yaml (--set dims=[3,3])".
  std::string origin() const { return overrides.empty() ? file : file + " (" + overrides + ")"; }
};

const Schema<PodConfig>& pod_schema();
const std::vector<std::string>& dim_topology_names();

/// Loads and validates a pod file. Throws InputError: zero dims, dimension count mismatch,
/// more ports needed than the chip has, more than 1,048,576 chips.
/// `option` names the overrides' command-line option in messages (--set, --pod-set).
PodConfig load_pod(const std::string& path, const std::vector<std::string>& overrides = {},
                   const std::string& option = "--set");
PodConfig load_pod_string(const std::string& yaml, const std::string& name,
                          const std::vector<std::string>& overrides = {});
std::string dump_pod(const PodConfig& c);

}  // namespace tpu::arch
