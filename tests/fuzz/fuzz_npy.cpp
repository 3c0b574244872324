// Fuzz target: any bytes as a .npy file (exec --input) must parse or raise InputError; an
// array that parses holds exactly its shape's bytes and survives a write and a re-read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch/error.h"
#include "isa/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try {
    tpu::isa::NpyArray a = tpu::isa::parse_npy(bytes, "fuzz.npy");
    uint64_t n = tpu::isa::kElemTypeBytes[static_cast<int>(a.dtype)];
    for (uint64_t d : a.shape) n *= d;
    if (a.data.size() != n) __builtin_trap();
    tpu::isa::NpyArray b = tpu::isa::parse_npy(tpu::isa::format_npy(a), "again.npy");
    if (b.dtype != a.dtype || b.shape != a.shape || b.data != a.data) __builtin_trap();
  } catch (const tpu::InputError&) {
  }
  return 0;
}
