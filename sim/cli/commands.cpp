// Implementations of the tpusim subcommands.
#include "sim/cli/commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "arch/arch_config.h"
#include "arch/error.h"
#include "arch/pod_config.h"
#include "isa/assembler.h"
#include "isa/encoding.h"
#include "isa/interpreter.h"
#include "isa/isa_doc.h"
#include "isa/verifier.h"
#include "sim/chip/chip.h"
#include "sim/chip/region_lifetimes.h"
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

namespace {

using Interpreters = std::vector<std::unique_ptr<isa::Interpreter>>;

// Output regions of every core: NAME.npy for a single program, coreN.NAME.npy otherwise.
// Each is written when its region ends (sim::RegionLifetimes: the last instruction touching
// it has executed), after which the pages of every region are freed, as `tpusim run` does;
// outputs that never end (not all their accesses ran) are written after the run. The lines
// are printed after the run, in core and region order.
class Outputs {
 public:
  Outputs(const Interpreters& cores, std::shared_ptr<isa::OffChipMemory> offchip, std::string dir)
      : cores_(cores), offchip_(std::move(offchip)), dir_(std::move(dir)) {
    std::vector<const isa::Program*> listing;
    std::vector<isa::Interpreter*> attached;
    for (std::size_t c = 0; c < cores_.size(); ++c) {
      listing.push_back(&cores_[c]->program());
      attached.push_back(cores_[c].get());
      for (const isa::Region& r : cores_[c]->program().regions) {
        if (r.role == isa::RegionRole::kOutput) output_cores_[{static_cast<int>(r.space), r.addr, r.name}].push_back(c);
      }
    }
    lifetimes_ = std::make_unique<sim::RegionLifetimes>(listing, [this](const isa::Region& r) { ended(r); });
    lifetimes_->attach(attached);
  }
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;

  /// Writes the outputs not written yet and prints every output's line.
  void finish() {
    for (std::size_t c = 0; c < cores_.size(); ++c) {
      for (const auto& name : cores_[c]->output_names()) {
        if (!lines_.count({c, name})) write(c, name);
      }
    }
    for (std::size_t c = 0; c < cores_.size(); ++c) {
      for (const auto& name : cores_[c]->output_names()) std::cout << lines_.at({c, name});
    }
  }
  /// A run that did not complete has no outputs: the files already written go.
  void discard() {
    for (const auto& entry : lines_) fs::remove(path(entry.first.first, entry.first.second));
  }

 private:
  std::string file(std::size_t core, const std::string& name) const {
    return cores_.size() == 1 ? name : fmt::format("core{}.{}", core, name);
  }
  std::string path(std::size_t core, const std::string& name) const { return dir_ + "/" + file(core, name) + ".npy"; }
  void write(std::size_t core, const std::string& name) {
    isa::NpyArray out = cores_[core]->read_region(name);
    isa::write_npy(path(core, name), out);
    lines_[{core, name}] =
        fmt::format("  output {:<19} fnv1a {}  -> {}\n", file(core, name), digest(out.data), path(core, name));
  }
  // Every core declaring this region (same name and place) as an output writes its file;
  // then the region's pages are freed.
  void ended(const isa::Region& r) {
    auto it = output_cores_.find({static_cast<int>(r.space), r.addr, r.name});
    if (it != output_cores_.end()) {
      for (std::size_t c : it->second) write(c, r.name);
    }
    offchip_->release(r);
  }

  const Interpreters& cores_;
  std::shared_ptr<isa::OffChipMemory> offchip_;
  std::string dir_;
  std::unique_ptr<sim::RegionLifetimes> lifetimes_;
  std::map<std::pair<std::size_t, std::string>, std::string> lines_;  ///< (core, region) -> printed line
  /// (space, address, name) of an output region -> the cores declaring it.
  std::map<std::tuple<int, uint64_t, std::string>, std::vector<std::size_t>> output_cores_;
};

int run_timed(const ExecOptions& o, const arch::ArchConfig& a, const Interpreters& cores,
              const std::shared_ptr<isa::OffChipMemory>& offchip, const std::string& dir) {
  std::optional<Outputs> outputs;
  if (!o.no_functional) outputs.emplace(cores, offchip, dir);
  sim::ChipOptions opt;
  opt.functional = !o.no_functional;
  opt.trace = o.trace || o.vcd;
  opt.hang_unit = o.hang_unit;
  std::vector<sim::CoreProgram> programs;
  std::vector<const isa::Program*> listing;
  for (const auto& c : cores) {
    programs.push_back({&c->program(), c.get()});
    listing.push_back(&c->program());
  }
  sim::ChipResult r = sim::run_chip(a, programs, opt);
  std::string name = o.programs.size() == 1 ? o.programs[0] : fmt::format("{}", fmt::join(o.programs, " "));
  nlohmann::json report = sim::make_report(a, listing, name, r, opt.functional);
  write_file(dir + "/report.json", report.dump(2) + "\n");
  if (!r.completed) {
    std::string msg = "tpusim: error: the watchdog stopped the run at cycle " +
                      std::to_string(r.cycles) + ": no unit can make progress\n";
    for (const auto& s : r.stuck) msg += "  " + s + "\n";
    std::cerr << msg;
    if (outputs) outputs->discard();
    return 1;
  }
  if (o.trace) write_file(dir + "/timeline.json", r.timeline_json);
  if (o.vcd) write_file(dir + "/waves.vcd", r.waves_vcd);
  std::cout << sim::summary_text(report);
  if (outputs) outputs->finish();
  std::cout << fmt::format("  run directory: {}\n", dir);
  return 0;
}

}  // namespace

int run_exec(const ExecOptions& o) {
  arch::ArchConfig a = arch::load_arch(o.arch, o.sets);
  if (o.programs.size() > static_cast<std::size_t>(a.cores)) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "exec",
                     fmt::format("at most one program per core ({} on {})", a.cores, a.name),
                     fmt::format("{} programs", o.programs.size()));
  }
  // One interpreter per core, all sharing the chip's off-chip and host memory.
  auto offchip = std::make_shared<isa::OffChipMemory>(a);
  Interpreters cores;
  for (const auto& path : o.programs) {
    cores.push_back(std::make_unique<isa::Interpreter>(a, isa::load_program(path), path, offchip));
  }
  std::set<std::pair<std::size_t, std::string>> given;  // (core, name) of every --input
  for (const auto& spec : o.inputs) {
    std::size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--input",
                       "NAME=FILE.npy or coreN.NAME=FILE.npy", "'" + spec + "'");
    }
    std::string name = spec.substr(0, eq);
    std::size_t core = 0;
    if (name.compare(0, 4, "core") == 0 && name.find('.') != std::string::npos) {
      std::string index = name.substr(4, name.find('.') - 4);
      if (index.empty() || index.size() > 3 || index.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(index) >= cores.size()) {
        throw InputError(SourceLocation{"<command line>", 0, 0}, "--input " + name,
                         fmt::format("coreN with N below {}", cores.size()), "'" + index + "'");
      }
      core = std::stoul(index);
      name = name.substr(name.find('.') + 1);
    }
    if (!given.emplace(core, name).second) {
      throw InputError(SourceLocation{"<command line>", 0, 0}, "--input " + spec.substr(0, eq),
                       "each input given once", "it given twice");
    }
    cores[core]->set_input(name, isa::read_npy(spec.substr(eq + 1)));
  }
  RunDir run_dir(o.out_dir.empty() ? "runs/" + fs::path(o.programs[0]).stem().string() : o.out_dir);
  const std::string& dir = run_dir.path();
  write_file(dir + "/config.resolved.yaml", arch::dump_arch(a) + arch::dump_derived(a));
  if (!o.functional_only) {
    int code = run_timed(o, a, cores, offchip, dir);
    run_dir.keep();
    return code;
  }

  // The golden interpreter alone: the cores' programs touch disjoint memory, so running
  // them one after the other gives the chip's results.
  Outputs outputs(cores, offchip, dir);
  for (auto& c : cores) c->run();
  for (std::size_t i = 0; i < cores.size(); ++i) {
    const auto& s = cores[i]->stats();
    uint64_t total = 0;
    for (uint64_t n : s.executed) total += n;
    std::cout << fmt::format("tpusim exec (functional) {} on {} [{}]{}\n", o.programs[i], a.name,
                             a.fingerprint, cores.size() > 1 ? fmt::format(" core {}", i) : "");
    std::cout << fmt::format("  {:<22}{:>16}\n", "instructions", total);
    for (int k = 0; k < isa::kOpcodeCount; ++k) {
      if (s.executed[k] == 0) continue;
      std::cout << fmt::format("    {:<20}{:>16}\n",
                               isa::opcode_spec(static_cast<isa::Opcode>(k)).mnemonic,
                               s.executed[k]);
    }
    std::cout << fmt::format("  {:<22}{:>16}\n", "MACs", s.macs);
    std::cout << fmt::format("  {:<22}{:>16}\n", "DMA bytes", s.dma_bytes);
    std::cout << fmt::format("  {:<22}{:>16}\n", "weight bytes", s.weight_bytes);
  }
  outputs.finish();
  run_dir.keep();
  return 0;
}

RunDir::RunDir(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw InputError(SourceLocation{"<command line>", 0, 0}, "--out", "a directory path", "an empty one");
  std::error_code ec;
  for (fs::path q = path_; !q.empty() && !fs::exists(q, ec); q = q.parent_path()) {
    created_ = q.string();
    if (q == q.parent_path()) break;
  }
  fs::create_directories(path_, ec);
  if (ec) throw InputError(SourceLocation{path_, 0, 0}, "cannot create run directory: " + ec.message());
}

RunDir::~RunDir() {
  if (keep_ || created_.empty()) return;
  std::error_code ec;
  fs::remove_all(created_, ec);  // best effort: the error being reported matters more
}

int run_isa_markdown() {
  std::cout << isa::isa_markdown();
  return 0;
}

}  // namespace tpu::cli
