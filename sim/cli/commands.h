// The tpusim subcommands. Each returns the process exit code; bad input surfaces as
// tpu::InputError, which main() turns into one message and exit code 2.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tpu::cli {

/// A run directory (--out): created, if missing, before the simulation so that a path that
/// cannot be created fails at once; removed again with whatever was written into it, and
/// with the parent directories created for it, when the command leaves by an exception (bad
/// input found while running: one message, exit code 2, nothing left behind). keep() once
/// the run has finished, successfully or not. An empty path is an error.
/// --batch not given (a value no one types: every typed value is checked).
inline constexpr int64_t kBatchUnset = INT64_MIN;

class RunDir {
 public:
  explicit RunDir(std::string path);
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  std::string created_;  ///< the first directory up the path that did not exist ("" if none)
  bool keep_ = false;
};

struct ConfigOptions {
  std::string arch;
  std::string pod;
  std::vector<std::string> sets;
  bool schema_markdown = false;
};
int run_config(const ConfigOptions& o);

struct AsmOptions {
  std::string input;
  std::string output;
  std::string arch;
  std::vector<std::string> sets;
};
int run_asm(const AsmOptions& o);

struct DisasmOptions {
  std::string input;
  std::string output;
};
int run_disasm(const DisasmOptions& o);

struct ExecOptions {
  std::string arch;
  std::vector<std::string> programs;  ///< program i runs on core i
  std::vector<std::string> sets;
  std::vector<std::string> inputs;  ///< NAME=FILE.npy or coreN.NAME=FILE.npy
  std::string out_dir;
  bool functional_only = false;  ///< golden interpreter only, no timing
  bool no_functional = false;    ///< timing only, no data moves
  bool trace = false;            ///< write timeline.json
  bool vcd = false;              ///< write waves.vcd
  std::string hang_unit;         ///< test hook for the watchdog (hidden option)
};
int run_exec(const ExecOptions& o);

int run_isa_markdown();

struct CompileCmdOptions {
  std::string arch, workload, output, dtype;
  std::vector<std::string> sets;
  int64_t batch = kBatchUnset;  ///< kBatchUnset: the workload's
  std::string mode = "inference";  ///< inference|training (compiler/training.h)
  bool no_fusion = false;
  bool no_ub_activations = false;  ///< every activation through off-chip memory
  bool explain = false;
};
int run_compile(const CompileCmdOptions& o);

struct RunOptions {
  std::string arch, workload, out_dir, dtype;
  std::vector<std::string> sets;
  int64_t batch = kBatchUnset;  ///< kBatchUnset: the workload's
  std::string mode = "inference";  ///< inference|training (compiler/training.h)
  bool no_fusion = false;
  bool no_ub_activations = false;  ///< every activation through off-chip memory
  bool no_functional = false;
  bool ideal_memory = false;
  bool trace = false;
  bool vcd = false;
  bool check = false;  ///< compare outputs with the reference network evaluator
  std::string pod;               ///< pod YAML: simulate every chip of the pod
  std::vector<std::string> pod_sets;  ///< pod overrides
  std::string parallel;          ///< "data=D,tensor=T"
  std::string backend = "auto";  ///< detailed|symmetric|auto
  bool scaling = false;          ///< also run sub-pods and print the scaling table
  double bucket_mb = 0;          ///< gradient all-reduce buckets (0: one per gradient)
  int64_t seed = -1;             ///< overrides the workload's data seed (-1: the workload's)
};
int run_run(const RunOptions& o);

struct CollectiveOptions {
  std::string pod, op = "all-reduce", bytes = "1GiB", algorithm = "auto";
  std::vector<std::string> sets;
  bool json = false;  ///< print one JSON object instead of the table
};
int run_collective(const CollectiveOptions& o);

}  // namespace tpu::cli
