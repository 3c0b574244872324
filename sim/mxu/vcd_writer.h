// A minimal Value Change Dump writer (IEEE 1364 section 18) for looking at the MAC grid's
// edges in GTKWave: declare wires, then set values cycle by cycle; only changes are written.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace tpu::sim {

class VcdWriter {
 public:
  /// Writes to `out`, which must outlive the writer. One time unit = one cycle (1 ns).
  explicit VcdWriter(std::ostream& out);

  /// Declares a wire of `width` bits (1..64) under scope `scope`; returns its handle.
  /// Only before the first set().
  int add_wire(const std::string& scope, const std::string& name, int width);

  /// Sets wire `id` to `value` (low `width` bits) at `cycle` (non-decreasing across calls);
  /// `known` false writes x. Writes the header on the first call.
  void set(int64_t cycle, int id, uint64_t value, bool known = true);

 private:
  struct Wire {
    std::string scope, name, code;
    int width = 1;
    uint64_t value = 0;
    bool known = false;
    bool written = false;
  };
  void header();
  std::ostream& out_;
  std::vector<Wire> wires_;
  bool started_ = false;
  int64_t time_ = -1;
};

}  // namespace tpu::sim
