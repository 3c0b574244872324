// The pod interconnect: link contention, dimension-ordered routes, and collectives against
// their closed-form alpha-beta costs on an idle network (ring, bidirectional ring, 2D and 3D
// torus, mesh lines), on the bundled pod presets too; all-to-all and broadcast schedules; how
// auto chooses.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "arch/error.h"
#include "arch/pod_config.h"
#include "pod_util.h"
#include "sim/pod/collective.h"
#include "test_util.h"

namespace tpu::pod {
namespace {

arch::PodConfig pod(const std::string& topology, const std::string& dims, int ports, double gbps = 50,
                    double latency_ns = 1000) {
  return test::make_pod(topology, dims, ports, gbps, latency_ns);
}

TEST(PodNetwork, TwoTransfersOnOneLinkShareItOthersOverlap) {
  Network net(pod("[ring]", "[4]", 2, 1, 0));  // 1 GB/s links, no latency: 1 ns per byte
  double a = net.send(0, 0, +1, 1, 1000, 0.0);
  double b = net.send(0, 0, +1, 1, 1000, 0.0);  // same link, same time: waits for the first
  double c = net.send(1, 0, +1, 1, 1000, 0.0);  // the next link: no contention
  double d = net.send(1, 0, -1, 1, 1000, 0.0);  // the opposite direction of a used link: free
  EXPECT_DOUBLE_EQ(a, 1e-6);
  EXPECT_DOUBLE_EQ(b, 2e-6);
  EXPECT_DOUBLE_EQ(c, 1e-6);
  EXPECT_DOUBLE_EQ(d, 1e-6);
  // A two-hop route holds both links for its window and pays two hop latencies.
  Network lat(pod("[ring]", "[8]", 2, 1, 100));
  EXPECT_DOUBLE_EQ(lat.send_to(0, 2, 1000, 0.0), 1e-6 + 2 * 100e-9);
  EXPECT_DOUBLE_EQ(lat.send_to(2, 3, 1000, 0.0), 1e-6 + 100e-9);  // link 2->3 is free: no wait
  EXPECT_DOUBLE_EQ(lat.send_to(1, 2, 1000, 0.0), 2e-6 + 100e-9);  // link 1->2 busy until 1 us
  // The shorter way round a ring: 0 -> 7 is one hop backwards.
  EXPECT_DOUBLE_EQ(lat.send_to(0, 7, 1000, 0.0), 1e-6 + 100e-9);
}

// A pod shape for the tables of cases below.
struct Shape {
  const char *topology, *dims;
  int ports;
};

arch::PodConfig pod(const Shape& s) { return pod(s.topology, s.dims, s.ports); }

void expect_closed_form(const arch::PodConfig& p, CollectiveOp op, double bytes, Algorithm a) {
  CollectiveResult r = run_collective(p, op, bytes, a);
  double cf = closed_form(p, op, bytes, a);
  EXPECT_EQ(r.algorithm, a);
  EXPECT_NEAR(r.seconds / cf, 1.0, 0.01) << kCollectiveOpNames[static_cast<int>(op)] << " "
                                         << kAlgorithmNames[static_cast<int>(a)] << " on " << p.chips
                                         << " chips: " << r.seconds << " s vs " << cf << " s";
}

TEST(PodNetwork, CollectivesMatchTheirAlphaBetaCostOnAnIdleNetwork) {
  double mib = 1 << 20;
  // Unidirectional ring: 2(p-1)/p x bytes / bandwidth + 2(p-1) x latency.
  arch::PodConfig ring8 = pod("[ring]", "[8]", 2);
  CollectiveResult r = run_collective(ring8, CollectiveOp::kAllReduce, 64 * mib, Algorithm::kRing);
  double expect = 2.0 * 7 / 8 * 64 * mib / 50e9 + 2.0 * 7 * 1e-6;
  EXPECT_NEAR(r.seconds / expect, 1.0, 1e-9);
  for (auto op : {CollectiveOp::kAllReduce, CollectiveOp::kReduceScatter, CollectiveOp::kAllGather}) {
    expect_closed_form(ring8, op, 64 * mib, Algorithm::kRing);
    expect_closed_form(ring8, op, 64 * mib, Algorithm::kBidirRing);
    expect_closed_form(pod("[torus, torus]", "[2, 2]", 4), op, 16 * mib, Algorithm::kTorus);
    expect_closed_form(pod("[torus, torus]", "[4, 4]", 4), op, 16 * mib, Algorithm::kTorus);
    expect_closed_form(pod("[torus, torus, torus]", "[2, 2, 2]", 6), op, 16 * mib, Algorithm::kTorus);
    expect_closed_form(pod("[torus, torus, torus]", "[4, 4, 4]", 6), op, 16 * mib, Algorithm::kTorus);
    expect_closed_form(pod("[torus, torus]", "[2, 2]", 4), op, 16 * mib, Algorithm::kMultiTorus);
    expect_closed_form(pod("[torus, torus]", "[4, 8]", 4), op, 16 * mib, Algorithm::kMultiTorus);
    expect_closed_form(pod("[torus, torus, torus]", "[2, 2, 2]", 6), op, 16 * mib, Algorithm::kMultiTorus);
    expect_closed_form(pod("[torus, torus, torus]", "[4, 4, 4]", 6), op, 16 * mib, Algorithm::kMultiTorus);
  }
  expect_closed_form(ring8, CollectiveOp::kAllReduce, 4096, Algorithm::kTree);
  // The dimension-ordered torus beats one bidirectional ring through all 64 chips.
  arch::PodConfig cube = pod("[torus, torus, torus]", "[4, 4, 4]", 6);
  EXPECT_LT(run_collective(cube, CollectiveOp::kAllReduce, 64 * mib, Algorithm::kTorus).seconds,
            run_collective(cube, CollectiveOp::kAllReduce, 64 * mib, Algorithm::kBidirRing).seconds);
  // Running every dimension at once on its own third of the data keeps all six ports busy:
  // the bandwidth term shrinks threefold.
  CollectiveResult dim_ordered = run_collective(cube, CollectiveOp::kAllReduce, 64 * mib, Algorithm::kTorus);
  CollectiveResult multi = run_collective(cube, CollectiveOp::kAllReduce, 64 * mib, Algorithm::kMultiTorus);
  EXPECT_LT(multi.seconds, 0.5 * dim_ordered.seconds);
  EXPECT_DOUBLE_EQ(multi.link_bytes, dim_ordered.link_bytes);
}

TEST(PodNetwork, TheTreesClosedFormCountsTheHopsOfEachLevelsLongestRoute) {
  // Over the snake order of a torus, the pairs of a level are several hops apart.
  expect_closed_form(pod("[torus, torus]", "[4, 4]", 4), CollectiveOp::kAllReduce, 4096, Algorithm::kTree);
  expect_closed_form(pod("[torus, torus, torus]", "[4, 4, 4]", 6), CollectiveOp::kAllReduce, 4096, Algorithm::kTree);
  expect_closed_form(pod("[torus, torus]", "[2, 16]", 4), CollectiveOp::kBroadcast, 4096, Algorithm::kTree);
  arch::PodConfig v4 = arch::load_pod(test::source_path("configs/pod/v4_16x16x16.yaml"));
  expect_closed_form(v4, CollectiveOp::kAllReduce, 4096, Algorithm::kTree);
}

TEST(PodNetwork, AutoPicksWhicheverOfTreeAndTorusCostsLessOnAnIdleNetwork) {
  double kib = 1024;
  for (const Shape& shape : {Shape{"[ring]", "[16]", 2}, Shape{"[torus, torus]", "[4, 4]", 4},
                                  Shape{"[torus, torus]", "[2, 16]", 4},
                                  Shape{"[torus, torus, torus]", "[4, 4, 4]", 6},
                                  Shape{"[torus, torus, torus]", "[2, 4, 8]", 6},
                                  Shape{"[mesh, mesh, mesh]", "[4, 4, 8]", 6}}) {
    arch::PodConfig p = pod(shape);
    bool one_ring = p.dims.size() == 1;
    // Every dimension the same size and kind: the closed forms are exact there.
    bool alike = std::all_of(p.dims.begin(), p.dims.end(), [&](int64_t n) { return n == p.dims[0]; }) &&
                 std::all_of(p.topology.begin(), p.topology.end(), [&](auto t) { return t == p.topology[0]; });
    for (CollectiveOp op : {CollectiveOp::kAllReduce, CollectiveOp::kBroadcast}) {
      Algorithm wide = op == CollectiveOp::kAllReduce && one_ring ? Algorithm::kBidirRing : Algorithm::kMultiTorus;
      for (double bytes : {256.0, 16 * kib, 60 * kib, 1024 * kib}) {
        SCOPED_TRACE(fmt::format("{} {} {} {} bytes", shape.topology, shape.dims, kCollectiveOpNames[static_cast<int>(op)],
                                 bytes));
        CollectiveResult r = run_collective(p, op, bytes, Algorithm::kAuto);
        double tree = run_collective(p, op, bytes, Algorithm::kTree).seconds;
        double other = run_collective(p, op, bytes, wide).seconds;
        // Auto is the faster of the two: by their closed forms where every dimension is alike
        // (they are exact there), by timing both otherwise.
        EXPECT_EQ(r.algorithm, tree < other ? Algorithm::kTree : wide) << tree << " s vs " << other << " s";
        EXPECT_NEAR(r.seconds, std::min(tree, other), 1e-12);
        if (alike) {
          double cf_tree = closed_form(p, op, bytes, Algorithm::kTree), cf_other = closed_form(p, op, bytes, wide);
          EXPECT_EQ(r.algorithm, cf_tree < cf_other ? Algorithm::kTree : wide);
        }
      }
    }
  }
  // On the presets the torus schedules win at every size; the tree wins small all-reduces
  // on an elongated torus, the multi-torus those on a 4x4x8 mesh (its closed form would have
  // picked the tree: it takes each phase as long as the slowest part's).
  EXPECT_EQ(run_collective(pod("[torus, torus]", "[2, 16]", 4), CollectiveOp::kAllReduce, 1024, Algorithm::kAuto).algorithm,
            Algorithm::kTree);
  arch::PodConfig slice = pod("[mesh, mesh, mesh]", "[4, 4, 8]", 6);
  EXPECT_EQ(run_collective(slice, CollectiveOp::kAllReduce, 4096, Algorithm::kAuto).algorithm, Algorithm::kMultiTorus);
  EXPECT_LT(closed_form(slice, CollectiveOp::kAllReduce, 4096, Algorithm::kTree),
            closed_form(slice, CollectiveOp::kAllReduce, 4096, Algorithm::kMultiTorus));
  for (const char* f : {"v3_32x32", "v4_16x16x16", "v5e_16x16"}) {
    arch::PodConfig p = arch::load_pod(test::source_path(std::string("configs/pod/") + f + ".yaml"));
    EXPECT_EQ(run_collective(p, CollectiveOp::kAllReduce, 1024, Algorithm::kAuto).algorithm, Algorithm::kMultiTorus) << f;
  }
}

TEST(PodNetwork, PresetPodsRunALargeAllReduceAtTheClosedForm) {
  for (const char* f : {"v3_32x32", "v4_16x16x16", "v5e_16x16"}) {
    arch::PodConfig p = arch::load_pod(test::source_path(std::string("configs/pod/") + f + ".yaml"));
    expect_closed_form(p, CollectiveOp::kAllReduce, 1 << 30, Algorithm::kTorus);
    expect_closed_form(p, CollectiveOp::kAllReduce, 1 << 30, Algorithm::kMultiTorus);
  }
}

TEST(PodNetwork, TheTorusSchedulesRunAlongMeshLinesAtTheirClosedForm) {
  // Along a mesh dimension the phases run on lines: the whole chunk each way, n - 1 rounds.
  double mib = 1 << 20;
  for (const Shape& shape : {Shape{"[mesh]", "[8]", 2}, Shape{"[mesh, mesh]", "[4, 4]", 4},
                                  Shape{"[mesh, torus]", "[4, 4]", 4},
                                  Shape{"[mesh, mesh, mesh]", "[4, 4, 4]", 6},
                                  Shape{"[mesh, mesh, mesh]", "[2, 2, 4]", 6}}) {
    arch::PodConfig p = pod(shape);
    SCOPED_TRACE(std::string(shape.topology) + " " + shape.dims);
    for (auto op : {CollectiveOp::kAllReduce, CollectiveOp::kReduceScatter, CollectiveOp::kAllGather,
                    CollectiveOp::kBroadcast}) {
      expect_closed_form(p, op, 16 * mib, Algorithm::kTorus);
    }
    // A line has half a ring's links across its middle: the bandwidth term of a phase is
    // (n - 1)/n of the buffer, twice a ring's.
    if (std::string(shape.dims) == "[8]") {
      CollectiveResult line = run_collective(p, CollectiveOp::kAllReduce, 16 * mib, Algorithm::kTorus);
      EXPECT_NEAR(line.seconds, 2 * 7 * (16 * mib / 8 / 50e9 + 1e-6), 1e-12);
    }
    // Auto takes the lines, not the snake-order ring that closes through a multi-hop route.
    CollectiveResult automatic = run_collective(p, CollectiveOp::kAllReduce, 16 * mib, Algorithm::kAuto);
    EXPECT_EQ(automatic.algorithm, Algorithm::kMultiTorus);
    EXPECT_LT(automatic.seconds, run_collective(p, CollectiveOp::kAllReduce, 16 * mib, Algorithm::kBidirRing).seconds);
  }
  expect_closed_form(pod("[mesh, mesh, mesh]", "[4, 4, 4]", 6), CollectiveOp::kAllReduce, 16 * mib,
                     Algorithm::kMultiTorus);
  // The ring over the snake order and the tree still run on a mesh.
  arch::PodConfig mesh = pod("[mesh, torus]", "[4, 4]", 4);
  EXPECT_GT(run_collective(mesh, CollectiveOp::kAllReduce, 1 << 20, Algorithm::kRing).seconds, 0.0);
  EXPECT_GT(run_collective(mesh, CollectiveOp::kAllReduce, 1 << 20, Algorithm::kTree).seconds, 0.0);
}

// Hops of the dimension-ordered shortest route from chip a to chip b: the shorter way round
// a ring, straight along a line. Every byte of an all-to-all crosses at least this many links.
double route_hops(const arch::PodConfig& p, int64_t a, int64_t b) {
  double hops = 0;
  for (std::size_t d = 0; d < p.dims.size(); ++d) {
    int64_t n = p.dims[d], delta = std::abs(a % n - b % n);
    hops += static_cast<double>(p.topology[d] == arch::DimTopology::kMesh ? delta : std::min(delta, n - delta));
    a /= n;
    b /= n;
  }
  return hops;
}

TEST(PodNetwork, AllToAllForwardsEveryChunkOnAShortestRouteAtItsClosedForm) {
  const Shape cases[] = {{"[ring]", "[8]", 2},
               {"[ring]", "[7]", 2},
               {"[torus, torus]", "[2, 2]", 4},
               {"[torus, torus]", "[4, 4]", 4},
               {"[torus, torus]", "[3, 5]", 4},
               {"[torus, torus]", "[4, 8]", 4},
               {"[torus, torus, torus]", "[2, 2, 2]", 6},
               {"[torus, torus, torus]", "[4, 4, 4]", 6},
               {"[mesh, mesh]", "[4, 4]", 4},
               {"[mesh, torus]", "[3, 4]", 4}};
  for (const Shape& c : cases) {
    arch::PodConfig p = pod(c);
    SCOPED_TRACE(std::string(c.topology) + " " + c.dims);
    auto chips = static_cast<double>(p.chips);
    double bytes = chips * 3 * (1 << 20);  // every chunk splits evenly into parts and halves
    // Each chip sends bytes / chips to every other chip; no schedule can put fewer bytes on
    // the links than the sum of their shortest routes.
    double floor = 0;
    for (int64_t a = 0; a < p.chips; ++a) {
      for (int64_t b = 0; b < p.chips; ++b) floor += route_hops(p, a, b) * bytes / chips;
    }
    bool mesh = std::string(c.topology).find("mesh") != std::string::npos;
    double forwarding = 0;
    for (Algorithm a : {Algorithm::kTorus, Algorithm::kMultiTorus}) {
      CollectiveResult r = run_collective(p, CollectiveOp::kAllToAll, bytes, a);
      forwarding = r.seconds;
      EXPECT_DOUBLE_EQ(r.link_bytes, floor) << kAlgorithmNames[static_cast<int>(a)];
      if (mesh) {
        EXPECT_EQ(closed_form(p, CollectiveOp::kAllToAll, bytes, a), 0.0);  // none along lines
        EXPECT_GE(r.seconds, r.max_link_busy);
      } else {
        expect_closed_form(p, CollectiveOp::kAllToAll, bytes, a);
      }
    }
    // The direct sends move the same bytes over the same routes, in more time: a route
    // holds all its links at once, so long routes wait for each other.
    CollectiveResult direct = run_collective(p, CollectiveOp::kAllToAll, bytes, Algorithm::kRing);
    EXPECT_DOUBLE_EQ(direct.link_bytes, floor);
    EXPECT_GT(direct.seconds, forwarding);
    EXPECT_EQ(run_collective(p, CollectiveOp::kAllToAll, bytes, Algorithm::kAuto).algorithm, Algorithm::kMultiTorus);
  }
  // A large all-to-all on a square or cubic torus: half of every chip's data crosses the cut
  // that halves the pod, so the cut's links (2 x chips / n per direction) bound the time.
  // Forwarding every dimension at once meets that bound.
  for (const char* f : {"v3_32x32", "v4_16x16x16", "v5e_16x16"}) {
    arch::PodConfig p = arch::load_pod(test::source_path(std::string("configs/pod/") + f + ".yaml"));
    SCOPED_TRACE(f);
    double bytes = 1 << 30, chips = static_cast<double>(p.chips), n = static_cast<double>(p.dims[0]);
    double bandwidth = p.link_bandwidth_gbps * 1e9 * static_cast<double>(p.links_per_direction);
    double bisection_bound = chips / 2 * bytes / 2 / (2 * chips / n * bandwidth);
    CollectiveResult r = run_collective(p, CollectiveOp::kAllToAll, bytes, Algorithm::kAuto);
    EXPECT_EQ(r.algorithm, Algorithm::kMultiTorus);
    EXPECT_NEAR(r.seconds / bisection_bound, 1.0, 0.001) << r.seconds << " s vs " << bisection_bound << " s";
    expect_closed_form(p, CollectiveOp::kAllToAll, bytes, Algorithm::kMultiTorus);
  }
}

TEST(PodNetwork, LargeBroadcastsScatterAndAllGatherAtTheirClosedForm) {
  double mib = 1 << 20;
  for (const Shape& shape : {Shape{"[ring]", "[8]", 2}, Shape{"[ring]", "[7]", 2},
                                  Shape{"[torus, torus]", "[2, 2]", 4},
                                  Shape{"[torus, torus]", "[4, 4]", 4},
                                  Shape{"[torus, torus]", "[3, 5]", 4},
                                  Shape{"[torus, torus, torus]", "[4, 4, 4]", 6}}) {
    arch::PodConfig p = pod(shape);
    SCOPED_TRACE(std::string(shape.topology) + " " + shape.dims);
    expect_closed_form(p, CollectiveOp::kBroadcast, 64 * mib, Algorithm::kTorus);
    expect_closed_form(p, CollectiveOp::kBroadcast, 64 * mib, Algorithm::kMultiTorus);
    // The tree sends the whole buffer at each of its log2(chips) levels.
    CollectiveResult tree = run_collective(p, CollectiveOp::kBroadcast, 64 * mib, Algorithm::kTree);
    CollectiveResult multi = run_collective(p, CollectiveOp::kBroadcast, 64 * mib, Algorithm::kAuto);
    EXPECT_EQ(multi.algorithm, Algorithm::kMultiTorus);
    if (p.chips > 4) {
      EXPECT_LT(multi.seconds, tree.seconds);
    }
  }
  // Rank 0 injects the whole buffer through its ports at best (D / (ports x bandwidth)); the
  // scatter and the all-gather each come within a few percent of that, on every preset.
  for (const char* f : {"v3_32x32", "v4_16x16x16", "v5e_16x16"}) {
    arch::PodConfig p = arch::load_pod(test::source_path(std::string("configs/pod/") + f + ".yaml"));
    SCOPED_TRACE(f);
    double bytes = 1 << 30;
    double bound = bytes / (2 * static_cast<double>(p.dims.size()) * p.link_bandwidth_gbps * 1e9);
    CollectiveResult r = run_collective(p, CollectiveOp::kBroadcast, bytes, Algorithm::kAuto);
    EXPECT_EQ(r.algorithm, Algorithm::kMultiTorus);
    EXPECT_GT(r.seconds, bound);
    EXPECT_LT(r.seconds, 2.05 * bound);
    expect_closed_form(p, CollectiveOp::kBroadcast, bytes, Algorithm::kMultiTorus);
  }
  // Small broadcasts keep the tree; large ones on a mesh scatter and gather along its lines.
  EXPECT_EQ(run_collective(pod("[torus, torus]", "[4, 4]", 4), CollectiveOp::kBroadcast, 4096, Algorithm::kAuto).algorithm,
            Algorithm::kTree);
  EXPECT_EQ(run_collective(pod("[mesh, torus]", "[4, 4]", 4), CollectiveOp::kBroadcast, 64 * mib, Algorithm::kAuto)
                .algorithm,
            Algorithm::kMultiTorus);
}

// A bidirectional ring carries the first half of every chunk forward and the second half
// backward: within a phase each direction's sends wait only for what came in that
// direction, and a phase starts from everything the chip holds (both directions). With the
// chips starting at staggered times, the finish times must equal that recurrence exactly
// (each directed link carries one transfer per step, in step order: it is free once its
// previous transfer's window has passed).
TEST(PodNetwork, EachDirectionOfABidirectionalRingWaitsOnlyForItsOwnData) {
  const int n = 8;
  const double latency = 1e-6, bandwidth = 50e9;
  arch::PodConfig p = pod("[ring]", "[8]", 2, bandwidth / 1e9, latency * 1e9);
  const int64_t count = 2 * n * 50000;  // halves of 50,000 bytes: a 1 us window per transfer
  const double window = 50000 / bandwidth;
  std::vector<double> start_at(n);
  for (int x = 0; x < n; ++x) start_at[static_cast<std::size_t>(x)] = 3e-6 * ((x * 5) % n);  // staggered
  for (CollectiveOp op : {CollectiveOp::kReduceScatter, CollectiveOp::kAllReduce}) {
    SCOPED_TRACE(kCollectiveOpNames[static_cast<int>(op)]);
    Network net(p);
    std::vector<double> ready = start_at;
    time_rounds(net, Group{0, 1}, op, Algorithm::kBidirRing, count, 1, ready);

    // The recurrence. have[dir][x]: when chip x has what its next send in direction dir
    // needs; link[dir][x]: when the link leaving x in direction dir is free.
    std::vector<double> have[2] = {start_at, start_at}, link[2] = {std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
    int phases = op == CollectiveOp::kAllReduce ? 2 : 1;
    for (int phase = 0; phase < phases; ++phase) {
      for (int x = 0; x < n; ++x) {  // the phase starts from both directions' data
        double both = std::max(have[0][static_cast<std::size_t>(x)], have[1][static_cast<std::size_t>(x)]);
        have[0][static_cast<std::size_t>(x)] = have[1][static_cast<std::size_t>(x)] = both;
      }
      for (int step = 0; step + 1 < n; ++step) {
        std::vector<double> arrived[2] = {have[0], have[1]};
        for (int dir = 0; dir < 2; ++dir) {
          for (int x = 0; x < n; ++x) {
            auto ux = static_cast<std::size_t>(x);
            double begin = std::max(have[dir][ux], link[dir][ux]);
            link[dir][ux] = begin + window;
            auto to = static_cast<std::size_t>((x + (dir == 0 ? 1 : n - 1)) % n);
            arrived[dir][to] = std::max(arrived[dir][to], begin + window + latency);
          }
        }
        have[0] = arrived[0];
        have[1] = arrived[1];
      }
    }
    for (int x = 0; x < n; ++x) {
      auto ux = static_cast<std::size_t>(x);
      EXPECT_NEAR(ready[ux], std::max(have[0][ux], have[1][ux]), 1e-15) << "chip " << x;
    }
  }
}

// Within a round, a transfer listed first but ready later does not hold a link against one
// listed after it that is ready earlier.
TEST(PodNetwork, ARoundsTransfersClaimTheirLinksInTheOrderTheyAreReady) {
  arch::PodConfig p = pod("[mesh]", "[3]", 2, 1, 100);  // 1 GB/s: 1 ns per byte; 100 ns per hop
  Network net(p);
  std::vector<double> ready = {10e-6, 0.0, 0.0};  // chip 0 is late
  Round r = {{0, 2, 0, 1000, 0, false, false, 0, false},   // 0 -> 2: links 0->1 and 1->2, from 10 us
             {1, 2, 0, 1000, 0, false, false, 0, false}};  // 1 -> 2: link 1->2, from 0
  time_round_list(net, [&](const std::function<void(const Round&)>& emit) { emit(r); }, 1, ready);
  // 1 -> 2 first: it arrives at 1 us + 100 ns; the late send then arrives at 10 + 1 us + 200 ns.
  EXPECT_NEAR(ready[2], 11e-6 + 200e-9, 1e-15);
  EXPECT_NEAR(net.link_busy(1, 0, 1), 2e-6, 1e-15);
  Network other(p);
  std::vector<double> swapped = {0.0, 10e-6, 0.0};  // now the second is late: the same order
  Round q = {{0, 2, 0, 1000, 0, false, false, 0, false}, {1, 2, 0, 1000, 0, false, false, 0, false}};
  time_round_list(other, [&](const std::function<void(const Round&)>& emit) { emit(q); }, 1, swapped);
  EXPECT_NEAR(swapped[2], 11e-6 + 100e-9, 1e-15);
}

TEST(PodNetwork, SchedulesTooLargeToSimulateAreClearErrors) {
  // A ring through 65536 chips is 2^34 transfers.
  arch::PodConfig big = pod("[ring]", "[65536]", 2);
  EXPECT_THROW(run_collective(big, CollectiveOp::kAllReduce, 1 << 30, Algorithm::kRing), InputError);
  EXPECT_THROW(run_collective(big, CollectiveOp::kAllReduce, 1 << 30, Algorithm::kAuto), InputError);
}

}  // namespace
}  // namespace tpu::pod
