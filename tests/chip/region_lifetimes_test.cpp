// sim::RegionLifetimes: a tensor ends exactly when the last instruction touching it has
// executed, in any execution order and over several cores, never earlier; and a run that
// frees each tensor's pages at its end gives the golden bits while holding less.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "arch/arch_config.h"
#include "compiler/compiler.h"
#include "compiler/training.h"
#include "compiler/workload.h"
#include "isa/interpreter.h"
#include "sim/chip/chip.h"
#include "sim/chip/region_lifetimes.h"
#include "../unit/test_util.h"

namespace tpu::sim {
namespace {

using isa::Fid;
using isa::Opcode;

// A DMA of `rows` rows of `rb` bytes at `addr` (row stride `stride`, 0: contiguous) in
// off-chip (space 0) or host (1) memory; a load from there or a store to it.
isa::Instruction dma(bool load, int space, uint64_t addr, uint64_t rows, uint64_t rb, uint64_t stride) {
  isa::Instruction in = isa::Instruction::make(load ? Opcode::kDmaLoad : Opcode::kDmaStore);
  in.set(load ? Fid::kDmaLoad_space : Fid::kDmaStore_space, space);
  in.set(load ? Fid::kDmaLoad_src : Fid::kDmaStore_dst, static_cast<int64_t>(addr));
  in.set(load ? Fid::kDmaLoad_rows : Fid::kDmaStore_rows, static_cast<int64_t>(rows));
  in.set(load ? Fid::kDmaLoad_row_bytes : Fid::kDmaStore_row_bytes, static_cast<int64_t>(rb));
  in.set(load ? Fid::kDmaLoad_src_stride : Fid::kDmaStore_dst_stride, static_cast<int64_t>(stride));
  return in;
}

struct Touch {
  int space;
  uint64_t addr, rows, rb, stride;
  // The bytes the instruction moves, exactly (row by row), overlap [lo, hi).
  bool touches(int s, uint64_t lo, uint64_t hi) const {
    if (s != space) return false;
    for (uint64_t r = 0; r < rows; ++r) {
      uint64_t a = addr + r * (stride ? stride : rb);
      if (a < hi && lo < a + rb) return true;
    }
    return false;
  }
};

// Random disjoint regions in off-chip and host memory, and one or two cores running random
// DMAs (some crossing regions, some in gaps, some strided) in a random interleaving, a
// random prefix of it executed (a halt): each region ends once, exactly when the last
// instruction that moves one of its bytes has executed (contiguous accesses) or not before
// it (strided: the bounding range counts), and never when one of them has not executed.
TEST(RegionLifetimes, ARegionEndsWhenTheLastInstructionTouchingItHasExecuted) {
  std::mt19937_64 rng(20261130);
  int ended_exactly = 0, ended_late = 0, never_ended = 0, two_core_touches = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const bool strided = trial % 2 == 1;
    const int cores = 1 + static_cast<int>(rng() % 2);
    std::vector<isa::Region> regions;
    for (int s = 0; s < 2; ++s) {
      uint64_t at = rng() % 64;
      for (int i = 0, n = 1 + static_cast<int>(rng() % 5); i < n; ++i) {
        isa::Region r;
        r.name = "r" + std::to_string(regions.size());
        r.space = s == 0 ? isa::Space::kMem : isa::Space::kHost;
        r.addr = at;
        r.shape = {1 + rng() % 300};
        r.role = rng() % 2 ? isa::RegionRole::kOutput : isa::RegionRole::kData;
        regions.push_back(r);
        at += r.bytes() + rng() % 3 * (rng() % 50);  // some regions adjacent
      }
    }
    std::vector<isa::Program> programs(static_cast<std::size_t>(cores));
    std::vector<std::vector<Touch>> touches(static_cast<std::size_t>(cores));
    for (int c = 0; c < cores; ++c) {
      programs[c].regions = regions;  // every core declares the same regions
      for (int i = 0, n = static_cast<int>(rng() % 12); i < n; ++i) {
        Touch t{static_cast<int>(rng() % 2), rng() % 1200, 1 + rng() % 4, 1 + rng() % 120, 0};
        if (strided && rng() % 2) t.stride = t.rb + 100 + rng() % 300;  // gaps that can skip a region
        programs[c].code.push_back(dma(rng() % 2, t.space, t.addr, t.rows, t.rb, t.stride));
        touches[c].push_back(t);
        if (rng() % 4 == 0) {  // an instruction touching no memory
          programs[c].code.push_back(isa::Instruction::make(Opcode::kSync));
          touches[c].push_back({-1, 0, 0, 1, 0});
        }
      }
    }
    std::vector<const isa::Program*> listing;
    for (const auto& p : programs) listing.push_back(&p);
    // The interleaving: each core's instructions in any order (a timed model executes them in
    // dependency order, which this does not need), a random prefix of it executed.
    std::vector<std::pair<std::size_t, std::size_t>> order;
    for (std::size_t c = 0; c < programs.size(); ++c) {
      for (std::size_t i = 0; i < programs[c].code.size(); ++i) order.push_back({c, i});
    }
    std::shuffle(order.begin(), order.end(), rng);
    std::size_t executed = rng() % 3 == 0 ? rng() % (order.size() + 1) : order.size();
    std::set<std::pair<std::size_t, std::size_t>> done;
    std::map<std::string, int> ends;
    RegionLifetimes lt(listing, [&](const isa::Region& r) {
      ++ends[r.name];
      // Every instruction moving one of its bytes has executed.
      for (std::size_t c = 0; c < touches.size(); ++c) {
        for (std::size_t i = 0; i < touches[c].size(); ++i) {
          if (touches[c][i].touches(static_cast<int>(r.space), r.addr, r.addr + r.bytes())) {
            ASSERT_TRUE(done.count({c, i})) << "trial " << trial << " region " << r.name << " ended early";
          }
        }
      }
    });
    ASSERT_EQ(lt.tracked(), regions.size());
    std::map<std::string, std::size_t> ended_at;  // region -> executed count when it ended
    for (std::size_t k = 0; k < executed; ++k) {
      done.insert(order[k]);
      lt.executed(order[k].first, order[k].second);
      for (const auto& [name, n] : ends) {
        ASSERT_EQ(n, 1) << "trial " << trial << " region " << name << " ended twice";
        ended_at.emplace(name, k);
      }
    }
    for (const auto& r : regions) {
      // The step at which the last instruction moving one of its bytes executed (none: -1),
      // and whether all of them executed.
      long last = -1;
      bool all = true, any = false;
      for (std::size_t c = 0; c < touches.size(); ++c) {
        for (std::size_t i = 0; i < touches[c].size(); ++i) {
          if (!touches[c][i].touches(static_cast<int>(r.space), r.addr, r.addr + r.bytes())) continue;
          any = true;
          if (cores == 2) ++two_core_touches;
          auto pos = std::find(order.begin(), order.begin() + static_cast<long>(executed),
                               std::make_pair(c, i));
          if (pos == order.begin() + static_cast<long>(executed)) all = false;
          else last = std::max<long>(last, pos - order.begin());
        }
      }
      bool ended = ended_at.count(r.name) != 0;
      EXPECT_EQ(lt.ended(r.name), ended);
      if (!all || (!any && !strided)) {
        // Something that touches it never ran, or nothing touches it: it cannot end (a
        // strided access's bounding range can add accesses, never remove one).
        EXPECT_FALSE(ended) << "trial " << trial << " region " << r.name;
        ++never_ended;
        continue;
      }
      if (!any) continue;
      if (!strided) {
        ASSERT_TRUE(ended) << "trial " << trial << " region " << r.name;
        EXPECT_EQ(static_cast<long>(ended_at[r.name]), last) << "trial " << trial << " region " << r.name;
        ++ended_exactly;
      } else if (ended) {
        EXPECT_GE(static_cast<long>(ended_at[r.name]), last) << "trial " << trial << " region " << r.name;
        ended_late += static_cast<long>(ended_at[r.name]) > last;
      }
    }
  }
  EXPECT_GT(ended_exactly, 300);
  EXPECT_GT(never_ended, 300);
  EXPECT_GT(two_core_touches, 300);
  EXPECT_GT(ended_late, 10) << ended_exactly << " " << never_ended << " " << two_core_touches;  // the strided case is exercised
}

// Regions of two cores that overlap without being the same declaration: no release could be
// told safe, so nothing is tracked and nothing ends.
TEST(RegionLifetimes, OverlappingDeclarationsOfTwoCoresTrackNothing) {
  isa::Program a, b;
  isa::Region r;
  r.name = "x";
  r.shape = {100};
  a.regions = {r};
  r.name = "y";
  r.addr = 50;
  b.regions = {r};
  a.code = {dma(true, 0, 0, 1, 100, 0)};
  b.code = {dma(true, 0, 50, 1, 100, 0)};
  int ends = 0;
  RegionLifetimes lt({&a, &b}, [&](const isa::Region&) { ++ends; });
  EXPECT_EQ(lt.tracked(), 0u);
  lt.executed(0, 0);
  lt.executed(1, 0);
  EXPECT_EQ(ends, 0);
  // The same two as one declaration (same name, place and size) are one region.
  b.regions[0] = a.regions[0];
  RegionLifetimes same({&a, &b}, [&](const isa::Region&) { ++ends; });
  EXPECT_EQ(same.tracked(), 1u);
}

// A training step (forward, backward, optimizer) on two cores sharing memory, run twice on
// the chip model: holding every tensor to the end, and freeing each tensor's pages when it
// ends (writing an output out first, as tpusim run does). The outputs are the same bits,
// every output ends during the run, and the freeing run ends holding at most the pages that
// regions share with their neighbours (measured: 12 pages against 80).
TEST(RegionLifetimes, FreeingEachTensorAtItsEndGivesTheSameBitsAndHoldsLess) {
  arch::ArchConfig a = arch::load_arch(test::source_path("configs/arch/tpu_v4.yaml"), {"unified_buffer.bytes=256KiB"});
  compiler::Workload fwd = compiler::load_workload(test::source_path("traces/train_cnn_v4/workload.yaml"));
  compiler::Compiled c =
      compiler::compile(a, compiler::training_step(fwd, fwd.batch, compiler::TrainOptions{}), compiler::CompileOptions{});
  ASSERT_EQ(c.core_programs.size(), 2u);
  struct Run {
    std::map<std::string, std::vector<uint8_t>> outputs, written_early;
    uint64_t resident = 0;
  };
  auto run = [&](bool free_tensors) {
    Run out;
    auto off = std::make_shared<isa::OffChipMemory>(a);
    std::vector<std::unique_ptr<isa::Interpreter>> interps;
    std::vector<CoreProgram> cores;
    std::vector<const isa::Program*> listing;
    for (const auto& p : c.core_programs) {
      interps.push_back(std::make_unique<isa::Interpreter>(a, &p, "train", off));
      cores.push_back({&p, interps.back().get()});
      listing.push_back(&p);
    }
    RegionLifetimes lt(listing, [&](const isa::Region& r) {
      if (r.role == isa::RegionRole::kOutput) out.written_early[r.name] = interps.front()->read_region(r.name).data;
      off->release(r);
    });
    if (free_tensors) {
      std::vector<isa::Interpreter*> attached;
      for (const auto& in : interps) attached.push_back(in.get());
      lt.attach(attached);
    }
    ChipResult r = run_chip(a, cores, ChipOptions{});
    EXPECT_TRUE(r.completed);
    for (const auto& name : interps.front()->output_names()) {
      if (!free_tensors) out.outputs[name] = interps.front()->read_region(name).data;
    }
    out.resident = off->mem.resident_bytes() + off->host.resident_bytes();
    return out;
  };
  Run held = run(false), freed = run(true);
  ASSERT_FALSE(held.outputs.empty());
  EXPECT_EQ(freed.written_early, held.outputs);  // every output, written out when it ended
  uint64_t boundary_pages = 0;
  for (const auto& r : c.core_programs[0].regions) {
    boundary_pages += (r.addr % isa::SparseMemory::kPageBytes != 0) + ((r.addr + r.bytes()) % isa::SparseMemory::kPageBytes != 0);
  }
  EXPECT_LE(freed.resident, boundary_pages * isa::SparseMemory::kPageBytes);
  EXPECT_LT(4 * freed.resident, held.resident) << freed.resident << " " << held.resident;
}

}  // namespace
}  // namespace tpu::sim
