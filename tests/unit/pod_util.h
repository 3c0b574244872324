// A pod configuration written inline for tests.
#pragma once

#include <string>

#include "arch/pod_config.h"

namespace tpu::test {

inline arch::PodConfig make_pod(const std::string& topology, const std::string& dims, int ports, double gbps = 50,
                                double latency_ns = 1000) {
  return arch::load_pod_string("name: p\ntopology: " + topology + "\ndims: " + dims +
                                   "\nlink_bandwidth_gbps: " + std::to_string(gbps) +
                                   "\nlink_latency_ns: " + std::to_string(latency_ns) +
                                   "\nports_per_chip: " + std::to_string(ports) + "\n",
                               "p.yaml");
}

}  // namespace tpu::test
