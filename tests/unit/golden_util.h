// Compiling a workload, running every core's program on the golden interpreter (sharing
// off-chip memory) and comparing each output with the reference network evaluator.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "compiler/compiler.h"
#include "compiler/reference.h"
#include "isa/interpreter.h"
#include "isa/verifier.h"

namespace tpu::test {

/// Compiles, runs on the golden interpreter and compares every output with the reference
/// (and that no reference output is constant). Returns the compiled program.
inline compiler::Compiled expect_golden(const arch::ArchConfig& a, const compiler::Workload& w,
                                        compiler::CompileOptions opt = {}) {
  compiler::Compiled c = compiler::compile(a, w, opt);
  // Every core's program (the batch split over the cores) on interpreters sharing off-chip
  // memory; they touch disjoint samples, so running them one after the other is the chip's
  // result.
  auto offchip = std::make_shared<isa::OffChipMemory>(a);
  std::vector<std::unique_ptr<isa::Interpreter>> cores;
  for (const auto& p : c.core_programs) {
    isa::verify_program(p, a, w.name);
    cores.push_back(std::make_unique<isa::Interpreter>(a, p, w.name, offchip));
    cores.back()->run();
  }
  isa::Interpreter& interp = *cores.front();
  auto ref = compiler::reference_outputs(a, c.workload, c.dtype);
  EXPECT_EQ(ref.size(), c.outputs.size());
  for (const auto& [tensor, region] : c.outputs) {
    isa::NpyArray got = interp.read_region(region);
    const auto& want = ref.at(tensor);
    EXPECT_EQ(got.data.size(), want.size()) << w.name << " " << tensor;
    if (got.data.size() != want.size()) continue;
    std::size_t diff = 0;
    while (diff < want.size() && got.data[diff] == want[diff]) ++diff;
    EXPECT_EQ(diff, want.size()) << w.name << " on " << a.name << " (" << isa::kMatTypeNames[static_cast<int>(c.dtype)]
                                 << "): output " << tensor << " differs first at byte " << diff;
  }
  // The output must not be trivial (all equal bytes would hide a broken pipeline).
  for (const auto& [tensor, bytes] : ref) {
    bool varied = std::any_of(bytes.begin(), bytes.end(), [&](uint8_t b) { return b != bytes[0]; });
    EXPECT_TRUE(varied || bytes.size() < 8) << w.name << " " << tensor << " is constant";
  }
  return c;
}

}  // namespace tpu::test
