// Binary program format: a versioned little-endian header, the region table, then fixed-width
// 32-byte instruction words whose field layout comes from the ISA table. docs/isa.md
// describes the format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "isa/program.h"

namespace tpu::isa {

inline constexpr char kBinaryMagic[4] = {'T', 'P', 'U', 'B'};
inline constexpr uint16_t kBinaryVersion = 3;

/// Packs one instruction into its 32-byte word. Throws std::out_of_range when a value does
/// not fit its field (the assembler and verifier check this first, naming the line).
std::array<uint8_t, kInstructionBytes> encode_instruction(const Instruction& inst);
inline constexpr std::size_t kNoOffset = static_cast<std::size_t>(-1);
/// Unpacks a word; throws InputError (naming `file`, the instruction index and, given the
/// word's `offset` in the file, the byte of the offending field) on an unknown opcode, an enum
/// value out of range or nonzero unused bits.
Instruction decode_instruction(const uint8_t* word, const std::string& file, std::size_t index,
                               std::size_t offset = kNoOffset);

std::vector<uint8_t> encode_program(const Program& p);
/// Decodes a whole binary; every length is checked against the data actually present, so a
/// truncated or hostile file is an InputError, never a crash or a huge allocation.
Program decode_program(const std::vector<uint8_t>& bytes, const std::string& file);

/// True when the bytes start with the binary magic.
bool looks_binary(const std::vector<uint8_t>& bytes);

}  // namespace tpu::isa
