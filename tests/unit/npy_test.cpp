// .npy reading and writing: round trips for every element type and rejection of files
// NumPy would describe differently or that lie about their size.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tpu::isa
