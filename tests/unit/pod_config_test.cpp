// Pod configs: derived chip and port counts, and the bad shapes the pods issue relies on
// being rejected.
#include <gtest/gtest.h>

#include "arch/pod_config.h"
#include "test_util.h"

namespace tpu::arch {
namespace {

using test::expect_input_error;

std::string pod(const std::string& topology, const std::string& dims, int ports) {
  return "name: p\ntopology: " + topology + "\ndims: " + dims +
         "\nlink_bandwidth_gbps: 50\nports_per_chip: " + std::to_string(ports) + "\n";
}

TEST(PodConfig, ChipsAndPortsFollowTheTopology) {
  PodConfig c = load_pod_string(pod("[torus, torus, torus]", "[4, 4, 4]", 6), "p.yaml");
  EXPECT_EQ(c.chips, 64);
  EXPECT_EQ(c.ports_used, 6);
  c = load_pod_string(pod("[mesh, torus]", "[2, 16]", 4), "p.yaml");
  EXPECT_EQ(c.chips, 32);
  EXPECT_EQ(c.ports_used, 3);  // a 2-chip mesh dimension has one neighbour
  c = load_pod_string(pod("[ring]", "[1]", 1), "p.yaml");
  EXPECT_EQ(c.ports_used, 0);
}

TEST(PodConfig, BadShapesAreErrors) {
  InputError e = expect_input_error(
      [] { load_pod_string(pod("[torus, torus]", "[0, 4]", 4), "p.yaml"); });
  EXPECT_EQ(e.key(), "dims");
  e = expect_input_error([] { load_pod_string(pod("[torus]", "[4, 4]", 4), "p.yaml"); });
  EXPECT_EQ(e.key(), "topology");
  e = expect_input_error(
      [] { load_pod_string(pod("[torus, torus, torus]", "[4, 4, 4]", 4), "p.yaml"); });
  EXPECT_EQ(e.key(), "ports_per_chip");
  EXPECT_NE(e.expected().find("at least 6"), std::string::npos);
  e = expect_input_error(
      [] { load_pod_string(pod("[torus, torus, torus]", "[1024, 1024, 2]", 6), "p.yaml"); });
  EXPECT_EQ(e.key(), "dims");
  e = expect_input_error(
      [] { load_pod_string(pod("[torus, torus, torus, torus]", "[2, 2, 2, 2]", 8), "p.yaml"); });
  EXPECT_EQ(e.key(), "dims");
}

TEST(PodConfig, ACheckAcrossKeysNamesTheOverrideThatBrokeIt) {
  // --set dims with one entry against the file's two-entry topology: the override is blamed.
  InputError e = expect_input_error(
      [] { load_pod_string(pod("[torus, torus]", "[4, 4]", 4), "p.yaml", {"dims=[16]"}); });
  EXPECT_EQ(std::string(e.what()),
            "<command line>: --set dims: expected one entry per dimension of topology (2), found 1 entries");
  // The file's own mismatch, or both keys overridden, is about topology.
  e = expect_input_error([] {
    load_pod_string(pod("[torus, torus]", "[4, 4]", 4), "p.yaml", {"dims=[16]", "topology=[torus, mesh]"});
  });
  EXPECT_EQ(std::string(e.what()),
            "<command line>: --set topology: expected one entry per dimension (1), found 2 entries");
  // Too few ports once --set dims adds a dimension: ports_per_chip is the file's, the cause the override.
  e = expect_input_error([] {
    load_pod_string(pod("[torus, torus]", "[4, 4]", 4), "p.yaml", {"dims=[4, 4, 4]", "topology=[torus, torus, torus]"});
  });
  EXPECT_EQ(std::string(e.what()),
            "p.yaml:5:1: ports_per_chip: expected at least 6 (the topology needs that many per chip with "
            "--set dims, --set topology), found 4");
  e = expect_input_error([] { load_pod_string(pod("[torus, torus, torus]", "[4, 4, 4]", 4), "p.yaml"); });
  EXPECT_EQ(std::string(e.what()),
            "p.yaml:5:1: ports_per_chip: expected at least 6 (the topology needs that many per chip), found 4");
}

TEST(PodConfig, TheOriginNamesTheFileAndItsOverrides) {
  std::string v5e = test::source_path("configs/pod/v5e_16x16.yaml");
  PodConfig c = load_pod(v5e);
  EXPECT_EQ(c.file, v5e);
  EXPECT_EQ(c.origin(), v5e);
  c = load_pod(v5e, {"dims=[8,8]", "link_latency_ns=5"}, "--pod-set");
  EXPECT_EQ(c.file, v5e);
  EXPECT_EQ(c.origin(), v5e + " (--pod-set dims=[8,8] --pod-set link_latency_ns=5)");
}

TEST(PodConfig, DumpLoadsBackWithTheSameFingerprint) {
  PodConfig c = load_pod_string(pod("[torus, mesh]", "[8, 4]", 4), "p.yaml");
  PodConfig back = load_pod_string(dump_pod(c), "dump.yaml");
  EXPECT_EQ(back.fingerprint, c.fingerprint);
  EXPECT_EQ(back.dims, c.dims);
  EXPECT_EQ(back.topology, c.topology);
}

}  // namespace
}  // namespace tpu::arch

namespace tpu::arch {
namespace {

// The presets of the pods issue: published chip counts and ICI ports per chip.
TEST(PodConfig, PresetsHaveThePublishedShapes) {
  struct Want {
    const char* file;
    int64_t chips, ports;
    double gbps;
  };
  for (const Want& w : {Want{"v2_16x16", 256, 4, 62.5}, Want{"v3_32x32", 1024, 4, 100},
                        Want{"v4_4x4x4", 64, 6, 50}, Want{"v4_16x16x16", 4096, 6, 50},
                        Want{"v5e_16x16", 256, 4, 50}}) {
    PodConfig c = load_pod(test::source_path(std::string("configs/pod/") + w.file + ".yaml"));
    EXPECT_EQ(c.chips, w.chips) << w.file;
    EXPECT_EQ(c.ports_used, w.ports) << w.file;
    EXPECT_EQ(c.link_bandwidth_gbps, w.gbps) << w.file;
  }
}

}  // namespace
}  // namespace tpu::arch
