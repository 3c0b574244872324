// Binary encoding and text assembly round trips over seeded random programs, and a hostile
// binary decoder input never crashes.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <random>

#include "isa/assembler.h"
#include "isa/encoding.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

Program random_program(std::mt19937_64& rng, int n_inst) {
  Program p;
  p.arch_fingerprint = rng() % 2 ? rng() : 0;
  int n_regions = static_cast<int>(rng() % 4);
  for (int r = 0; r < n_regions; ++r) {
    Region reg;
    reg.name = "r" + std::to_string(r) + "_t";
    reg.space = static_cast<Space>(rng() % 2);
    reg.addr = rng() % (uint64_t{1} << 36);
    reg.dtype = static_cast<ElemType>(rng() % kElemTypeCount);
    int rank = 1 + static_cast<int>(rng() % 3);
    for (int d = 0; d < rank; ++d) reg.shape.push_back(1 + rng() % 64);
    reg.role = static_cast<RegionRole>(rng() % 3);
    reg.init = static_cast<RegionInit>(rng() % kRegionInitCount);
    reg.seed = rng() % 1000;
    if (reg.init == RegionInit::kValues) {
      reg.shape = {1 + rng() % 24, 1 + rng() % 3};
      // Random bit patterns: every int8/int32 value, and bf16/fp32 NaNs, infinities and
      // subnormals must survive the text form.
      for (uint64_t i = 0; i < reg.bytes(); ++i) reg.values.push_back(static_cast<uint8_t>(rng()));
    }
    p.regions.push_back(reg);
  }
  for (int i = 0; i < n_inst; ++i) {
    Instruction inst = Instruction::make(static_cast<Opcode>(rng() % kOpcodeCount));
    int count = 0;
    const auto& fields = fields_of(inst.op, &count);
    for (int k = 0; k < count; ++k) {
      int64_t lo = field_min(fields[k]), hi = field_max(fields[k]);
      // Bias towards the ends of the range, where encoding bugs live.
      switch (rng() % 4) {
        case 0:
          inst.values[k] = lo;
          break;
        case 1:
          inst.values[k] = hi;
          break;
        default:
          inst.values[k] = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
      }
    }
    p.code.push_back(inst);
  }
  return p;
}

TEST(Encoding, AsmBinaryDisasmAsmRoundTripsRandomPrograms) {
  std::mt19937_64 rng(12345);
  std::array<int, kOpcodeCount> seen{};
  for (int trial = 0; trial < 300; ++trial) {
    Program p = random_program(rng, 1 + trial % 40);
    for (const Instruction& in : p.code) ++seen[static_cast<int>(in.op)];
    std::vector<uint8_t> bin = encode_program(p);
    Program decoded = decode_program(bin, "t.tbin");
    ASSERT_TRUE(decoded == p) << "trial " << trial;
    std::string text = disassemble(decoded);
    Program reassembled = assemble(text, "t.tasm");
    ASSERT_TRUE(reassembled == p) << "trial " << trial << "\n" << text;
    EXPECT_EQ(encode_program(reassembled), bin);
    EXPECT_EQ(disassemble(reassembled), text);
  }
  // Every opcode (rowop and load_weights transpose=1 included) takes part.
  for (int op = 0; op < kOpcodeCount; ++op) {
    EXPECT_GT(seen[op], 20) << opcode_spec(static_cast<Opcode>(op)).mnemonic;
  }
}

TEST(Encoding, ValuesOutsideAFieldAreRefused) {
  Instruction inst = Instruction::make(Opcode::kMatmul);
  inst.set(Fid::kMatmul_off_h, 2048);  // s12
  EXPECT_THROW(encode_instruction(inst), std::out_of_range);
  inst.set(Fid::kMatmul_off_h, -2048);
  EXPECT_NO_THROW(encode_instruction(inst));
}

TEST(Encoding, DecoderRejectsEveryCorruptionWithAnInputError) {
  std::mt19937_64 rng(7);
  Program p = random_program(rng, 20);
  std::vector<uint8_t> bin = encode_program(p);
  // Every truncation is an error, never a crash.
  for (std::size_t len = 0; len < bin.size(); ++len) {
    std::vector<uint8_t> cut(bin.begin(), bin.begin() + len);
    EXPECT_THROW(decode_program(cut, "cut.tbin"), InputError) << len;
  }
  // Single-byte corruptions either decode to a valid program or raise an InputError.
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> bad = bin;
    bad[rng() % bad.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    try {
      Program q = decode_program(bad, "bad.tbin");
      EXPECT_EQ(encode_program(q), bad) << "a decoded binary re-encodes to the same bytes";
    } catch (const InputError&) {
    }
  }
}

TEST(Encoding, HeaderFieldsAreChecked) {
  Program p;
  p.code.push_back(Instruction::make(Opcode::kHalt));
  std::vector<uint8_t> bin = encode_program(p);
  auto expect_key = [](std::vector<uint8_t> b, const std::string& key) {
    InputError e = test::expect_input_error([&] { decode_program(b, "h.tbin"); });
    EXPECT_NE(e.key().find(key), std::string::npos) << e.what();
  };
  // Header layout: magic 4, version 2, reserved 2, isa hash 4, fingerprint 8, counts 4 + 4;
  // each message gives the offset where its field starts.
  std::vector<uint8_t> b = bin;
  b[0] = 'X';
  expect_key(b, "magic (byte 0)");
  b = bin;
  b[4] = 9;
  expect_key(b, "format version (byte 4)");
  b = bin;
  b[6] = 1;
  expect_key(b, "reserved (byte 6)");
  b = bin;
  b[8] ^= 1;
  expect_key(b, "isa hash (byte 8)");
  b = bin;
  b[23] = 0x7f;
  expect_key(b, "region count (byte 20)");
  b = bin;
  b[27] = 0x7f;
  expect_key(b, "instruction count (byte 24)");
  b = bin;
  b.push_back(0);
  expect_key(b, "instructions (byte 28)");
  InputError one = test::expect_input_error([&] { decode_program(b, "h.tbin"); });
  EXPECT_EQ(one.expected(), "32 bytes (1 instruction)");
  // Instruction words follow the 28-byte header (no regions here): word i starts at byte
  // 28 + 32 i, and a message gives the byte holding the offending field's first bit.
  b = bin;
  b[28] = 200;
  expect_key(b, "instruction 0 (byte 28): opcode");
  b = bin;
  b.back() = 0x80;
  expect_key(b, fmt::format("instruction 0 (byte {}): unused bits", 28 + kInstructionBytes - 1));
  Program q;
  q.code = {Instruction::make(Opcode::kHalt), Instruction::make(Opcode::kHalt),
            Instruction::make(Opcode::kSync)};
  std::vector<uint8_t> three = encode_program(q);
  b = three;
  b[28 + 2 * kInstructionBytes] = 200;
  expect_key(b, fmt::format("instruction 2 (byte {}): opcode", 28 + 2 * kInstructionBytes));
  b = three;
  b[28 + kInstructionBytes + 5] = 1;  // halt has no fields: every bit past the opcode is unused
  expect_key(b, fmt::format("instruction 1 (byte {}): unused bits", 28 + kInstructionBytes + 5));
}

// A binary is checked like its assembly: two regions of one name are refused (the assembler
// refuses them; the decoder used to accept them, and the second was unreachable).
TEST(Encoding, RegionNamesAreUniqueInABinary) {
  Program p;
  Region r;
  r.name = "a";
  r.shape = {4};
  p.regions = {r, r};
  p.regions[1].addr = 64;
  p.code.push_back(Instruction::make(Opcode::kHalt));
  std::vector<uint8_t> bin = encode_program(p);
  // Header 28 bytes; a region: name length 1 + name + 5 one-byte fields + address 8 + seed 8
  // + scale 4 + one dimension 8; the second name follows the second length byte.
  const std::size_t second_name = 28 + (1 + 1 + 5 + 8 + 8 + 4 + 8) + 1;
  InputError e = test::expect_input_error([&] { decode_program(bin, "dup.tbin"); });
  EXPECT_EQ(e.key(), fmt::format("region name (byte {})", second_name)) << e.what();
  EXPECT_EQ(e.found(), "'a' again");
  p.regions[1].name = "b";
  EXPECT_EQ(decode_program(encode_program(p), "ok.tbin").regions.size(), 2u);
  // A shape of 2^32 x 2^32 elements (2^64, 0 in 64 bits) is refused, not decoded as empty.
  p.regions[1].shape = {uint64_t{1} << 32, uint64_t{1} << 32};
  e = test::expect_input_error([&] { decode_program(encode_program(p), "wrap.tbin"); });
  EXPECT_EQ(e.key().rfind("region dimension (byte ", 0), 0u) << e.what();
  EXPECT_EQ(e.found(), "4294967296") << e.what();
  p.regions[1].shape = {4};
  // The most regions a binary may hold, then the last one renamed to repeat the first.
  p.regions.clear();
  for (std::size_t i = 0; i < kMaxRegions; ++i) {
    r.name = fmt::format("r{}", i);
    r.addr = i * 4;
    p.regions.push_back(r);
  }
  EXPECT_EQ(decode_program(encode_program(p), "max.tbin").regions.size(), kMaxRegions);
  p.regions.back().name = "r0";
  e = test::expect_input_error([&] { decode_program(encode_program(p), "dup.tbin"); });
  EXPECT_EQ(e.found(), "'r0' again") << e.what();
}

}  // namespace
}  // namespace tpu::isa
