// tpusim: the command-line entry point. Parses arguments with CLI11 and dispatches to the
// subcommands; every bad input ends here as one message on stderr and exit code 2.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <utility>
#include <string>

#include "arch/error.h"
#include "sim/chip/asan_options.h"
#include "sim/cli/commands.h"

// A given --out must name a directory (an empty one would silently mean the default).
const CLI::Validator kNonEmpty(
    [](std::string& v) { return v.empty() ? std::string("expected a directory path, found an empty one") : std::string(); },
    "DIR");

namespace {

// CLI11's own messages ("Could not convert: --batch = abc") rewritten in the house form,
// "OPTION: expected WHAT, found WHAT"; anything else is passed through as CLI11 wrote it.
std::string describe(const CLI::App& app, const CLI::ParseError& err) {
  // (Plain string matching: std::regex here trips GCC 12's -Wmaybe-uninitialized under the
  // sanitizer build.)
  std::string msg = err.what();
  for (char& ch : msg) {
    if (ch == '\n' || ch == '\r') ch = ' ';  // one line, whatever the value held
  }
  auto type_of = [&](const std::string& name) -> std::string {
    for (const CLI::App* sub : app.get_subcommands()) {  // the subcommand that was parsed
      if (const CLI::Option* o = sub->get_option_no_throw(name)) return o->get_type_name();
    }
    return "";
  };
  const std::string convert = "Could not convert: ";
  if (msg.compare(0, convert.size(), convert) == 0 && msg.find(" = ") != std::string::npos) {
    std::size_t eq = msg.find(" = ");
    std::string name = msg.substr(convert.size(), eq - convert.size());
    std::string type = type_of(name);
    std::string what = type == "INT" ? "an integer" : type == "UINT" ? "a non-negative integer"
                       : type == "FLOAT" ? "a number" : type.empty() ? "true or false (a flag)"
                                                                     : "a value of type " + type;
    return fmt::format("{}: expected {}, found '{}'", name, what, msg.substr(eq + 3));
  }
  std::size_t at = msg.find(": Value ");
  std::size_t range = msg.find(" not in range ");
  if (at != std::string::npos && range != std::string::npos && range > at &&
      msg.find(" to ", range) != std::string::npos) {
    std::size_t to = msg.find(" to ", range);
    std::size_t lo = range + std::string(" not in range ").size();
    return fmt::format("{}: expected a value in [{}, {}], found {}", msg.substr(0, at),
                       msg.substr(lo, to - lo), msg.substr(to + 4), msg.substr(at + 8, range - at - 8));
  }
  for (const auto& [text, expected] : {std::pair<std::string, std::string>{": File does not exist: ", "missing"},
                                       {": File is actually a directory: ", "directory"}}) {
    std::size_t f = msg.find(text);
    if (f == std::string::npos) continue;
    std::string name = msg.substr(0, f), path = msg.substr(f + text.size());
    return expected == "missing"
               ? fmt::format("{}: expected an existing file, found '{}' (no such file)", name, path)
               : fmt::format("{}: expected a file, found the directory '{}'", name, path);
  }
  return msg;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tpu::cli;
  CLI::App app{"tpusim: cycle-accurate, bit-exact simulator of systolic-array tensor processors"};
  app.require_subcommand(1);

  ConfigOptions config;
  auto* c = app.add_subcommand("config", "Validate an architecture (and pod) config and print "
                                         "it resolved, with derived figures");
  c->add_option("--arch", config.arch, "Architecture YAML")->check(CLI::ExistingFile);
  c->add_option("--pod", config.pod, "Pod YAML")->check(CLI::ExistingFile);
  c->add_option("--set", config.sets, "Override: dotted.key=value (repeatable)")->allow_extra_args(false);
  c->add_flag("--schema-markdown", config.schema_markdown,
              "Print the config schemas as Markdown (docs/config.md)");

  AsmOptions as;
  auto* a = app.add_subcommand("asm", "Assemble a program into the binary format");
  a->add_option("program", as.input, "Assembly (.tasm)")->required()->check(CLI::ExistingFile);
  a->add_option("-o,--output", as.output, "Binary output (.tbin)")->required();
  a->add_option("--arch", as.arch, "Verify against and bind to this architecture")
      ->check(CLI::ExistingFile);
  a->add_option("--set", as.sets, "Architecture override (repeatable)")->allow_extra_args(false);

  DisasmOptions ds;
  auto* d = app.add_subcommand("disasm", "Print a binary program as canonical assembly");
  d->add_option("program", ds.input, "Binary (.tbin)")->required()->check(CLI::ExistingFile);
  d->add_option("-o,--output", ds.output, "Write to this file instead of stdout");

  ExecOptions ex;
  auto* e = app.add_subcommand("exec", "Run a program (assembly or binary)");
  e->add_option("--arch", ex.arch, "Architecture YAML")->required()->check(CLI::ExistingFile);
  e->add_option("programs", ex.programs, "Programs (.tasm or .tbin); program i runs on core i")
      ->required()
      ->check(CLI::ExistingFile);
  e->add_option("--set", ex.sets, "Architecture override (repeatable)")->allow_extra_args(false);
  e->add_option("--input", ex.inputs,
                "NAME=FILE.npy (or coreN.NAME=FILE.npy) for an input region (repeatable)")->allow_extra_args(false);
  e->add_option("--out", ex.out_dir, "Run directory (default runs/<program name>)")->check(kNonEmpty);
  e->add_flag("--functional-only", ex.functional_only,
              "Run the golden functional interpreter only (no timing)");
  e->add_flag("--no-functional", ex.no_functional, "Simulate time only; no data moves");
  e->add_flag("--trace", ex.trace, "Write timeline.json (Chrome/Perfetto trace events)");
  e->add_flag("--vcd", ex.vcd, "Write waves.vcd (unit activity)");
  e->add_option("--test-hang-unit", ex.hang_unit)->group("");  // watchdog test hook
  e->get_option("--functional-only")->excludes(e->get_option("--no-functional"));

  RunOptions rn;
  auto* r = app.add_subcommand("run", "Compile a workload and simulate it (the main job)");
  r->add_option("--arch", rn.arch, "Architecture YAML")->required()->check(CLI::ExistingFile);
  r->add_option("--workload", rn.workload, "Workload YAML or SCALE-Sim CSV topology")
      ->required()
      ->check(CLI::ExistingFile);
  r->add_option("--dtype", rn.dtype, "int8|bf16 (default: the workload's, else the array's first)");
  r->add_option("--batch", rn.batch, "Samples per run (default: the workload's)");
  r->add_option("--mode", rn.mode, "inference|training (training: forward, backward and SGD update; default inference)");
  r->add_option("--out", rn.out_dir, "Run directory (default runs/<workload name>)")->check(kNonEmpty);
  r->add_option("--set", rn.sets, "Architecture override (repeatable)")->allow_extra_args(false);
  r->add_option("--seed", rn.seed, "Data seed (default: the workload's); every tensor is generated from it")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 62));
  r->add_flag("--no-functional", rn.no_functional, "Simulate time only; no data moves");
  r->add_flag("--ideal-memory", rn.ideal_memory, "Off-chip memory and host link infinitely fast");
  r->add_flag("--no-fusion", rn.no_fusion, "Do not fuse activations/elementwise ops into matrix ops");
  r->add_flag("--no-ub-activations", rn.no_ub_activations,
              "Keep no activations in the unified buffer between layers (all through off-chip memory)");
  r->add_flag("--check", rn.check, "Compare outputs bit for bit with the reference network evaluator (exit 1 if they differ)");
  r->add_flag("--trace", rn.trace, "Write timeline.json (Chrome/Perfetto trace events)");
  r->add_flag("--vcd", rn.vcd, "Write waves.vcd (unit activity)");
  r->get_option("--check")->excludes(r->get_option("--no-functional"));
  r->add_option("--pod", rn.pod, "Pod YAML: run on every chip of the pod (docs/pod.md)")->check(CLI::ExistingFile);
  r->add_option("--pod-set", rn.pod_sets, "With --pod: pod override key=value (repeatable)")->allow_extra_args(false);
  r->add_option("--parallel", rn.parallel, "With --pod: data=D,tensor=T (default data = all chips)")
      ->check(CLI::Validator(
          [](std::string& v) { return v.empty() ? std::string("expected data=D,tensor=T, found an empty value") : std::string(); },
          "", "non-empty"));
  r->add_option("--backend", rn.backend, "With --pod: detailed|symmetric|auto (auto: detailed up to 64 chips)");
  r->add_option("--bucket-mb", rn.bucket_mb,
                 "With --pod --mode training: all-reduce weight gradients in buckets of at least this many MiB "
                 "(default 0: one all-reduce per gradient)");
  r->add_flag("--scaling", rn.scaling, "With --pod: also run sub-pods of 1, 2, 4, ... chips and print the scaling table");
  r->get_option("--parallel")->needs(r->get_option("--pod"));
  r->get_option("--pod-set")->needs(r->get_option("--pod"));
  r->get_option("--backend")->needs(r->get_option("--pod"));
  r->get_option("--scaling")->needs(r->get_option("--pod"));
  r->get_option("--bucket-mb")->needs(r->get_option("--pod"));
  r->get_option("--pod")->excludes(r->get_option("--check"));

  CompileCmdOptions cc;
  auto* cm = app.add_subcommand("compile", "Compile a workload to an instruction stream");
  cm->add_option("--arch", cc.arch, "Architecture YAML")->required()->check(CLI::ExistingFile);
  cm->add_option("--workload", cc.workload, "Workload YAML or SCALE-Sim CSV topology")
      ->required()
      ->check(CLI::ExistingFile);
  cm->add_option("-o,--output", cc.output, "Program (.tasm assembly, .tbin binary); default stdout");
  cm->add_option("--dtype", cc.dtype, "int8|bf16");
  cm->add_option("--batch", cc.batch, "Samples per run");
  cm->add_option("--mode", cc.mode, "inference|training");
  cm->add_option("--set", cc.sets, "Architecture override (repeatable)")->allow_extra_args(false);
  cm->add_flag("--no-fusion", cc.no_fusion, "Do not fuse activations/elementwise ops into matrix ops");
  cm->add_flag("--no-ub-activations", cc.no_ub_activations,
               "Keep no activations in the unified buffer between layers (all through off-chip memory)");
  cm->add_flag("--explain", cc.explain, "Print each layer's tiling, loop order and traffic estimate");

  CollectiveOptions co;
  auto* cl = app.add_subcommand("collective", "Time a collective on a pod's interconnect");
  cl->add_option("--pod", co.pod, "Pod YAML")->required()->check(CLI::ExistingFile);
  cl->add_option("--op", co.op,
                 "all-reduce|reduce-scatter|all-gather|all-to-all|broadcast, or bisection (every chip to the "
                 "chip half way round the pod's narrowest cut)");
  cl->add_option("--bytes", co.bytes, "Buffer per chip, e.g. 1GiB, 64MiB, 4096 (default 1GiB)");
  cl->add_option("--algorithm", co.algorithm, "auto|ring|bidir-ring|torus|multi-torus|tree");
  cl->add_option("--set", co.sets, "Pod override (repeatable)")->allow_extra_args(false);
  cl->add_flag("--json", co.json, "Print the figures as one JSON object (full precision, SI units)");

  auto* i = app.add_subcommand("isa", "Print the ISA reference");
  bool isa_md = false;
  i->add_flag("--markdown", isa_md, "As Markdown (docs/isa.md)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& h) {
    return app.exit(h);
  } catch (const CLI::CallForAllHelp& h) {
    return app.exit(h);
  } catch (const CLI::ParseError& err) {
    std::fprintf(stderr, "tpusim: error: <command line>: %s\n", describe(app, err).c_str());
    return 2;
  }

  try {
    if (*c) return run_config(config);
    if (*a) return run_asm(as);
    if (*d) return run_disasm(ds);
    if (*e) return run_exec(ex);
    if (*i) return run_isa_markdown();
    if (*r) return run_run(rn);
    if (*cm) return run_compile(cc);
    if (*cl) return run_collective(co);
  } catch (const tpu::InputError& err) {
    std::fprintf(stderr, "tpusim: error: %s\n", err.what());
    return 2;
  } catch (const std::bad_alloc&) {
    // The inputs asked for more host memory than there is: bad input, like any other limit.
    std::fprintf(stderr,
                 "tpusim: error: out of memory: the run needs more host memory than it can get "
                 "(reduce the batch, the tensor sizes or the cores, or use --no-functional)\n");
    return 2;
  } catch (const std::exception& err) {
    std::fprintf(stderr, "tpusim: internal error: %s\n", err.what());
    return 1;
  }
  return 0;
}

// libsystemc's own main() calls sc_main; tpusim has its own main() and starts simulations
// through tpu::sim::run_chip, so this is never called but must exist for the link.
extern "C" int sc_main(int, char**) { return 0; }
