// Instruction defaults, region sizes and fingerprint text.
#include "isa/program.h"

#include <fmt/format.h>

namespace tpu::isa {

Instruction Instruction::make(Opcode op) {
  Instruction inst;
  inst.op = op;
  int count = 0;
  const auto& fields = fields_of(op, &count);
  for (int i = 0; i < count; ++i) inst.values[i] = field_default(fields[i]);
  return inst;
}

uint64_t Region::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

bool Region::operator==(const Region& o) const {
  return name == o.name && space == o.space && addr == o.addr && dtype == o.dtype &&
         shape == o.shape && role == o.role && init == o.init && seed == o.seed &&
         scale == o.scale && values == o.values;
}

const Region* Program::find_region(const std::string& name) const {
  for (const auto& r : regions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

bool parse_fingerprint(const std::string& hex, uint64_t* out) {
  if (hex.empty() || hex.size() > 16) return false;
  uint64_t v = 0;
  for (char ch : hex) {
    int d;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      d = ch - 'A' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

std::string format_fingerprint(uint64_t fp) { return fmt::format("{:016x}", fp); }

}  // namespace tpu::isa

namespace tpu::isa {
bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(s[0])) return false;
  for (char c : s) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}
}  // namespace tpu::isa
