// Architecture configs: presets against published peaks, round trips, overrides and every
// class of bad input with its diagnostic.
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/format.h>

#include "arch/arch_config.h"
#include "test_util.h"

namespace tpu::arch {
namespace {

using test::expect_input_error;
using test::source_path;

const char* kPresets[] = {"tpu_v1", "tpu_v2", "tpu_v3", "tpu_v4", "tpu_v5e", "edgetpu", "edgetpu_pcie"};

std::string preset(const std::string& name) { return source_path("configs/arch/" + name + ".yaml"); }

const char* kMinimal = R"(name: tiny
clock_mhz: 1000
mxu:
  rows: 8
  cols: 8
unified_buffer:
  bytes: 65536
  port_bytes_per_cycle: 32
accumulators:
  entries: 64
vector_unit:
  lanes: 8
memory:
  bytes: 1MiB
  bandwidth_gbps: 10
host_link:
  bandwidth_gbps: 1
)";

TEST(ArchPresets, DerivedPeakMatchesPublishedFigure) {
  for (const char* name : kPresets) {
    SCOPED_TRACE(name);
    ArchConfig c = load_arch(preset(name));
    EXPECT_EQ(c.name, name);
    bool any = false;
    // Published peaks are integers in TOPS/TFLOPS: the derived figure must round to it.
    if (c.published.peak_tops_int8 > 0) {
      EXPECT_NEAR(c.derived.peak_tops_int8, c.published.peak_tops_int8, 0.5);
      any = true;
    }
    if (c.published.peak_tflops_bf16 > 0) {
      EXPECT_NEAR(c.derived.peak_tflops_bf16, c.published.peak_tflops_bf16, 0.5);
      any = true;
    }
    EXPECT_TRUE(any) << "every preset carries a published peak";
  }
}

TEST(ArchPresets, TpuV1DerivedFiguresFollowFromThePaper) {
  ArchConfig c = load_arch(preset("tpu_v1"));
  EXPECT_EQ(c.derived.peak_macs_per_cycle_int8, 256 * 256);
  EXPECT_EQ(c.derived.peak_macs_per_cycle_bf16, 0);
  EXPECT_EQ(c.derived.accumulator_bytes, 4 << 20);  // 4096 x 256 x 4 bytes = 4 MiB
  EXPECT_EQ(c.derived.weight_tile_shift_cycles, 256);
  EXPECT_EQ(c.unified_buffer.bytes, 24 << 20);
  EXPECT_NEAR(c.derived.memory_bytes_per_cycle, 34e9 / 700e6, 1e-9);
}

TEST(ArchConfig, ResolvedDumpLoadsBackIdentical) {
  for (const char* name : kPresets) {
    SCOPED_TRACE(name);
    ArchConfig c = load_arch(preset(name));
    std::string text = dump_arch(c) + dump_derived(c);
    ArchConfig back = load_arch_string(text, "dump.yaml");
    EXPECT_TRUE(back == c);
    EXPECT_EQ(back.fingerprint, c.fingerprint);
    EXPECT_EQ(dump_arch(back), dump_arch(c));
  }
}

TEST(ArchConfig, DumpListsEveryFieldWithDefaults) {
  ArchConfig c = load_arch_string(kMinimal, "m.yaml");
  std::string text = dump_arch(c);
  for (const auto& f : arch_schema().fields()) {
    std::string leaf = f.key.substr(f.key.rfind('.') + 1);
    EXPECT_NE(text.find(leaf + ": "), std::string::npos) << f.key;
  }
  EXPECT_EQ(c.mxu.weight_fifo_depth, 4);  // default applied
  EXPECT_EQ(c.memory.bytes, 1 << 20);     // size suffix
}

TEST(ArchConfig, FingerprintIgnoresFormattingButNotValues) {
  ArchConfig a = load_arch_string(kMinimal, "a.yaml");
  std::string reordered = std::string("# a comment\n") + kMinimal;
  ArchConfig b = load_arch_string(reordered, "b.yaml");
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  for (const auto& f : arch_schema().fields()) {
    if (f.type != FieldType::kInt) continue;
    // Change each integer field by one within its range; the fingerprint must move.
    int64_t v = std::stoll(f.get(a));
    std::string set = f.key + "=" + std::to_string(v + 1);
    try {
      ArchConfig c = load_arch_string(kMinimal, "c.yaml", {set});
      EXPECT_NE(c.fingerprint, a.fingerprint) << set;
    } catch (const InputError&) {
      // v + 1 out of range or inconsistent: that field is covered by the range tests.
    }
  }
}

TEST(ArchConfig, SetOverridesAreAppliedAndValidated) {
  ArchConfig c = load_arch(preset("tpu_v4"), {"mxu.rows=256", "mxu.cols=256", "cores=1"});
  EXPECT_EQ(c.derived.peak_macs_per_cycle_bf16, 4 * 256 * 256);
  EXPECT_NE(c.fingerprint, load_arch(preset("tpu_v4")).fingerprint);

  InputError e = expect_input_error([] { load_arch(preset("tpu_v4"), {"mxu.rowz=3"}); });
  EXPECT_EQ(e.where().file, "<command line>");
  EXPECT_NE(std::string(e.what()).find("did you mean 'mxu.rows'"), std::string::npos) << e.what();

  e = expect_input_error([] { load_arch(preset("tpu_v4"), {"mxu.rows=0"}); });
  EXPECT_EQ(e.key(), "--set mxu.rows");  // the option that gave the value
  EXPECT_EQ(e.found(), "'0'");
  EXPECT_NE(e.expected().find("[1, 4096]"), std::string::npos);

  e = expect_input_error([] { load_arch(preset("tpu_v4"), {"no_equals_sign"}); });
  EXPECT_EQ(e.key(), "--set");
}

struct BadCase {
  const char* what;
  std::string yaml;
  const char* key;
  int line;              // 0: not checked
  const char* expected;  // substring of the expected part
  const char* found;     // substring of the found part
};

std::string replace(std::string text, const std::string& from, const std::string& to) {
  std::size_t p = text.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return text.replace(p, from.size(), to);
}

TEST(ArchConfig, BadInputsNameFileLineKeyExpectedAndFound) {
  std::string m = kMinimal;
  std::vector<BadCase> cases = {
      {"unknown key", replace(m, "  rows: 8", "  rowz: 8"), "mxu.rowz", 4, "did you mean", "unknown"},
      {"unknown section", m + "mxus:\n  rows: 3\n", "mxus", 18, "known key", "unknown"},
      {"wrong type", replace(m, "rows: 8", "rows: eight"), "mxu.rows", 4, "integer", "'eight'"},
      {"float for int", replace(m, "rows: 8", "rows: 8.5"), "mxu.rows", 4, "integer", "'8.5'"},
      {"out of range", replace(m, "rows: 8", "rows: 5000"), "mxu.rows", 4, "[1, 4096]", "5000"},
      {"negative", replace(m, "entries: 64", "entries: -1"), "accumulators.entries", 10, "[2,",
       "-1"},
      {"bad enum", replace(m, "rows: 8", "rows: 8\n  dataflow: diagonal"), "mxu.dataflow", 5,
       "weight_stationary", "diagonal"},
      {"bad bool", replace(m, "rows: 8", "rows: 8\n  weight_double_buffer: yes"),
       "mxu.weight_double_buffer", 5, "true or false", "'yes'"},
      {"dtype list repeats", replace(m, "rows: 8", "rows: 8\n  dtypes: [int8, int8]"),
       "mxu.dtypes", 5, "distinct", "int8"},
      {"scalar for section", replace(m, "mxu:\n  rows: 8\n  cols: 8\n", "mxu: 3\n"), "mxu", 3,
       "mapping", "'3'"},
      {"missing required", replace(m, "clock_mhz: 1000\n", ""), "clock_mhz", 0, "a value",
       "missing"},
      {"duplicate key", replace(m, "  cols: 8", "  cols: 8\n  cols: 9"), "mxu.cols", 0, "", ""},
      {"banks do not divide", replace(m, "bytes: 65536", "bytes: 65537\n  banks: 2"),
       "unified_buffer.bytes", 7, "multiple of unified_buffer.banks", "65537"},
      {"weight bus wider than array", replace(m, "rows: 8", "rows: 8\n  weight_load_rows_per_cycle: 9"),
       "mxu.weight_load_rows_per_cycle", 5, "at most mxu.rows", "9"},
      {"memory none with bytes", replace(m, "memory:\n", "memory:\n  kind: none\n"),
       "memory.bytes", 0, "0 when memory.kind is none", ""},
      {"not a mapping", "- 1\n- 2\n", "<document>", 1, "mapping", "a list"},
      {"nan bandwidth", replace(m, "bandwidth_gbps: 10", "bandwidth_gbps: .nan"),
       "memory.bandwidth_gbps", 0, "a number", "nan"},
      {"parameter cache larger than the memory",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  parameter_cache_bytes: 2MiB"),
       "memory.parameter_cache_bytes", 15, "at most memory.bytes (1048576)", "2097152"},
      {"negative parameter cache",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  parameter_cache_bytes: -1"),
       "memory.parameter_cache_bytes", 15, "[0,", "-1"},
      {"parameter cache not a size",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  parameter_cache_bytes: 7.8MiB"),
       "memory.parameter_cache_bytes", 15, "integer", "'7.8MiB'"},
      {"parameter cache without memory",
       replace(m, "memory:\n  bytes: 1MiB", "memory:\n  kind: none\n  bytes: 0\n  parameter_cache_bytes: 1"),
       "memory.parameter_cache_bytes", 16, "at most memory.bytes (0)", "1"},
      {"refresh time without an interval",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  refresh_ns: 260"),
       "memory.refresh_ns", 15, "0 when memory.refresh_interval_ns is 0", "260"},
      {"refresh over half its interval",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  refresh_interval_ns: 100\n  refresh_ns: 50.5"),
       "memory.refresh_ns", 16, "at most half of memory.refresh_interval_ns (100)", "50.5"},
      {"negative refresh interval",
       replace(m, "  bytes: 1MiB", "  bytes: 1MiB\n  refresh_interval_ns: -7800"),
       "memory.refresh_interval_ns", 15, "[0,", "-7800"},
      {"refresh on SRAM",
       replace(m, "memory:\n  bytes: 1MiB", "memory:\n  kind: sram\n  bytes: 1MiB\n  refresh_interval_ns: 7800"),
       "memory.refresh_interval_ns", 16, "0 for memory.kind none or sram", "7800"},
      {"carries_io not a bool", replace(m, "  bandwidth_gbps: 1\n", "  bandwidth_gbps: 1\n  carries_io: usb\n"),
       "host_link.carries_io", 18, "true or false", "'usb'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    InputError e = expect_input_error([&] { load_arch_string(c.yaml, "bad.yaml"); });
    EXPECT_EQ(e.where().file, "bad.yaml") << e.what();
    EXPECT_EQ(e.key(), c.key) << e.what();
    if (c.line) {
      EXPECT_EQ(e.where().line, c.line) << e.what();
    }
    EXPECT_NE(e.expected().find(c.expected), std::string::npos) << e.what();
    EXPECT_NE(e.found().find(c.found), std::string::npos) << e.what();
  }
}

TEST(ArchConfig, SyntaxErrorsAndHostileYamlAreInputErrors) {
  InputError e = expect_input_error([] { load_arch_string("mxu: [1, 2\n", "s.yaml"); });
  EXPECT_NE(std::string(e.what()).find("YAML syntax error"), std::string::npos) << e.what();
  EXPECT_GT(e.where().line, 0);

  // Exponential alias expansion must be refused, not walked.
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 0; i < 9; ++i) {
    laughs += fmt::format("{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                          std::string(1, static_cast<char>('b' + i)),
                          std::string(1, static_cast<char>('b' + i)),
                          fmt::arg("p", std::string(1, static_cast<char>('a' + i))));
  }
  expect_input_error([&] { load_arch_string(laughs, "l.yaml"); });
  expect_input_error([] { load_arch_string(std::string(5000, '['), "deep.yaml"); });
  expect_input_error([] { load_arch("/nonexistent/arch.yaml"); });
}

TEST(ArchConfig, DocsListEveryKeyOfTheSchema) {
  std::string doc = test::read_text(source_path("docs/config.md"));
  std::string generated = arch_schema().markdown();
  EXPECT_NE(doc.find(generated), std::string::npos)
      << "docs/config.md is out of date: regenerate with `tpusim config --schema-markdown`";
}

}  // namespace
}  // namespace tpu::arch
