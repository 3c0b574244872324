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

}  // namespace
}  // namespace tpu::isa
