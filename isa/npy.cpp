// .npy reader and writer: the header is a Python dict literal, parsed just far enough to
// read descr, fortran_order and shape, with every length checked against the file.
#include "isa/npy.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>

#include "arch/error.h"
#include "isa/program.h"

namespace tpu::isa {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMaxNpyBytes = std::size_t{4} << 30;

[[noreturn]] void bad(const std::string& name, const std::string& key,
                      const std::string& expected, const std::string& found) {
  throw InputError(SourceLocation{name, 0, 0}, key, expected, found);
}

// Value text after 'key': in the header dict, up to the matching end.
std::string dict_value(const std::string& h, const std::string& key, const std::string& name) {
  std::size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) bad(name, "npy header", "a '" + key + "' entry", "none");
  std::size_t colon = h.find(':', k);
  if (colon == std::string::npos) bad(name, "npy header", "'" + key + "': value", "no colon");
  std::size_t b = h.find_first_not_of(' ', colon + 1);
  if (b == std::string::npos) bad(name, "npy header", "a value for " + key, "nothing");
  std::size_t e;
  if (h[b] == '(') {
    e = h.find(')', b);
    if (e == std::string::npos) bad(name, "npy header", "a closed shape tuple", "none");
    return h.substr(b, e - b + 1);
  }
  if (h[b] == '\'' || h[b] == '"') {
    e = h.find(h[b], b + 1);
    if (e == std::string::npos) bad(name, "npy header", "a closed string", "none");
    return h.substr(b + 1, e - b - 1);
  }
  e = h.find_first_of(",}", b);
  if (e == std::string::npos) bad(name, "npy header", "a value for " + key, "no end");
  return h.substr(b, e - b);
}

}  // namespace

const char* npy_descr(ElemType t) {
  static const char* kDescr[] = {"|i1", "<u2", "<i4", "<f4"};
  return kDescr[static_cast<int>(t)];
}

NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0) {
    bad(name, "npy magic", "a NumPy .npy file", "other bytes");
  }
  int major = bytes[6];
  std::size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(name, "npy header", "12 bytes", "fewer");
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8) | (std::size_t{bytes[10]} << 16) |
                 (std::size_t{bytes[11]} << 24);
    header_start = 12;
  } else {
    bad(name, "npy version", "1, 2 or 3", std::to_string(major));
  }
  if (header_len > bytes.size() - header_start) {
    bad(name, "npy header length", "within the file", std::to_string(header_len));
  }
  std::string h(bytes.begin() + header_start, bytes.begin() + header_start + header_len);
  NpyArray a;
  std::string descr = dict_value(h, "descr", name);
  if (descr == "|i1" || descr == "<i1" || descr == "i1") {
    a.dtype = ElemType::kInt8;
  } else if (descr == "<u2") {
    a.dtype = ElemType::kBf16;
  } else if (descr == "<i4") {
    a.dtype = ElemType::kInt32;
  } else if (descr == "<f4") {
    a.dtype = ElemType::kFp32;
  } else {
    bad(name, "npy descr", "|i1 (int8), <u2 (bf16 bits), <i4 (int32) or <f4 (fp32)",
        "'" + descr + "'");
  }
  std::string fortran = dict_value(h, "fortran_order", name);
  if (fortran != "False") bad(name, "npy fortran_order", "False (C order)", "'" + fortran + "'");
  std::string shape = dict_value(h, "shape", name);
  if (shape.size() < 2 || shape.front() != '(') bad(name, "npy shape", "a tuple", shape);
  uint64_t elems = 1;
  std::size_t i = 1;
  while (i < shape.size() - 1) {
    std::size_t j = shape.find_first_of(",)", i);
    std::string part = shape.substr(i, j - i);
    std::size_t b = part.find_first_not_of(' ');
    if (b != std::string::npos) {
      part = part.substr(b, part.find_last_not_of(' ') - b + 1);
      uint64_t d = 0;
      for (char ch : part) {
        if (ch < '0' || ch > '9' || d > kMaxNpyBytes) bad(name, "npy shape", "integers", shape);
        d = d * 10 + static_cast<uint64_t>(ch - '0');
      }
      if (d > kMaxNpyBytes || elems * d > kMaxNpyBytes || a.shape.size() >= kMaxRank) {
        bad(name, "npy shape", "at most 2^32 elements and 8 dimensions", shape);
      }
      elems *= d;
      a.shape.push_back(d);
    }
    i = j + 1;
  }
  std::size_t data_start = header_start + header_len;
  uint64_t nbytes = elems * static_cast<uint64_t>(kElemTypeBytes[static_cast<int>(a.dtype)]);
  if (bytes.size() - data_start != nbytes) {
    bad(name, "npy data", fmt::format("{} bytes for shape {}", nbytes, shape),
        fmt::format("{} bytes", bytes.size() - data_start));
  }
  a.data.assign(bytes.begin() + data_start, bytes.end());
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(SourceLocation{path, 0, 0}, "cannot open .npy file");
  std::vector<uint8_t> bytes;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.insert(bytes.end(), buf, buf + in.gcount());
    if (bytes.size() > kMaxNpyBytes + 4096) bad(path, "<file>", "at most 4 GiB", "more");
  }
  return parse_npy(bytes, path);
}

std::vector<uint8_t> format_npy(const NpyArray& a) {
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i) {
    shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  }
  shape += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   npy_descr(a.dtype), shape);
  // Pad with spaces so that the data starts on a 64-byte boundary, newline-terminated.
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::vector<uint8_t> out(kMagic, kMagic + 6);
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) {
  std::vector<uint8_t> bytes = format_npy(a);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw InputError(SourceLocation{path, 0, 0}, "cannot write .npy file");
}

}  // namespace tpu::isa
