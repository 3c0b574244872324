// Regression table: every program in traces/ runs on its architecture and reproduces the
// output digests and MAC count that scripts/update-golden recorded (and a reviewer checked).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "arch/arch_config.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

TEST(Traces, EveryCaseReproducesItsRecordedDigests) {
  namespace fs = std::filesystem;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(test::source_path("traces"))) {
    if (!entry.is_directory() || !fs::exists(entry.path() / "prog.tasm")) continue;
    SCOPED_TRACE(entry.path().filename().string());
    YAML::Node expected = YAML::LoadFile((entry.path() / "expected.yaml").string());
    ASSERT_TRUE(expected["outputs"]) << "run scripts/update-golden";
    std::vector<std::string> sets;
    if (expected["sets"]) sets = expected["sets"].as<std::vector<std::string>>();
    arch::ArchConfig a = arch::load_arch(test::source_path(expected["arch"].as<std::string>()), sets);
    std::string prog = (entry.path() / "prog.tasm").string();
    Interpreter it(a, load_program(prog), prog);
    it.run();
    EXPECT_EQ(it.stats().macs, expected["macs"].as<uint64_t>());
    for (const auto& out : expected["outputs"]) {
      NpyArray data = it.read_region(out.first.as<std::string>());
      EXPECT_EQ(arch::fnv1a_hex(std::string(data.data.begin(), data.data.end())),
                out.second.as<std::string>())
          << out.first.as<std::string>();
    }
    ++cases;
  }
  EXPECT_GE(cases, 3);
}

}  // namespace
}  // namespace tpu::isa
