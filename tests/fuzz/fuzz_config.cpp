// Fuzz target: any bytes as an architecture or pod YAML must load or raise InputError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "arch/arch_config.h"
#include "arch/pod_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    tpu::arch::ArchConfig c = tpu::arch::load_arch_string(text, "fuzz.yaml");
    // A config that loads must dump to text that loads to the same config.
    tpu::arch::ArchConfig back = tpu::arch::load_arch_string(tpu::arch::dump_arch(c), "dump.yaml");
    if (!(back == c)) __builtin_trap();
  } catch (const tpu::InputError&) {
  }
  try {
    tpu::arch::load_pod_string(text, "fuzz.yaml");
  } catch (const tpu::InputError&) {
  }
  return 0;
}
