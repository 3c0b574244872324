// Fuzz target: any text as assembly must assemble or raise InputError; a program that
// assembles must survive binary and text round trips unchanged.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "arch/error.h"
#include "isa/assembler.h"
#include "isa/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  tpu::isa::Program p;
  try {
    p = tpu::isa::assemble(text, "fuzz.tasm");
  } catch (const tpu::InputError&) {
    return 0;
  }
  std::vector<uint8_t> bin = tpu::isa::encode_program(p);
  tpu::isa::Program decoded = tpu::isa::decode_program(bin, "fuzz.tbin");
  if (!(decoded == p)) __builtin_trap();
  tpu::isa::Program again = tpu::isa::assemble(tpu::isa::disassemble(p), "dis.tasm");
  if (!(again == p)) __builtin_trap();
  return 0;
}
