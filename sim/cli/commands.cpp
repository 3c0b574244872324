// Implementations of the tpusim subcommands.
#include "sim/cli/commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "arch/pod_config.h"
#include "isa/assembler.h"
#include "isa/encoding.h"
#include "isa/interpreter.h"
#include "isa/isa_doc.h"
#include "isa/verifier.h"
#include "sim/chip/chip.h"
#include "sim/chip/report.h"

namespace tpu::cli {

namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw InputError(SourceLocation{path, 0, 0}, "cannot write file");
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw InputError(SourceLocation{path, 0, 0}, "cannot write file");
}

std::string digest(const std::vector<uint8_t>& data) {
  return arch::fnv1a_hex(std::string(data.begin(), data.end()));
}

}  // namespace

int run_config(const ConfigOptions& o) {
  if (o.schema_markdown) {
    std::cout << "## Architecture (`--arch`)\n\n" << arch::arch_schema().markdown()
              << "\n## Pod (`--pod`)\n\n" << arch::pod_schema().markdown();
    return 0;
  }
  if (o.arch.empty() && o.pod.empty()) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "config",
                     "--arch FILE and/or --pod FILE (or --schema-markdown)", "neither");
  }
  if (!o.arch.empty()) {
    arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
    std::cout << arch::dump_arch(a) << arch::dump_derived(a);
  }
  if (!o.pod.empty()) {
    arch::PodConfig p = arch::load_pod(o.pod, o.arch.empty() ? o.sets : std::vector<std::string>{});
    std::cout << (o.arch.empty() ? "" : "---\n") << arch::dump_pod(p)
              << fmt::format("# derived: chips {}, ports used per chip {}\n", p.chips,
                             p.ports_used);
  }
  return 0;
}

int run_asm(const AsmOptions& o) {
  isa::Program p = isa::load_program(o.input);
  if (!o.arch.empty()) {
    arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
    isa::verify_program(p, a, o.input);
    isa::parse_fingerprint(a.fingerprint, &p.arch_fingerprint);
  }
  write_bytes(o.output, isa::encode_program(p));
  return 0;
}

int run_disasm(const DisasmOptions& o) {
  isa::Program p = isa::load_program(o.input);
  std::string text = isa::disassemble(p);
  if (o.output.empty()) {
    std::cout << text;
  } else {
    write_file(o.output, text);
  }
  return 0;
}

int run_timed(const ExecOptions& o, const arch::ArchConfig& a, isa::Interpreter& interp,
              const std::string& dir);

int run_exec(const ExecOptions& o) {
  arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
  isa::Interpreter interp(a, isa::load_program(o.program), o.program);
  for (const auto& spec : o.inputs) {
    std::size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--input", "NAME=FILE.npy",
                       "'" + spec + "'");
    }
    interp.set_input(spec.substr(0, eq), isa::read_npy(spec.substr(eq + 1)));
  }
  std::string dir = o.out_dir.empty() ? "runs/" + fs::path(o.program).stem().string() : o.out_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(SourceLocation{dir, 0, 0}, "cannot create run directory: " + ec.message());
  write_file(dir + "/config.resolved.yaml", arch::dump_arch(a) + arch::dump_derived(a));
  if (!o.functional_only) return run_timed(o, a, interp, dir);
  interp.run();

  const auto& s = interp.stats();
  uint64_t total = 0;
  for (uint64_t n : s.executed) total += n;
  std::cout << fmt::format("tpusim exec (functional) {} on {} [{}]\n", o.program, a.name,
                           a.fingerprint);
  std::cout << fmt::format("  {:<22}{:>16}\n", "instructions", total);
  for (int i = 0; i < isa::kOpcodeCount; ++i) {
    if (s.executed[i] == 0) continue;
    std::cout << fmt::format("    {:<20}{:>16}\n",
                             isa::opcode_spec(static_cast<isa::Opcode>(i)).mnemonic,
                             s.executed[i]);
  }
  std::cout << fmt::format("  {:<22}{:>16}\n", "MACs", s.macs);
  std::cout << fmt::format("  {:<22}{:>16}\n", "DMA bytes", s.dma_bytes);
  std::cout << fmt::format("  {:<22}{:>16}\n", "weight bytes", s.weight_bytes);
  for (const auto& name : interp.output_names()) {
    isa::NpyArray out = interp.read_region(name);
    std::string path = dir + "/" + name + ".npy";
    isa::write_npy(path, out);
    std::cout << fmt::format("  output {:<15} fnv1a {}  -> {}\n", name, digest(out.data), path);
  }
  return 0;
}

int run_timed(const ExecOptions& o, const arch::ArchConfig& a, isa::Interpreter& interp,
              const std::string& dir) {
  sim::ChipOptions opt;
  opt.functional = !o.no_functional;
  opt.trace = o.trace || o.vcd;
  opt.hang_unit = o.hang_unit;
  sim::ChipResult r = sim::run_chip(a, interp.program(), &interp, opt);
  nlohmann::json report = sim::make_report(a, interp.program(), o.program, r, opt.functional);
  write_file(dir + "/report.json", report.dump(2) + "\n");
  if (!r.completed) {
    std::string msg = "tpusim: error: the watchdog stopped the run at cycle " +
                      std::to_string(r.cycles) + ": no unit can make progress\n";
    for (const auto& s : r.stuck) msg += "  " + s + "\n";
    std::cerr << msg;
    return 1;
  }
  if (o.trace) write_file(dir + "/timeline.json", r.timeline_json);
  if (o.vcd) write_file(dir + "/waves.vcd", r.waves_vcd);
  std::cout << sim::summary_text(report);
  if (opt.functional) {
    for (const auto& name : interp.output_names()) {
      isa::NpyArray out = interp.read_region(name);
      std::string path = dir + "/" + name + ".npy";
      isa::write_npy(path, out);
      std::cout << fmt::format("  output {:<19} fnv1a {}  -> {}\n", name, digest(out.data), path);
    }
  }
  std::cout << fmt::format("  run directory: {}\n", dir);
  return 0;
}

int run_isa_markdown() {
  std::cout << isa::isa_markdown();
  return 0;
}

}  // namespace tpu::cli
