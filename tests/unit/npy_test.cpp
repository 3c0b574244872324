// .npy reading and writing: round trips for every element type and rejection of files
// NumPy would describe differently or that lie about their size.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
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
  for (const char* shape : {"(64,, 2)", "(,64)", "(64)", "(6a,)", "(,)", "(8 16)", "[64]", "(-1,)"}) {
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

// A pipe (process substitution: --input x=<(python3 make.py)) is read like a file: the
// header first, then exactly the data it announces; a short or long stream is refused.
TEST(Npy, PipesAreReadUpToTheDataTheHeaderAnnounces) {
  NpyArray a;
  a.dtype = ElemType::kInt32;
  a.shape = {3, 5};
  for (int i = 0; i < 60; ++i) a.data.push_back(static_cast<uint8_t>(i * 11));
  const std::vector<uint8_t> bytes = format_npy(a);
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("npy_pipe_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string fifo = (dir / "in.npy").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Writes `n` bytes of the file (then filler) into the pipe and closes it. n stays below the
  // pipe buffer (64 KiB), so the writer never blocks nor meets a reader that has gone.
  auto read_with_writer = [&](std::size_t n) {
    std::thread writer([&] {
      std::ofstream out(fifo, std::ios::binary);
      for (std::size_t i = 0; i < n && out; ++i) {
        out.put(static_cast<char>(i < bytes.size() ? bytes[i] : 7));
      }
    });
    struct Join {
      std::thread& t;
      ~Join() { t.join(); }
    } join{writer};
    return read_npy(fifo);
  };
  NpyArray b = read_with_writer(bytes.size());
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.data, a.data);
  InputError shorter = test::expect_input_error([&] { read_with_writer(bytes.size() - 1); });
  EXPECT_EQ(shorter.key(), "npy data");
  EXPECT_EQ(shorter.found(), "59 bytes");
  InputError longer = test::expect_input_error([&] { read_with_writer(bytes.size() + 4096); });
  EXPECT_EQ(longer.key(), "npy data");
  EXPECT_EQ(longer.found(), "more bytes");
  InputError header = test::expect_input_error([&] { read_with_writer(40); });
  EXPECT_EQ(header.key(), "npy header length");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tpu::isa
