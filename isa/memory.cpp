// SparseMemory: pages allocated on first write.
#include "isa/memory.h"

#include <algorithm>
#include <cstring>

namespace tpu::isa {

namespace {

// Mask of bits [lo, hi) of one 64-bit word (0 <= lo < hi <= 64).
inline uint64_t bit_mask(uint64_t lo, uint64_t hi) {
  uint64_t upper = hi == 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return upper & ~((uint64_t{1} << lo) - 1);
}

}  // namespace

void SparseMemory::write(uint64_t addr, const void* src, uint64_t len) {
  const auto* in = static_cast<const uint8_t*>(src);
  while (len > 0) {
    uint64_t page = addr / kPageBytes;
    uint64_t off = addr % kPageBytes;
    uint64_t n = std::min(len, kPageBytes - off);
    auto& p = pages_[page];
    if (!p) p = std::make_unique<Page>();
    std::memcpy(p->data.data() + off, in, n);
    for (uint64_t b = off; b < off + n;) {
      uint64_t w = b / 64, lo = b % 64, hi = std::min<uint64_t>(64, lo + (off + n - b));
      p->written[w] |= bit_mask(lo, hi);
      b += hi - lo;
    }
    addr += n;
    in += n;
    len -= n;
  }
}

bool SparseMemory::read(uint64_t addr, void* dst, uint64_t len, uint64_t* first_unwritten) const {
  auto* out = static_cast<uint8_t*>(dst);
  bool ok = true;
  while (len > 0) {
    uint64_t page = addr / kPageBytes;
    uint64_t off = addr % kPageBytes;
    uint64_t n = std::min(len, kPageBytes - off);
    auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::memset(out, 0, n);
      if (ok) *first_unwritten = addr;
      ok = false;
    } else {
      std::memcpy(out, it->second->data.data() + off, n);
      if (ok) {
        for (uint64_t b = off; b < off + n;) {
          uint64_t w = b / 64, lo = b % 64, hi = std::min<uint64_t>(64, lo + (off + n - b));
          uint64_t missing = ~it->second->written[w] & bit_mask(lo, hi);
          if (missing) {
            *first_unwritten = addr + (w * 64 + static_cast<uint64_t>(__builtin_ctzll(missing)) - off);
            ok = false;
            break;
          }
          b += hi - lo;
        }
      }
    }
    addr += n;
    out += n;
    len -= n;
  }
  return ok;
}

}  // namespace tpu::isa
