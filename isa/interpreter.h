// The golden functional interpreter: executes a Program on a machine state (off-chip and
// host memory, unified buffer, weight FIFOs, accumulators) with the reference kernels and no
// notion of time. Every timed model must reproduce its bits.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "arch/arch_config.h"
#include "isa/kernels.h"
#include "isa/memory.h"
#include "isa/npy.h"
#include "isa/program.h"

namespace tpu::isa {

/// Counters of one functional run.
struct InterpreterStats {
  std::array<uint64_t, kOpcodeCount> executed{};  ///< instructions per opcode
  uint64_t macs = 0;                              ///< rows x k x n summed over matmuls
  uint64_t dma_bytes = 0;                         ///< bytes moved by dma_load/dma_store
  uint64_t weight_bytes = 0;                      ///< bytes read by load_weights
};

/// Off-chip and host memory, which the cores of one chip share.
struct OffChipMemory {
  explicit OffChipMemory(const arch::ArchConfig& arch);
  /// Frees the pages of a region (off-chip or host) once nothing will read it
  /// (SparseMemory::release).
  void release(const Region& r) { (r.space == Space::kHost ? host : mem).release(r.addr, r.bytes()); }
  SparseMemory mem, host;
  /// Pages the chip's functional model may still allocate: off-chip, host and every core's
  /// unified buffer together (kMaxStoredBytes).
  std::shared_ptr<uint64_t> pages_left;
  /// Accumulator values of the interpreters (the chip's cores) sharing this memory, bounded
  /// by kMaxAccumulatorValues over all of them.
  uint64_t accumulator_values = 0;
};

/// Matrix-pass kernels with the signatures of isa::matmul_pass_int8/bf16.
using MatmulInt8Kernel = void (*)(const int8_t*, std::size_t, const int8_t*, std::size_t, int, int,
                                  int, int32_t*, std::size_t, bool);
using MatmulBf16Kernel = void (*)(const uint16_t*, std::size_t, const uint16_t*, std::size_t, int,
                                  int, int, float*, std::size_t, bool, const NumericsOptions&);

/// Limits of a functional run (bit-exact data is held in host memory): accumulator values
/// per chip (every core's together); bytes of a program's regions stored from the start
/// (all but init=random ones, which are generated when read); and bytes of off-chip, host
/// and unified-buffer memory a chip's functional model may hold written (SparseMemory
/// pages), which bounds what any program can make it store.
inline constexpr uint64_t kMaxAccumulatorValues = uint64_t{1} << 26;
inline constexpr uint64_t kMaxRegionDataBytes = uint64_t{2} << 30;
inline constexpr uint64_t kMaxStoredBytes = uint64_t{4} << 30;

class Interpreter {
 public:
  /// Verifies the program against the architecture (InputError on failure). `offchip` is
  /// shared with the interpreters of the chip's other cores (null: a private one).
  Interpreter(const arch::ArchConfig& arch, Program program, std::string file,
              std::shared_ptr<OffChipMemory> offchip = nullptr);
  /// The same without a copy of the program: it is borrowed and must outlive the
  /// interpreter (a compiled network's program can be tens of megabytes).
  Interpreter(const arch::ArchConfig& arch, const Program* program, std::string file,
              std::shared_ptr<OffChipMemory> offchip = nullptr);
  Interpreter(const Interpreter&) = delete;  // program_ may refer to own_
  Interpreter& operator=(const Interpreter&) = delete;

  /// Supplies the data of an input region; dtype and shape must match the region exactly.
  void set_input(const std::string& region, const NpyArray& data);
  /// Fills regions (inputs, then init rules), then executes until halt or the end.
  /// Throws InputError when the program reads memory or accumulators never written, or when
  /// an input region has no data.
  void run();

  /// The two halves of run(), for timed models that apply each instruction's effect at the
  /// simulated time it executes: fill the regions once, then execute instructions one at a
  /// time in any order that respects their data dependencies.
  void init_regions();
  void execute_at(std::size_t index);

  /// Called after each instruction execute_at (or run) applies, with its index: a chip's
  /// run uses it to learn when a tensor has had its last use (sim::RegionLifetimes).
  void set_after_execute(std::function<void(std::size_t)> hook) { after_execute_ = std::move(hook); }

  /// Replaces the matrix-pass kernels (default: the reference kernels). Timed models pass
  /// their vectorised kernels, which must give the same bits (they are tested to).
  void set_matmul_kernels(MatmulInt8Kernel int8, MatmulBf16Kernel bf16) {
    matmul_int8_ = int8;
    matmul_bf16_ = bf16;
  }

  /// Raw bytes of the unified buffer or off-chip memory, for the pod fabric that moves data
  /// between chips (read_bytes throws InputError on bytes never written).
  std::vector<uint8_t> read_bytes(IciSpace s, uint64_t addr, uint64_t len) const;
  void write_bytes(IciSpace s, uint64_t addr, const uint8_t* data, uint64_t len);

  /// Contents of a region after the run (every byte must have been written).
  NpyArray read_region(const std::string& name) const;
  /// Regions marked role=output, in program order.
  std::vector<std::string> output_names() const;
  const InterpreterStats& stats() const { return stats_; }
  const Program& program() const { return program_; }

  /// Deterministic fill of a region from its seed (public so that tests and tools can
  /// regenerate the same data): int8 uniform in [-127, 127], int32 in [-32768, 32767],
  /// bf16/fp32 uniform in [-2, 2) (bf16 rounded from fp32).
  static NpyArray random_fill(const Region& r, const NumericsOptions& opt);
  /// Bytes [offset, offset + len) of the data random_fill gives a region of `dtype` with this
  /// seed and scale.
  static void random_bytes(ElemType dtype, uint64_t seed, float scale, const NumericsOptions& opt,
                           uint64_t offset, uint8_t* out, uint64_t len);

 private:
  struct Tile {
    int64_t k = 0, n = 0, dtype = 0;
    std::vector<uint8_t> data;     // int8: k x n, row-major
    std::vector<uint16_t> data16;  // bf16: k x n bit patterns, row-major
  };
  enum AccTag : uint8_t { kUnwritten = 0, kInt32 = 1, kFp32 = 2 };
  struct Mxu {
    std::deque<Tile> fifo;
    std::optional<Tile> active;
    // entries x cols each, allocated on the first matmul of that type and not zeroed: a
    // value is read only where `tag` says the type's matmul wrote it.
    std::unique_ptr<int32_t[]> acc_i32;
    std::unique_ptr<float[]> acc_f32;
    std::vector<uint8_t> tag;  // entries x cols
  };

  /// The program's region of that name (null: none), through region_index_.
  const Region* region(const std::string& name) const;
  [[noreturn]] void fail(const std::string& field, const std::string& expected,
                         const std::string& found) const;
  SparseMemory& space(Space s) { return s == Space::kUb ? ub_ : s == Space::kHost ? offchip_->host : offchip_->mem; }
  std::vector<uint8_t> read(const SparseMemory& m, uint64_t addr, uint64_t len,
                            const char* field) const;
  /// InputError if [addr, addr + len) cannot all have been written, found without
  /// allocating `len` bytes (call before sizing a buffer from an instruction's fields).
  void check_readable(const SparseMemory& m, uint64_t addr, uint64_t len, const char* field) const;
  /// Reads into dst (len bytes), InputError naming the first byte never written.
  void read_into(const SparseMemory& m, uint64_t addr, uint64_t len, const char* field,
                 void* dst) const;
  /// check_readable, then the bytes into `buf` (grown to hold them).
  template <class T>
  const T* read_scratch(std::vector<T>& buf, const SparseMemory& m, uint64_t addr, uint64_t len,
                        const char* field) const;
  void execute(const Instruction& in);
  void dma(const Instruction& in, bool load);
  void load_weights(const Instruction& in);
  void matmul(const Instruction& in);
  void activate(const Instruction& in);
  void pool(const Instruction& in);
  void vector(const Instruction& in);
  void rowop(const Instruction& in);

  Interpreter(const arch::ArchConfig& arch, std::optional<Program> own, const Program* borrowed,
              std::string file, std::shared_ptr<OffChipMemory> offchip);

  arch::ArchConfig arch_;  // a copy: callers may pass a temporary
  std::optional<Program> own_;  // the program when the caller gave it by value
  const Program& program_;      // own_ or the caller's
  std::string file_;
  NumericsOptions numerics_;
  std::shared_ptr<OffChipMemory> offchip_;
  SparseMemory ub_;
  std::vector<Mxu> mxus_;
  std::map<std::string, NpyArray> inputs_;
  std::unordered_map<std::string, std::size_t> region_index_;  ///< name -> index in program_.regions
  InterpreterStats stats_;
  std::size_t pc_ = 0;
  std::function<void(std::size_t)> after_execute_;
  MatmulInt8Kernel matmul_int8_ = &matmul_pass_int8;
  MatmulBf16Kernel matmul_bf16_ = &matmul_pass_bf16;
};

}  // namespace tpu::isa
