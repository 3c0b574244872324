// The SystemC chip model: golden numerics, timing independent of data, complete cycle
// accounting, analytic bounds, the recorded trace cycles, timelines and the watchdog.
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "arch/arch_config.h"
#include "compiler/compiler.h"
#include "compiler/workload.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "sim/chip/chip.h"
#include "sim/chip/report.h"
#include "../unit/test_util.h"

namespace tpu::sim {
namespace {

namespace fs = std::filesystem;
using test::source_path;

struct TraceCase {
  std::string name;
  arch::ArchConfig arch;
  isa::Program program;
  YAML::Node expected;
};

std::vector<TraceCase> trace_cases() {
  std::vector<TraceCase> out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(source_path("traces"))) {
    // Workload cases (workload.yaml / topology.csv) run through tpusim run (cli_test).
    if (e.is_directory() && fs::exists(e.path() / "prog.tasm")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    YAML::Node expected = YAML::LoadFile((d / "expected.yaml").string());
    std::vector<std::string> sets;
    if (expected["sets"]) sets = expected["sets"].as<std::vector<std::string>>();
    out.push_back({d.filename().string(),
                   arch::load_arch(source_path(expected["arch"].as<std::string>()), sets),
                   isa::load_program((d / "prog.tasm").string()), expected});
  }
  return out;
}

std::vector<std::string> unit_prefixes(const ChipResult& r, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& [path, v] : r.counters) {
    if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(path.substr(0, path.size() - suffix.size()));
    }
  }
  return out;
}

TEST(Chip, FunctionalResultsEqualTheGoldenInterpreterOnEveryTrace) {
  for (auto& c : trace_cases()) {
    SCOPED_TRACE(c.name);
    isa::Interpreter golden(c.arch, c.program, c.name);
    golden.run();
    isa::Interpreter timed(c.arch, c.program, c.name);
    ChipResult r = run_chip(c.arch, c.program, &timed, ChipOptions{});
    ASSERT_TRUE(r.completed);
    for (const auto& name : golden.output_names()) {
      EXPECT_EQ(timed.read_region(name).data, golden.read_region(name).data) << name;
    }
  }
}

TEST(Chip, CyclesAreIdenticalWithAndWithoutFunctionalData) {
  for (auto& c : trace_cases()) {
    SCOPED_TRACE(c.name);
    isa::Interpreter state(c.arch, c.program, c.name);
    ChipResult on = run_chip(c.arch, c.program, &state, ChipOptions{});
    ChipOptions off_opt;
    off_opt.functional = false;
    ChipResult off = run_chip(c.arch, c.program, nullptr, off_opt);
    EXPECT_EQ(on.cycles, off.cycles);
    EXPECT_EQ(on.counters, off.counters);
  }
}

TEST(Chip, EveryUnitAccountsForEveryCycle) {
  for (auto& c : trace_cases()) {
    SCOPED_TRACE(c.name);
    ChipOptions opt;
    opt.functional = false;
    ChipResult r = run_chip(c.arch, c.program, nullptr, opt);
    // Every unit with an activity account has an idle_cycles counter.
    auto units = unit_prefixes(r, ".idle_cycles");
    EXPECT_GE(units.size(), 4u + static_cast<std::size_t>(c.arch.mxu.count));
    for (const auto& u : units) {
      int64_t total = 0;
      for (const auto& [path, v] : r.counters) {
        if (path.compare(0, u.size() + 1, u + ".") == 0 && path.find('.', u.size() + 1) == std::string::npos &&
            path.size() > 7 && path.compare(path.size() - 7, 7, "_cycles") == 0) {
          EXPECT_GE(v, 0) << path;
          total += v;
        }
      }
      EXPECT_EQ(total, r.cycles) << u;
    }
  }
}

TEST(Chip, CyclesAreNeverBelowTheComputeOrMemoryBound) {
  for (auto& c : trace_cases()) {
    SCOPED_TRACE(c.name);
    ChipOptions opt;
    opt.functional = false;
    ChipResult r = run_chip(c.arch, c.program, nullptr, opt);
    nlohmann::json rep = make_report(c.arch, {&c.program}, c.name, r, false);
    double peak = static_cast<double>(rep["arch"]["peak_macs_per_cycle"].get<int64_t>());
    double compute_bound = static_cast<double>(rep["macs"].get<int64_t>()) / peak;
    double hbm_bytes = static_cast<double>(rep["memory"]["hbm_read_bytes"].get<int64_t>() +
                                           rep["memory"]["hbm_write_bytes"].get<int64_t>());
    double memory_bound = hbm_bytes / c.arch.derived.memory_bytes_per_cycle;
    EXPECT_GE(static_cast<double>(r.cycles), compute_bound);
    EXPECT_GE(static_cast<double>(r.cycles), memory_bound);
  }
}

TEST(Chip, RecordedTraceCyclesAreReproduced) {
  for (auto& c : trace_cases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.expected["cycles"]) << "run scripts/update-golden";
    ChipOptions opt;
    opt.functional = false;
    ChipResult r = run_chip(c.arch, c.program, nullptr, opt);
    EXPECT_EQ(r.cycles, c.expected["cycles"].as<int64_t>());
  }
}

arch::ArchConfig one_mxu(const std::string& preset, std::vector<std::string> sets = {}) {
  sets.push_back("cores=1");
  sets.push_back("mxu.count=1");
  return arch::load_arch(source_path("configs/arch/" + preset + ".yaml"), sets);
}

TEST(Chip, LargeMatmulWithResidentDataReachesTheArrayBound) {
  // 128x128 bf16 array; 16 passes of 4096 input vectors over 4 weight tiles held in the FIFO.
  arch::ArchConfig a = one_mxu("tpu_v4");
  std::string prog = R"(
.region x addr=0 dtype=bf16 shape=4096x128 role=input init=random seed=1
.region w addr=0x200000 dtype=bf16 shape=4x128x128 role=data init=random seed=2
    dma_load src=x ub=0 rows=4096 row_bytes=256
)";
  for (int t = 0; t < 16; ++t) {
    if (t % 4 == 0) {
      for (int k = 0; k < 4; ++k) {
        prog += fmt::format("    load_weights src=w+{} k=128 n=128 dtype=bf16\n", k * 128 * 128 * 2);
      }
    }
    prog += fmt::format("    matmul dtype=bf16 ub=0 acc=0 rows=4096 k=128 n=128 pop=1 accumulate={}\n",
                        t > 0 ? 1 : 0);
  }
  isa::Program p = isa::assemble(prog, "big.tasm");
  ChipOptions opt;
  opt.functional = false;
  ChipResult r = run_chip(a, p, nullptr, opt);
  nlohmann::json rep = make_report(a, {&p}, "big", r, false);
  EXPECT_GE(rep["utilization"].get<double>(), 0.95) << r.cycles;
  // And exactly as the fast model says: the array is busy one cycle per streamed vector.
  EXPECT_EQ(r.counters.at("chip.core0.mxu0.busy_cycles"), 16 * 4096);
}

TEST(Chip, RowOpTimeIsItsPassesOverTheLanesOrItsUnifiedBufferTraffic) {
  // tpu_v4: 1024 lanes x 1 op, UB ports of 512 bytes per cycle (one for the reads, one for
  // the writes). 64 rows x 1024 values: softmax counts 6 ops per element (max 1, exp and sum
  // 4, divide 1), layer_norm 3, lut 1; reads are the rows plus the parameter block.
  arch::ArchConfig a = one_mxu("tpu_v4");
  ASSERT_EQ(a.vector_unit.lanes * a.vector_unit.ops_per_lane_per_cycle, 1024);
  ASSERT_EQ(a.unified_buffer.port_bytes_per_cycle, 512);
  struct Case {
    const char* instruction;
    int64_t busy;
  };
  const int64_t elements = 64 * 1024;
  const Case cases[] = {
      // compute 65536 x 6 / 1024 = 384 > UB 131072 / 512 = 256
      {"rowop kind=softmax dtype=bf16 src=0 dst=0x100000 rows=64 cols=1024", elements * 6 / 1024},
      // UB reads (131072 + 4 + 8 x 1024) / 512 = 272.01 -> 273 > compute 192
      {"rowop kind=layer_norm dtype=bf16 src=0 dst=0x100000 rows=64 cols=1024 params=0x200000",
       (2 * elements + 4 + 8 * 1024 + 511) / 512},
      // UB reads (65536 + 256) / 512 -> 129 > compute 64
      {"rowop kind=lut dtype=int8 src=0 dst=0x100000 rows=64 cols=1024 params=0x200000",
       (elements + 256 + 511) / 512},
      // int8 softmax: compute 384 > UB (65536 + 16) / 512
      {"rowop kind=softmax dtype=int8 src=0 dst=0 rows=64 cols=1024 params=0x200000",
       elements * 6 / 1024},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.instruction);
    std::string prog = fmt::format(R"(
.region x addr=0 dtype=bf16 shape=64x1024 role=input init=random seed=1
.region p addr=0x100000 dtype=fp32 shape=4 role=data init=values
.values p 0.05 0 0.00390625 -128
    dma_load src=x ub=0 row_bytes=x_bytes
    dma_load src=p ub=0x200000 row_bytes=16
    dma_load src=x ub=0x200010 rows=1 row_bytes=65536
    sync units=dma
    {}
    halt
)",
                                   c.instruction);
    isa::Program p = isa::assemble(prog, "rowop.tasm");
    ChipOptions off;
    off.functional = false;
    ChipResult r = run_chip(a, p, nullptr, off);
    ASSERT_TRUE(r.completed);
    EXPECT_EQ(r.counters.at("chip.core0.vpu.busy_cycles"), c.busy);
    EXPECT_EQ(r.counters.at("chip.core0.vpu.elements"), elements);
    // With data: the same cycles and counters, and the interpreter's bits.
    isa::Interpreter golden(a, p, "rowop.tasm");
    golden.run();
    isa::Interpreter timed(a, p, "rowop.tasm");
    ChipResult on = run_chip(a, p, &timed, ChipOptions{});
    EXPECT_EQ(on.cycles, r.cycles);
    EXPECT_EQ(on.counters, r.counters);
  }
}

TEST(Chip, HbmBoundCopyReachesTheConfiguredBandwidth) {
  arch::ArchConfig a = one_mxu("tpu_v1");
  std::string prog = ".region x addr=0 dtype=int8 shape=64x131072 role=input init=zero\n";
  for (int i = 0; i < 64; ++i) {
    prog += fmt::format("    dma_load src=x+{} ub={} row_bytes=131072\n", i * 131072, (i % 16) * 131072);
  }
  isa::Program p = isa::assemble(prog, "copy.tasm");
  ChipOptions opt;
  opt.functional = false;
  ChipResult r = run_chip(a, p, nullptr, opt);
  double bytes = 64.0 * 131072;
  double achieved = bytes / static_cast<double>(r.cycles);
  // tpu_v1 refreshes its DDR3 (tRFC / tREFI of the time moves no data): a long stream gets
  // the sustained figure, never more.
  ASSERT_GT(a.derived.memory_refresh_fraction, 0);
  EXPECT_NEAR(achieved / a.derived.memory_sustained_bytes_per_cycle, 1.0, 0.02) << r.cycles;
  // Exactly: no more bytes than the data time left after every refresh that fits in the run.
  double period = a.memory.refresh_interval_ns * a.clock_mhz / 1000.0;
  double refresh = a.memory.refresh_ns * a.clock_mhz / 1000.0;
  double cycles = static_cast<double>(r.cycles);
  EXPECT_LE(bytes, a.derived.memory_bytes_per_cycle * (cycles - std::floor(cycles / period) * refresh) * 1.0000001);
}

// DRAM refresh against its exact formula: a lone stream on one channel keeps the channel
// busy except during refreshes, so it ends later by R cycles for every refresh it meets,
// floor((s + D) / (T - R)) of them for a stream of D data cycles starting at phase s.
TEST(Chip, RefreshDelaysAStreamByItsRefreshWindowsExactly) {
  std::string prog = ".region x addr=0 dtype=int8 shape=64x131072 role=input init=zero\n";
  for (int i = 0; i < 64; ++i) {
    prog += fmt::format("    dma_load src=x+{} ub={} row_bytes=131072\n", i * 131072, (i % 16) * 131072);
  }
  isa::Program p = isa::assemble(prog, "copy.tasm");
  ChipOptions opt;
  opt.functional = false;
  // 700 MHz: tREFI 1000 ns = 700 cycles, tRFC 200 ns = 140 cycles, exactly.
  std::vector<std::string> base = {"memory.channels=1", "memory.latency_ns=0"};
  std::vector<std::string> with = base;
  base.push_back("memory.refresh_interval_ns=0");  // the preset's own refresh off
  base.push_back("memory.refresh_ns=0");
  with.push_back("memory.refresh_interval_ns=1000");
  with.push_back("memory.refresh_ns=200");
  arch::ArchConfig a0 = one_mxu("tpu_v1", base), a1 = one_mxu("tpu_v1", with);
  ASSERT_EQ(a0.derived.memory_refresh_fraction, 0);
  ASSERT_DOUBLE_EQ(a1.derived.memory_refresh_fraction, 0.2);
  ChipResult r0 = run_chip(a0, p, nullptr, opt), r1 = run_chip(a1, p, nullptr, opt);
  const double T = 700, R = 140, A = T - R;
  double data = 64.0 * 131072 / a0.derived.memory_bytes_per_cycle;
  // The stream starts within the first few cycles; the count does not depend on where.
  int64_t refreshes = static_cast<int64_t>(std::floor(data / A));
  for (int s = 0; s < 32; ++s) ASSERT_EQ(static_cast<int64_t>(std::floor((s + data) / A)), refreshes);
  EXPECT_EQ(r1.cycles - r0.cycles, refreshes * static_cast<int64_t>(R)) << r0.cycles << " " << r1.cycles;
  // Data time is what busy_cycles counts, refresh or not.
  EXPECT_EQ(r1.counters.at("chip.hbm.busy_cycles"), r0.counters.at("chip.hbm.busy_cycles"));
}

// A copy within the UB (space=ub) uses two UB ports, one reading and one writing, for
// bytes / port width cycles each, and never touches off-chip memory.
TEST(Chip, CopyWithinTheUnifiedBufferTakesItsPortTimeAndNoMemory) {
  arch::ArchConfig a = one_mxu("tpu_v1");
  const int64_t bytes = 1 << 20;
  isa::Program p = isa::assemble(fmt::format(".region x addr=0 dtype=int8 shape={0} role=input init=zero\n"
                                             "    dma_load src=x ub=0 row_bytes={0}\n"
                                             "    sync units=dma\n"
                                             "    dma_load space=ub src=0 ub={0} row_bytes={0}\n",
                                             bytes),
                                 "ubcopy.tasm");
  ChipOptions opt;
  opt.functional = false;
  opt.record_instructions = true;
  ChipResult r = run_chip(a, p, nullptr, opt);
  int64_t port = a.unified_buffer.port_bytes_per_cycle;
  EXPECT_EQ(r.counters.at("chip.hbm.read_bytes"), bytes);  // the first load only
  EXPECT_EQ(r.counters.at("chip.core0.ub.read_bytes"), bytes);
  EXPECT_EQ(r.counters.at("chip.core0.ub.write_bytes"), 2 * bytes);
  const auto& t = r.instructions.at(0);
  int64_t copy = t.at(2).done - t.at(2).issue;
  EXPECT_GE(copy, bytes / port);
  EXPECT_LE(copy, bytes / port + 8) << "issue " << t.at(2).issue << " done " << t.at(2).done;
}

// mxu.weight_whole_tiles (TPU v1): a partial tile read from memory moves the whole
// rows x cols tile; otherwise k x n bytes. From the UB, always k x n.
TEST(Chip, WholeTileWeightLoadsMoveTheArraysTileSize) {
  isa::Program p = isa::assemble(".region w addr=0 dtype=int8 shape=100x60 role=data init=zero\n"
                                 "    load_weights src=w k=100 n=60 stride=60 dtype=int8\n"
                                 "    dma_load src=w ub=0 row_bytes=6000\n"
                                 "    load_weights space=ub src=0 k=100 n=60 stride=60 dtype=int8\n",
                                 "partial.tasm");
  ChipOptions opt;
  opt.functional = false;
  for (bool whole : {false, true}) {
    arch::ArchConfig a = one_mxu("tpu_v1", {std::string("mxu.weight_whole_tiles=") + (whole ? "true" : "false")});
    ChipResult r = run_chip(a, p, nullptr, opt);
    int64_t tile = whole ? a.mxu.rows * a.mxu.cols : 100 * 60;
    EXPECT_EQ(r.counters.at("chip.hbm.read_bytes"), tile + 6000) << whole;
    EXPECT_EQ(r.counters.at("chip.core0.ub.read_bytes"), 6000) << whole;
  }
}

// A pass held back by `sync units=vector` (sequencer.layer_sync) waits in a RAW stall: the
// whole delay the sync adds to the pass is counted as such, none of it as idle.
TEST(Chip, PassHeldBackByAVectorSyncIsARawStall) {
  // Four UB ports, so the vector op's two streams leave the pass one: only the sync holds the
  // second pass back.
  arch::ArchConfig a = one_mxu("tpu_v4", {"unified_buffer.ports=4"});
  auto program = [](bool sync) {
    return isa::assemble(std::string(".region x addr=0 dtype=bf16 shape=128x128 role=input init=zero\n"
                                     ".region w addr=0x10000 dtype=bf16 shape=128x128 role=data init=zero\n"
                                     "    dma_load src=x ub=0 row_bytes=32768\n"
                                     "    load_weights src=w k=128 n=128 dtype=bf16\n"
                                     "    load_weights src=w k=128 n=128 dtype=bf16\n"
                                     "    matmul dtype=bf16 ub=0 acc=0 rows=128 k=128 n=128 pop=1\n"
                                     "    vector op=tanh dtype=bf16 a=0x200000 dst=0x400000 count=1048576\n") +
                             (sync ? "    sync units=vector\n" : "") +
                             "    matmul dtype=bf16 ub=0 acc=128 rows=128 k=128 n=128 pop=1\n",
                         "sync.tasm");
  };
  ChipOptions opt;
  opt.functional = false;
  opt.record_instructions = true;
  isa::Program with = program(true), without = program(false);
  ChipResult rw = run_chip(a, with, nullptr, opt);
  ChipResult ro = run_chip(a, without, nullptr, opt);
  int64_t delay = rw.instructions.at(0).at(6).done - ro.instructions.at(0).at(5).done;
  EXPECT_GT(delay, 500) << "the sync should hold the second pass back";
  EXPECT_EQ(rw.counters.at("chip.core0.mxu0.raw_stall_cycles"), delay);
  EXPECT_EQ(ro.counters.at("chip.core0.mxu0.raw_stall_cycles"), 0);
  EXPECT_EQ(rw.counters.at("chip.core0.mxu0.idle_cycles"), 0) << "none of the wait is idle";
}

// Start cycle of the span named `name` in a timeline.json (spans are in microseconds).
int64_t span_start(const ChipResult& r, const std::string& name, double clock_mhz) {
  nlohmann::json tl = nlohmann::json::parse(r.timeline_json);
  for (const auto& e : tl["traceEvents"]) {
    if (e.value("ph", "") == "X" && e.value("name", "") == name) {
      return std::llround(e["ts"].get<double>() * clock_mhz);
    }
  }
  ADD_FAILURE() << "no span " << name;
  return -1;
}

TEST(Chip, UnifiedBufferStreamsInTheSameBankPhaseSerialiseOthersOverlap) {
  // Two MXUs read 256 x 128 bf16 inputs (64 KiB) through 64-byte ports: 1024 cycles each,
  // 768 more than the array needs, so each stream starts 768 cycles after its port grant.
  // The matmuls reach the buffer one cycle apart; a stream moves one bank per cycle, so the
  // second collides with the first iff it starts one bank further (same phase).
  auto run = [](int banks, uint64_t second_ub) {
    arch::ArchConfig a = arch::load_arch(
        source_path("configs/arch/tpu_v4.yaml"),
        {"cores=1", "mxu.count=2", fmt::format("unified_buffer.banks={}", banks),
         "unified_buffer.port_bytes_per_cycle=64"});
    isa::Program p = isa::assemble(fmt::format(R"(
.region x addr=0 dtype=bf16 shape=1024x128 role=input init=random seed=1
.region w addr=0x100000 dtype=bf16 shape=128x128 role=data init=random seed=2
    dma_load src=x ub=0 rows=1024 row_bytes=256
    sync units=dma
    load_weights src=w k=128 n=128 dtype=bf16 mxu=0
    load_weights src=w k=128 n=128 dtype=bf16 mxu=1
    matmul dtype=bf16 ub=0 acc=0 rows=256 k=128 n=128 pop=1 mxu=0
    matmul dtype=bf16 ub={} acc=0 rows=256 k=128 n=128 pop=1 mxu=1
)",
                                               second_ub),
                                   "banks.tasm");
    ChipOptions opt;
    opt.functional = false;
    opt.trace = true;
    ChipResult r = run_chip(a, p, nullptr, opt);
    EXPECT_TRUE(r.completed);
    int64_t first = span_start(r, "matmul #4", a.clock_mhz);
    int64_t second = span_start(r, "matmul #5", a.clock_mhz);
    return std::make_pair(second - first, r.counters.at("chip.core0.ub.bank_stall_cycles"));
  };
  // 16 banks, the second stream one bank behind the first: no collision, one cycle apart.
  EXPECT_EQ(run(16, 0), std::make_pair(int64_t{1}, int64_t{0}));
  // Far apart in another bank phase: the same.
  EXPECT_EQ(run(16, 0x10000 + 5 * 64), std::make_pair(int64_t{1}, int64_t{0}));
  // One bank ahead (64 bytes = one line): the same phase, so it waits one cycle and then
  // trails the first stream by a bank.
  EXPECT_EQ(run(16, 64), std::make_pair(int64_t{2}, int64_t{1}));
  // 16 lines on is the first stream's own bank, entered a cycle later: one bank behind in
  // phase, so no collision.
  EXPECT_EQ(run(16, 16 * 64), std::make_pair(int64_t{1}, int64_t{0}));
  // One bank: every read stream has the same phase; the second waits for the whole first
  // stream (1024 cycles), though the second port is free.
  EXPECT_EQ(run(1, 0x10000), std::make_pair(int64_t{1024}, int64_t{1023}));
}

TEST(Chip, ConcurrentHbmStreamsShareTheBandwidthAndFinishTogether) {
  // Two cores each load 1 MiB from HBM at the same time; wide buffer ports make the copies
  // HBM-bound. Taking turns burst by burst, each gets half the bandwidth: both finish at
  // about twice the time of one copy alone, instead of one after the other.
  arch::ArchConfig a = arch::load_arch(source_path("configs/arch/tpu_v4.yaml"),
                                       {"unified_buffer.port_bytes_per_cycle=8192"});
  auto program = [](uint64_t base) {
    return isa::assemble(fmt::format(R"(
.region x addr={} dtype=int8 shape=1024x1024 role=input init=zero
    dma_load src=x ub=0 rows=1024 row_bytes=1024
)",
                                     base),
                         "copy.tasm");
  };
  isa::Program p0 = program(0), p1 = program(0x1000000);
  ChipOptions opt;
  opt.functional = false;
  ChipResult alone = run_chip(a, p0, nullptr, opt);
  ChipResult both = run_chip(a, {{&p0, nullptr}, {&p1, nullptr}}, opt);
  ASSERT_TRUE(both.completed);
  // Transfer times without the memory latency (each copy waits for it once at its end).
  double latency = std::llround(a.memory.latency_ns * a.clock_mhz / 1000.0);
  double one = static_cast<double>(alone.counters.at("chip.core0.dma.act.busy_cycles")) - latency;
  double b0 = static_cast<double>(both.counters.at("chip.core0.dma.act.busy_cycles")) - latency;
  double b1 = static_cast<double>(both.counters.at("chip.core1.dma.act.busy_cycles")) - latency;
  double bytes = 1 << 20, ideal = bytes / a.derived.memory_bytes_per_cycle;
  // Alone: the configured bandwidth.
  EXPECT_NEAR(one / ideal, 1.0, 0.02) << one;
  // Together: each copy takes about twice as long, and they end within a few turns of each
  // other (first come, first served would give `one` and `2 * one`).
  EXPECT_NEAR(b0 / one, 2.0, 0.05) << b0 << " " << b1 << " " << one;
  EXPECT_NEAR(b1 / one, 2.0, 0.05) << b0 << " " << b1 << " " << one;
  EXPECT_LE(std::abs(b0 - b1), 0.05 * one) << b0 << " " << b1;
  // And the channels stay saturated: two copies take twice one copy's time.
  EXPECT_NEAR((static_cast<double>(both.cycles) - latency) / ideal, 2.0, 0.04) << both.cycles;
}

TEST(Chip, TimelineIsChromeTraceJsonWithNonOverlappingLanes) {
  auto cases = trace_cases();
  ASSERT_FALSE(cases.empty());
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    ChipOptions opt;
    opt.functional = false;
    opt.trace = true;
    ChipResult r = run_chip(c.arch, c.program, nullptr, opt);
    nlohmann::json j = nlohmann::json::parse(r.timeline_json);
    ASSERT_TRUE(j["traceEvents"].is_array());
    std::map<int, std::vector<std::pair<double, double>>> lanes;
    int spans = 0;
    for (const auto& e : j["traceEvents"]) {
      if (e["ph"] != "X") continue;
      ++spans;
      EXPECT_GT(e["dur"].get<double>(), 0);
      lanes[e["tid"].get<int>()].push_back({e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()});
    }
    EXPECT_GT(spans, static_cast<int>(c.program.code.size()) / 2);
    for (auto& [tid, v] : lanes) {
      std::sort(v.begin(), v.end());
      for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LE(v[i - 1].second, v[i].first + 1e-9) << tid;
    }
    EXPECT_NE(r.waves_vcd.find("$enddefinitions"), std::string::npos);
  }
}

TEST(Chip, ProgramsRunOnEveryPresetWithGoldenNumerics) {
  for (const char* preset : {"tpu_v1", "tpu_v2", "tpu_v3", "tpu_v4", "tpu_v5e", "edgetpu"}) {
    SCOPED_TRACE(preset);
    arch::ArchConfig a = arch::load_arch(source_path(std::string("configs/arch/") + preset + ".yaml"));
    bool int8 = a.supports(arch::DType::kInt8);
    int t = static_cast<int>(std::min<int64_t>(64, a.mxu.rows));
    int eb = int8 ? 1 : 2;
    std::string dt = int8 ? "int8" : "bf16";
    // Two layers through every MXU of core 0: matmul, activate, pool; weights over the
    // memory the preset has (the Edge TPU's parameter cache included).
    std::string prog = fmt::format(R"(
.region x space=host addr=0 dtype={dt} shape=64x{t} role=input init=random seed=3
.region w addr=0 dtype={dt} shape={t}x{t} role=data init=random seed=4
.region q addr=0x10000 dtype=int32 shape={t}x3 role=data init=values
.region y space=host addr=0x100000 dtype={dt} shape=8x8x{t} role=output
    dma_load space=host src=x ub=0 rows=64 row_bytes={rb}
    dma_load src=q ub=0x40000 row_bytes=q_bytes
)",
                                   fmt::arg("dt", dt), fmt::arg("t", t), fmt::arg("rb", t * eb));
    for (int i = 0; i < t; ++i) prog += fmt::format(".values q {} 1073741824 -6\n", i * 7 - 100);
    for (int m = 0; m < a.mxu.count; ++m) {
      prog += fmt::format(
          "    load_weights src=w k={t} n={t} dtype={dt} mxu={m}\n"
          "    matmul mxu={m} dtype={dt} ub=0 acc={acc} rows=64 k={t} n={t} pop=1\n",
          fmt::arg("t", t), fmt::arg("dt", dt), fmt::arg("m", m), fmt::arg("acc", 64 * (m % 2)));
    }
    int last = static_cast<int>(a.mxu.count - 1);
    prog += int8 ? fmt::format("    activate mxu={} acc={} rows=64 n={} ub=0x8000 mode=int8 params=0x40000\n",
                               last, 64 * (last % 2), t)
                 : fmt::format("    activate mxu={} acc={} rows=64 n={} ub=0x8000 mode=bf16 func=relu\n",
                               last, 64 * (last % 2), t);
    prog += fmt::format(
        "    pool dtype={dt} kind=max src=0x8000 dst=0x20000 in_h=8 in_w=8 channels={t} win_h=1 "
        "win_w=1 out_h=8 out_w=8\n"
        "    dma_store space=host dst=y ub=0x20000 row_bytes=y_bytes\n",
        fmt::arg("dt", dt), fmt::arg("t", t));
    isa::Program p = isa::assemble(prog, "preset.tasm");
    isa::Interpreter golden(a, p, "preset.tasm");
    golden.run();
    isa::Interpreter timed(a, p, "preset.tasm");
    ChipResult r = run_chip(a, p, &timed, ChipOptions{});
    ASSERT_TRUE(r.completed);
    EXPECT_EQ(timed.read_region("y").data, golden.read_region("y").data);
    EXPECT_EQ(r.counters.at("chip.core0.seq.count.matmul"), a.mxu.count);
    EXPECT_GT(r.cycles, 0);
  }
}

TEST(Chip, TwoCoresRunTheirOwnProgramsConcurrentlyOverSharedMemory) {
  arch::ArchConfig a = arch::load_arch(source_path("configs/arch/tpu_v4.yaml"));
  ASSERT_EQ(a.cores, 2);
  auto program = [](uint64_t base, int seed) {
    return isa::assemble(fmt::format(R"(
.region x addr={x} dtype=bf16 shape=512x128 role=input init=random seed={s}
.region w addr={w} dtype=bf16 shape=128x128 role=data init=random seed={s2}
.region y addr={y} dtype=bf16 shape=512x128 role=output
    dma_load src=x ub=0 rows=512 row_bytes=256
    load_weights src=w k=128 n=128 dtype=bf16
    matmul dtype=bf16 ub=0 acc=0 rows=512 k=128 n=128 pop=1
    activate acc=0 rows=512 n=128 ub=0x20000 mode=bf16 func=tanh
    dma_store dst=y ub=0x20000 rows=512 row_bytes=256
)",
                                     fmt::arg("x", base), fmt::arg("w", base + 0x40000),
                                     fmt::arg("y", base + 0x80000), fmt::arg("s", seed),
                                     fmt::arg("s2", seed + 1)),
                         "core.tasm");
  };
  isa::Program p0 = program(0, 10), p1 = program(0x1000000, 20);
  isa::Interpreter g0(a, p0, "p0"), g1(a, p1, "p1");
  g0.run();
  g1.run();
  auto shared = std::make_shared<isa::OffChipMemory>(a);
  isa::Interpreter t0(a, p0, "p0", shared), t1(a, p1, "p1", shared);
  ChipResult both = run_chip(a, {{&p0, &t0}, {&p1, &t1}}, ChipOptions{});
  ASSERT_TRUE(both.completed);
  EXPECT_EQ(t0.read_region("y").data, g0.read_region("y").data);
  EXPECT_EQ(t1.read_region("y").data, g1.read_region("y").data);
  EXPECT_EQ(both.counters.at("chip.core0.mxu0.busy_cycles"), 512);
  EXPECT_EQ(both.counters.at("chip.core1.mxu0.busy_cycles"), 512);
  ChipOptions timing;
  timing.functional = false;
  ChipResult one = run_chip(a, p0, nullptr, timing);
  // The cores overlap (less than two runs back to back) but share HBM (not free).
  EXPECT_LT(both.cycles, 2 * one.cycles);
  EXPECT_GT(both.cycles, one.cycles);
  EXPECT_THROW(run_chip(a, {{&p0, nullptr}, {&p1, nullptr}, {&p0, nullptr}}, timing), InputError);
}

// The sequencer frees each instruction's record once nothing can read it (its unit has
// released it, it has retired, and no op that lists it as a dependency is left unreleased),
// so a long program holds its in-flight window of records, not one per instruction issued
// (measured: 151 of ResNet-50's 5,490 per core on TPU v4; 1,773 while an op held its deps
// until it was freed, which kept whole dependency chains alive).
TEST(Chip, ALongProgramHoldsOnlyItsInFlightWindowOfOps) {
  arch::ArchConfig a = arch::load_arch(source_path("configs/arch/tpu_v4.yaml"));
  compiler::Compiled c = compiler::compile(a, compiler::load_workload(source_path("configs/workloads/resnet50.yaml")),
                                           compiler::CompileOptions{});
  std::vector<CoreProgram> cores;
  std::size_t longest = 0;
  for (const auto& p : c.core_programs) {
    cores.push_back({&p, nullptr});
    longest = std::max(longest, p.code.size());
  }
  ChipOptions timing;
  timing.functional = false;
  ChipResult r = run_chip(a, cores, timing);
  ASSERT_TRUE(r.completed);
  EXPECT_GT(longest, 5000u);
  EXPECT_GT(r.peak_live_ops, 1);
  EXPECT_LT(static_cast<std::size_t>(r.peak_live_ops) * 20, longest) << r.peak_live_ops << " of " << longest;
}

TEST(Chip, WatchdogNamesEveryStuckUnit) {
  auto cases = trace_cases();
  const TraceCase& c = cases.front();
  ChipOptions opt;
  opt.functional = false;
  opt.hang_unit = "chip.core0.mxu0";
  ChipResult r = run_chip(c.arch, c.program, nullptr, opt);
  EXPECT_FALSE(r.completed);
  std::string all;
  for (const auto& s : r.stuck) all += s + "\n";
  EXPECT_NE(all.find("chip.core0.mxu0: waiting for a test hook"), std::string::npos) << all;
  EXPECT_NE(all.find("chip.core0.seq: waiting for"), std::string::npos) << all;
}

}  // namespace
}  // namespace tpu::sim
