// The parameter cache (memory.parameter_cache_bytes) and a host-attached accelerator
// (host_link.carries_io): which parameters stay on chip, what crosses the host link every
// inference, how long that takes, and that the numbers stay bit-exact (docs/compiler.md).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "arch/arch_config.h"
#include "cli_util.h"
#include "compiler/compiler.h"
#include "compiler/workload.h"
#include "test_util.h"

namespace tpu {
namespace {

using test::source_path;

std::string preset(const std::string& name) {
  return source_path("configs/arch/" + name + ".yaml");
}

// One fully connected layer: 1024 x 1024 int8 weights (1 MiB) and a 4 KiB-scale bias and
// requantization record; the input is 1024 bytes per sample.
constexpr const char* kFc = R"(name: fc1m
inputs: [{name: x, shape: [1024]}]
ops:
  - {name: fc, op: fully_connected, units: 1024, activation: relu}
outputs: [fc]
)";

// Three layers: 64 KiB, 256 KiB and 16 KiB of weights.
constexpr const char* kThree = R"(name: three
inputs: [{name: x, shape: [256]}]
ops:
  - {name: a, op: fully_connected, units: 256}
  - {name: b, op: fully_connected, units: 1024}
  - {name: c, op: fully_connected, units: 16}
outputs: [c]
)";

class ParameterCache : public test::ScratchDir {
 protected:
  /// Runs `tpusim run` and returns report.json.
  nlohmann::json run(const std::string& arch, const std::string& workload, const std::string& extra,
                     const std::string& out) {
    test::CliResult r = test::run_tpusim("run --arch " + preset(arch) + " --workload " +
                                         path(workload) + " --out " + path(out) + " " + extra);
    EXPECT_EQ(r.code, 0) << r.out;
    return nlohmann::json::parse(test::read_text(path(out + "/report.json")));
  }
  static int64_t get(const nlohmann::json& rep, const char* key) {
    return rep["memory"][key].get<int64_t>();
  }
  static void expect_bit_exact(const nlohmann::json& rep) {
    ASSERT_FALSE(rep["outputs"].empty());
    for (const auto& o : rep["outputs"])
      EXPECT_TRUE(o["matches_reference"].get<bool>()) << o["name"];
  }
};

TEST_F(ParameterCache, ModelThatFitsStreamsNoParametersAndOnlyItsInputCrossesTheLink) {
  write("fc.yaml", kFc);
  nlohmann::json rep = run("edgetpu", "fc.yaml", "--check", "fits");
  expect_bit_exact(rep);
  EXPECT_GT(get(rep, "parameter_bytes"), 1024 * 1024);
  EXPECT_EQ(get(rep, "parameters_resident_bytes"), get(rep, "parameter_bytes"));
  EXPECT_EQ(get(rep, "parameters_streamed_bytes"), 0);
  EXPECT_EQ(get(rep, "parameters_host_bytes"), 0);
  EXPECT_EQ(get(rep, "host_to_device_bytes"), 1024);  // the input, once
  EXPECT_EQ(get(rep, "device_to_host_bytes"), 1024);  // the output, once
  EXPECT_EQ(get(rep, "parameter_cache_bytes"), 7987 * 1024);
  // The one-time load at model load is reported, not charged: resident bytes at 0.5 GB/s.
  EXPECT_NEAR(rep["memory"]["parameter_load_seconds"].get<double>(),
              static_cast<double>(get(rep, "parameters_resident_bytes")) / 0.5e9, 1e-12);
}

// A single layer whose weights exceed the cache: they cross the link on every inference, the
// array waits for them, and the time is bounded below by bytes / bandwidth + latency.
TEST_F(ParameterCache, LayerLargerThanTheCacheIsStreamedEveryInferenceAtLinkSpeed) {
  write("fc.yaml", kFc);
  nlohmann::json rep =
      run("edgetpu", "fc.yaml", "--check --set memory.parameter_cache_bytes=256KiB", "big");
  expect_bit_exact(rep);
  int64_t total = get(rep, "parameter_bytes"), cached = get(rep, "parameters_resident_bytes");
  int64_t streamed = get(rep, "parameters_streamed_bytes");
  EXPECT_EQ(total - cached, 1024 * 1024);  // the weights; bias and requantization stay cached
  EXPECT_EQ(streamed, total - cached);
  EXPECT_EQ(get(rep, "host_to_device_bytes"), streamed + 1024);  // + the input
  // 0.5 GB/s at 500 MHz is one byte per cycle: the link is busy exactly one cycle per byte.
  EXPECT_EQ(get(rep, "host_to_device_busy_cycles"), get(rep, "host_to_device_bytes"));
  const int64_t latency = 50000;  // 100 us at 500 MHz
  int64_t cycles = rep["total_cycles"].get<int64_t>();
  EXPECT_GE(cycles, streamed + latency);
  // Streaming dominates: at most the link time, three exposed latencies (input, weights,
  // output) and 5% for the passes and the rest.
  EXPECT_LE(cycles, get(rep, "host_to_device_bytes") + 3 * latency + streamed / 20) << cycles;

  // The same run twice: nothing is cached between runs (each run is one inference).
  nlohmann::json again = run("edgetpu", "fc.yaml",
                             "--no-functional --set memory.parameter_cache_bytes=256KiB", "again");
  EXPECT_EQ(again["total_cycles"].get<int64_t>(), cycles);
  EXPECT_EQ(get(again, "parameters_streamed_bytes"), streamed);

  // The standard runtime's 250 MHz: two bytes per cycle, the same seconds of streaming.
  nlohmann::json slow =
      run("edgetpu", "fc.yaml",
          "--no-functional --set memory.parameter_cache_bytes=256KiB --set clock_mhz=250", "std");
  EXPECT_EQ(get(slow, "host_to_device_busy_cycles"), get(rep, "host_to_device_bytes") / 2);
}

TEST_F(ParameterCache, UsbAndPcieDifferAsTheirLinksSay) {
  write("fc.yaml", kFc);
  const std::string small = "--no-functional --set memory.parameter_cache_bytes=256KiB";
  nlohmann::json usb = run("edgetpu", "fc.yaml", small, "usb");
  nlohmann::json pcie = run("edgetpu_pcie", "fc.yaml", small, "pcie");
  // Both carry 500 MB/s of payload per direction: the same bytes, the same busy cycles.
  EXPECT_EQ(get(usb, "host_to_device_bytes"), get(pcie, "host_to_device_bytes"));
  EXPECT_EQ(get(usb, "host_to_device_busy_cycles"), get(pcie, "host_to_device_busy_cycles"));
  // They differ in latency (100 us vs 1 us, 49,500 cycles): exposed once per dependent
  // transfer (input, weights, output).
  int64_t d = usb["total_cycles"].get<int64_t>() - pcie["total_cycles"].get<int64_t>();
  EXPECT_GE(d, 49500);
  EXPECT_LE(d, 3 * 49500);
  // Half the bandwidth: twice the busy cycles, and the streaming time grows by the link time.
  nlohmann::json half =
      run("edgetpu_pcie", "fc.yaml", small + " --set host_link.bandwidth_gbps=0.25", "half");
  int64_t busy = get(pcie, "host_to_device_busy_cycles");
  EXPECT_EQ(get(half, "host_to_device_busy_cycles"), 2 * busy);
  double grew = static_cast<double>(half["total_cycles"].get<int64_t>() -
                                    pcie["total_cycles"].get<int64_t>());
  EXPECT_NEAR(grew / static_cast<double>(busy), 1.0, 0.05);
}

// Parameters are placed whole, in model order, while they fit what is left of the cache; a
// later, smaller one still fits after a larger one did not.
TEST(ParameterCachePlacement, ModelOrderWhileTheyFit) {
  arch::ArchConfig a = arch::load_arch(preset("edgetpu"), {"memory.parameter_cache_bytes=200KiB"});
  compiler::Workload w = compiler::parse_workload_yaml(kThree, "three.yaml");
  compiler::Compiled c = compiler::compile(a, w, compiler::CompileOptions{});
  auto space = [&](const std::string& name) {
    const isa::Region* r = c.program().find_region(name);
    EXPECT_NE(r, nullptr) << name;
    return r ? r->space : isa::Space::kMem;
  };
  bool found_weights = false;
  for (const auto& r : c.program().regions) {
    if (!isa::is_parameter(r)) continue;
    // a's weights (64 KiB) fit; b's (256 KiB) do not; c's (16 KiB) fit after them.
    if (r.bytes() == 256 * 1024) {
      EXPECT_EQ(r.space, isa::Space::kHost) << r.name;
      found_weights = true;
    } else {
      EXPECT_EQ(r.space, isa::Space::kMem) << r.name;
      EXPECT_LT(r.addr + r.bytes(), 200u * 1024) << r.name;
    }
  }
  EXPECT_TRUE(found_weights);
  // Inputs and outputs stay in host memory on a host-attached accelerator.
  EXPECT_EQ(space("x"), isa::Space::kHost);
  EXPECT_EQ(space("c"), isa::Space::kHost);
  // Without a cache (TPU v4) nothing of this changes placement: everything fits in HBM.
  arch::ArchConfig v4 = arch::load_arch(preset("tpu_v4"));
  compiler::Compiled d = compiler::compile(v4, w, compiler::CompileOptions{});
  for (const auto& r : d.program().regions) EXPECT_EQ(r.space, isa::Space::kMem) << r.name;
}

}  // namespace
}  // namespace tpu
