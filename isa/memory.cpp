// SparseMemory: pages allocated on first write.
#include "isa/memory.h"

#include <algorithm>
#include <cstring>

namespace tpu::isa {

void SparseMemory::write(uint64_t addr, const void* src, uint64_t len) {
  const auto* in = static_cast<const uint8_t*>(src);
  while (len > 0) {
    uint64_t page = addr / kPageBytes;
    uint64_t off = addr % kPageBytes;
    uint64_t n = std::min(len, kPageBytes - off);
    auto& p = pages_[page];
    if (!p) p = std::make_unique<Page>();
    std::memcpy(p->data.data() + off, in, n);
    for (uint64_t i = 0; i < n; ++i) p->written.set(off + i);
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
        for (uint64_t i = 0; i < n; ++i) {
          if (!it->second->written.test(off + i)) {
            *first_unwritten = addr + i;
            ok = false;
            break;
          }
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
