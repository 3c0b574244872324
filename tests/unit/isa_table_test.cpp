// The ISA table: field layouts that cannot overlap, defaults inside their ranges, and the
// committed docs/isa.md generated from the table.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "isa/isa_doc.h"
#include "isa/isa_table.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

TEST(IsaTable, FieldsOfAnOpcodeTileTheWordWithoutOverlap) {
  for (int i = 0; i < kOpcodeCount; ++i) {
    auto op = static_cast<Opcode>(i);
    int count = 0;
    const auto& fields = fields_of(op, &count);
    std::set<int> used;
    std::set<std::string> names;
    for (int k = 0; k < count; ++k) {
      Fid f = fields[k];
      EXPECT_EQ(field_slot(f), k);
      EXPECT_EQ(field_spec(f).op, op);
      EXPECT_TRUE(names.insert(field_spec(f).name).second) << "duplicate field name";
      for (int b = 0; b < field_spec(f).bits; ++b) {
        int bit = field_bit_offset(f) + b;
        EXPECT_GE(bit, 8) << "fields must not overlap the opcode byte";
        EXPECT_LT(bit, kInstructionBytes * 8);
        EXPECT_TRUE(used.insert(bit).second) << opcode_spec(op).mnemonic << "." << field_spec(f).name;
      }
    }
  }
}

TEST(IsaTable, DefaultsLieInsideTheirFields) {
  for (int i = 0; i < kFieldCount; ++i) {
    auto f = static_cast<Fid>(i);
    EXPECT_GE(field_default(f), field_min(f)) << field_spec(f).name;
    EXPECT_LE(field_default(f), field_max(f)) << field_spec(f).name;
    if (field_spec(f).kind == FieldKind::kEnum) {
      // An enum must fit its bit width.
      EXPECT_LE(field_spec(f).name_count, 1 << field_spec(f).bits) << field_spec(f).name;
    }
  }
}

TEST(IsaTable, MnemonicsAreUniqueAndFound) {
  std::set<std::string> seen;
  for (int i = 0; i < kOpcodeCount; ++i) {
    std::string m = opcode_spec(static_cast<Opcode>(i)).mnemonic;
    EXPECT_TRUE(seen.insert(m).second) << m;
    Opcode op;
    ASSERT_TRUE(opcode_by_mnemonic(m, &op));
    EXPECT_EQ(static_cast<int>(op), i);
  }
  Opcode op;
  EXPECT_FALSE(opcode_by_mnemonic("matmull", &op));
}

TEST(IsaTable, CommittedReferenceMatchesTheTable) {
  std::string doc = test::read_text(test::source_path("docs/isa.md"));
  EXPECT_EQ(doc, isa_markdown())
      << "docs/isa.md is out of date: regenerate with `tpusim isa --markdown > docs/isa.md`";
}

}  // namespace
}  // namespace tpu::isa
