// Byte-addressed sparse memory with a written-bit per byte, used for off-chip, host and
// unified-buffer memory in the golden interpreter: a 32 GiB HBM costs only the pages that a
// program touches, and reading a byte that was never written is detected.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <unordered_map>

namespace tpu::isa {

class SparseMemory {
 public:
  static constexpr uint64_t kPageBytes = 4096;

  explicit SparseMemory(uint64_t size_bytes) : size_(size_bytes) {}

  uint64_t size() const { return size_; }
  /// True when [addr, addr + len) lies inside the memory.
  bool in_range(uint64_t addr, uint64_t len) const {
    return addr <= size_ && len <= size_ - addr;
  }
  /// Copies bytes in; the range must be in range (checked by the caller).
  void write(uint64_t addr, const void* src, uint64_t len);
  /// Copies bytes out. Returns false, with *first_unwritten set, when some byte in the range
  /// was never written (the output then holds zeros for those bytes).
  bool read(uint64_t addr, void* dst, uint64_t len, uint64_t* first_unwritten) const;
  /// Bytes of pages allocated so far.
  uint64_t resident_bytes() const { return pages_.size() * kPageBytes; }

 private:
  struct Page {
    std::array<uint8_t, kPageBytes> data{};
    std::array<uint64_t, kPageBytes / 64> written{};  ///< one bit per byte, set and tested by word
  };
  uint64_t size_;
  std::unordered_map<uint64_t, std::unique_ptr<Page>> pages_;
};

}  // namespace tpu::isa
