// Instructions, named tensor regions and the Program container that the compiler emits and
// the interpreter and simulator run. A Program records the fingerprint of the architecture
// it was built for (0: any architecture).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa_table.h"

namespace tpu::isa {

/// One decoded instruction: an opcode and its field values, stored by slot.
struct Instruction {
  Opcode op = Opcode::kNop;
  std::array<int64_t, kMaxFields> values{};

  /// An instruction with every field at its default.
  static Instruction make(Opcode op);
  int64_t get(Fid f) const { return values[field_slot(f)]; }
  void set(Fid f, int64_t v) { values[field_slot(f)] = v; }
  bool operator==(const Instruction& o) const { return op == o.op && values == o.values; }
};

enum class RegionRole : uint8_t { kInput, kOutput, kData };
inline constexpr const char* kRegionRoleNames[] = {"input", "output", "data"};
enum class RegionInit : uint8_t { kNone, kZero, kRandom, kValues };
inline constexpr const char* kRegionInitNames[] = {"none", "zero", "random", "values"};
inline constexpr int kRegionInitCount = 4;

/// A named tensor in off-chip or host memory: how it is filled before the run and whether it
/// is written out after.
struct Region {
  std::string name;
  Space space = Space::kMem;
  uint64_t addr = 0;
  ElemType dtype = ElemType::kInt8;
  std::vector<uint64_t> shape;
  RegionRole role = RegionRole::kData;
  RegionInit init = RegionInit::kNone;
  uint64_t seed = 0;
  /// init=random, bf16/fp32 regions: every draw (uniform in [-2, 2)) is multiplied by this
  /// fp32 factor before rounding (weights scaled to their fan-in). 1 for integer regions.
  float scale = 1.0f;
  /// Literal contents (init=values): exactly bytes() bytes, little-endian elements.
  std::vector<uint8_t> values;

  uint64_t elements() const;
  uint64_t bytes() const { return elements() * kElemTypeBytes[static_cast<int>(dtype)]; }
  bool operator==(const Region& o) const;
};

/// A parameter of the model: constant data the program reads (weights, biases, requantization
/// records, tables), i.e. a data region with contents (random or literal values). Zero-filled
/// scratch regions, inputs and outputs are not parameters.
inline bool is_parameter(const Region& r) {
  return r.role == RegionRole::kData &&
         (r.init == RegionInit::kRandom || r.init == RegionInit::kValues);
}

struct Program {
  uint64_t arch_fingerprint = 0;  ///< 0: not bound to an architecture
  std::vector<Region> regions;
  std::vector<Instruction> code;
  /// Per instruction: the assembly source line (0 if none) and a comment (may be empty).
  std::vector<int> lines;
  std::vector<std::string> notes;
  /// Source lines of the .region directives (per region, may be empty) and of .arch (0 if none).
  std::vector<int> region_lines;
  int arch_line = 0;

  const Region* find_region(const std::string& name) const;
  bool operator==(const Program& o) const {
    return arch_fingerprint == o.arch_fingerprint && regions == o.regions && code == o.code;
  }
};

/// Limits that keep a malformed program from exhausting memory.
inline constexpr std::size_t kMaxInstructions = 1u << 24;
inline constexpr std::size_t kMaxRegions = 65536;
inline constexpr std::size_t kMaxRank = 8;
inline constexpr std::size_t kMaxNameLength = 128;
/// Largest region (elements product) accepted, 4 GiB of data.
inline constexpr uint64_t kMaxRegionBytes = uint64_t{1} << 32;

/// Parses a fingerprint written as 16 hex digits; false when malformed.
bool parse_fingerprint(const std::string& hex, uint64_t* out);
std::string format_fingerprint(uint64_t fp);

}  // namespace tpu::isa

namespace tpu::isa {
/// [A-Za-z_][A-Za-z0-9_]*, at most kMaxNameLength characters: region and symbol names.
bool is_identifier(const std::string& s);
}  // namespace tpu::isa
