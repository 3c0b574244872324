// Assembly syntax: symbols, labels, defaults, notes, and the diagnostics for bad programs.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>

#include "isa/assembler.h"
#include "isa/numerics.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

using test::expect_input_error;

TEST(Assembler, ResolvesRegionsConstantsLabelsAndDefaults) {
  Program p = assemble(R"(
.arch 00000000deadbeef
.region x addr=0x100 dtype=int8 shape=4x8 role=input init=random seed=3
.equ BASE 64
start:
    dma_load src=x+8 ub=BASE-4 rows=2 row_bytes=x_bytes   ; copy two rows
    sync units=dma|mxu
    matmul dtype=int8 ub=0 acc=0 rows=4 k=8 n=8 off_h=-1 pad=-128, pop=1
done: halt
    nop ; refers to done
    dma_store dst=done ub=start row_bytes=1
)",
                       "p.tasm");
  ASSERT_EQ(p.code.size(), 6u);
  EXPECT_EQ(p.arch_fingerprint, 0xdeadbeefu);
  ASSERT_EQ(p.regions.size(), 1u);
  EXPECT_EQ(p.regions[0].shape, (std::vector<uint64_t>{4, 8}));
  EXPECT_EQ(p.regions[0].role, RegionRole::kInput);
  const Instruction& d = p.code[0];
  EXPECT_EQ(d.op, Opcode::kDmaLoad);
  EXPECT_EQ(d.get(Fid::kDmaLoad_src), 0x108);
  EXPECT_EQ(d.get(Fid::kDmaLoad_ub), 60);
  EXPECT_EQ(d.get(Fid::kDmaLoad_row_bytes), 32);
  EXPECT_EQ(d.get(Fid::kDmaLoad_src_stride), 0);  // default
  EXPECT_EQ(p.notes[0], "copy two rows");
  EXPECT_EQ(p.lines[0], 6);
  EXPECT_EQ(p.code[1].get(Fid::kSync_units), 0b011);
  EXPECT_EQ(p.code[2].get(Fid::kMatmul_off_h), -1);
  EXPECT_EQ(p.code[2].get(Fid::kMatmul_pad), -128);
  EXPECT_EQ(p.code[2].get(Fid::kMatmul_stride_h), 1);  // default 1
  EXPECT_EQ(p.code[5].get(Fid::kDmaStore_dst), 3);     // label = instruction index
  EXPECT_EQ(p.code[5].get(Fid::kDmaStore_ub), 0);
}

struct BadAsm {
  const char* what;
  const char* text;
  int line;
  int column;
  const char* key;
  const char* found;
};

TEST(Assembler, BadProgramsNameLineColumnFieldAndValue) {
  const BadAsm cases[] = {
      {"unknown mnemonic", "nop\n  matmull k=1\n", 2, 3, "mnemonic", "'matmull'"},
      {"unknown field", "halt\nsync unit=dma\n", 2, 6, "sync unit", "'unit'"},
      {"missing required", "dma_load src=0 ub=0\n", 1, 1, "dma_load row_bytes", "missing"},
      {"value too wide", "matmul dtype=int8 ub=0 acc=0 rows=1 k=1 n=1 off_w=4096\n", 1, 45,
       "matmul off_w", "4096"},
      {"negative unsigned", "dma_load src=-1 ub=0 row_bytes=1\n", 1, 10, "dma_load src", "-1"},
      {"bad enum", "load_weights src=0 k=1 n=1 dtype=fp8\n", 1, 28, "load_weights dtype",
       "'fp8'"},
      {"undefined symbol", "dma_load src=nowhere ub=0 row_bytes=1\n", 1, 10, "dma_load src",
       "not defined"},
      {"field twice", "sync units=dma units=mxu\n", 1, 16, "sync units", "repeat"},
      {"bad directive", ".org 5\n", 1, 1, "directive", ".org"},
      {"bad region key", ".region a addr=0 dtype=int8 shape=4 colour=red\n", 1, 37,
       "region a colour", "colour"},
      {"bad shape", ".region a addr=0 dtype=int8 shape=4x0\n", 1, 29, "region a shape", "4x0"},
      // 2^32 x 2^32 elements wraps to 0 in 64 bits; it was accepted as an empty region.
      {"shape that wraps", ".region a addr=0 dtype=int8 shape=4294967296x4294967296\n", 1, 29,
       "region a shape", "4294967296x4294967296"},
      {"region twice", ".region a addr=0 dtype=int8 shape=4\n.region a addr=8 dtype=int8 shape=4\n",
       2, 9, "a", "repeat"},
      {"label twice", "x: nop\nx: nop\n", 2, 1, "x", "second"},
      {"bad fingerprint", ".arch xyz\n", 1, 1, ".arch", "other"},
      {"trailing operator", "dma_load src=4+ ub=0 row_bytes=1\n", 1, 10, "dma_load src", "4+"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    InputError e = expect_input_error([&] { assemble(c.text, "bad.tasm"); });
    EXPECT_EQ(e.where().file, "bad.tasm");
    EXPECT_EQ(e.where().line, c.line) << e.what();
    EXPECT_EQ(e.where().column, c.column) << e.what();
    EXPECT_EQ(e.key(), c.key) << e.what();
    EXPECT_NE(e.found().find(c.found), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpu::isa

namespace tpu::isa {
namespace {

TEST(Assembler, ValuesDirectiveFillsLiteralRegions) {
  Program p = assemble(R"(
.region q addr=0 dtype=int32 shape=2x2 role=data init=values
.values q 1 -2
.values q 2147483647 -2147483648
.region h addr=0x100 dtype=bf16 shape=4 role=data init=values
.values h 1.5 -0 bits:0x7fc1 1e-40
)",
                       "v.tasm");
  ASSERT_EQ(p.regions[0].values.size(), 16u);
  int32_t q[4];
  std::memcpy(q, p.regions[0].values.data(), 16);
  EXPECT_EQ(q[0], 1);
  EXPECT_EQ(q[1], -2);
  EXPECT_EQ(q[2], INT32_MAX);
  EXPECT_EQ(q[3], INT32_MIN);
  uint16_t h[4];
  std::memcpy(h, p.regions[1].values.data(), 8);
  EXPECT_EQ(h[0], 0x3fc0);  // 1.5
  EXPECT_EQ(h[1], 0x8000);  // -0
  EXPECT_EQ(h[2], 0x7fc1);  // a NaN kept bit for bit
  EXPECT_EQ(h[3], fp32_to_bf16(1e-40f, NumericsOptions{false}));  // literals are never flushed
  EXPECT_NE(h[3], 0);

  const char* bad[][2] = {
      {".region q addr=0 dtype=int8 shape=2 role=data init=values\n.values q 1 128\n", "128"},
      {".region q addr=0 dtype=int8 shape=2 role=data init=values\n.values q 1\n", "1"},
      {".region q addr=0 dtype=int8 shape=2 role=data init=values\n.values q 1 2 3\n", "more"},
      {".region q addr=0 dtype=int8 shape=2 role=data init=zero\n.values q 1 2\n", "another"},
      {".region q addr=0 dtype=fp32 shape=1 role=data init=values\n.values q inf\n", "inf"},
      {".values nowhere 1\n", "nowhere"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b[0]);
    InputError e = test::expect_input_error([&] { assemble(b[0], "v.tasm"); });
    EXPECT_NE(e.found().find(b[1]), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpu::isa
