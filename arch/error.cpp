// Formatting of InputError messages.
#include "arch/error.h"

#include <fmt/format.h>

namespace tpu {

std::string format_location(const SourceLocation& where) {
  std::string out = where.file.empty() ? std::string("<input>") : where.file;
  if (where.line > 0) {
    out += fmt::format(":{}", where.line);
    if (where.column > 0) out += fmt::format(":{}", where.column);
  }
  return out;
}

namespace {

// A message is one line whatever the user typed: control characters (a newline in a --set
// value, a tab in a file name) are written as \xNN.
std::string one_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += ch;
    }
  }
  return out;
}

std::string full_message(const SourceLocation& where, const std::string& key,
                         const std::string& expected, const std::string& found) {
  return one_line(fmt::format("{}: {}: expected {}, found {}", format_location(where), key,
                              expected, found));
}

}  // namespace

InputError::InputError(SourceLocation where, std::string key, std::string expected,
                       std::string found)
    : std::runtime_error(full_message(where, key, expected, found)),
      where_(std::move(where)),
      key_(std::move(key)),
      expected_(std::move(expected)),
      found_(std::move(found)) {}

InputError::InputError(SourceLocation where, std::string message)
    : std::runtime_error(one_line(fmt::format("{}: {}", format_location(where), message))),
      where_(std::move(where)) {}

}  // namespace tpu
