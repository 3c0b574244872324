// Binary encoder and decoder for programs.
#include "isa/encoding.h"

#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <unordered_set>

#include "arch/error.h"

namespace tpu::isa {

namespace {

void put_bits(uint8_t* word, int offset, int bits, uint64_t value) {
  for (int i = 0; i < bits; ++i) {
    int b = offset + i;
    if ((value >> i) & 1u) word[b / 8] |= static_cast<uint8_t>(1u << (b % 8));
  }
}

uint64_t get_bits(const uint8_t* word, int offset, int bits) {
  uint64_t v = 0;
  for (int i = 0; i < bits; ++i) {
    int b = offset + i;
    if ((word[b / 8] >> (b % 8)) & 1u) v |= uint64_t{1} << i;
  }
  return v;
}

template <class T>
void put_le(std::vector<uint8_t>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
}

class Reader {
 public:
  Reader(const std::vector<uint8_t>& b, const std::string& file) : b_(b), file_(file) {}
  template <class T>
  T le(const char* what) {
    field_ = pos_;
    need(sizeof(T), what);
    uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{b_[pos_ + i]} << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  std::string bytes(std::size_t n, const char* what) {
    field_ = pos_;
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  const uint8_t* take(std::size_t n, const char* what) {
    field_ = pos_;
    need(n, what);
    const uint8_t* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::size_t remaining() const { return b_.size() - pos_; }
  void mark() { field_ = pos_; }  ///< the next message is about what starts here
  std::size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& found) const {
    // The offset of the field the message is about: where the last read began.
    throw InputError(SourceLocation{file_, 0, 0}, fmt::format("{} (byte {})", key, field_),
                     expected, found);
  }

 private:
  void need(std::size_t n, const char* what) {
    if (remaining() < n) {
      fail(what, fmt::format("{} more bytes", n), fmt::format("{} (file truncated)", remaining()));
    }
  }
  const std::vector<uint8_t>& b_;
  std::string file_;
  std::size_t pos_ = 0;
  std::size_t field_ = 0;  ///< where the field last read (or being read) starts
};

}  // namespace

std::array<uint8_t, kInstructionBytes> encode_instruction(const Instruction& inst) {
  std::array<uint8_t, kInstructionBytes> word{};
  word[0] = static_cast<uint8_t>(inst.op);
  int count = 0;
  const auto& fields = fields_of(inst.op, &count);
  for (int i = 0; i < count; ++i) {
    Fid f = fields[i];
    int64_t v = inst.values[i];
    if (v < field_min(f) || v > field_max(f)) {
      throw std::out_of_range(fmt::format("{}.{} = {} does not fit its field",
                                          opcode_spec(inst.op).mnemonic, field_spec(f).name, v));
    }
    put_bits(word.data(), field_bit_offset(f), field_spec(f).bits, static_cast<uint64_t>(v));
  }
  return word;
}

Instruction decode_instruction(const uint8_t* word, const std::string& file, std::size_t index,
                               std::size_t offset) {
  // `bit`: where in the word the offending field starts; with the word's offset in the file,
  // the message gives the file byte that holds it.
  auto fail = [&](const std::string& key, const std::string& expected, const std::string& found,
                  int bit) -> void {
    std::string at = offset == kNoOffset
                         ? fmt::format("instruction {}", index)
                         : fmt::format("instruction {} (byte {})", index, offset + bit / 8);
    throw InputError(SourceLocation{file, 0, 0}, at + ": " + key, expected, found);
  };
  if (word[0] >= kOpcodeCount) {
    fail("opcode", fmt::format("an opcode below {}", kOpcodeCount), std::to_string(word[0]), 0);
  }
  Instruction inst;
  inst.op = static_cast<Opcode>(word[0]);
  int count = 0;
  const auto& fields = fields_of(inst.op, &count);
  int used_end = 8;
  for (int i = 0; i < count; ++i) {
    Fid f = fields[i];
    const FieldSpec& s = field_spec(f);
    uint64_t raw = get_bits(word, field_bit_offset(f), s.bits);
    int64_t v = static_cast<int64_t>(raw);
    if (s.kind == FieldKind::kSigned && (raw >> (s.bits - 1)) & 1u) {
      v = static_cast<int64_t>(raw) - (int64_t{1} << s.bits);
    }
    if (v < field_min(f) || v > field_max(f)) {
      fail(s.name, fmt::format("a value in [{}, {}]", field_min(f), field_max(f)),
           std::to_string(v), field_bit_offset(f));
    }
    inst.values[i] = v;
    used_end = field_bit_offset(f) + s.bits;
  }
  for (int b = used_end; b < kInstructionBytes * 8; ++b) {
    if ((word[b / 8] >> (b % 8)) & 1u) {
      fail("unused bits", "zero", fmt::format("bit {} set", b), b);
    }
  }
  return inst;
}

bool looks_binary(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), kBinaryMagic, 4) == 0;
}

std::vector<uint8_t> encode_program(const Program& p) {
  std::vector<uint8_t> out(kBinaryMagic, kBinaryMagic + 4);
  put_le<uint16_t>(out, kBinaryVersion);
  put_le<uint16_t>(out, 0);
  put_le<uint32_t>(out, isa_hash());
  put_le<uint64_t>(out, p.arch_fingerprint);
  put_le<uint32_t>(out, static_cast<uint32_t>(p.regions.size()));
  put_le<uint32_t>(out, static_cast<uint32_t>(p.code.size()));
  for (const auto& r : p.regions) {
    put_le<uint8_t>(out, static_cast<uint8_t>(r.name.size()));
    out.insert(out.end(), r.name.begin(), r.name.end());
    put_le<uint8_t>(out, static_cast<uint8_t>(r.space));
    put_le<uint8_t>(out, static_cast<uint8_t>(r.dtype));
    put_le<uint8_t>(out, static_cast<uint8_t>(r.role));
    put_le<uint8_t>(out, static_cast<uint8_t>(r.init));
    put_le<uint8_t>(out, static_cast<uint8_t>(r.shape.size()));
    put_le<uint64_t>(out, r.addr);
    put_le<uint64_t>(out, r.seed);
    uint32_t scale_bits = 0;
    std::memcpy(&scale_bits, &r.scale, 4);
    put_le<uint32_t>(out, scale_bits);
    for (uint64_t d : r.shape) put_le<uint64_t>(out, d);
    if (r.init == RegionInit::kValues) out.insert(out.end(), r.values.begin(), r.values.end());
  }
  for (const auto& inst : p.code) {
    auto word = encode_instruction(inst);
    out.insert(out.end(), word.begin(), word.end());
  }
  return out;
}

Program decode_program(const std::vector<uint8_t>& bytes, const std::string& file) {
  Reader r(bytes, file);
  std::string magic = r.bytes(4, "magic");
  if (std::memcmp(magic.data(), kBinaryMagic, 4) != 0) {
    r.fail("magic", "'TPUB' (a tpusim binary program)", "other bytes");
  }
  uint16_t version = r.le<uint16_t>("format version");
  if (version != kBinaryVersion) {
    r.fail("format version", std::to_string(kBinaryVersion), std::to_string(version));
  }
  if (r.le<uint16_t>("reserved") != 0) r.fail("reserved", "0", "nonzero");
  uint32_t hash = r.le<uint32_t>("isa hash");
  if (hash != isa_hash()) {
    r.fail("isa hash", fmt::format("{:08x} (this tpusim's instruction set)", isa_hash()),
           fmt::format("{:08x} (re-assemble the program)", hash));
  }
  Program p;
  p.arch_fingerprint = r.le<uint64_t>("arch fingerprint");
  uint32_t nregions = r.le<uint32_t>("region count");
  if (nregions > kMaxRegions) {
    r.fail("region count", fmt::format("at most {}", kMaxRegions), std::to_string(nregions));
  }
  uint32_t ninst = r.le<uint32_t>("instruction count");
  if (ninst > kMaxInstructions) {
    r.fail("instruction count", fmt::format("at most {}", kMaxInstructions),
           std::to_string(ninst));
  }
  std::unordered_set<std::string> names;  // hashed: up to kMaxRegions names
  for (uint32_t i = 0; i < nregions; ++i) {
    Region reg;
    uint8_t len = r.le<uint8_t>("region name length");
    if (len == 0 || len > kMaxNameLength) {
      r.fail("region name length", fmt::format("1 to {}", kMaxNameLength), std::to_string(len));
    }
    reg.name = r.bytes(len, "region name");
    if (!is_identifier(reg.name)) r.fail("region name", "an identifier", "other bytes");
    if (!names.insert(reg.name).second) {
      r.fail("region name", "a region name used once", "'" + reg.name + "' again");
    }
    uint8_t space = r.le<uint8_t>("region space");
    if (space > 1) r.fail("region space", "0 or 1", std::to_string(space));
    uint8_t dtype = r.le<uint8_t>("region dtype");
    if (dtype >= kElemTypeCount) r.fail("region dtype", "0 to 3", std::to_string(dtype));
    uint8_t role = r.le<uint8_t>("region role");
    if (role > 2) r.fail("region role", "0 to 2", std::to_string(role));
    uint8_t init = r.le<uint8_t>("region init");
    if (init >= kRegionInitCount) r.fail("region init", "0 to 3", std::to_string(init));
    uint8_t rank = r.le<uint8_t>("region rank");
    if (rank == 0 || rank > kMaxRank) {
      r.fail("region rank", fmt::format("1 to {}", kMaxRank), std::to_string(rank));
    }
    reg.space = static_cast<Space>(space);
    reg.dtype = static_cast<ElemType>(dtype);
    reg.role = static_cast<RegionRole>(role);
    reg.init = static_cast<RegionInit>(init);
    reg.addr = r.le<uint64_t>("region address");
    reg.seed = r.le<uint64_t>("region seed");
    uint32_t scale_bits = r.le<uint32_t>("region scale");
    std::memcpy(&reg.scale, &scale_bits, 4);
    if (!(reg.scale > 0.0f && reg.scale < 1e30f) ||
        (reg.scale != 1.0f && reg.dtype != ElemType::kBf16 && reg.dtype != ElemType::kFp32)) {
      r.fail("region scale", "a positive finite fp32 (1 for integer regions)",
             fmt::format("{:#010x}", scale_bits));
    }
    uint64_t elems = 1;
    for (uint8_t d = 0; d < rank; ++d) {
      uint64_t dim = r.le<uint64_t>("region dimension");
      if (dim == 0 || dim > kMaxRegionBytes || elems > kMaxRegionBytes / dim) {  // no 64-bit wrap
        r.fail("region dimension", "a shape of at most 2^32 elements", std::to_string(dim));
      }
      elems *= dim;
      reg.shape.push_back(dim);
    }
    if (reg.init == RegionInit::kValues) {
      const uint8_t* v = r.take(reg.bytes(), "region values");
      reg.values.assign(v, v + reg.bytes());
    }
    p.regions.push_back(std::move(reg));
  }
  r.mark();
  if (r.remaining() != static_cast<std::size_t>(ninst) * kInstructionBytes) {
    r.fail("instructions", fmt::format("{} bytes ({} instruction{})",
                                       std::size_t{ninst} * kInstructionBytes, ninst,
                                       ninst == 1 ? "" : "s"),
           fmt::format("{} bytes", r.remaining()));
  }
  p.code.reserve(ninst);
  for (uint32_t i = 0; i < ninst; ++i) {
    std::size_t at = r.pos();
    p.code.push_back(decode_instruction(r.take(kInstructionBytes, "instruction"), file, i, at));
  }
  p.lines.assign(ninst, 0);
  p.notes.assign(ninst, "");
  return p;
}

}  // namespace tpu::isa
