// Fuzz target: any bytes as a workload YAML or a SCALE-Sim CSV must parse or raise
// InputError; a workload that parses must compile for TPU v4 (bf16) and TPU v1 (int8) or
// raise InputError (never crash, hang or allocate without bound).
#include <cstddef>
#include <cstdint>
#include <string>

#include "arch/arch_config.h"
#include "compiler/compiler.h"
#include "compiler/workload.h"

namespace {
const tpu::arch::ArchConfig& arch(const char* name) {
  static tpu::arch::ArchConfig v4 = tpu::arch::load_arch(std::string(TPU_SOURCE_DIR) + "/configs/arch/tpu_v4.yaml", {});
  static tpu::arch::ArchConfig v1 = tpu::arch::load_arch(std::string(TPU_SOURCE_DIR) + "/configs/arch/tpu_v1.yaml", {});
  return std::string(name) == "v4" ? v4 : v1;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  for (bool csv : {false, true}) {
    try {
      tpu::compiler::Workload w = csv ? tpu::compiler::parse_scalesim_csv(text, "fuzz.csv")
                                      : tpu::compiler::parse_workload_yaml(text, "fuzz.yaml");
      // A smaller program bound than tpusim's keeps each input within the fuzzer's time
      // limit under sanitizers; the bounding code path is the same.
      tpu::compiler::CompileOptions opt;
      opt.max_instructions = 1 << 15;
      for (const char* a : {"v4", "v1"}) {
        try {
          tpu::compiler::compile(arch(a), w, opt);
        } catch (const tpu::InputError&) {
        }
      }
    } catch (const tpu::InputError&) {
    }
  }
  return 0;
}
