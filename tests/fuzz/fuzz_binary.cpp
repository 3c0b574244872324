// Fuzz target: any bytes as a binary program must decode or raise InputError; a binary that
// decodes re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch/error.h"
#include "isa/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try {
    tpu::isa::Program p = tpu::isa::decode_program(bytes, "fuzz.tbin");
    if (tpu::isa::encode_program(p) != bytes) __builtin_trap();
  } catch (const tpu::InputError&) {
  }
  return 0;
}
