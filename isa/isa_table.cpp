// Tables derived from the X-macros in isa_table.h: opcode and field specs, field slots and
// bit offsets (computed, never hand-assigned), and the table hash.
#include "isa/isa_table.h"

#include <cstddef>
#include <cstring>
#include <string>

namespace tpu::isa {

namespace {

template <std::size_t N>
constexpr int count_of(const char* const (&)[N]) {
  return static_cast<int>(N);
}
constexpr int count_of(std::nullptr_t) { return 0; }

constexpr OpcodeSpec kOpcodes[] = {
#define TPU_ISA_OPCODE_SPEC(name, mnemonic, unit, summary) {mnemonic, Unit::unit, summary},
    TPU_ISA_OPCODES(TPU_ISA_OPCODE_SPEC)
#undef TPU_ISA_OPCODE_SPEC
};

constexpr FieldSpec kFields[] = {
#define TPU_ISA_FIELD_SPEC(op, field, kind, bits, def, names, doc) \
  {Opcode::k##op, #field, FieldKind::kind, bits, def, names, count_of(names), doc},
    TPU_ISA_FIELDS(TPU_ISA_FIELD_SPEC)
#undef TPU_ISA_FIELD_SPEC
};

static_assert(sizeof(kOpcodes) / sizeof(kOpcodes[0]) == kOpcodeCount);
static_assert(sizeof(kFields) / sizeof(kFields[0]) == kFieldCount);

struct Layout {
  std::array<std::array<Fid, kMaxFields>, kOpcodeCount> fields{};
  std::array<int, kOpcodeCount> counts{};
  std::array<int, kFieldCount> slot{};
  std::array<int, kFieldCount> offset{};
};

constexpr Layout make_layout() {
  Layout l{};
  std::array<int, kOpcodeCount> bits{};
  for (int i = 0; i < kFieldCount; ++i) {
    int op = static_cast<int>(kFields[i].op);
    l.slot[i] = l.counts[op];
    l.fields[op][l.counts[op]++] = static_cast<Fid>(i);
    l.offset[i] = 8 + bits[op];
    bits[op] += kFields[i].bits;
  }
  return l;
}

constexpr Layout kLayout = make_layout();

constexpr bool layout_fits() {
  for (int op = 0; op < kOpcodeCount; ++op) {
    if (kLayout.counts[op] > kMaxFields) return false;
    int c = kLayout.counts[op];
    if (c > 0) {
      Fid last = kLayout.fields[op][c - 1];
      int idx = static_cast<int>(last);
      if (kLayout.offset[idx] + kFields[idx].bits > kInstructionBytes * 8) return false;
    }
  }
  // Fields of one opcode must be contiguous in the table so that docs list them together.
  for (int i = 1; i < kFieldCount; ++i) {
    if (kFields[i].op != kFields[i - 1].op && kLayout.slot[i] != 0) return false;
  }
  return true;
}
static_assert(layout_fits(), "an opcode's fields exceed the instruction word or are split");

}  // namespace

const OpcodeSpec& opcode_spec(Opcode op) { return kOpcodes[static_cast<int>(op)]; }
const FieldSpec& field_spec(Fid f) { return kFields[static_cast<int>(f)]; }

const std::array<Fid, kMaxFields>& fields_of(Opcode op, int* count) {
  *count = kLayout.counts[static_cast<int>(op)];
  return kLayout.fields[static_cast<int>(op)];
}

int field_slot(Fid f) { return kLayout.slot[static_cast<int>(f)]; }
int field_bit_offset(Fid f) { return kLayout.offset[static_cast<int>(f)]; }

bool field_required(Fid f) { return field_spec(f).default_text[0] == '\0'; }

int64_t field_min(Fid f) {
  const FieldSpec& s = field_spec(f);
  return s.kind == FieldKind::kSigned ? -(int64_t{1} << (s.bits - 1)) : 0;
}

int64_t field_max(Fid f) {
  const FieldSpec& s = field_spec(f);
  switch (s.kind) {
    case FieldKind::kSigned:
      return (int64_t{1} << (s.bits - 1)) - 1;
    case FieldKind::kEnum:
      return s.name_count - 1;
    case FieldKind::kMask:
      return (int64_t{1} << s.name_count) - 1;
    default:
      return (int64_t{1} << s.bits) - 1;
  }
}

int64_t field_default(Fid f) {
  const FieldSpec& s = field_spec(f);
  if (field_required(f)) return 0;
  if (s.kind == FieldKind::kEnum) {
    for (int i = 0; i < s.name_count; ++i) {
      if (std::strcmp(s.names[i], s.default_text) == 0) return i;
    }
    return 0;
  }
  if (s.kind == FieldKind::kMask) {  // names joined by '|'
    int64_t mask = 0;
    std::string text = s.default_text;
    for (int i = 0; i < s.name_count; ++i) {
      std::string name = s.names[i];
      for (std::size_t at = 0; (at = text.find(name, at)) != std::string::npos; at += name.size()) {
        bool start = at == 0 || text[at - 1] == '|';
        bool end = at + name.size() == text.size() || text[at + name.size()] == '|';
        if (start && end) mask |= int64_t{1} << i;
      }
    }
    return mask;
  }
  return std::stoll(s.default_text);
}

uint32_t isa_hash() {
  uint32_t h = 2166136261u;
  auto mix = [&](const std::string& text) {
    for (unsigned char ch : text) {
      h ^= ch;
      h *= 16777619u;
    }
    h ^= 0xff;
    h *= 16777619u;
  };
  for (const auto& o : kOpcodes) mix(o.mnemonic);
  for (const auto& f : kFields) {
    mix(kOpcodes[static_cast<int>(f.op)].mnemonic);
    mix(f.name);
    mix(std::to_string(static_cast<int>(f.kind)) + ":" + std::to_string(f.bits));
    for (int i = 0; i < f.name_count; ++i) mix(f.names[i]);
  }
  return h;
}

bool opcode_by_mnemonic(const std::string& mnemonic, Opcode* op) {
  for (int i = 0; i < kOpcodeCount; ++i) {
    if (mnemonic == kOpcodes[i].mnemonic) {
      *op = static_cast<Opcode>(i);
      return true;
    }
  }
  return false;
}

}  // namespace tpu::isa
