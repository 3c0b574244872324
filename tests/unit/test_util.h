// Helpers shared by the unit tests: paths into the source tree and expecting InputErrors.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "arch/error.h"

namespace tpu::test {

inline std::string source_path(const std::string& rel) {
  return std::string(TPU_SOURCE_DIR) + "/" + rel;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs f, expects an InputError, and returns it for further checks.
template <class F>
InputError expect_input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "expected an InputError";
  return InputError(SourceLocation{}, "none");
}

}  // namespace tpu::test
