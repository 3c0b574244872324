// SparseMemory: generated extents read exactly as if their bytes had been written, and cost
// no pages until written over; seeded region data from any byte offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "isa/interpreter.h"
#include "isa/memory.h"
#include "isa/numerics.h"

namespace tpu::isa {
namespace {

// The bytes of extent `key`: any deterministic function of (key, offset) will do.
uint8_t generated_byte(uint64_t key, uint64_t offset) {
  uint64_t s = key * 1000003 + offset;
  return static_cast<uint8_t>(splitmix64(s));
}

SparseMemory::Fill fill_of(uint64_t key) {
  return [key](uint64_t offset, uint8_t* out, uint64_t len) {
    for (uint64_t i = 0; i < len; ++i) out[i] = generated_byte(key, offset + i);
  };
}

// Writes `len` random bytes at `addr` to the memory and to its flat model.
void write_random(SparseMemory& mem, std::vector<uint8_t>& flat, std::vector<bool>& written, uint64_t addr,
                  uint64_t len, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(len);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  mem.write(addr, bytes.data(), len);
  for (uint64_t i = 0; i < len; ++i) {
    flat[addr + i] = bytes[i];
    written[addr + i] = true;
  }
}

// Reads [addr, addr + len) and checks it against a flat model: it succeeds exactly when every
// byte was written, else names the first one that was not, and every written byte reads
// as the model's. *complete: the read succeeded.
void expect_reads_like(const SparseMemory& mem, const std::vector<uint8_t>& flat, const std::vector<bool>& written,
                       uint64_t addr, uint64_t len, bool* complete) {
  std::vector<uint8_t> got(len, 0xee);
  uint64_t gap = ~uint64_t{0};
  const bool ok = mem.read(addr, got.data(), len, &gap);
  uint64_t want_gap = addr + len;
  for (uint64_t i = addr; i < addr + len; ++i) {
    if (!written[i]) {
      want_gap = i;
      break;
    }
  }
  *complete = ok;
  ASSERT_EQ(ok, want_gap == addr + len);
  if (!ok) {
    ASSERT_EQ(gap, want_gap);
  }
  for (uint64_t i = 0; i < len; ++i) {
    if (written[addr + i]) {
      ASSERT_EQ(got[i], flat[addr + i]) << "byte " << addr + i;
    }
  }
}

// Random writes, generated extents (some repeated, some overlapping) and reads over three
// pages: a memory given the extents reads exactly like one given their bytes by write().
TEST(SparseMemory, GeneratedExtentsReadExactlyAsWrittenBytes) {
  std::mt19937_64 rng(20261129);
  constexpr uint64_t kSpan = 3 * SparseMemory::kPageBytes;
  int reads_with_gaps = 0, reads_whole = 0;
  for (int trial = 0; trial < 400; ++trial) {
    SparseMemory lazy(kSpan), eager(kSpan);
    std::vector<std::pair<uint64_t, uint64_t>> extents;  // (addr, len) added so far
    for (int step = 0; step < 24; ++step) {
      uint64_t addr = rng() % kSpan;
      uint64_t len = 1 + rng() % std::min<uint64_t>(kSpan - addr, 6000);
      switch (rng() % 4) {
        case 0: {  // an extent, sometimes the same one again
          if (!extents.empty() && rng() % 3 == 0) std::tie(addr, len) = extents[rng() % extents.size()];
          uint64_t key = addr;  // the data is a function of (key, offset): the same again
          extents.emplace_back(addr, len);
          lazy.add_generated(addr, len, std::to_string(key), fill_of(key));
          std::vector<uint8_t> bytes(len);
          fill_of(key)(0, bytes.data(), len);
          eager.write(addr, bytes.data(), len);
          break;
        }
        case 1: {
          std::vector<uint8_t> bytes(len);
          for (auto& b : bytes) b = static_cast<uint8_t>(rng());
          lazy.write(addr, bytes.data(), len);
          eager.write(addr, bytes.data(), len);
          break;
        }
        default: {
          std::vector<uint8_t> a(len, 0xee), b(len, 0xdd);
          uint64_t gap_a = ~uint64_t{0}, gap_b = ~uint64_t{0};
          bool ok_a = lazy.read(addr, a.data(), len, &gap_a);
          bool ok_b = eager.read(addr, b.data(), len, &gap_b);
          ASSERT_EQ(ok_a, ok_b) << "trial " << trial << " step " << step;
          ASSERT_EQ(a, b) << "trial " << trial << " step " << step;
          if (!ok_a) {
            ASSERT_EQ(gap_a, gap_b) << "trial " << trial << " step " << step;
          } else {
            EXPECT_GE(lazy.readable_bytes(), len);  // the interpreter's quick bound
          }
          (ok_a ? reads_whole : reads_with_gaps) += 1;
          EXPECT_LE(lazy.resident_bytes(), eager.resident_bytes());
        }
      }
    }
  }
  // Both kinds of read were exercised.
  EXPECT_GT(reads_with_gaps, 500);
  EXPECT_GT(reads_whole, 500);
}

// Against a flat byte array with one written flag per byte: writes of every shape (whole
// aligned pages, which skip the written bits; partial writes that complete a page, which drop
// them; writes across pages) read back the same bytes and the same first unwritten byte.
TEST(SparseMemory, ReadsAndWrittenBitsMatchAFlatModel) {
  std::mt19937_64 rng(7);
  constexpr uint64_t kPage = SparseMemory::kPageBytes;
  constexpr uint64_t kSpan = 6 * kPage;
  int whole_pages = 0, completed_reads = 0, gaps = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SparseMemory mem(kSpan);
    std::vector<uint8_t> flat(kSpan, 0);
    std::vector<bool> written(kSpan, false);
    for (int step = 0; step < 40; ++step) {
      uint64_t addr = 0, len = 0;
      switch (rng() % 3) {
        case 0:  // whole pages, aligned
          addr = (rng() % 6) * kPage;
          len = (1 + rng() % (6 - addr / kPage)) * kPage;
          ++whole_pages;
          break;
        case 1:  // a page's rest from some offset (completes pages written from their start)
          addr = (rng() % 6) * kPage + rng() % kPage;
          len = kPage - addr % kPage;
          break;
        default:
          addr = rng() % kSpan;
          len = 1 + rng() % std::min<uint64_t>(kSpan - addr, 3 * kPage);
      }
      if (rng() % 2) {
        write_random(mem, flat, written, addr, len, rng);
        continue;
      }
      SCOPED_TRACE(testing::Message() << "trial " << trial << " step " << step);
      bool complete = false;
      ASSERT_NO_FATAL_FAILURE(expect_reads_like(mem, flat, written, addr, len, &complete));
      ++(complete ? completed_reads : gaps);
    }
  }
  EXPECT_GT(whole_pages, 500);
  EXPECT_GT(completed_reads, 300);
  EXPECT_GT(gaps, 300);
}

// A large generated region costs no pages until written, and then only the pages written.
TEST(SparseMemory, AGeneratedRegionCostsOnlyThePagesWrittenOverIt) {
  SparseMemory m(uint64_t{1} << 34);
  constexpr uint64_t kLen = uint64_t{1} << 32;  // 4 GiB
  m.add_generated(4096 + 7, kLen, "1", fill_of(1));
  EXPECT_EQ(m.resident_bytes(), 0u);
  EXPECT_EQ(m.readable_bytes(), kLen);
  uint8_t b[3] = {};
  uint64_t gap = 0;
  ASSERT_TRUE(m.read(4096 + 7 + kLen - 3, b, 3, &gap));
  EXPECT_EQ(b[2], generated_byte(1, kLen - 1));
  // The byte after the region was never written.
  uint8_t after = 0;
  EXPECT_FALSE(m.read(4096 + 7 + kLen, &after, 1, &gap));
  EXPECT_EQ(gap, 4096 + 7 + kLen);
  // Writing one byte allocates one page, which keeps the generated bytes around it.
  uint8_t x = 0x5a;
  m.write(uint64_t{1} << 31, &x, 1);
  EXPECT_EQ(m.resident_bytes(), SparseMemory::kPageBytes);
  uint8_t three[3] = {};
  ASSERT_TRUE(m.read((uint64_t{1} << 31) - 1, three, 3, &gap));
  uint64_t off = (uint64_t{1} << 31) - 4096 - 7;
  EXPECT_EQ(three[0], generated_byte(1, off - 1));
  EXPECT_EQ(three[1], 0x5a);
  EXPECT_EQ(three[2], generated_byte(1, off + 1));
}

// A shared page budget: a write that needs a page past it is refused (Full) and the budget
// is never exceeded; pages already held cost nothing to write again.
TEST(SparseMemory, AWritePastTheSharedBudgetIsRefused) {
  SparseMemory a(1 << 20), b(1 << 20);
  auto pages = std::make_shared<uint64_t>(3);
  a.share_budget(pages);
  b.share_budget(pages);
  std::vector<uint8_t> two_pages(2 * SparseMemory::kPageBytes, 7);
  a.write(0, two_pages.data(), two_pages.size());
  EXPECT_EQ(*pages, 1u);
  a.write(100, two_pages.data(), 1000);  // inside a page already held
  EXPECT_EQ(*pages, 1u);
  // Two pages needed (one byte on each side of a boundary), one left: the second is refused.
  uint8_t xy[2] = {1, 2};
  EXPECT_THROW(b.write(SparseMemory::kPageBytes - 1, xy, 2), SparseMemory::Full);
  EXPECT_EQ(*pages, 0u);
  EXPECT_EQ(b.resident_bytes(), SparseMemory::kPageBytes);
  uint8_t got = 0;
  uint64_t gap = 0;
  EXPECT_FALSE(b.read(SparseMemory::kPageBytes, &got, 1, &gap));  // the refused page was not written
  EXPECT_EQ(gap, SparseMemory::kPageBytes);
  EXPECT_THROW(a.write(1 << 19, xy, 1), SparseMemory::Full);
  EXPECT_EQ(a.resident_bytes(), 2 * SparseMemory::kPageBytes);
  // Generated extents cost nothing; writing over one takes pages like any write.
  a.add_generated(1 << 18, 1 << 18, "9", fill_of(9));
  EXPECT_EQ(*pages, 0u);
  EXPECT_THROW(a.write((1 << 18) + 5, xy, 1), SparseMemory::Full);
  ASSERT_TRUE(a.read((1 << 18) + 5, &got, 1, &gap));
  EXPECT_EQ(got, generated_byte(9, 5));
}

// Releasing a range forgets the pages wholly inside it (their bytes read as never written
// and the pages go back to the budget) and keeps every page it covers only in part, against a
// flat model with a written flag per byte and an allocated flag per page.
TEST(SparseMemory, ReleaseForgetsExactlyThePagesWhollyInsideTheRange) {
  std::mt19937_64 rng(20261130);
  constexpr uint64_t kPage = SparseMemory::kPageBytes;
  constexpr uint64_t kPages = 6, kSpan = kPages * kPage, kBudget = 100;
  int freed_pages = 0, kept_partial = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SparseMemory mem(kSpan);
    auto budget = std::make_shared<uint64_t>(kBudget);
    mem.share_budget(budget);
    std::vector<uint8_t> flat(kSpan, 0);
    std::vector<bool> written(kSpan, false), allocated(kPages, false);
    for (int step = 0; step < 40; ++step) {
      uint64_t addr = rng() % kSpan;
      uint64_t len = 1 + rng() % std::min<uint64_t>(kSpan - addr, 3 * kPage);
      if (rng() % 8 == 0) {  // page-aligned ranges, released or written whole
        addr = (rng() % kPages) * kPage;
        len = (1 + rng() % (kPages - addr / kPage)) * kPage;
      }
      switch (rng() % 3) {
        case 0:
          write_random(mem, flat, written, addr, len, rng);
          for (uint64_t p = addr / kPage; p <= (addr + len - 1) / kPage; ++p) allocated[p] = true;
          break;
        case 1: {
          mem.release(addr, len);
          for (uint64_t p = 0; p < kPages; ++p) {
            bool inside = p * kPage >= addr && (p + 1) * kPage <= addr + len;
            bool touched = p * kPage < addr + len && addr < (p + 1) * kPage;
            if (inside) {
              freed_pages += allocated[p] ? 1 : 0;
              allocated[p] = false;
              for (uint64_t i = p * kPage; i < (p + 1) * kPage; ++i) written[i] = false;
            } else if (touched && allocated[p]) {
              ++kept_partial;
            }
          }
          break;
        }
        default: {
          SCOPED_TRACE(testing::Message() << "trial " << trial << " step " << step);
          bool complete = false;
          ASSERT_NO_FATAL_FAILURE(expect_reads_like(mem, flat, written, addr, len, &complete));
        }
      }
      uint64_t held = static_cast<uint64_t>(std::count(allocated.begin(), allocated.end(), true));
      ASSERT_EQ(mem.resident_bytes(), held * kPage) << "trial " << trial << " step " << step;
      ASSERT_EQ(*budget, kBudget - held) << "trial " << trial << " step " << step;
    }
  }
  EXPECT_GT(freed_pages, 300);
  EXPECT_GT(kept_partial, 300);
}

// A generated extent wholly inside a released range is dropped (its bytes read as never
// written and no longer count as readable); one reaching outside the range is kept.
TEST(SparseMemory, ReleaseDropsTheGeneratedExtentsWhollyInsideTheRange) {
  constexpr uint64_t kPage = SparseMemory::kPageBytes;
  SparseMemory m(1 << 20);
  m.add_generated(kPage, 2 * kPage, "1", fill_of(1));
  m.add_generated(4 * kPage, 2 * kPage, "2", fill_of(2));
  uint8_t x = 9;
  m.write(kPage + 10, &x, 1);  // a page over the first extent
  EXPECT_EQ(m.readable_bytes(), 5 * kPage);
  m.release(kPage, 4 * kPage);  // the first extent whole, the second in part
  EXPECT_EQ(m.resident_bytes(), 0u);
  EXPECT_EQ(m.readable_bytes(), 2 * kPage);
  uint8_t got = 0;
  uint64_t gap = 0;
  EXPECT_FALSE(m.read(kPage + 10, &got, 1, &gap));
  EXPECT_EQ(gap, kPage + 10);
  EXPECT_FALSE(m.read(2 * kPage + 5, &got, 1, &gap));
  ASSERT_TRUE(m.read(4 * kPage + 5, &got, 1, &gap));
  EXPECT_EQ(got, generated_byte(2, 5));
  m.release(0, 0);
  m.release(1 << 20, 1);  // out of range: nothing
  EXPECT_EQ(m.readable_bytes(), 2 * kPage);
}

// The same range added again with other data (another core's region with another seed) wins,
// as a write would; with the same key it is the same data and kept once.
TEST(SparseMemory, TheSameRangeWithAnotherKeyIsTheLaterData) {
  SparseMemory m(1 << 20);
  m.add_generated(100, 5000, "a", fill_of(1));
  m.add_generated(100, 5000, "a", fill_of(1));
  EXPECT_EQ(m.resident_bytes(), 0u);
  m.add_generated(100, 5000, "b", fill_of(2));
  std::vector<uint8_t> got(5000), want(5000);
  uint64_t gap = 0;
  ASSERT_TRUE(m.read(100, got.data(), got.size(), &gap));
  fill_of(2)(0, want.data(), want.size());
  EXPECT_EQ(got, want);
}

// random_bytes gives any byte range of random_fill's data, for every element type.
TEST(SparseMemory, SeededRegionDataFromAnyOffsetMatchesTheWholeFill) {
  std::mt19937_64 rng(7);
  for (int t = 0; t < kElemTypeCount; ++t) {
    Region r;
    r.dtype = static_cast<ElemType>(t);
    r.shape = {37, 5};
    r.seed = 0x1234567 + static_cast<uint64_t>(t);
    r.scale = 0.3f;
    std::vector<uint8_t> whole = Interpreter::random_fill(r, {}).data;
    for (int k = 0; k < 200; ++k) {
      uint64_t off = rng() % whole.size();
      uint64_t len = 1 + rng() % (whole.size() - off);
      std::vector<uint8_t> part(len);
      Interpreter::random_bytes(r.dtype, r.seed, r.scale, {}, off, part.data(), len);
      ASSERT_EQ(part, std::vector<uint8_t>(whole.begin() + static_cast<std::ptrdiff_t>(off),
                                           whole.begin() + static_cast<std::ptrdiff_t>(off + len)))
          << "type " << t << " offset " << off << " length " << len;
    }
  }
}

}  // namespace
}  // namespace tpu::isa
