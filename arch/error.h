// Typed errors for bad user input. Every input layer (configs, workloads, programs, command
// line) reports a problem as one InputError naming where it is and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace tpu {

/// Where a bad value was found: file (or "<command line>"), 1-based line and column (0 when
/// unknown) and the dotted key or operand name.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

/// Bad user input. what() is the complete one-line message shown to the user:
/// "FILE:LINE:COL: KEY: expected EXPECTED, found FOUND".
class InputError : public std::runtime_error {
 public:
  InputError(SourceLocation where, std::string key, std::string expected, std::string found);
  /// For errors that are not about one key (e.g. "file not found"): "FILE: MESSAGE".
  InputError(SourceLocation where, std::string message);

  const SourceLocation& where() const { return where_; }
  const std::string& key() const { return key_; }
  const std::string& expected() const { return expected_; }
  const std::string& found() const { return found_; }

 private:
  SourceLocation where_;
  std::string key_;
  std::string expected_;
  std::string found_;
};

/// "FILE:LINE:COL" with the parts that are known.
std::string format_location(const SourceLocation& where);

}  // namespace tpu
