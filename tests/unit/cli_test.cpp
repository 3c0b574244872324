// The tpusim command: exit codes and the one-line diagnostics for bad command lines,
// configs and programs, and the asm/disasm/exec paths end to end.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "arch/schema.h"
#include "isa/npy.h"
#include "test_util.h"

namespace tpu {
namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result run(const std::string& args) {
  std::string cmd = std::string(TPUSIM_BIN) + " " + args + " 2>&1";
  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string src(const std::string& rel) { return test::source_path(rel); }

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tpusim_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    FILE* f = fopen(path(name).c_str(), "wb");
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  }
  std::filesystem::path dir_;
};

TEST_F(Cli, ConfigPrintsAResolvedDumpThatLoadsBack) {
  Result r = run("config --arch " + src("configs/arch/tpu_v1.yaml"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("peak_tops_int8: 91.750"), std::string::npos) << r.out;
  write("resolved.yaml", r.out);
  Result again = run("config --arch " + path("resolved.yaml"));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(again.out, r.out);
}

TEST_F(Cli, BadInputsExitWithCode2AndOneMessage) {
  write("bad.yaml", "name: x\nclock_mhz: fast\n");
  write("bad.tasm", "nop\nfrobnicate\n");
  struct Case {
    std::string args;
    std::string message;
  } cases[] = {
      {"config --arch " + path("bad.yaml"), "bad.yaml:2:1: clock_mhz: expected a number"},
      {"config --arch " + src("configs/arch/tpu_v1.yaml") + " --set mxu.cols=0",
       "<command line>: mxu.cols: expected an integer in [1, 4096]"},
      {"config --arch /no/such/file.yaml", "--arch"},
      {"frobnicate", "<command line>"},
      {"exec --arch " + src("configs/arch/tpu_v1.yaml") + " " + path("bad.tasm") +
           " --functional-only",
       "bad.tasm:2:1: mnemonic: expected one of"},
      {"exec --arch " + src("configs/arch/tpu_v1.yaml") + " " +
           src("traces/example_matmul/prog.tasm") + " --functional-only",
       "dtype: expected a type tpu_v1 supports, found bf16"},
      {"exec --arch " + src("configs/arch/tpu_v4.yaml") + " " +
           src("traces/example_matmul/prog.tasm") + " --functional-only --input nope=x.npy",
       "x.npy: cannot open"},
      {"disasm " + path("bad.tasm") + " -o " + path("x.tasm") + " --bogus", "--bogus"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    Result r = run(c.args);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
    // One message: a single line, no usage dump, no stack trace.
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

TEST_F(Cli, AsmDisasmAndExecAgreeOnTheBundledExample) {
  std::string prog = src("traces/example_matmul/prog.tasm");
  std::string arch = src("configs/arch/tpu_v4.yaml");
  Result a = run("asm " + prog + " --arch " + arch + " -o " + path("p.tbin"));
  ASSERT_EQ(a.code, 0) << a.out;
  Result d = run("disasm " + path("p.tbin") + " -o " + path("p.tasm"));
  ASSERT_EQ(d.code, 0) << d.out;
  Result a2 = run("asm " + path("p.tasm") + " -o " + path("p2.tbin"));
  ASSERT_EQ(a2.code, 0) << a2.out;
  EXPECT_EQ(test::read_text(path("p.tbin")), test::read_text(path("p2.tbin")));

  // The binary is bound to tpu_v4: running it elsewhere is refused.
  Result other = run("exec --arch " + src("configs/arch/tpu_v5e.yaml") + " " + path("p.tbin") +
                     " --functional-only --out " + path("r0"));
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.out.find("compiled for another architecture"), std::string::npos) << other.out;

  Result e1 = run("exec --arch " + arch + " " + prog + " --functional-only --out " + path("r1"));
  Result e2 = run("exec --arch " + arch + " " + path("p.tbin") + " --functional-only --out " +
                  path("r2"));
  ASSERT_EQ(e1.code, 0) << e1.out;
  ASSERT_EQ(e2.code, 0) << e2.out;
  EXPECT_EQ(test::read_text(path("r1/y.npy")), test::read_text(path("r2/y.npy")));
  isa::NpyArray y = isa::read_npy(path("r1/y.npy"));
  EXPECT_EQ(y.dtype, isa::ElemType::kBf16);
  EXPECT_TRUE(std::filesystem::exists(path("r1/config.resolved.yaml")));
}

TEST_F(Cli, TimedExecWritesTheRunDirectoryAndMatchesTheTraceTable) {
  std::string arch = src("configs/arch/tpu_v4.yaml");
  std::string prog = src("traces/example_matmul/prog.tasm");
  Result r = run("exec --arch " + arch + " " + prog + " --trace --vcd --out " + path("run"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("utilization"), std::string::npos) << r.out;
  nlohmann::json report = nlohmann::json::parse(test::read_text(path("run/report.json")));
  YAML::Node expected = YAML::LoadFile(src("traces/example_matmul/expected.yaml"));
  EXPECT_EQ(report["schema_version"], 1);
  EXPECT_EQ(report["total_cycles"].get<int64_t>(), expected["cycles"].as<int64_t>());
  EXPECT_EQ(report["macs"].get<int64_t>(), expected["macs"].as<int64_t>());
  EXPECT_TRUE(report["completed"].get<bool>());
  EXPECT_NO_THROW(nlohmann::json::parse(test::read_text(path("run/timeline.json"))));
  EXPECT_NE(test::read_text(path("run/waves.vcd")).find("$enddefinitions"), std::string::npos);
  // The output equals the golden interpreter's (its digest is in the trace table).
  isa::NpyArray y = isa::read_npy(path("run/y.npy"));
  EXPECT_EQ(arch::fnv1a_hex(std::string(y.data.begin(), y.data.end())),
            expected["outputs"]["y"].as<std::string>());

  // Timing only: the same cycles, and no data written.
  Result t = run("exec --arch " + arch + " " + prog + " --no-functional --out " + path("t"));
  ASSERT_EQ(t.code, 0) << t.out;
  nlohmann::json timing = nlohmann::json::parse(test::read_text(path("t/report.json")));
  EXPECT_EQ(timing["total_cycles"], report["total_cycles"]);
  EXPECT_FALSE(std::filesystem::exists(path("t/y.npy")));
}

TEST_F(Cli, ProgramsRunOnePerCore) {
  std::string arch = src("configs/arch/tpu_v4.yaml");  // 2 cores
  std::string prog = src("traces/example_matmul/prog.tasm");
  write("moved.tasm", [&] {
    // The same program with its tensors 16 MiB higher, so the two cores use disjoint memory.
    std::string text = test::read_text(prog);
    for (const char* from : {"addr=0x00000", "addr=0x10000", "addr=0x20000", "addr=0x30000"}) {
      std::string f(from), to = "addr=0x10" + f.substr(7);
      text.replace(text.find(f), f.size(), to);
    }
    return text;
  }());
  Result r = run("exec --arch " + arch + " " + prog + " " + path("moved.tasm") + " --out " + path("two"));
  ASSERT_EQ(r.code, 0) << r.out;
  // Same inputs (same seeds) on both cores: the same outputs, equal to the golden digest.
  YAML::Node expected = YAML::LoadFile(src("traces/example_matmul/expected.yaml"));
  for (const char* f : {"two/core0.y.npy", "two/core1.y.npy"}) {
    isa::NpyArray y = isa::read_npy(path(f));
    EXPECT_EQ(arch::fnv1a_hex(std::string(y.data.begin(), y.data.end())),
              expected["outputs"]["y"].as<std::string>())
        << f;
  }
  Result three = run("exec --arch " + arch + " " + prog + " " + prog + " " + prog);
  EXPECT_EQ(three.code, 2) << three.out;
  EXPECT_NE(three.out.find("at most one program per core"), std::string::npos) << three.out;
}

TEST_F(Cli, WatchdogStopsAStuckRunWithExitCode1AndNamesTheUnits) {
  Result r = run("exec --arch " + src("configs/arch/tpu_v4.yaml") + " " +
                 src("traces/example_matmul/prog.tasm") +
                 " --test-hang-unit chip.core0.mxu0 --out " + path("w"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("watchdog"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chip.core0.mxu0: waiting for"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chip.core0.seq: waiting for"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tpu
