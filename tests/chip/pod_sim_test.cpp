// Pods of chips: collectives move real data and their sums equal an independent reference
// bit for bit; send/recv land data on the neighbour; the detailed backend's time equals the
// closed form on an idle network and agrees with the symmetric backend; bad programs are
// clear errors; a recv that never gets data is reported by the watchdog.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "arch/pod_config.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "isa/numerics.h"
#include "sim/pod/collective.h"
#include "sim/pod/pod_sim.h"
#include "../unit/pod_util.h"
#include "../unit/test_util.h"

namespace tpu::pod {
namespace {

using test::source_path;

using test::make_pod;

arch::ArchConfig v4() { return arch::load_arch(source_path("configs/arch/tpu_v4.yaml")); }

// One program per chip from a text template ({c} = chip index), with an interpreter each.
struct PodPrograms {
  std::vector<isa::Program> programs;
  std::vector<std::unique_ptr<isa::Interpreter>> states;
  std::vector<std::vector<sim::CoreProgram>> cores() {
    std::vector<std::vector<sim::CoreProgram>> out;
    for (std::size_t c = 0; c < programs.size(); ++c) out.push_back({{&programs[c], states[c].get()}});
    return out;
  }
};

PodPrograms make_programs(const arch::ArchConfig& a, int64_t chips, const std::function<std::string(int64_t)>& text) {
  PodPrograms p;
  for (int64_t c = 0; c < chips; ++c) p.programs.push_back(isa::assemble(text(c), fmt::format("chip{}.tasm", c)));
  for (int64_t c = 0; c < chips; ++c) {
    p.states.push_back(std::make_unique<isa::Interpreter>(a, p.programs[static_cast<std::size_t>(c)], "chip"));
  }
  return p;
}

// The initial contents of region g of every chip (regenerated from the same seeds).
std::vector<std::vector<uint8_t>> initial(const arch::ArchConfig& a, PodPrograms& p) {
  std::vector<std::vector<uint8_t>> out;
  for (const auto& prog : p.programs) {
    isa::Interpreter fresh(a, prog, "fresh");
    fresh.init_regions();
    out.push_back(fresh.read_region("g").data);
  }
  return out;
}

// Element e of a buffer as a double (fp32 or bf16) and the typed sum local + incoming.
struct Elem {
  bool bf16;
  uint32_t get(const std::vector<uint8_t>& b, int64_t e) const {
    uint32_t v = 0;
    std::memcpy(&v, &b[static_cast<std::size_t>(e * (bf16 ? 2 : 4))], bf16 ? 2 : 4);
    return v;
  }
  uint32_t add(uint32_t local, uint32_t incoming) const {
    if (bf16) {
      return isa::fp32_to_bf16(isa::bf16_to_fp32(static_cast<uint16_t>(local)) +
                               isa::bf16_to_fp32(static_cast<uint16_t>(incoming)));
    }
    float u, v;
    std::memcpy(&u, &local, 4);
    std::memcpy(&v, &incoming, 4);
    float s = u + v;
    uint32_t out;
    std::memcpy(&out, &s, 4);
    return out;
  }
};

// The documented order of a ring reduction (docs/pod.md): element e in chunk j of n over
// [lo, hi); its first half travels forward, starting at position j+1 and ending at j, each
// receiver adding its own value on the left; the second half backward from j-1.
uint32_t ring_sum(const Elem& t, int64_t e, int64_t lo, int64_t hi, int64_t n, bool bidir,
                  const std::function<uint32_t(int64_t pos)>& value) {
  int64_t len = hi - lo;
  int64_t j = 0;
  while (!(e >= lo + len * j / n && e < lo + len * (j + 1) / n)) ++j;
  int64_t clo = lo + len * j / n, chi = lo + len * (j + 1) / n;
  bool forward = !bidir || e < clo + (chi - clo) / 2;
  int step = forward ? 1 : -1;
  auto pos = [&](int64_t k) { return ((j + step * k) % n + n) % n; };
  uint32_t acc = value(pos(1));
  for (int64_t k = 2; k <= n; ++k) acc = t.add(value(pos(k)), acc);
  return acc;
}

// The documented order along a line (a mesh dimension of more than two chips): element e in
// chunk j of n over [lo, hi); the partial from the left, v0 then each position adding its own
// value on the left, and the one from the right, v(n-1) inwards the same way, reach j in
// the last round, left first: (v_j + left) + right.
uint32_t line_sum(const Elem& t, int64_t e, int64_t lo, int64_t hi, int64_t n,
                  const std::function<uint32_t(int64_t pos)>& value) {
  int64_t len = hi - lo;
  int64_t j = 0;
  while (!(e >= lo + len * j / n && e < lo + len * (j + 1) / n)) ++j;
  uint32_t acc = value(j);
  if (j > 0) {
    uint32_t left = value(0);
    for (int64_t x = 1; x < j; ++x) left = t.add(value(x), left);
    acc = t.add(acc, left);
  }
  if (j < n - 1) {
    uint32_t right = value(n - 1);
    for (int64_t y = n - 2; y > j; --y) right = t.add(value(y), right);
    acc = t.add(acc, right);
  }
  return acc;
}

// The torus algorithm's value of element e of the part [lo, hi) that takes the dimensions in
// `order`: bidirectional ring sums along order[0] within each line, then those partial sums
// along order[1] over the chunk the first phase left, and so on (coordinates: dimension 0
// fastest). multi-torus: part p of k = dims.size() takes the order rotated by p.
uint32_t torus_sum(const Elem& t, const std::vector<int64_t>& dims, const std::vector<std::vector<uint8_t>>& v, int64_t e,
                   int64_t lo0, int64_t hi0, const std::vector<std::size_t>& order, const std::vector<bool>& line) {
  // The range phase `phase` works on: the chunk chain of the earlier phases' coordinates.
  auto range = [&](std::size_t phase, const std::vector<int64_t>& coords) {
    int64_t lo = lo0, hi = hi0;
    for (std::size_t k = 0; k < phase; ++k) {
      int64_t len = hi - lo, n = dims[order[k]], j = coords[order[k]];
      int64_t nlo = lo + len * j / n, nhi = lo + len * (j + 1) / n;
      lo = nlo;
      hi = nhi;
    }
    return std::make_pair(lo, hi);
  };
  std::function<uint32_t(std::size_t, std::vector<int64_t>)> partial = [&](std::size_t phase,
                                                                         std::vector<int64_t> coords) -> uint32_t {
    if (phase == 0) {
      int64_t chip = 0;
      for (std::size_t k = dims.size(); k-- > 0;) chip = chip * dims[k] + coords[k];
      return t.get(v[static_cast<std::size_t>(chip)], e);
    }
    std::size_t d = order[phase - 1];
    auto [lo, hi] = range(phase - 1, coords);
    auto below = [&](int64_t pos) {
      auto c = coords;
      c[d] = pos;
      return partial(phase - 1, c);
    };
    return line[d] ? line_sum(t, e, lo, hi, dims[d], below) : ring_sum(t, e, lo, hi, dims[d], true, below);
  };
  // The owner of e after every phase: its coordinate along order[k] is e's chunk in phase k.
  std::vector<int64_t> owner(dims.size(), 0);
  for (std::size_t k = 0; k < order.size(); ++k) {
    auto [lo, hi] = range(k, owner);
    int64_t len = hi - lo, n = dims[order[k]], j = 0;
    while (!(e >= lo + len * j / n && e < lo + len * (j + 1) / n)) ++j;
    owner[order[k]] = j;
  }
  return partial(order.size(), owner);
}

uint32_t torus_sum(const Elem& t, const std::vector<int64_t>& dims, const std::vector<std::vector<uint8_t>>& v, int64_t e,
                   int64_t count, bool multi, std::vector<bool> line = {}) {
  line.resize(dims.size(), false);
  std::size_t k = multi ? dims.size() : 1;
  std::size_t p = 0;
  while (!(e >= count * static_cast<int64_t>(p) / static_cast<int64_t>(k) &&
           e < count * static_cast<int64_t>(p + 1) / static_cast<int64_t>(k))) {
    ++p;
  }
  std::vector<std::size_t> order;
  for (std::size_t j = 0; j < dims.size(); ++j) order.push_back((p + j) % dims.size());
  return torus_sum(t, dims, v, e, count * static_cast<int64_t>(p) / static_cast<int64_t>(k),
                   count * static_cast<int64_t>(p + 1) / static_cast<int64_t>(k), order, line);
}

std::string collective_program(int64_t c, const char* dtype, int64_t count, const std::string& op, const std::string& alg) {
  return fmt::format(
      ".region g addr=0 dtype={} shape={} role=output init=random seed={}\n"
      "collective op={} algorithm={} dtype={} addr=0 count={}\nhalt\n",
      dtype, count, 100 + c, op, alg, dtype, count);
}

PodResult run_detailed(const arch::ArchConfig& a, const arch::PodConfig& pod, PodPrograms& p, bool functional = true) {
  PodRunOptions o;
  o.chip.functional = functional;
  return run_pod(a, pod, p.cores(), o);
}

TEST(PodSim, TorusAndMultiTorusAllReduceEqualTheReferenceSumsBitForBit) {
  arch::ArchConfig a = v4();
  const int64_t count = 1001;  // not a multiple of any chunk count: uneven chunks
  for (const auto& [topo, dims_text, dims] :
       std::vector<std::tuple<std::string, std::string, std::vector<int64_t>>>{
           {"[torus, torus]", "[2, 2]", {2, 2}},
           {"[torus, torus]", "[4, 4]", {4, 4}},
           {"[torus, torus, torus]", "[2, 2, 2]", {2, 2, 2}},
           // Lines along the mesh dimensions of more than two chips.
           {"[mesh, mesh]", "[4, 3]", {4, 3}},
           {"[mesh, torus, mesh]", "[2, 3, 4]", {2, 3, 4}}}) {

    for (const auto& [dtype, alg] : std::vector<std::pair<std::string, std::string>>{
             {"fp32", "torus"}, {"bf16", "torus"}, {"fp32", "multi_torus"}, {"bf16", "multi_torus"}}) {
      SCOPED_TRACE(fmt::format("{} {} {}", dims_text, dtype, alg));
      arch::PodConfig pod = make_pod(topo, dims_text, 6);
      std::vector<bool> line;
      for (std::size_t d = 0; d < dims.size(); ++d) {
        line.push_back(pod.topology[d] == arch::DimTopology::kMesh && dims[d] > 2);
      }
      PodPrograms p = make_programs(a, pod.chips, [&](int64_t c) {
        return collective_program(c, dtype.c_str(), count, "all_reduce", alg);
      });
      auto v = initial(a, p);
      PodResult r = run_detailed(a, pod, p);
      ASSERT_TRUE(r.completed);
      Elem t{dtype == "bf16"};
      std::vector<uint32_t> want(static_cast<std::size_t>(count));
      for (int64_t e = 0; e < count; ++e) {
        want[static_cast<std::size_t>(e)] = torus_sum(t, dims, v, e, count, alg == "multi_torus", line);
      }
      for (int64_t c = 0; c < pod.chips; ++c) {
        auto got = p.states[static_cast<std::size_t>(c)]->read_region("g").data;
        int64_t bad = 0;
        for (int64_t e = 0; e < count; ++e) bad += t.get(got, e) != want[static_cast<std::size_t>(e)];
        EXPECT_EQ(bad, 0) << "chip " << c;
      }
      // The order matters: a plain left-to-right sum over chips differs in some element.
      int64_t differs = 0;
      for (int64_t e = 0; e < count; ++e) {
        uint32_t acc = t.get(v[0], e);
        for (std::size_t c = 1; c < v.size(); ++c) acc = t.add(acc, t.get(v[c], e));
        differs += acc != want[static_cast<std::size_t>(e)];
      }
      if (pod.chips > 2) {
        EXPECT_GT(differs, 0);
      }
    }
  }
}

TEST(PodSim, RingBidirRingAndTreeAllReduceFollowTheirDocumentedOrder) {
  arch::ArchConfig a = v4();
  arch::PodConfig pod = make_pod("[ring]", "[8]", 2);
  const int64_t count = 517;
  for (const char* alg : {"ring", "bidir_ring", "tree"}) {
    for (const char* dtype : {"fp32", "bf16"}) {
      SCOPED_TRACE(fmt::format("{} {}", alg, dtype));
      PodPrograms p = make_programs(a, 8, [&](int64_t c) { return collective_program(c, dtype, count, "all_reduce", alg); });
      auto v = initial(a, p);
      ASSERT_TRUE(run_detailed(a, pod, p).completed);
      Elem t{std::string(dtype) == "bf16"};
      for (int64_t e = 0; e < count; ++e) {
        uint32_t want;
        if (std::string(alg) == "tree") {
          // Binary tree: at span s, position k (a multiple of 2s) adds position k + s.
          std::vector<uint32_t> x;
          for (const auto& b : v) x.push_back(t.get(b, e));
          for (std::size_t s = 1; s < x.size(); s *= 2) {
            for (std::size_t k = 0; k + s < x.size(); k += 2 * s) x[k] = t.add(x[k], x[k + s]);
          }
          want = x[0];
        } else {
          want = ring_sum(t, e, 0, count, 8, std::string(alg) == "bidir_ring",
                          [&](int64_t pos) { return t.get(v[static_cast<std::size_t>(pos)], e); });
        }
        for (int64_t c = 0; c < 8; ++c) {
          ASSERT_EQ(t.get(p.states[static_cast<std::size_t>(c)]->read_region("g").data, e), want)
              << "chip " << c << " element " << e;
        }
      }
    }
  }
}

TEST(PodSim, ReduceScatterAllGatherAllToAllAndBroadcastMoveTheDocumentedShards) {
  arch::ArchConfig a = v4();
  arch::PodConfig pod = make_pod("[torus, torus]", "[4, 4]", 4);
  const int64_t count = 64;
  Elem t{false};
  auto run = [&](const std::string& op, const std::string& alg) {
    PodPrograms p = make_programs(a, 16, [&](int64_t c) { return collective_program(c, "fp32", count, op, alg); });
    auto v = initial(a, p);
    EXPECT_TRUE(run_detailed(a, pod, p).completed);
    std::vector<std::vector<uint8_t>> out;
    for (auto& s : p.states) out.push_back(s->read_region("g").data);
    return std::make_pair(v, out);
  };
  // Torus shards: chip (x, y) owns chunk x of the buffer, then chunk y of that (16 values
  // per chunk, 4 per shard).
  auto shard_lo = [](int64_t chip) { return (chip % 4) * 16 + (chip / 4) * 4; };
  {
    auto [v, out] = run("reduce_scatter", "torus");
    for (int64_t c = 0; c < 16; ++c) {
      for (int64_t e = shard_lo(c); e < shard_lo(c) + 4; ++e) {
        EXPECT_EQ(t.get(out[static_cast<std::size_t>(c)], e), torus_sum(t, {4, 4}, v, e, count, false)) << c << " " << e;
      }
    }
  }
  {
    auto [v, out] = run("all_gather", "torus");
    for (int64_t c = 0; c < 16; ++c) {
      for (int64_t e = 0; e < count; ++e) {
        int64_t owner = 0;
        while (!(e >= shard_lo(owner) && e < shard_lo(owner) + 4)) ++owner;
        EXPECT_EQ(t.get(out[static_cast<std::size_t>(c)], e), t.get(v[static_cast<std::size_t>(owner)], e));
      }
    }
  }
  {
    // All-to-all over the snake order (ranks): chunk j of rank i lands in chunk i of rank j.
    auto [v, out] = run("all_to_all", "auto");
    Network net(pod);
    auto ranks = snake_members(net, Group{0, 3});
    for (int64_t i = 0; i < 16; ++i) {
      for (int64_t j = 0; j < 16; ++j) {
        for (int64_t k = 0; k < 4; ++k) {
          EXPECT_EQ(t.get(out[static_cast<std::size_t>(ranks[static_cast<std::size_t>(j)])], i * 4 + k),
                    t.get(v[static_cast<std::size_t>(ranks[static_cast<std::size_t>(i)])], j * 4 + k));
        }
      }
    }
  }
  {
    auto [v, out] = run("broadcast", "auto");
    for (const auto& o : out) EXPECT_EQ(o, v[0]);
  }
}

TEST(PodSim, GroupsSpanOnlyTheirDimensions) {
  // group=d1 on a 4x4 torus: four independent all-reduces, one per column x.
  arch::ArchConfig a = v4();
  arch::PodConfig pod = make_pod("[torus, torus]", "[4, 4]", 4);
  PodPrograms p = make_programs(a, 16, [&](int64_t c) {
    return fmt::format(
        ".region g addr=0 dtype=fp32 shape=40 role=output init=random seed={}\n"
        "collective op=all_reduce algorithm=bidir_ring dtype=fp32 addr=0 count=40 group=d1\nhalt\n",
        100 + c);
  });
  auto v = initial(a, p);
  ASSERT_TRUE(run_detailed(a, pod, p).completed);
  Elem t{false};
  for (int64_t c = 0; c < 16; ++c) {
    int64_t x = c % 4;
    for (int64_t e = 0; e < 40; ++e) {
      uint32_t want = ring_sum(t, e, 0, 40, 4, true,
                               [&](int64_t y) { return t.get(v[static_cast<std::size_t>(x + 4 * y)], e); });
      EXPECT_EQ(t.get(p.states[static_cast<std::size_t>(c)]->read_region("g").data, e), want);
    }
  }
}

// Broadcast by the tori (a pipelined scatter of the leader's buffer, then an all-gather)
// and by the tree: every member ends with its group leader's buffer, byte for byte, on
// uneven chunks (1001 elements), an odd ring, a two-chip mesh dimension, mesh lines and
// sub-pod groups.
TEST(PodSim, BroadcastCopiesTheGroupLeadersBufferToEveryMember) {
  arch::ArchConfig a = v4();
  struct Case {
    const char *topology, *dims;
    int ports;
    const char* group;  // "" = the whole pod
  } cases[] = {{"[torus, torus]", "[4, 4]", 4, ""},
               {"[torus, mesh, torus]", "[3, 2, 4]", 6, ""},
               {"[torus, torus]", "[4, 4]", 4, " group=d1"},
               {"[torus, torus, torus]", "[2, 3, 2]", 6, " group=d0|d2"},
               {"[mesh, mesh]", "[4, 3]", 4, ""},  // lines
               {"[mesh, mesh]", "[4, 3]", 4, " group=d1"}};
  for (const Case& c : cases) {
    arch::PodConfig pod = make_pod(c.topology, c.dims, c.ports);
    Network net(pod);
    for (const char* alg : {"auto", "tree", "torus", "multi_torus"}) {
      SCOPED_TRACE(fmt::format("{} {}{} {}", c.topology, c.dims, c.group, alg));
      PodPrograms p = make_programs(a, pod.chips, [&](int64_t chip) {
        return fmt::format(
            ".region g addr=0 dtype=fp32 shape=1001 role=output init=random seed={}\n"
            "collective op=broadcast algorithm={} dtype=fp32 addr=0 count=1001{}\nhalt\n",
            100 + chip, alg, c.group);
      });
      auto v = initial(a, p);
      ASSERT_TRUE(run_detailed(a, pod, p).completed);
      unsigned mask = 0;
      for (int d = 0; d < net.dims(); ++d) {
        if (std::string(c.group).empty() || std::string(c.group).find(fmt::format("d{}", d)) != std::string::npos) {
          mask |= 1u << d;
        }
      }
      for (int64_t chip = 0; chip < pod.chips; ++chip) {
        int64_t leader = group_of(net, chip, mask).leader;
        EXPECT_EQ(p.states[static_cast<std::size_t>(chip)]->read_region("g").data, v[static_cast<std::size_t>(leader)])
            << "chip " << chip << " leader " << leader;
      }
    }
  }
}

TEST(PodSim, SendLandsDataOnTheNeighbourAndRecvWaitsForIt) {
  arch::ArchConfig a = v4();
  arch::PodConfig pod = make_pod("[ring]", "[4]", 2, 1, 0);  // 1 GB/s: 1 ns per byte
  PodPrograms p = make_programs(a, 4, [&](int64_t c) {
    return fmt::format(
        ".region s addr=0 dtype=int8 shape=4096 role=data init=random seed={}\n"
        ".region g addr=4096 dtype=int8 shape=4096 role=output\n"
        "send dim=0 dir=plus src=0 dst=4096 bytes=4096\n"
        "recv dim=0 dir=minus dst=4096 bytes=4096\n"
        "dma_load src=4096 ub=0 row_bytes=4096\nhalt\n",
        10 + c);
  });
  std::vector<std::vector<uint8_t>> src;
  for (const auto& prog : p.programs) {
    isa::Interpreter fresh(a, prog, "fresh");
    fresh.init_regions();
    src.push_back(fresh.read_region("s").data);
  }
  PodResult r = run_detailed(a, pod, p);
  ASSERT_TRUE(r.completed);
  for (int64_t c = 0; c < 4; ++c) {
    EXPECT_EQ(p.states[static_cast<std::size_t>(c)]->read_region("g").data, src[static_cast<std::size_t>((c + 3) % 4)]);
  }
  // 4096 bytes at 1 GB/s take 4096 ns = 4096 cycles at 1050 MHz x 1.05: the recv ends no
  // earlier than the link window.
  double link_cycles = 4096e-9 * a.clock_mhz * 1e6;
  EXPECT_GE(static_cast<double>(r.cycles), link_cycles);
  EXPECT_EQ(r.chips[0].counters.at("chip.ici.port_d0_plus.bytes"), 4096);
  EXPECT_EQ(r.chips[0].counters.at("chip.ici.port_d0_minus.bytes"), 0);
}

TEST(PodSim, BothBackendsTakeTheClosedFormTimeOnAnIdleNetwork) {
  // Unidirectional and bidirectional rings, the dimension-ordered torus and multi-torus (on
  // tori and along mesh lines):
  // the detailed backend (every chip) and the symmetric one (one chip) against the
  // alpha-beta cost, within 1%.
  arch::ArchConfig a = v4();
  struct Case {
    std::string topo, dims;
    const char* alg;
    Algorithm algorithm;
  };
  for (const Case& k : std::vector<Case>{{"[ring]", "[8]", "ring", Algorithm::kRing},
                                         {"[ring]", "[8]", "auto", Algorithm::kBidirRing},
                                         {"[torus, torus]", "[4, 4]", "ring", Algorithm::kRing},
                                         {"[torus, torus]", "[4, 4]", "torus", Algorithm::kTorus},
                                         {"[torus, torus]", "[4, 4]", "auto", Algorithm::kMultiTorus},
                                         {"[torus, torus, torus]", "[2, 2, 2]", "torus", Algorithm::kTorus},
                                         {"[torus, torus, torus]", "[2, 2, 2]", "auto", Algorithm::kMultiTorus},
                                         // Along mesh lines.
                                         {"[mesh, mesh]", "[4, 4]", "auto", Algorithm::kMultiTorus},
                                         {"[mesh, mesh, mesh]", "[2, 2, 4]", "torus", Algorithm::kTorus}}) {
    SCOPED_TRACE(k.dims + " " + k.alg);
    arch::PodConfig pod = make_pod(k.topo, k.dims, 6);
    const int64_t count = 4 << 20;  // 16 MiB of fp32 gradients
    auto text = [&](int64_t c) {
      return fmt::format(
          ".region g addr=0 dtype=fp32 shape={} role=output init=random seed={}\n"
          "collective op=all_reduce algorithm={} dtype=fp32 addr=0 count={}\nhalt\n",
          count, 100 + c, k.alg, count);
    };
    PodPrograms p = make_programs(a, pod.chips, text);
    PodResult d = run_detailed(a, pod, p, false);
    ASSERT_TRUE(d.completed);
    double cf = closed_form(pod, CollectiveOp::kAllReduce, static_cast<double>(count * 4), k.algorithm) *
                a.clock_mhz * 1e6;
    EXPECT_NEAR(static_cast<double>(d.cycles) / cf, 1.0, 0.01);
    ASSERT_EQ(d.collectives.size(), 1u);
    EXPECT_EQ(d.collectives[0].algorithm, kAlgorithmNames[static_cast<int>(k.algorithm)]);

    PodRunOptions so;
    so.backend = Backend::kSymmetric;
    so.chip.functional = false;
    PodPrograms one = make_programs(a, 1, text);
    PodResult s = run_pod(a, pod, one.cores(), so);
    ASSERT_TRUE(s.completed);
    EXPECT_NEAR(static_cast<double>(s.cycles) / cf, 1.0, 0.01);
  }
}

TEST(PodSim, ComputeAndCommunicationOverlapAndBothBackendsAgree) {
  // Each chip multiplies while its previous gradient buffer is all-reduced: the collective
  // runs on the ICI unit while the MXU streams, so the step is shorter than their sum.
  arch::ArchConfig a = v4();
  arch::PodConfig pod = make_pod("[torus, torus]", "[2, 2]", 4);
  auto text = [&](int64_t c, bool with_matmul, bool with_collective) {
    std::string s = fmt::format(
        ".region x addr=0 dtype=bf16 shape=4096x128 role=input init=random seed={}\n"
        ".region w addr=0x200000 dtype=bf16 shape=128x128 role=data init=random seed=7\n"
        ".region g addr=0x400000 dtype=fp32 shape=1048576 role=output init=random seed={}\n"
        "dma_load src=0 ub=0 rows=4096 row_bytes=256\n",
        c + 1, c + 50);
    if (with_collective) s += "collective op=all_reduce dtype=fp32 addr=0x400000 count=1048576\n";
    if (with_matmul) {
      for (int i = 0; i < 16; ++i) {
        s += "load_weights src=0x200000 k=128 n=128 dtype=bf16\n";
        s += fmt::format("matmul dtype=bf16 ub=0 acc=0 rows=4096 k=128 n=128 pop=1\n");
      }
    }
    return s + "halt\n";
  };
  auto cycles = [&](bool m, bool col) {
    PodPrograms p = make_programs(a, 4, [&](int64_t c) { return text(c, m, col); });
    PodResult r = run_detailed(a, pod, p, false);
    EXPECT_TRUE(r.completed);
    return r.cycles;
  };
  int64_t both = cycles(true, true), compute = cycles(true, false), comm = cycles(false, true);
  EXPECT_LT(both, compute + comm);
  EXPECT_GE(both, std::max(compute, comm));
  PodRunOptions so;
  so.backend = Backend::kSymmetric;
  so.chip.functional = false;
  PodPrograms one = make_programs(a, 1, [&](int64_t c) { return text(c, true, true); });
  PodResult s = run_pod(a, pod, one.cores(), so);
  EXPECT_NEAR(static_cast<double>(s.cycles) / static_cast<double>(both), 1.0, 0.01);
}

void expect_pod_error(const arch::ArchConfig& a, const arch::PodConfig& pod,
                      const std::function<std::string(int64_t)>& text, const std::string& key) {
  PodPrograms p = make_programs(a, pod.chips, text);
  try {
    run_detailed(a, pod, p);
    ADD_FAILURE() << "no error for " << key;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

// Checked against the pod before anything runs.
TEST(PodSim, BadProgramsAreClearErrorsBeforeAnythingRuns) {
  arch::ArchConfig a = v4();
  // A chip alone cannot send.
  isa::Program p = isa::assemble(".region s addr=0 dtype=int8 shape=64 role=data init=zero\nsend dim=0 dir=plus src=0 dst=0 bytes=64\nhalt\n", "x.tasm");
  sim::ChipOptions o;
  o.functional = false;
  EXPECT_THROW(sim::run_chip(a, p, nullptr, o), InputError);
  arch::PodConfig ring = make_pod("[ring]", "[4]", 2);
  expect_pod_error(a, ring, [](int64_t) { return ".region s addr=0 dtype=int8 shape=64 role=data init=zero\nsend dim=1 dir=plus src=0 dst=0 bytes=64\nhalt\n"; },
                   "dim");
  arch::PodConfig mesh = make_pod("[mesh]", "[4]", 2);
  expect_pod_error(a, mesh, [](int64_t) { return ".region s addr=0 dtype=int8 shape=64 role=data init=zero\nsend dim=0 dir=plus src=0 dst=0 bytes=64\nhalt\n"; },
                   "edge of a mesh");
  // Receiving from the side of a mesh edge, where there is no neighbour.
  expect_pod_error(a, make_pod("[mesh]", "[2]", 2), [](int64_t c) {
    return c == 0 ? std::string(".region g addr=0 dtype=int8 shape=64 role=output\nrecv dim=0 dir=minus dst=0 bytes=64\nhalt\n")
                  : std::string("halt\n");
  }, "edge of a mesh");
}

// Found while the pod runs: the run ends and the error is raised after it.
TEST(PodSim, ErrorsFoundWhileRunningEndTheRun) {
#if defined(__SANITIZE_ADDRESS__)
  // Throwing after SystemC's coroutines have run in the process trips AddressSanitizer's
  // stack bookkeeping (it cannot see the coroutine stack switches: google/sanitizers#189),
  // a false report; the plain build runs this test.
  GTEST_SKIP() << "exceptions after SystemC coroutines are a known AddressSanitizer false positive";
#endif
  arch::ArchConfig a = v4();
  arch::PodConfig ring = make_pod("[ring]", "[4]", 2);
  expect_pod_error(a, ring, [](int64_t c) { return collective_program(c, "fp32", c == 2 ? 64 : 32, "all_reduce", "auto"); },
                   "the same collective");
  // An algorithm the op has no schedule for (the tree only reduces or broadcasts).
  expect_pod_error(a, make_pod("[mesh]", "[4]", 2),
                   [](int64_t c) { return collective_program(c, "fp32", 1 << 20, "reduce_scatter", "tree"); },
                   "torus, multi-torus or auto for reduce-scatter");
}

TEST(PodSim, ARecvWithoutASendIsReportedByTheWatchdog) {
  arch::ArchConfig a = v4();
  arch::PodConfig ring = make_pod("[ring]", "[2]", 2);
  PodPrograms p = make_programs(a, 2, [](int64_t c) {
    return c == 0 ? std::string(".region g addr=0 dtype=int8 shape=64 role=output\nrecv dim=0 dir=minus dst=0 bytes=64\nhalt\n")
                  : std::string("halt\n");
  });
  PodResult r = run_detailed(a, ring, p, false);
  EXPECT_FALSE(r.completed);
  std::string all;
  for (const auto& s : r.stuck) all += s + "\n";
  EXPECT_NE(all.find("chip0: chip0.core0.ici: waiting for data on its port for recv 0"), std::string::npos) << all;
}

}  // namespace
}  // namespace tpu::pod

namespace tpu::pod {
namespace {

TEST(PodSim, AChipTakesTheSameCyclesAloneAndInAPod) {
  // Four MXUs streaming the same input rows at once and two DMA engines sharing HBM: units
  // that wake in the same cycle contend, and their order must not depend on other chips.
  arch::ArchConfig a = v4();
  std::string text =
      ".region x addr=0 dtype=bf16 shape=512x128 role=input init=random seed=3\n"
      ".region w addr=0x100000 dtype=bf16 shape=4x128x128 role=data init=random seed=4\n"
      "dma_load src=0 ub=0 rows=512 row_bytes=256\n";
  for (int rep = 0; rep < 4; ++rep) {
    for (int m = 0; m < 4; ++m) {
      text += fmt::format("load_weights src={} k=128 n=128 dtype=bf16 mxu={}\n", 0x100000 + m * 32768, m);
      text += fmt::format("matmul mxu={} dtype=bf16 ub=0 acc=0 rows=512 k=128 n=128 pop=1\n", m);
    }
  }
  text += "halt\n";
  isa::Program p = isa::assemble(text, "contend.tasm");
  sim::ChipOptions o;
  o.functional = false;
  int64_t alone = sim::run_chip(a, p, nullptr, o).cycles;
  PodRunOptions po;
  po.chip.functional = false;
  PodResult r = run_pod(a, make_pod("[ring]", "[3]", 2), {{{&p, nullptr}}, {{&p, nullptr}}, {{&p, nullptr}}}, po);
  ASSERT_TRUE(r.completed);
  for (const auto& c : r.chips) EXPECT_EQ(c.cycles, alone);
}

}  // namespace
}  // namespace tpu::pod

namespace tpu::pod {
namespace {

TEST(PodSim, ARecvNamesTheNeighbourTheDataComesFromAlsoAtAMeshEdge) {
  // Two chips on a mesh: chip 0 sends forward; chip 1 (at the edge) receives from minus.
  arch::ArchConfig a = v4();
  arch::PodConfig mesh = make_pod("[mesh]", "[2]", 2);
  PodPrograms p = make_programs(a, 2, [](int64_t c) {
    return c == 0 ? std::string(".region s addr=0 dtype=int8 shape=256 role=data init=random seed=5\n"
                                "send dim=0 dir=plus src=0 dst=256 bytes=256\nhalt\n")
                  : std::string(".region g addr=256 dtype=int8 shape=256 role=output\n"
                                "recv dim=0 dir=minus dst=256 bytes=256\nhalt\n");
  });
  PodResult r = run_detailed(a, mesh, p);
  ASSERT_TRUE(r.completed);
  isa::Interpreter fresh(a, p.programs[0], "fresh");
  fresh.init_regions();
  EXPECT_EQ(p.states[1]->read_region("g").data, fresh.read_region("s").data);
}

}  // namespace
}  // namespace tpu::pod
