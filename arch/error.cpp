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
std::string full_message(const SourceLocation& where, const std::string& key,
                         const std::string& expected, const std::string& found) {
  return fmt::format("{}: {}: expected {}, found {}", format_location(where), key, expected,
                     found);
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
    : std::runtime_error(fmt::format("{}: {}", format_location(where), message)),
      where_(std::move(where)) {}

}  // namespace tpu
