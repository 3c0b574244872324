// Assembler and disassembler. Two passes: the first collects labels, .equ constants and
// regions; the second parses instructions, so labels may be used before they are defined.
#include "isa/assembler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstring>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>

#include "arch/error.h"
#include "isa/encoding.h"
#include "isa/numerics.h"

namespace tpu::isa {

namespace {

constexpr std::size_t kMaxSourceBytes = std::size_t{256} << 20;

struct Token {
  std::string text;
  int column = 0;  // 1-based
};

struct Line {
  int number = 0;
  std::string label;
  std::vector<Token> words;  // mnemonic/directive, then key=value or plain words
  std::string comment;
};

// Splits one source line into an optional label, whitespace/comma separated words and a
// trailing comment (after ';' or '#').
Line split_line(const std::string& raw, int number) {
  Line line;
  line.number = number;
  std::size_t cut = raw.find_first_of(";#");
  std::string body = raw.substr(0, cut);
  if (cut != std::string::npos) {
    std::string c = raw.substr(cut + 1);
    std::size_t b = c.find_first_not_of(" \t");
    std::size_t e = c.find_last_not_of(" \t\r");
    line.comment = b == std::string::npos ? "" : c.substr(b, e - b + 1);
  }
  std::size_t i = 0;
  while (i < body.size()) {
    while (i < body.size() && (std::isspace(static_cast<unsigned char>(body[i])) || body[i] == ','))
      ++i;
    if (i >= body.size()) break;
    std::size_t start = i;
    while (i < body.size() && !std::isspace(static_cast<unsigned char>(body[i])) && body[i] != ',')
      ++i;
    line.words.push_back({body.substr(start, i - start), static_cast<int>(start) + 1});
  }
  if (!line.words.empty()) {
    const std::string& w = line.words[0].text;
    if (w.size() > 1 && w.back() == ':') {
      line.label = w.substr(0, w.size() - 1);
      line.words.erase(line.words.begin());
    }
  }
  return line;
}

class Assembler {
 public:
  Assembler(const std::string& text, const std::string& file) : file_(file) {
    std::istringstream in(text);
    std::string raw;
    int n = 0;
    while (std::getline(in, raw)) lines_.push_back(split_line(raw, ++n));
  }

  Program run() {
    // Pass 1: labels (instruction indices), constants and regions.
    int64_t index = 0;
    for (const Line& l : lines_) {
      if (!l.label.empty()) define(l, l.label, index, 1);
      if (l.words.empty()) continue;
      const std::string& head = l.words[0].text;
      if (head == ".equ") {
        if (l.words.size() != 3) fail(l, l.words[0], ".equ", "'.equ NAME VALUE'", "other words");
        define(l, l.words[1].text, eval(l, l.words[2], l.words[2].text), l.words[1].column);
      } else if (head == ".region") {
        parse_region(l);
      } else if (head == ".values") {
        parse_values(l);
      } else if (head == ".arch") {
        if (l.words.size() != 2 || !parse_fingerprint(l.words[1].text, &program_.arch_fingerprint)) {
          fail(l, l.words[0], ".arch", "'.arch' followed by 16 hex digits", "other words");
        }
        program_.arch_line = l.number;
      } else if (head[0] == '.') {
        fail(l, l.words[0], "directive", "one of .arch .region .values .equ", "'" + head + "'");
      } else {
        ++index;
        if (static_cast<std::size_t>(index) > kMaxInstructions) {
          fail(l, l.words[0], "program", fmt::format("at most {} instructions", kMaxInstructions),
               "more");
        }
      }
    }
    for (const Region& r : program_.regions) {
      if (r.init == RegionInit::kValues && r.values.size() != r.bytes()) {
        const Line& l = lines_[region_lines_.at(r.name)];
        fail(l, l.words[1], "region " + r.name + " values",
             fmt::format("{} values (.values lines after the region)", r.elements()),
             fmt::format("{}", r.values.size() / kElemTypeBytes[static_cast<int>(r.dtype)]));
      }
    }
    // Pass 2: instructions.
    for (const Line& l : lines_) {
      if (l.words.empty() || l.words[0].text[0] == '.') continue;
      program_.code.push_back(parse_instruction(l));
      program_.lines.push_back(l.number);
      program_.notes.push_back(l.comment);
    }
    return std::move(program_);
  }

 private:
  [[noreturn]] void fail(const Line& l, const Token& t, const std::string& key,
                         const std::string& expected, const std::string& found) const {
    throw InputError(SourceLocation{file_, l.number, t.column}, key, expected, found);
  }

  void define(const Line& l, const std::string& name, int64_t value, int column) {
    Token t{name, column};
    if (!is_identifier(name)) fail(l, t, "symbol", "an identifier", "'" + name + "'");
    if (symbols_.count(name)) fail(l, t, name, "a name defined once", "a second definition");
    symbols_[name] = value;
  }

  static bool parse_number(const std::string& s, int64_t* out) {
    if (s.empty()) return false;
    const char* p = s.c_str();
    bool neg = false;
    if (*p == '-' || *p == '+') neg = (*p++ == '-');
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
      base = 16;
      p += 2;
    }
    if (!std::isxdigit(static_cast<unsigned char>(*p))) return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(p, &end, base);
    if (errno != 0 || *end != '\0' || v > (1ull << 62)) return false;
    *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  // expr := term (('+' | '-') term)*, term := number | symbol; a leading sign belongs to the
  // first number.
  int64_t eval(const Line& l, const Token& t, const std::string& key) const {
    const std::string& s = t.text;
    constexpr int64_t kLimit = int64_t{1} << 62;
    int64_t total = 0;
    int sign = 1;
    std::size_t i = 0;
    while (true) {
      std::size_t k = (i == 0 && !s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : i;
      while (k < s.size() && s[k] != '+' && s[k] != '-') ++k;
      std::string term = s.substr(i, k - i);
      int64_t v = 0;
      if (!parse_number(term, &v)) {
        auto it = symbols_.find(term);
        if (it == symbols_.end()) {
          fail(l, t, key, "a number, a defined symbol or SYMBOL+NUMBER",
               "'" + s + "'" + (is_identifier(term) ? " ('" + term + "' is not defined)" : ""));
        }
        v = it->second;
      }
      total += sign * v;
      if (v > kLimit || v < -kLimit || total > kLimit || total < -kLimit) {
        fail(l, t, key, "a value of magnitude below 2^62", "'" + s + "'");
      }
      if (k >= s.size()) return total;
      sign = s[k] == '-' ? -1 : 1;
      i = k + 1;
    }
  }

  static std::pair<std::string, std::string> split_kv(const std::string& w) {
    std::size_t eq = w.find('=');
    if (eq == std::string::npos) return {w, ""};
    return {w.substr(0, eq), w.substr(eq + 1)};
  }

  void parse_region(const Line& l) {
    if (l.words.size() < 2) fail(l, l.words[0], ".region", "'.region NAME key=value ...'", "no name");
    Region r;
    r.name = l.words[1].text;
    if (!is_identifier(r.name)) {
      fail(l, l.words[1], ".region", "an identifier as region name", "'" + r.name + "'");
    }
    if (region_index_.count(r.name) != 0) {
      fail(l, l.words[1], r.name, "a region name used once", "a repeat");
    }
    if (program_.regions.size() >= kMaxRegions) {
      fail(l, l.words[1], ".region", fmt::format("at most {} regions", kMaxRegions), "more");
    }
    bool have_addr = false, have_dtype = false, have_shape = false;
    std::map<std::string, bool> seen;
    for (std::size_t i = 2; i < l.words.size(); ++i) {
      const Token& t = l.words[i];
      auto [key, value] = split_kv(t.text);
      std::string k = "region " + r.name + " " + key;
      if (value.empty()) fail(l, t, k, "key=value", "'" + t.text + "'");
      if (seen[key]) fail(l, t, k, "each key once", "a repeat");
      seen[key] = true;
      if (key == "space") {
        r.space = static_cast<Space>(pick(l, t, k, value, kSpaceNames, 2));
      } else if (key == "addr") {
        int64_t a = eval(l, Token{value, t.column}, k);
        if (a < 0) fail(l, t, k, "a non-negative address", value);
        r.addr = static_cast<uint64_t>(a);
        have_addr = true;
      } else if (key == "dtype") {
        r.dtype = static_cast<ElemType>(pick(l, t, k, value, kElemTypeNames, kElemTypeCount));
        have_dtype = true;
      } else if (key == "shape") {
        r.shape = parse_shape(l, t, k, value);
        have_shape = true;
      } else if (key == "role") {
        r.role = static_cast<RegionRole>(pick(l, t, k, value, kRegionRoleNames, 3));
      } else if (key == "init") {
        r.init = static_cast<RegionInit>(pick(l, t, k, value, kRegionInitNames, kRegionInitCount));
      } else if (key == "seed") {
        int64_t s = eval(l, Token{value, t.column}, k);
        if (s < 0) fail(l, t, k, "a non-negative seed", value);
        r.seed = static_cast<uint64_t>(s);
      } else if (key == "scale") {
        char* end = nullptr;
        double s = std::strtod(value.c_str(), &end);
        float f = static_cast<float>(s);
        if (value.empty() || *end != '\0' || !(f > 0.0f && f < 1e30f)) {
          fail(l, t, k, "a positive finite number", "'" + value + "'");
        }
        r.scale = f;
      } else {
        fail(l, t, k, "one of space addr dtype shape role init seed scale", "'" + key + "'");
      }
    }
    if (r.scale != 1.0f && r.dtype != ElemType::kBf16 && r.dtype != ElemType::kFp32) {
      fail(l, l.words[1], "region " + r.name, "scale= only on bf16/fp32 regions",
           kElemTypeNames[static_cast<int>(r.dtype)]);
    }
    if (!have_addr || !have_dtype || !have_shape) {
      fail(l, l.words[1], "region " + r.name, "addr=, dtype= and shape=", "some missing");
    }
    region_index_[r.name] = program_.regions.size();
    program_.regions.push_back(r);
    program_.region_lines.push_back(l.number);
    region_lines_[r.name] = static_cast<std::size_t>(&l - lines_.data());
    symbols_[r.name] = static_cast<int64_t>(r.addr);
    if (symbols_.count(r.name + "_bytes") == 0) {
      symbols_[r.name + "_bytes"] = static_cast<int64_t>(r.bytes());
    }
  }

  // .values NAME v v ...: literal elements appended to a region declared with init=values.
  void parse_values(const Line& l) {
    if (l.words.size() < 2) fail(l, l.words[0], ".values", "'.values REGION v ...'", "no region");
    auto found = region_index_.find(l.words[1].text);
    Region* r = found == region_index_.end() ? nullptr : &program_.regions[found->second];
    if (!r) fail(l, l.words[1], ".values", "a region declared above", "'" + l.words[1].text + "'");
    std::string key = "region " + r->name + " values";
    if (r->init != RegionInit::kValues) fail(l, l.words[1], key, "a region with init=values", "another init");
    int eb = kElemTypeBytes[static_cast<int>(r->dtype)];
    for (std::size_t i = 2; i < l.words.size(); ++i) {
      const Token& t = l.words[i];
      if (r->values.size() + eb > r->bytes()) {
        fail(l, t, key, fmt::format("at most {} values", r->elements()), "more");
      }
      uint32_t bits = parse_element(l, t, key, r->dtype);
      for (int b = 0; b < eb; ++b) r->values.push_back(static_cast<uint8_t>(bits >> (8 * b)));
    }
  }

  // One element as its little-endian bit pattern: integers for int8/int32; for bf16/fp32 a
  // finite decimal number (rounded to nearest even, never flushed) or bits:0xHEX.
  uint32_t parse_element(const Line& l, const Token& t, const std::string& key, ElemType type) const {
    const std::string& s = t.text;
    int64_t v = 0;
    switch (type) {
      case ElemType::kInt8:
        if (!parse_number(s, &v) || v < -128 || v > 127) fail(l, t, key, "an int8 in [-128, 127]", s);
        return static_cast<uint32_t>(v) & 0xffu;
      case ElemType::kInt32:
        if (!parse_number(s, &v) || v < INT32_MIN || v > INT32_MAX) fail(l, t, key, "an int32", s);
        return static_cast<uint32_t>(v);
      default:
        break;
    }
    bool bf16 = type == ElemType::kBf16;
    if (s.compare(0, 5, "bits:") == 0) {
      if (!parse_number(s.substr(5), &v) || v < 0 || v > (bf16 ? 0xffff : 0xffffffffll)) {
        fail(l, t, key, bf16 ? "bits:0x0000 to bits:0xffff" : "bits:0x0 to bits:0xffffffff", s);
      }
      return static_cast<uint32_t>(v);
    }
    char* end = nullptr;
    float x = std::strtof(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(x) || s.find_first_of("xXnN") != std::string::npos) {
      fail(l, t, key, "a finite decimal number or bits:0xHEX", s);
    }
    if (bf16) return fp32_to_bf16(x, NumericsOptions{false});
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    return bits;
  }

  int pick(const Line& l, const Token& t, const std::string& key, const std::string& value,
           const char* const* names, int count) const {
    for (int i = 0; i < count; ++i) {
      if (value == names[i]) return i;
    }
    std::string choices;
    for (int i = 0; i < count; ++i) choices += (i ? " | " : "") + std::string(names[i]);
    fail(l, t, key, "one of " + choices, "'" + value + "'");
  }

  std::vector<uint64_t> parse_shape(const Line& l, const Token& t, const std::string& key,
                                    const std::string& value) const {
    std::vector<uint64_t> shape;
    std::string v = value;
    if (!v.empty() && v.front() == '[' && v.back() == ']') v = v.substr(1, v.size() - 2);
    uint64_t elems = 1;
    std::size_t i = 0;
    while (true) {
      std::size_t j = v.find('x', i);
      std::string part = v.substr(i, j == std::string::npos ? std::string::npos : j - i);
      int64_t d = 0;
      if (!parse_number(part, &d) || d <= 0 || static_cast<uint64_t>(d) > kMaxRegionBytes ||
          elems > kMaxRegionBytes / static_cast<uint64_t>(d)) {  // no 64-bit wrap
        fail(l, t, key, "dimensions like 16x128 (each > 0, at most 2^32 elements)",
             "'" + value + "'");
      }
      elems *= static_cast<uint64_t>(d);
      shape.push_back(static_cast<uint64_t>(d));
      if (shape.size() > kMaxRank) fail(l, t, key, "at most 8 dimensions", "'" + value + "'");
      if (j == std::string::npos) break;
      i = j + 1;
    }
    return shape;
  }

  Instruction parse_instruction(const Line& l) {
    const Token& head = l.words[0];
    Opcode op;
    if (!opcode_by_mnemonic(head.text, &op)) {
      std::string all;
      for (int i = 0; i < kOpcodeCount; ++i) {
        all += (i ? " " : "") + std::string(opcode_spec(static_cast<Opcode>(i)).mnemonic);
      }
      fail(l, head, "mnemonic", "one of " + all, "'" + head.text + "'");
    }
    Instruction inst = Instruction::make(op);
    int count = 0;
    const auto& fields = fields_of(op, &count);
    std::vector<bool> given(count, false);
    for (std::size_t w = 1; w < l.words.size(); ++w) {
      const Token& t = l.words[w];
      auto [key, value] = split_kv(t.text);
      std::string mkey = std::string(head.text) + " " + key;
      int slot = -1;
      for (int i = 0; i < count; ++i) {
        if (key == field_spec(fields[i]).name) slot = i;
      }
      if (slot < 0) {
        std::string names;
        for (int i = 0; i < count; ++i) names += (i ? " " : "") + std::string(field_spec(fields[i]).name);
        fail(l, t, mkey, count ? "a field of " + head.text + " (" + names + ")" : "no operands",
             "'" + key + "'");
      }
      if (value.empty()) fail(l, t, mkey, "field=value", "'" + t.text + "'");
      if (given[slot]) fail(l, t, mkey, "each field once", "a repeat");
      given[slot] = true;
      inst.values[slot] = parse_field(l, Token{value, t.column}, mkey, fields[slot]);
    }
    for (int i = 0; i < count; ++i) {
      if (!given[i] && field_required(fields[i])) {
        fail(l, head, std::string(head.text) + " " + field_spec(fields[i]).name,
             "the field (it is required)", "it missing");
      }
    }
    return inst;
  }

  int64_t parse_field(const Line& l, const Token& t, const std::string& key, Fid f) const {
    const FieldSpec& s = field_spec(f);
    int64_t v = 0;
    if (s.kind == FieldKind::kEnum) {
      return pick(l, t, key, t.text, s.names, s.name_count);
    }
    if (s.kind == FieldKind::kMask) {
      if (parse_number(t.text, &v)) {
        if (v < 0 || v > field_max(f)) fail(l, t, key, "a mask of known units", t.text);
        return v;
      }
      std::size_t i = 0;
      while (true) {
        std::size_t j = t.text.find('|', i);
        std::string part = t.text.substr(i, j == std::string::npos ? std::string::npos : j - i);
        v |= int64_t{1} << pick(l, t, key, part, s.names, s.name_count);
        if (j == std::string::npos) break;
        i = j + 1;
      }
      return v;
    }
    if (s.kind == FieldKind::kFlag && (t.text == "true" || t.text == "false")) {
      return t.text == "true" ? 1 : 0;
    }
    v = eval(l, t, key);
    if (v < field_min(f) || v > field_max(f)) {
      fail(l, t, key, fmt::format("a value in [{}, {}] ({} bits)", field_min(f), field_max(f), s.bits),
           fmt::format("{}", v));
    }
    return v;
  }

  std::string file_;
  std::vector<Line> lines_;
  std::map<std::string, int64_t> symbols_;
  std::unordered_map<std::string, std::size_t> region_index_;  // name -> program_.regions index
  std::map<std::string, std::size_t> region_lines_;
  Program program_;
};

// Inverse of parse_element: every bit pattern prints so that it reads back identically.
std::string format_element(ElemType type, const uint8_t* p) {
  switch (type) {
    case ElemType::kInt8:
      return std::to_string(static_cast<int8_t>(p[0]));
    case ElemType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return std::to_string(v);
    }
    case ElemType::kBf16: {
      uint16_t b = static_cast<uint16_t>(p[0] | (p[1] << 8));
      uint16_t exp = (b >> 7) & 0xff;
      if (exp == 0xff || (exp == 0 && (b & 0x7f) != 0)) return fmt::format("bits:{:#06x}", b);
      return fmt::format("{}", bf16_to_fp32(b, NumericsOptions{false}));
    }
    case ElemType::kFp32: {
      float x;
      std::memcpy(&x, p, 4);
      uint32_t bits;
      std::memcpy(&bits, p, 4);
      if (!std::isfinite(x)) return fmt::format("bits:{:#010x}", bits);
      return fmt::format("{}", x);
    }
  }
  return "";
}

std::string format_field(Fid f, int64_t v) {
  const FieldSpec& s = field_spec(f);
  if (s.kind == FieldKind::kEnum) return s.names[v];
  if (s.kind == FieldKind::kMask) {
    if (v == 0) return "0";
    std::string out;
    for (int i = 0; i < s.name_count; ++i) {
      if ((v >> i) & 1) out += (out.empty() ? "" : "|") + std::string(s.names[i]);
    }
    return out;
  }
  return std::to_string(v);
}

}  // namespace

Program assemble(const std::string& text, const std::string& file) {
  if (text.size() > kMaxSourceBytes) {
    throw InputError(SourceLocation{file, 0, 0}, "<file>", "at most 256 MiB of assembly",
                     "a larger file");
  }
  return Assembler(text, file).run();
}

std::string disassemble(const Program& p) {
  std::string out = "; tpusim program\n";
  if (p.arch_fingerprint != 0) out += ".arch " + format_fingerprint(p.arch_fingerprint) + "\n";
  for (const auto& r : p.regions) {
    std::string shape;
    for (std::size_t i = 0; i < r.shape.size(); ++i) {
      shape += (i ? "x" : "") + std::to_string(r.shape[i]);
    }
    out += fmt::format(".region {} space={} addr={:#x} dtype={} shape={} role={} init={} seed={}\n",
                       r.name, kSpaceNames[static_cast<int>(r.space)], r.addr,
                       kElemTypeNames[static_cast<int>(r.dtype)], shape,
                       kRegionRoleNames[static_cast<int>(r.role)],
                       kRegionInitNames[static_cast<int>(r.init)], r.seed);
    if (r.scale != 1.0f) out.insert(out.size() - 1, fmt::format(" scale={:.9g}", r.scale));
    int eb = kElemTypeBytes[static_cast<int>(r.dtype)];
    for (std::size_t i = 0; i < r.values.size(); i += 16 * eb) {
      out += ".values " + r.name;
      for (std::size_t j = i; j < std::min(r.values.size(), i + 16 * eb); j += eb) {
        out += " " + format_element(r.dtype, &r.values[j]);
      }
      out += "\n";
    }
  }
  for (std::size_t i = 0; i < p.code.size(); ++i) {
    const Instruction& inst = p.code[i];
    std::string line = std::string("    ") + opcode_spec(inst.op).mnemonic;
    int count = 0;
    const auto& fields = fields_of(inst.op, &count);
    for (int k = 0; k < count; ++k) {
      Fid f = fields[k];
      if (!field_required(f) && inst.values[k] == field_default(f)) continue;
      line += fmt::format(" {}={}", field_spec(f).name, format_field(f, inst.values[k]));
    }
    if (i < p.notes.size() && !p.notes[i].empty()) line += "  ; " + p.notes[i];
    out += line + "\n";
  }
  return out;
}

Program load_program(const std::string& path) {
  std::error_code ec;
  std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    throw InputError(SourceLocation{path, 0, 0}, "program file", "a regular .tasm or .tbin file",
                     std::filesystem::is_directory(st) ? "a directory" : "a device, pipe or socket");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(SourceLocation{path, 0, 0}, "cannot open program file");
  std::vector<uint8_t> bytes;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.insert(bytes.end(), buf, buf + in.gcount());
    if (bytes.size() > kMaxSourceBytes) {
      throw InputError(SourceLocation{path, 0, 0}, "<file>", "a program of at most 256 MiB",
                       "a larger file");
    }
  }
  Program p;
  bool binary_name = path.size() >= 5 && path.compare(path.size() - 5, 5, ".tbin") == 0;
  if (looks_binary(bytes)) {
    p = decode_program(bytes, path);
  } else if (binary_name) {
    // A .tbin that is not one (truncated to nothing, another format) would otherwise be read
    // as assembly and blamed on a "mnemonic" in binary garbage.
    throw InputError(SourceLocation{path, 0, 0}, "magic (byte 0)", "'TPUB' (a tpusim binary program)",
                     bytes.empty() ? "an empty file" : "other bytes");
  } else {
    p = assemble(std::string(bytes.begin(), bytes.end()), path);
  }
  if (p.code.empty()) {
    throw InputError(SourceLocation{path, 0, 0}, "program", "at least one instruction (end with halt)",
                     "none");
  }
  return p;
}

}  // namespace tpu::isa
