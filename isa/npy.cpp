// .npy reader and writer: the header is a Python dict literal with the keys descr,
// fortran_order and shape, parsed whole (nothing read around), with every length checked
// against the file.
#include "isa/npy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

#include "arch/error.h"
#include "isa/program.h"

namespace tpu::isa {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMaxNpyBytes = std::size_t{4} << 30;

[[noreturn]] void bad(const std::string& name, const std::string& key,
                      const std::string& expected, const std::string& found) {
  throw InputError(SourceLocation{name, 0, 0}, key, expected, found);
}

}  // namespace

const char* npy_descr(ElemType t) {
  static const char* kDescr[] = {"|i1", "<u2", "<i4", "<f4"};
  return kDescr[static_cast<int>(t)];
}

namespace {

// What the header says: element type, shape, where the data starts and how long it is.
struct NpyHeader {
  NpyArray array;  ///< dtype and shape; data left empty
  std::size_t data_start = 0;
  uint64_t data_bytes = 0;
};

// Header bytes this reader accepts (NumPy itself refuses more than 10000 by default).
constexpr std::size_t kMaxHeaderBytes = 65536;

// A header value echoed in a message: cut to 48 characters, bytes outside printable ASCII
// written as \xNN (a header is ASCII; the message stays one readable line).
std::string clip(const std::string& s) {
  std::string cut = s.size() <= 48 ? s : s.substr(0, 45);
  std::string out;
  for (char ch : cut) {
    auto u = static_cast<unsigned char>(ch);
    out += u >= 0x20 && u < 0x7f ? std::string(1, ch) : fmt::format("\\x{:02x}", u);
  }
  return s.size() <= 48 ? out : out + "...";
}

// Prefix length and header length from the first `avail` bytes (at least 12 or the whole file).
std::pair<std::size_t, std::size_t> header_extent(const uint8_t* bytes, std::size_t avail,
                                                  const std::string& name) {
  if (avail < 10 || std::memcmp(bytes, kMagic, 6) != 0) {
    bad(name, "npy magic", "a NumPy .npy file", "other bytes");
  }
  int major = bytes[6];
  if (major == 1) return {10, bytes[8] | (std::size_t{bytes[9]} << 8)};
  if (major != 2 && major != 3) bad(name, "npy version", "1, 2 or 3", std::to_string(major));
  if (avail < 12) bad(name, "npy header", "12 bytes", fmt::format("{}", avail));
  return {12, bytes[8] | (std::size_t{bytes[9]} << 8) | (std::size_t{bytes[10]} << 16) |
                  (std::size_t{bytes[11]} << 24)};
}

// A header value as written: the text of a string (without quotes), a tuple (with its
// parentheses) or a bare word such as False.
struct DictValue {
  std::string text;
  bool quoted = false;
};

// The header dict: exactly the keys descr, fortran_order and shape, each once and in any
// order, then the padding (spaces and the final newline). A Python dict literal as NumPy
// writes it; anything else is refused rather than read around.
std::map<std::string, DictValue> header_dict(const std::string& h, const std::string& name) {
  static const char* const kKeys[] = {"descr", "fortran_order", "shape"};
  const char* kDict = "a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}";
  std::map<std::string, DictValue> out;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < h.size() && h[i] == ' ') ++i;
  };
  auto at = [&](char ch) { return i < h.size() && h[i] == ch; };
  auto rest = [&] { return clip(h.substr(std::min(i, h.size()))); };
  auto quoted = [&](const std::string& what) {
    if (!at('\'') && !at('"')) bad(name, "npy header", what, rest());
    std::size_t e = h.find(h[i], i + 1);
    if (e == std::string::npos) bad(name, "npy header", "a closed string", rest());
    std::string text = h.substr(i + 1, e - i - 1);
    i = e + 1;
    return text;
  };
  skip();
  if (!at('{')) bad(name, "npy header", kDict, rest());
  ++i;
  while (true) {
    skip();
    if (at('}')) break;
    std::string key = quoted(std::string(kDict) + ": a quoted key or '}'");
    if (std::find_if(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return key == k; }) ==
        std::end(kKeys)) {
      bad(name, "npy header", "the keys 'descr', 'fortran_order' and 'shape'", "'" + clip(key) + "'");
    }
    if (out.count(key)) bad(name, "npy header", "each key once", "'" + key + "' twice");
    skip();
    if (!at(':')) bad(name, "npy header", "':' after '" + key + "'", rest());
    ++i;
    skip();
    DictValue v;
    if (at('\'') || at('"')) {
      v.text = quoted("a value");
      v.quoted = true;
    } else if (at('(')) {
      std::size_t e = h.find(')', i);
      if (e == std::string::npos) bad(name, "npy header", "a closed shape tuple", rest());
      v.text = h.substr(i, e - i + 1);
      i = e + 1;
    } else {
      std::size_t e = std::min(h.find_first_of(" ,}", i), h.size());
      v.text = h.substr(i, e - i);
      i = e;
    }
    out[key] = v;
    skip();
    if (at(',')) {
      ++i;
    } else if (!at('}')) {
      bad(name, "npy header", "',' or '}' after the value of '" + key + "'", rest());
    }
  }
  ++i;  // the '}'
  if (h.find_first_not_of(' ', i) != std::string::npos &&
      (h.find_first_not_of(' ', i) != h.size() - 1 || h.back() != '\n')) {
    bad(name, "npy header", "only spaces and a newline after the dict", rest());
  }
  for (const char* k : kKeys) {
    if (!out.count(k)) bad(name, "npy header", std::string("a '") + k + "' entry", "none");
  }
  return out;
}

NpyHeader parse_header(const std::string& h, std::size_t data_start, const std::string& name) {
  NpyHeader out;
  out.data_start = data_start;
  NpyArray& a = out.array;
  std::map<std::string, DictValue> dict = header_dict(h, name);
  const DictValue& d = dict["descr"];
  std::string descr = d.text;
  if (!d.quoted) {
    bad(name, "npy descr", "a quoted string such as '<f4'", clip(descr));
  } else if (descr == "|i1" || descr == "<i1" || descr == "i1") {
    a.dtype = ElemType::kInt8;
  } else if (descr == "<u2") {
    a.dtype = ElemType::kBf16;
  } else if (descr == "<i4") {
    a.dtype = ElemType::kInt32;
  } else if (descr == "<f4") {
    a.dtype = ElemType::kFp32;
  } else {
    bad(name, "npy descr", "|i1 (int8), <u2 (bf16 bits), <i4 (int32) or <f4 (fp32)",
        "'" + clip(descr) + "'");
  }
  const DictValue& f = dict["fortran_order"];
  if (f.quoted || f.text != "False") {
    bad(name, "npy fortran_order", "False (C order)", f.quoted ? "'" + clip(f.text) + "'" : clip(f.text));
  }
  const DictValue& sh = dict["shape"];
  std::string shape = sh.quoted ? "'" + sh.text + "'" : sh.text;
  // A Python tuple of integers: "()", "(64,)", "(8, 16)" or "(8, 16,)"; one element needs
  // its comma ("(64)" is an int, which NumPy refuses too).
  const char* kTuple = "a tuple of integers such as (64,) or (8, 16)";
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
    bad(name, "npy shape", kTuple, clip(shape));
  }
  std::string body = shape.substr(1, shape.size() - 2);
  auto blank = [](char ch) { return ch == ' '; };
  uint64_t elems = 1;
  bool comma_after_last = false;
  std::size_t i = 0;
  while (true) {
    while (i < body.size() && blank(body[i])) ++i;
    if (i == body.size()) break;
    if (body[i] < '0' || body[i] > '9') bad(name, "npy shape", kTuple, clip(shape));
    // A leading zero: Python (so NumPy's reader) refuses "064"; "00" is refused too, as
    // NumPy never writes it.
    if (body[i] == '0' && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '9') {
      bad(name, "npy shape", kTuple, clip(shape));
    }
    uint64_t d = 0;
    for (; i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i) {
      if (d > kMaxNpyBytes) break;
      d = d * 10 + static_cast<uint64_t>(body[i] - '0');
    }
    if (d > kMaxNpyBytes || (d != 0 && elems > kMaxNpyBytes / d) || a.shape.size() >= kMaxRank) {
      bad(name, "npy shape", "at most 2^32 elements and 8 dimensions", clip(shape));
    }
    elems *= d;
    a.shape.push_back(d);
    while (i < body.size() && blank(body[i])) ++i;
    comma_after_last = i < body.size() && body[i] == ',';
    if (i < body.size() && !comma_after_last) bad(name, "npy shape", kTuple, clip(shape));
    if (comma_after_last) ++i;
  }
  if (a.shape.size() == 1 && !comma_after_last) bad(name, "npy shape", kTuple, clip(shape));
  out.data_bytes = elems * static_cast<uint64_t>(kElemTypeBytes[static_cast<int>(a.dtype)]);
  if (out.data_bytes > kMaxNpyBytes) {
    bad(name, "npy shape", "at most 4 GiB of data", fmt::format("{} bytes for {}", out.data_bytes, clip(shape)));
  }
  return out;
}

[[noreturn]] void bad_size(const std::string& name, const NpyHeader& h, const std::string& found) {
  std::string shape = "(";
  for (std::size_t i = 0; i < h.array.shape.size(); ++i) {
    shape += (i ? ", " : "") + std::to_string(h.array.shape[i]);
  }
  if (h.array.shape.size() == 1) shape += ",";
  shape += ")";
  bad(name, "npy data", fmt::format("{} bytes for shape {}", h.data_bytes, shape), found);
}

}  // namespace

NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name) {
  auto [header_start, header_len] = header_extent(bytes.data(), bytes.size(), name);
  if (header_len > bytes.size() - header_start) {
    bad(name, "npy header length", "within the file", std::to_string(header_len));
  }
  std::string h(bytes.begin() + header_start, bytes.begin() + header_start + header_len);
  NpyHeader header = parse_header(h, header_start + header_len, name);
  if (bytes.size() - header.data_start != header.data_bytes) {
    bad_size(name, header, fmt::format("{} bytes", bytes.size() - header.data_start));
  }
  NpyArray a = std::move(header.array);
  a.data.assign(bytes.begin() + header.data_start, bytes.end());
  return a;
}

namespace {

// A .npy file or pipe, read as its data arrives: opened without blocking (a FIFO with no
// writer yet is waited for like data), and each read waits (poll) at most `idle` for the
// next bytes, so a writer that never comes or stops writing is an error, not a hang. A
// regular file is always ready.
class NpyReader {
 public:
  NpyReader(const std::string& path, std::chrono::milliseconds idle) : path_(path), idle_(idle) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) bad(path, "npy file", "a readable .npy file", "one that cannot be opened");
  }
  ~NpyReader() { ::close(fd_); }
  NpyReader(const NpyReader&) = delete;
  NpyReader& operator=(const NpyReader&) = delete;

  /// Up to n bytes into `to`; fewer only at the end of the data.
  std::size_t read(uint8_t* to, std::size_t n) {
    std::size_t got = 0;
    while (got < n && !eof_) {
      pollfd p{fd_, POLLIN, 0};
      int ready = ::poll(&p, 1, static_cast<int>(idle_.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        bad(path_, "npy file", fmt::format("data from the pipe within {} s of the last", idle_.count() / 1000.0),
            fmt::format("none after {} bytes", total_ + got));
      }
      ssize_t r = ::read(fd_, to + got, n - got);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r < 0) bad(path_, "npy file", "a readable .npy file", "a read error");
      if (r == 0) eof_ = true;
      got += static_cast<std::size_t>(r);
    }
    total_ += got;
    return got;
  }

 private:
  std::string path_;
  std::chrono::milliseconds idle_;
  int fd_ = -1;
  bool eof_ = false;
  uint64_t total_ = 0;
};

}  // namespace

// Reads the header first. A regular file's size is checked against it before any data is
// read, so that a wrong or huge file is refused before its data; a pipe's data is taken as
// it arrives, the buffer growing with it (a short pipe under a large header allocates what
// it sent). Devices and directories are refused before anything is read.
NpyArray read_npy(const std::string& path, std::chrono::milliseconds idle) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) bad(path, "npy file", "an existing .npy file", "no such file");
  bool regular = fs::is_regular_file(st);
  if (!regular && !fs::is_fifo(st)) {
    bad(path, "npy file", "a regular .npy file, a pipe or a FIFO",
        fs::is_directory(st) ? "a directory" : "a device or socket");
  }
  uint64_t size = regular ? fs::file_size(path, ec) : 0;
  if (ec) bad(path, "npy file", "a readable .npy file", "one that cannot be opened");
  NpyReader in(path, idle);
  uint8_t prefix[12] = {};
  std::size_t avail = in.read(prefix, 10);
  if (avail == 10 && prefix[6] != 1) avail += in.read(prefix + 10, 2);  // versions 2 and 3: 4-byte length
  auto [header_start, header_len] = header_extent(prefix, avail, path);
  if (header_len > kMaxHeaderBytes) {
    bad(path, "npy header length", fmt::format("at most {} bytes", kMaxHeaderBytes), std::to_string(header_len));
  }
  std::string h(header_len, '\0');
  if (in.read(reinterpret_cast<uint8_t*>(h.data()), header_len) != header_len) {
    bad(path, "npy header length", "within the file", std::to_string(header_len));
  }
  NpyHeader header = parse_header(h, header_start + header_len, path);
  if (regular && size - header.data_start != header.data_bytes) {
    bad_size(path, header, fmt::format("{} bytes", size - header.data_start));
  }
  std::vector<uint8_t>& data = header.array.data;
  if (regular) data.reserve(static_cast<std::size_t>(header.data_bytes));  // size checked above
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  while (data.size() < header.data_bytes) {
    std::size_t at = data.size();
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kChunk, header.data_bytes - at));
    data.resize(at + n);
    std::size_t got = in.read(data.data() + at, n);
    if (got < n) bad_size(path, header, fmt::format("{} bytes", at + got));
  }
  uint8_t extra = 0;
  if (in.read(&extra, 1) > 0) bad_size(path, header, fmt::format("more than {} bytes", header.data_bytes));
  return std::move(header.array);
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
