// .npy reading and writing: round trips for every element type and rejection of files
// NumPy would describe differently or that lie about their size.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "isa/npy.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

TEST(Npy, RoundTripsEveryElementTypeAndRank) {
  for (int t = 0; t < kElemTypeCount; ++t) {
    for (const auto& shape : std::vector<std::vector<uint64_t>>{{7}, {3, 5}, {2, 3, 4}, {}}) {
      NpyArray a;
      a.dtype = static_cast<ElemType>(t);
      a.shape = shape;
      uint64_t n = 1;
      for (auto d : shape) n *= d;
      for (uint64_t i = 0; i < n * kElemTypeBytes[t]; ++i) a.data.push_back(static_cast<uint8_t>(i * 37));
      std::vector<uint8_t> bytes = format_npy(a);
      EXPECT_EQ((bytes.size() - a.data.size()) % 64, 0u) << "header padded to 64 bytes";
      NpyArray b = parse_npy(bytes, "a.npy");
      EXPECT_EQ(b.dtype, a.dtype);
      EXPECT_EQ(b.shape, a.shape);
      EXPECT_EQ(b.data, a.data);
    }
  }
}

std::vector<uint8_t> with_header(const std::string& header, std::size_t data_bytes) {
  std::string text = std::string("\x93NUMPY\x01\x00", 8) +
                     static_cast<char>(header.size()) + '\0' + header +
                     std::string(data_bytes, '\0');
  return std::vector<uint8_t>(text.begin(), text.end());
}

TEST(Npy, RejectsUnsupportedOrInconsistentFiles) {
  auto key_of = [](const std::vector<uint8_t>& b) {
    return test::expect_input_error([&] { parse_npy(b, "x.npy"); }).key();
  };
  EXPECT_EQ(key_of({1, 2, 3}), "npy magic");
  EXPECT_EQ(key_of(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16)),
            "npy descr");
  EXPECT_EQ(key_of(with_header("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", 8)),
            "npy descr");
  EXPECT_EQ(key_of(with_header("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }", 8)),
            "npy fortran_order");
  EXPECT_EQ(key_of(with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 7)),
            "npy data");
  EXPECT_EQ(key_of(with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999,), }", 0)),
            "npy shape");
  EXPECT_EQ(key_of(with_header("{'descr': '<i4', 'fortran_order': False, 'shape': 5, }", 0)),
            "npy shape");
  std::vector<uint8_t> truncated = with_header("{'descr': '<i4'}", 0);
  truncated[8] = 200;
  EXPECT_EQ(key_of(truncated), "npy header length");
}

// The shape is a Python tuple of integers, as NumPy writes it; anything else is refused with
// the text found, non-ASCII header bytes shown as \xNN.
TEST(Npy, ShapesAreTuplesOfIntegers) {
  auto parse_shape = [](const std::string& shape, std::size_t data_bytes) {
    return parse_npy(with_header("{'descr': '|i1', 'fortran_order': False, 'shape': " + shape + ", }",
                                 data_bytes),
                     "x.npy")
        .shape;
  };
  EXPECT_EQ(parse_shape("()", 1), std::vector<uint64_t>{});
  EXPECT_EQ(parse_shape("(64,)", 64), std::vector<uint64_t>{64});
  EXPECT_EQ(parse_shape("(8, 16)", 128), (std::vector<uint64_t>{8, 16}));
  EXPECT_EQ(parse_shape("( 8 ,16, )", 128), (std::vector<uint64_t>{8, 16}));
  EXPECT_EQ(parse_shape("(2, 0, 3)", 0), (std::vector<uint64_t>{2, 0, 3}));
  // 2^32 x 2^32 elements is 2^64, which wraps to 0 in 64 bits: refused, not read as empty.
  InputError wrap = test::expect_input_error([&] { parse_shape("(4294967296, 4294967296)", 0); });
  EXPECT_EQ(wrap.expected(), "at most 2^32 elements and 8 dimensions");
  for (const char* shape : {"(64,, 2)", "(,64)", "(64)", "(6a,)", "(,)", "(8 16)", "[64]", "(-1,)",
                            "(064,)", "(00,)", "'(64,)'"}) {
    InputError e = test::expect_input_error([&] { parse_shape(shape, 128); });
    EXPECT_EQ(e.key(), "npy shape") << shape;
    EXPECT_EQ(e.expected(), "a tuple of integers such as (64,) or (8, 16)") << shape;
    EXPECT_EQ(e.found(), shape);
  }
  InputError e = test::expect_input_error([&] {
    parse_npy(with_header("{'descr': '\xe9\x01', 'fortran_order': False, 'shape': (2,), }", 2), "x.npy");
  });
  EXPECT_EQ(e.found(), "'\\xe9\\x01'");
}

// The header is the whole dict and nothing else: every key once, no others, no text after a
// value or after the dict, values of the right kind; a key's name inside another value is
// not taken for the key.
TEST(Npy, TheHeaderIsExactlyTheDict) {
  auto error_of = [](const std::string& header) {
    InputError e = test::expect_input_error([&] { parse_npy(with_header(header, 2), "x.npy"); });
    return e.key() + ": expected " + e.expected() + ", found " + e.found();
  };
  // Accepted: any order, double quotes, no trailing comma, padding with a final newline.
  for (const char* ok : {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }",
                         "{'shape': (2,), \"descr\": \"|i1\", 'fortran_order': False}   \n",
                         "  {'fortran_order':False,'shape':(2,),'descr':'|i1'}\n"}) {
    NpyArray a = parse_npy(with_header(ok, 2), "x.npy");
    EXPECT_EQ(a.shape, std::vector<uint64_t>{2}) << ok;
  }
  struct Case {
    const char* header;
    const char* error;
  } cases[] = {
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), 'shape': (3,), }",
       "npy header: expected each key once, found 'shape' twice"},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), 'extra': 1, }",
       "npy header: expected the keys 'descr', 'fortran_order' and 'shape', found 'extra'"},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,) junk, }",
       "npy header: expected ',' or '}' after the value of 'shape', found junk, }"},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), } junk",
       "npy header: expected only spaces and a newline after the dict, found  junk"},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }\n\n",
       "npy header: expected only spaces and a newline after the dict, found \\x0a\\x0a"},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (2,), ",
       "npy header: expected a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}: a quoted key or '}', found "},
      {"{'descr': '|i1', 'fortran_order': False}", "npy header: expected a 'shape' entry, found none"},
      // 'shape' inside the descr string is not the shape key.
      {"{'descr': 'shape', 'fortran_order': False}", "npy header: expected a 'shape' entry, found none"},
      {"{descr: '|i1'}", "npy header: expected a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}: a "
                         "quoted key or '}', found descr: '|i1'}"},
      {"['descr', '|i1']", "npy header: expected a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}, "
                           "found ['descr', '|i1']"},
      {"{'descr' '|i1'}", "npy header: expected ':' after 'descr', found '|i1'}"},
      {"{'descr': |i1, 'fortran_order': False, 'shape': (2,)}",
       "npy descr: expected a quoted string such as '<f4', found |i1"},
      {"{'descr': '|i1', 'fortran_order': 'False', 'shape': (2,)}",
       "npy fortran_order: expected False (C order), found 'False'"},
  };
  for (const Case& c : cases) EXPECT_EQ(error_of(c.header), c.error) << c.header;
}

// A FIFO read as its data arrives: whole, short, long, empty, never opened by a writer, or a
// writer that stalls under a header promising 2 GiB (an error after `idle`, having allocated
// only what arrived).
TEST(Npy, PipesAreReadAsTheirDataArrives) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "tpusim_npy_pipes";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string fifo = (dir / "in.npy").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::signal(SIGPIPE, SIG_IGN);  // a writer outliving a refused read gets EPIPE, not a signal
  NpyArray a;
  a.dtype = ElemType::kInt32;
  a.shape = {3, 5};
  for (int i = 0; i < 60; ++i) a.data.push_back(static_cast<uint8_t>(i * 7));
  std::vector<uint8_t> whole = format_npy(a);
  // Writes `bytes` in three pieces, pausing between them, holds the pipe `hold` more, closes.
  auto writer = [&](std::vector<uint8_t> bytes, std::chrono::milliseconds hold) {
    return std::thread([&fifo, bytes, hold] {
      int fd = ::open(fifo.c_str(), O_WRONLY);
      if (fd < 0) return;
      std::size_t third = bytes.size() / 3;
      for (std::size_t at = 0; at < bytes.size(); at += third) {
        std::size_t n = std::min(third, bytes.size() - at);
        if (::write(fd, bytes.data() + at, n) != static_cast<ssize_t>(n)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::this_thread::sleep_for(hold);
      ::close(fd);
    });
  };
  using std::chrono::milliseconds;
  std::thread w = writer(whole, milliseconds(0));
  NpyArray b = read_npy(fifo, milliseconds(5000));
  w.join();
  EXPECT_EQ(b.dtype, a.dtype);
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.data, a.data);
  auto error_of = [&](std::vector<uint8_t> bytes, milliseconds hold, milliseconds idle) {
    std::thread t = writer(std::move(bytes), hold);
    InputError e = test::expect_input_error([&] { read_npy(fifo, idle); });
    t.join();
    return e.key() + ": expected " + e.expected() + ", found " + e.found();
  };
  std::vector<uint8_t> shorter(whole.begin(), whole.end() - 4), longer = whole;
  longer.push_back(0);
  EXPECT_EQ(error_of(shorter, milliseconds(0), milliseconds(5000)),
            "npy data: expected 60 bytes for shape (3, 5), found 56 bytes");
  EXPECT_EQ(error_of(longer, milliseconds(0), milliseconds(5000)),
            "npy data: expected 60 bytes for shape (3, 5), found more than 60 bytes");
  EXPECT_EQ(error_of({}, milliseconds(0), milliseconds(5000)),
            "npy magic: expected a NumPy .npy file, found other bytes");
  // No writer at all: waited for, then refused.
  InputError none = test::expect_input_error([&] { read_npy(fifo, milliseconds(200)); });
  EXPECT_EQ(none.found(), "none after 0 bytes");
  EXPECT_EQ(none.expected(), "data from the pipe within 0.2 s of the last");
  // A header promising 2 GiB, 10 bytes of data, then silence.
  NpyArray big;
  big.dtype = ElemType::kInt8;
  big.shape = {uint64_t{1} << 31};
  std::vector<uint8_t> head = format_npy(big);
  head.resize(head.size() + 10, 1);
  std::size_t header_bytes = head.size() - 10;
  EXPECT_EQ(error_of(head, milliseconds(1500), milliseconds(300)),
            fmt::format("npy file: expected data from the pipe within 0.3 s of the last, found none after {} bytes",
                        header_bytes + 10));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tpu::isa
