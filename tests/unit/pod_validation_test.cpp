// Issue 8, pods: the figures scripts/tpuvalidate/pods.py reports (docs/validation.md),
// computed by the functions behind `tpusim collective --json` (run_collective's injected
// bytes, run_bisection), against exact formulas on the presets; the bisection pattern on small
// tori and meshes; and the command line's output and errors for it.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "arch/error.h"
#include "arch/pod_config.h"
#include "cli_util.h"
#include "pod_util.h"
#include "sim/pod/bisection.h"
#include "sim/pod/collective.h"
#include "test_util.h"

namespace tpu::pod {
namespace {

constexpr double kGiB = 1 << 30;

arch::PodConfig preset(const std::string& name) {
  return arch::load_pod(test::source_path("configs/pod/" + name + ".yaml"));
}

double link_bandwidth(const arch::PodConfig& p) {
  return p.link_bandwidth_gbps * 1e9 * static_cast<double>(p.links_per_direction);
}

struct Preset {
  const char* file;
  int64_t cut_links;  // 2 wrap-around-closed lines x chips / n along the cut dimension
};
constexpr Preset kPresets[] = {{"v3_32x32", 64}, {"v4_16x16x16", 512}, {"v5e_16x16", 32}};

TEST(PodBisection, MeasuredBandwidthIsTheCutsLinksTimesTheirBandwidthOnThePresets) {
  for (const Preset& pr : kPresets) {
    SCOPED_TRACE(pr.file);
    arch::PodConfig p = preset(pr.file);
    BisectionResult r = run_bisection(p, kGiB);
    EXPECT_EQ(r.dim, 0);  // square tori: every dimension ties, the lowest is cut
    EXPECT_EQ(r.cut_links, pr.cut_links);
    // h = n / 2 rounds, each holding a cut link for half a buffer, then one route's h hops.
    double h = static_cast<double>(p.dims[0] / 2);
    double expected = h * (kGiB / 2) / link_bandwidth(p) + h * p.link_latency_ns * 1e-9;
    EXPECT_NEAR(r.seconds / expected, 1.0, 1e-12);
    // Every chip's buffer crosses the cut: half the chips' one way, half the other.
    double half = static_cast<double>(p.chips / 2) * kGiB;
    EXPECT_DOUBLE_EQ(r.bytes_lower_to_upper, half);
    EXPECT_DOUBLE_EQ(r.bytes_upper_to_lower, half);
    // The measured figure is the link arithmetic up to the latency (1 us in 86 ms).
    EXPECT_NEAR(r.bandwidth_per_direction() / r.cut_capacity_per_direction(), 1.0, 1e-3);
    EXPECT_LT(r.bandwidth_per_direction(), r.cut_capacity_per_direction());
  }
}

TEST(PodBisection, RingsUseBothWaysRoundMeshesTheMiddleLinkOnly) {
  // 1 GB/s links, no latency: 1 ns per byte.
  auto pod = [](const char* topo, const char* dims) { return test::make_pod(topo, dims, 6, 1, 0); };
  struct Case {
    const char* topology;
    const char* dims;
    int dim;
    int64_t cut_links;
    double seconds;  // for 1000 bytes per chip
  } cases[] = {
      {"[ring]", "[8]", 0, 2, 4 * 500e-9},             // 4 rounds of 500 bytes each way
      {"[mesh]", "[8]", 0, 1, 4 * 1000e-9},            // 4 transfers through one link
      {"[torus, torus]", "[2, 2]", 0, 4, 500e-9},      // both links to the neighbour
      {"[torus, torus]", "[4, 8]", 1, 8, 4 * 500e-9},  // the longer dimension's cut is smaller
      {"[mesh, torus]", "[4, 4]", 0, 4, 2 * 1000e-9},  // the mesh dimension's cut is smaller
      {"[torus, torus]", "[3, 4]", 1, 6, 2 * 500e-9},  // an odd dimension cannot be halved
      {"[torus, torus, torus]", "[4, 4, 2]", 0, 16, 2 * 500e-9},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.topology) + " " + c.dims);
    arch::PodConfig p = pod(c.topology, c.dims);
    BisectionResult r = run_bisection(p, 1000);
    EXPECT_EQ(r.dim, c.dim);
    EXPECT_EQ(r.cut_links, c.cut_links);
    EXPECT_NEAR(r.seconds, c.seconds, 1e-15);
    EXPECT_DOUBLE_EQ(r.bytes_lower_to_upper, static_cast<double>(p.chips / 2) * 1000);
    EXPECT_DOUBLE_EQ(r.bytes_upper_to_lower, r.bytes_lower_to_upper);
    EXPECT_NEAR(r.bandwidth_per_direction(), static_cast<double>(c.cut_links) * 1e9, 1e-3);
  }
}

TEST(PodBisection, PodsWithNoEvenDimensionAreClearErrors) {
  arch::PodConfig odd = test::make_pod("[torus, torus]", "[3, 5]", 4);
  EXPECT_THROW(run_bisection(odd, 1000), InputError);
  std::string message;
  try {
    bisection_dim(odd);
  } catch (const InputError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("even number of chips"), std::string::npos) << message;
  EXPECT_NE(message.find("found 3x5"), std::string::npos) << message;
}

TEST(PodValidation, AllReduceInjectionIsTheBusBandwidthSummedOverChips) {
  for (const Preset& pr : kPresets) {
    SCOPED_TRACE(pr.file);
    arch::PodConfig p = preset(pr.file);
    CollectiveResult r = run_collective(p, CollectiveOp::kAllReduce, kGiB, Algorithm::kMultiTorus);
    double chips = static_cast<double>(p.chips);
    // Each chip sends 2(p-1)/p of its buffer (NCCL's bus bandwidth numerator), every transfer
    // one hop: injected bytes = link bytes.
    EXPECT_NEAR(r.injected_bytes / (chips * 2 * (chips - 1) / chips * kGiB), 1.0, 1e-6);
    EXPECT_DOUBLE_EQ(r.injected_bytes, r.link_bytes);
    // Multi-torus keeps all 2 x dims ports busy: the time is the ports' peak plus one link
    // latency per round, 2 sum(d_i - 1) rounds.
    double ports = 2.0 * static_cast<double>(p.dims.size()), rounds = 0;
    for (int64_t d : p.dims) rounds += 2.0 * static_cast<double>(d - 1);
    double expected = 2 * (chips - 1) / chips * kGiB / (ports * link_bandwidth(p)) +
                      rounds * p.link_latency_ns * 1e-9;
    EXPECT_NEAR(r.seconds / expected, 1.0, 1e-6);
  }
}

TEST(PodValidation, SimulatedFiguresStayAtTheValuesInTheValidationDoc) {
  // docs/validation.md (scripts/tpuvalidate/pods.py): the simulated all-reduce (TB/s,
  // injection) and bisection (TB/s, one direction) of each preset. A change to the network
  // model or the presets that moves one by more than 0.5% must regenerate the doc.
  struct Doc {
    const char* file;
    double all_reduce_tbps, bisection_tbps;
  } docs[] = {
      {"v3_32x32", 400.34, 6.40}, {"v4_16x16x16", 1214.0, 25.60}, {"v5e_16x16", 50.91, 1.60}};
  for (const Doc& d : docs) {
    SCOPED_TRACE(d.file);
    arch::PodConfig p = preset(d.file);
    CollectiveResult r = run_collective(p, CollectiveOp::kAllReduce, kGiB, Algorithm::kMultiTorus);
    EXPECT_NEAR(r.injected_bytes / r.seconds / 1e12 / d.all_reduce_tbps, 1.0, 0.005);
    EXPECT_NEAR(run_bisection(p, kGiB).bandwidth_per_direction() / 1e12 / d.bisection_tbps, 1.0,
                0.005);
  }
}

TEST(PodValidation, CollectiveCommandPrintsTheFiguresAsJson) {
  std::string v5e = test::source_path("configs/pod/v5e_16x16.yaml");
  test::CliResult b = test::run_tpusim("collective --pod " + v5e + " --op bisection --json");
  ASSERT_EQ(b.code, 0) << b.out;
  nlohmann::json j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["op"], "bisection");
  EXPECT_EQ(j["cut_links"], 32);
  EXPECT_EQ(j["bytes"], kGiB);
  EXPECT_NEAR(j["bandwidth_per_direction"].get<double>() / 1.6e12, 1.0, 1e-3);
  EXPECT_DOUBLE_EQ(j["cut_capacity_per_direction"].get<double>(), 1.6e12);

  test::CliResult a = test::run_tpusim("collective --pod " + v5e +
                                       " --op all-reduce --algorithm multi-torus --json");
  ASSERT_EQ(a.code, 0) << a.out;
  nlohmann::json k = nlohmann::json::parse(a.out);
  EXPECT_EQ(k["algorithm"], "multi-torus");
  EXPECT_EQ(k["dims"], nlohmann::json::array({16, 16}));
  EXPECT_DOUBLE_EQ(k["injection_bandwidth"].get<double>(),
                   k["injected_bytes"].get<double>() / k["seconds"].get<double>());
  EXPECT_DOUBLE_EQ(k["chips_x_algorithm_bandwidth"].get<double>(),
                   256 * kGiB / k["seconds"].get<double>());

  test::CliResult t = test::run_tpusim("collective --pod " + v5e + " --op bisection --bytes 1MiB");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("links crossing the cut"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("1.600 TB/s per direction (links x link bandwidth)"), std::string::npos)
      << t.out;

  // Every size suffix the message lists is taken, decimal and binary, up to 1 PiB.
  for (const auto& [text, bytes] : std::vector<std::pair<std::string, double>>{
           {"3KB", 3e3}, {"3KiB", 3 * 1024.0}, {"2TB", 2e12}, {"1TiB", 1099511627776.0}, {"1PB", 1e15},
           {"1PiB", 1125899906842624.0}, {"5B", 5}, {"1.5KiB", 1536}, {"2e3", 2000},
           {"0.5KiB", 512}, {"1.2e-3MB", 1200}, {"1e0", 1}, {"1125899906842624", 1125899906842624.0},
           {"000000000000000000000000004096.000000000000000000000000", 4096}, {"4096e+0B", 4096}}) {
    test::CliResult s = test::run_tpusim("collective --pod " + v5e + " --op bisection --json --bytes " + text);
    ASSERT_EQ(s.code, 0) << text << "\n" << s.out;
    EXPECT_EQ(nlohmann::json::parse(s.out)["bytes"].get<double>(), bytes) << text;
  }
  // Beyond 1 PiB, a fraction of a byte, hex and infinities are refused; exactly, not as a
  // double would round them. Control characters are echoed as \xNN on the one line.
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"1.01PiB", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"inf", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"0x10", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1.5", "--bytes: expected a whole number of bytes, found '1.5' (1.5 bytes)"},
           {"1.0001KB", "--bytes: expected a whole number of bytes, found '1.0001KB' (1000.1"},
           {"1125899906842624.01", "--bytes: expected a whole number of bytes, found '1125899906842624.01'\n"},
           {"0.99999999999999999999", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1125899906842625", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1e99999999999999999999", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1e-99999999999999999999", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1.000000000000000000001e3", "--bytes: expected a whole number of bytes, found '1.000000000000000000001e3'\n"},
           {"0e5", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"1e", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"e3", "--bytes: expected a size from 1 byte to 1 PiB"},
           {"'1\n2'", "--bytes: expected a size from 1 byte to 1 PiB (e.g. 4096, 64MiB, 1GiB, 2TB; B, KB..PB, "
                      "KiB..PiB), found '1\\x0a2'"}}) {
    test::CliResult r = test::run_tpusim("collective --pod " + v5e + " --op bisection --bytes " + text);
    EXPECT_EQ(r.code, 2) << text << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << text << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

TEST(PodValidation, BadCollectiveCommandLinesExitTwoWithOneMessage) {
  std::string v5e = test::source_path("configs/pod/v5e_16x16.yaml");
  struct Case {
    std::string args, message;
  } cases[] = {
      {"--op bisection --algorithm ring", "--algorithm: expected auto for --op bisection"},
      {"--op bisection --set dims=[3,3]",
       "v5e_16x16.yaml (--set dims=[3,3]): dims: expected a dimension with an even number of chips"},
      // A newline inside an override stays on the one line, as \x0a.
      {"--op bisection --set 'dims=[3,\n3]'",
       "v5e_16x16.yaml (--set dims=[3,\\x0a3]): dims: expected a dimension with an even number of chips"},
      {"--op bisection --bytes 0", "--bytes: expected a size"},
      // 2^20 chips, each of the facing planes sending 32768 hops: ran for minutes before.
      {"--op bisection --set dims=[16,65536]",
       "v5e_16x16.yaml (--set dims=[16,65536]): dims: expected a pod whose bisection traffic takes "
       "at most 100000000 link hops (chips x half the cut dimension x 2 directions), found 16x65536: "
       "68719476736 hops across dimension 1"},
      {"--op bisect", "all-to-all|broadcast|bisection"},
      // Algorithms an op has no schedule for name the ones it has.
      {"--op broadcast --algorithm bidir-ring",
       "<command line>: algorithm: expected tree, torus, multi-torus or auto for broadcast, found bidir-ring"},
      {"--op all-to-all --algorithm bidir-ring",
       "<command line>: algorithm: expected ring, torus, multi-torus or auto for all-to-all, found bidir-ring"},
      {"--op reduce-scatter --algorithm tree",
       "<command line>: algorithm: expected ring, bidir-ring, torus, multi-torus or auto for reduce-scatter, found tree"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    test::CliResult r = test::run_tpusim("collective --pod " + v5e + " " + c.args);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

// Schedules too large to build name the pod file and offer only what would help: a torus
// schedule to a ring or an all-to-all's direct sends on a torus, never to an algorithm that is
// already one.
TEST(PodValidation, OversizedSchedulesNameThePodFileAndWhatWouldHelp) {
  std::string v3 = test::source_path("configs/pod/v3_32x32.yaml");
  struct Case {
    std::string args, message;
    bool suggests_torus;
  } cases[] = {
      {"--op all-reduce --algorithm ring", "v3_32x32.yaml (--set dims=[256,256]): algorithm: expected a schedule of at most 100000000 transfers", true},
      {"--op all-reduce --algorithm torus", "v3_32x32.yaml (--set dims=[256,256]): algorithm: expected a schedule of at most 100000000 transfers", false},
      {"--op all-to-all --algorithm ring", "v3_32x32.yaml (--set dims=[256,256]): algorithm: expected a ring all-to-all over at most 1024 chips", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    test::CliResult r = test::run_tpusim("collective --pod " + v3 + " --set dims=[256,256] --bytes 1MiB " + c.args);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("torus or multi-torus") != std::string::npos, c.suggests_torus) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

}  // namespace
}  // namespace tpu::pod
