// Program verifier: the rules of docs/isa.md that can be checked without running.
#include "isa/verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "arch/error.h"

namespace tpu::isa {

namespace {

struct TileShape {
  int64_t k, n, dtype;
};

class Verifier {
 public:
  Verifier(const Program& p, const arch::ArchConfig& a, const std::string& file)
      : p_(p), a_(a), file_(file), fifo_(a.mxu.count), active_(a.mxu.count) {}

  void run() {
    if (p_.arch_fingerprint != 0 && format_fingerprint(p_.arch_fingerprint) != a_.fingerprint) {
      throw InputError(SourceLocation{file_, p_.arch_line, 0}, ".arch",
                       fmt::format("the fingerprint of {} ({})", a_.name, a_.fingerprint),
                       fmt::format("{} (compiled for another architecture)",
                                   format_fingerprint(p_.arch_fingerprint)));
    }
    check_regions();
    for (idx_ = 0; idx_ < p_.code.size(); ++idx_) check(p_.code[idx_]);
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& expected,
                         const std::string& found) const {
    int line = idx_ < p_.lines.size() ? p_.lines[idx_] : 0;
    throw InputError(SourceLocation{file_, line, 0},
                     fmt::format("instruction {} ({}) {}", idx_,
                                 opcode_spec(p_.code[idx_].op).mnemonic, field),
                     expected, found);
  }

  void region_fail(const Region& r, const std::string& key, const std::string& expected,
                   const std::string& found) const {
    std::size_t i = static_cast<std::size_t>(&r - p_.regions.data());
    int line = i < p_.region_lines.size() ? p_.region_lines[i] : 0;
    throw InputError(SourceLocation{file_, line, 0}, "region " + r.name + " " + key, expected, found);
  }

  uint64_t space_size(Space s) const {
    if (s == Space::kUb) return ub_size();
    return s == Space::kHost ? (uint64_t{1} << 40) : static_cast<uint64_t>(a_.memory.bytes);
  }

  void check_regions() const {
    for (std::size_t i = 0; i < p_.regions.size(); ++i) {
      const Region& r = p_.regions[i];
      uint64_t size = space_size(r.space);
      if (r.addr > size || r.bytes() > size - r.addr) {
        region_fail(r, "addr", fmt::format("a range inside {} bytes of {} memory", size,
                                           kSpaceNames[static_cast<int>(r.space)]),
                    fmt::format("[{:#x}, {:#x})", r.addr, r.addr + r.bytes()));
      }
      if (r.role == RegionRole::kData && r.init == RegionInit::kNone) {
        region_fail(r, "init", "zero or random for a data region", "none");
      }
    }
    check_overlaps();
  }

  // Regions of one space must not overlap. Reported as a loop over every pair would: the
  // first region (in declaration order) that overlaps an earlier one, with the first such
  // earlier one. Found in O(n log n) (a program may hold kMaxRegions of them): until that
  // region, the regions seen are disjoint, so a new one overlaps one of them exactly when it
  // overlaps its neighbour on either side in address order.
  void check_overlaps() const {
    const std::vector<Region>& rs = p_.regions;
    auto overlap = [](const Region& a, const Region& b) {
      return a.space == b.space && a.addr < b.addr + b.bytes() && b.addr < a.addr + a.bytes();
    };
    std::map<std::pair<Space, uint64_t>, uint64_t> seen;  // (space, start) -> end, disjoint
    std::set<std::pair<Space, uint64_t>> points;           // empty regions: (space, addr)
    for (std::size_t i = 0; i < rs.size(); ++i) {
      const Region& r = rs[i];
      uint64_t end = r.addr + r.bytes();
      // An empty region overlaps a region it lies strictly inside (by the definition above).
      auto next = seen.lower_bound({r.space, r.addr});
      bool hit = next != seen.begin() && std::prev(next)->first.first == r.space &&
                 std::prev(next)->second > r.addr;
      if (r.bytes() > 0) {
        hit = hit || (next != seen.end() && next->first.first == r.space && next->first.second < end);
        auto point = points.upper_bound({r.space, r.addr});
        hit = hit || (point != points.end() && point->first == r.space && point->second < end);
      }
      if (hit) {
        for (std::size_t j = 0; j < i; ++j) {
          if (overlap(r, rs[j])) {
            region_fail(r, "addr", "a range not overlapping other regions", "an overlap with region " + rs[j].name);
          }
        }
      }
      if (r.bytes() > 0) {
        seen.emplace(std::make_pair(r.space, r.addr), end);
      } else {
        points.emplace(r.space, r.addr);
      }
    }
  }

  void range(const std::string& field, uint64_t addr, uint64_t rows, uint64_t stride,
             uint64_t row_bytes, uint64_t size, const char* mem) const {
    // Last byte touched: addr + (rows - 1) * stride + row_bytes; all terms < 2^41.
    uint64_t end = addr + (rows - 1) * stride + row_bytes;
    if (end > size) {
      fail(field, fmt::format("an access inside the {} ({} bytes)", mem, size),
           fmt::format("one ending at byte {}", end));
    }
  }

  void positive(const Instruction& in, Fid f) const {
    if (in.get(f) <= 0) fail(field_spec(f).name, "a value > 0", std::to_string(in.get(f)));
  }

  void mxu_index(const Instruction& in, Fid f) const {
    if (in.get(f) >= a_.mxu.count) {
      fail("mxu", fmt::format("an MXU index below mxu.count ({})", a_.mxu.count),
           std::to_string(in.get(f)));
    }
  }

  void mat_dtype(const Instruction& in, Fid f) const {
    auto d = static_cast<arch::DType>(in.get(f));
    if (!a_.supports(d)) {
      fail(field_spec(f).name, fmt::format("a type {} supports", a_.name),
           arch::dtype_name(d));
    }
  }

  uint64_t ub_size() const { return static_cast<uint64_t>(a_.unified_buffer.bytes); }
  uint64_t acc_rows() const { return static_cast<uint64_t>(a_.accumulators.entries); }

  void offchip(Space s) const {
    if (s == Space::kMem && a_.memory.kind == arch::MemoryKind::kNone) {
      fail("space", "host (this architecture has no local memory)", "mem");
    }
  }

  uint64_t ici_space(IciSpace s) const {
    if (s == IciSpace::kUb) return ub_size();
    offchip(Space::kMem);
    return space_size(Space::kMem);
  }

  void check(const Instruction& in) {
    switch (in.op) {
      case Opcode::kNop:
      case Opcode::kHalt:
        return;
      case Opcode::kSync:
        positive(in, Fid::kSync_units);
        return;
      case Opcode::kDmaLoad: {
        positive(in, Fid::kDmaLoad_rows);
        positive(in, Fid::kDmaLoad_row_bytes);
        auto s = static_cast<Space>(in.get(Fid::kDmaLoad_space));
        offchip(s);
        uint64_t rb = in.get(Fid::kDmaLoad_row_bytes);
        uint64_t ss = in.get(Fid::kDmaLoad_src_stride), us = in.get(Fid::kDmaLoad_ub_stride);
        range("src", in.get(Fid::kDmaLoad_src), in.get(Fid::kDmaLoad_rows), ss ? ss : rb, rb,
              space_size(s), s == Space::kUb ? "unified buffer" : kSpaceNames[static_cast<int>(s)]);
        range("ub", in.get(Fid::kDmaLoad_ub), in.get(Fid::kDmaLoad_rows), us ? us : rb, rb,
              ub_size(), "unified buffer");
        return;
      }
      case Opcode::kDmaStore: {
        positive(in, Fid::kDmaStore_rows);
        positive(in, Fid::kDmaStore_row_bytes);
        auto s = static_cast<Space>(in.get(Fid::kDmaStore_space));
        offchip(s);
        uint64_t rb = in.get(Fid::kDmaStore_row_bytes);
        uint64_t ds = in.get(Fid::kDmaStore_dst_stride), us = in.get(Fid::kDmaStore_ub_stride);
        range("dst", in.get(Fid::kDmaStore_dst), in.get(Fid::kDmaStore_rows), ds ? ds : rb, rb,
              space_size(s), s == Space::kUb ? "unified buffer" : kSpaceNames[static_cast<int>(s)]);
        range("ub", in.get(Fid::kDmaStore_ub), in.get(Fid::kDmaStore_rows), us ? us : rb, rb,
              ub_size(), "unified buffer");
        return;
      }
      case Opcode::kLoadWeights: {
        mxu_index(in, Fid::kLoadWeights_mxu);
        mat_dtype(in, Fid::kLoadWeights_dtype);
        int64_t k = in.get(Fid::kLoadWeights_k), n = in.get(Fid::kLoadWeights_n);
        if (k < 1 || k > a_.mxu.rows) {
          fail("k", fmt::format("a tile height in [1, mxu.rows = {}]", a_.mxu.rows),
               std::to_string(k));
        }
        if (n < 1 || n > a_.mxu.cols) {
          fail("n", fmt::format("a tile width in [1, mxu.cols = {}]", a_.mxu.cols),
               std::to_string(n));
        }
        // The source holds k rows of n values, or (transpose=1) n rows of k values, or
        // (diag=1) one row of k values.
        bool transpose = in.get(Fid::kLoadWeights_transpose) != 0;
        bool diag = in.get(Fid::kLoadWeights_diag) != 0;
        if (diag && (transpose || n != k)) {
          fail("diag", "a diagonal tile with n = k and transpose=0",
               fmt::format("k={} n={} transpose={}", k, n, transpose ? 1 : 0));
        }
        uint64_t src_rows = diag ? 1 : static_cast<uint64_t>(transpose ? n : k);
        uint64_t rb =
            static_cast<uint64_t>(transpose ? k : n) * mat_bytes(in.get(Fid::kLoadWeights_dtype));
        uint64_t st = in.get(Fid::kLoadWeights_stride);
        bool from_ub = in.get(Fid::kLoadWeights_space) == static_cast<int>(WeightSource::kUb);
        if (!from_ub) offchip(Space::kMem);
        range("src", in.get(Fid::kLoadWeights_src), src_rows, st ? st : rb, rb,
              from_ub ? ub_size() : space_size(Space::kMem), from_ub ? "unified buffer" : "mem");
        auto& q = fifo_[in.get(Fid::kLoadWeights_mxu)];
        q.push_back({k, n, in.get(Fid::kLoadWeights_dtype)});
        if (static_cast<int64_t>(q.size()) > a_.mxu.weight_fifo_depth) {
          fail("mxu", fmt::format("at most mxu.weight_fifo_depth = {} tiles loaded and not yet "
                                  "popped by a matmul",
                                  a_.mxu.weight_fifo_depth),
               fmt::format("{} tiles", q.size()));
        }
        return;
      }
      case Opcode::kMatmul:
        check_matmul(in);
        return;
      case Opcode::kActivate:
        check_activate(in);
        return;
      case Opcode::kPool:
        check_pool(in);
        return;
      case Opcode::kVector: {
        mat_dtype(in, Fid::kVector_dtype);
        positive(in, Fid::kVector_count);
        uint64_t bytes =
            static_cast<uint64_t>(in.get(Fid::kVector_count)) * mat_bytes(in.get(Fid::kVector_dtype));
        range("a", in.get(Fid::kVector_a), 1, 0, bytes, ub_size(), "unified buffer");
        if (is_binary(static_cast<VectorOp>(in.get(Fid::kVector_op)))) {
          range("b", in.get(Fid::kVector_b), 1, 0, bytes, ub_size(), "unified buffer");
        }
        range("dst", in.get(Fid::kVector_dst), 1, 0, bytes, ub_size(), "unified buffer");
        if (in.get(Fid::kVector_dtype) == static_cast<int>(MatType::kInt8) &&
            vector_activation(static_cast<VectorOp>(in.get(Fid::kVector_op))) != Activation::kNone) {
          fail("op", "add|sub|mul|max|min|relu|copy for int8 (int8 functions: rowop kind=lut)",
               kVectorOpNames[in.get(Fid::kVector_op)]);
        }
        return;
      }
      case Opcode::kRowOp:
        check_rowop(in);
        return;
      case Opcode::kSend:
      case Opcode::kRecv: {
        // Pod dimensions and neighbours are checked against the pod when it is built.
        bool send = in.op == Opcode::kSend;
        Fid bytes_f = send ? Fid::kSend_bytes : Fid::kRecv_bytes;
        positive(in, bytes_f);
        auto sp = static_cast<IciSpace>(in.get(send ? Fid::kSend_space : Fid::kRecv_space));
        uint64_t size = ici_space(sp);
        uint64_t bytes = in.get(bytes_f);
        if (send) range("src", in.get(Fid::kSend_src), 1, 0, bytes, size, kIciSpaceNames[static_cast<int>(sp)]);
        range("dst", in.get(send ? Fid::kSend_dst : Fid::kRecv_dst), 1, 0, bytes, size,
              kIciSpaceNames[static_cast<int>(sp)]);
        return;
      }
      case Opcode::kCollective: {
        positive(in, Fid::kCollective_count);
        positive(in, Fid::kCollective_group);
        auto sp = static_cast<IciSpace>(in.get(Fid::kCollective_space));
        uint64_t bytes = in.get(Fid::kCollective_count) *
                         static_cast<uint64_t>(coll_type_bytes(in.get(Fid::kCollective_dtype)));
        range("addr", in.get(Fid::kCollective_addr), 1, 0, bytes, ici_space(sp),
              kIciSpaceNames[static_cast<int>(sp)]);
        return;
      }
      case Opcode::kCount:
        break;
    }
    fail("opcode", "a known opcode", "an unknown one");
  }

  void check_matmul(const Instruction& in) {
    mxu_index(in, Fid::kMatmul_mxu);
    mat_dtype(in, Fid::kMatmul_dtype);
    positive(in, Fid::kMatmul_rows);
    int64_t mxu = in.get(Fid::kMatmul_mxu);
    if (in.get(Fid::kMatmul_pop)) {
      if (fifo_[mxu].empty()) {
        fail("pop", "a tile in the weight FIFO (load_weights before pop=1)", "an empty FIFO");
      }
      active_[mxu] = fifo_[mxu].front();
      fifo_[mxu].pop_front();
    }
    if (!active_[mxu]) fail("pop", "1 (the array holds no weights yet)", "0");
    const TileShape& t = *active_[mxu];
    int64_t k = in.get(Fid::kMatmul_k), n = in.get(Fid::kMatmul_n);
    if (k != t.k || n != t.n) {
      fail("k", fmt::format("the loaded tile's shape k={} n={}", t.k, t.n),
           fmt::format("k={} n={}", k, n));
    }
    if (in.get(Fid::kMatmul_dtype) != t.dtype) {
      fail("dtype", fmt::format("the loaded tile's type {}", kMatTypeNames[t.dtype]),
           kMatTypeNames[in.get(Fid::kMatmul_dtype)]);
    }
    uint64_t rows = in.get(Fid::kMatmul_rows);
    uint64_t acc = in.get(Fid::kMatmul_acc);
    if (acc + rows > acc_rows()) {
      fail("acc", fmt::format("rows inside accumulators.entries ({})", acc_rows()),
           fmt::format("rows {} to {}", acc, acc + rows - 1));
    }
    int eb = mat_bytes(in.get(Fid::kMatmul_dtype));
    uint64_t vec_bytes = static_cast<uint64_t>(k) * eb;
    uint64_t stride = in.get(Fid::kMatmul_ub_stride);
    if (stride == 0) stride = vec_bytes;
    int64_t pad = in.get(Fid::kMatmul_pad);
    if (in.get(Fid::kMatmul_dtype) == static_cast<int>(MatType::kInt8)) {
      if (pad < -128 || pad > 127) fail("pad", "an int8 value in [-128, 127]", std::to_string(pad));
    } else if (pad != 0) {
      fail("pad", "0 for bf16", std::to_string(pad));
    }
    if (in.get(Fid::kMatmul_out_w) == 0) {
      range("ub", in.get(Fid::kMatmul_ub), rows, stride, vec_bytes, ub_size(), "unified buffer");
    } else {
      positive(in, Fid::kMatmul_in_h);
      positive(in, Fid::kMatmul_in_w);
      positive(in, Fid::kMatmul_stride_h);
      positive(in, Fid::kMatmul_stride_w);
      uint64_t pixels = static_cast<uint64_t>(in.get(Fid::kMatmul_in_h)) * in.get(Fid::kMatmul_in_w);
      range("ub", in.get(Fid::kMatmul_ub), pixels, stride, vec_bytes, ub_size(), "unified buffer");
    }
  }

  void check_activate(const Instruction& in) {
    mxu_index(in, Fid::kActivate_mxu);
    mat_dtype(in, Fid::kActivate_mode);
    positive(in, Fid::kActivate_rows);
    positive(in, Fid::kActivate_n);
    int64_t n = in.get(Fid::kActivate_n);
    if (n > a_.mxu.cols) {
      fail("n", fmt::format("at most mxu.cols ({})", a_.mxu.cols), std::to_string(n));
    }
    uint64_t rows = in.get(Fid::kActivate_rows), acc = in.get(Fid::kActivate_acc);
    if (acc + rows > acc_rows()) {
      fail("acc", fmt::format("rows inside accumulators.entries ({})", acc_rows()),
           fmt::format("rows {} to {}", acc, acc + rows - 1));
    }
    bool int8 = in.get(Fid::kActivate_mode) == static_cast<int>(MatType::kInt8);
    int out_bytes = int8 ? 1 : (in.get(Fid::kActivate_out_fp32) ? 4 : 2);
    uint64_t rb = static_cast<uint64_t>(n) * out_bytes;
    uint64_t st = in.get(Fid::kActivate_ub_stride);
    range("ub", in.get(Fid::kActivate_ub), rows, st ? st : rb, rb, ub_size(), "unified buffer");
    if (int8) {
      if (in.get(Fid::kActivate_func) != 0) {
        fail("func", "none in int8 mode (clamp with act_min/act_max)",
             kActivationNames[in.get(Fid::kActivate_func)]);
      }
      if (in.get(Fid::kActivate_out_fp32)) fail("out_fp32", "0 in int8 mode", "1");
      if (in.get(Fid::kActivate_bias)) fail("bias", "0 in int8 mode (bias is in params)", "1");
      int64_t lo = in.get(Fid::kActivate_act_min), hi = in.get(Fid::kActivate_act_max);
      int64_t zp = in.get(Fid::kActivate_out_zp);
      if (lo < -128 || hi > 127 || lo > hi) {
        fail("act_min", "-128 <= act_min <= act_max <= 127", fmt::format("[{}, {}]", lo, hi));
      }
      if (zp < -128 || zp > 127) fail("out_zp", "a value in [-128, 127]", std::to_string(zp));
      range("params", in.get(Fid::kActivate_params), 1, 0, static_cast<uint64_t>(n) * 12,
            ub_size(), "unified buffer");
    } else if (in.get(Fid::kActivate_bias)) {
      range("params", in.get(Fid::kActivate_params), 1, 0, static_cast<uint64_t>(n) * 4,
            ub_size(), "unified buffer");
    }
  }

  void check_pool(const Instruction& in) {
    mat_dtype(in, Fid::kPool_dtype);
    for (Fid f : {Fid::kPool_in_h, Fid::kPool_in_w, Fid::kPool_channels, Fid::kPool_win_h,
                  Fid::kPool_win_w, Fid::kPool_stride_h, Fid::kPool_stride_w, Fid::kPool_out_h,
                  Fid::kPool_out_w}) {
      positive(in, f);
    }
    int eb = mat_bytes(in.get(Fid::kPool_dtype));
    uint64_t c = in.get(Fid::kPool_channels);
    uint64_t in_bytes = static_cast<uint64_t>(in.get(Fid::kPool_in_h)) * in.get(Fid::kPool_in_w) * c * eb;
    uint64_t out_bytes =
        static_cast<uint64_t>(in.get(Fid::kPool_out_h)) * in.get(Fid::kPool_out_w) * c * eb;
    range("src", in.get(Fid::kPool_src), 1, 0, in_bytes, ub_size(), "unified buffer");
    range("dst", in.get(Fid::kPool_dst), 1, 0, out_bytes, ub_size(), "unified buffer");
  }

  void check_rowop(const Instruction& in) {
    mat_dtype(in, Fid::kRowOp_dtype);
    positive(in, Fid::kRowOp_rows);
    positive(in, Fid::kRowOp_cols);
    auto kind = static_cast<RowOpKind>(in.get(Fid::kRowOp_kind));
    bool int8 = in.get(Fid::kRowOp_dtype) == static_cast<int>(MatType::kInt8);
    if (kind == RowOpKind::kLut && !int8) fail("dtype", "int8 for kind=lut", "bf16");
    uint64_t rows = in.get(Fid::kRowOp_rows), cols = in.get(Fid::kRowOp_cols);
    if (rows * cols > kRowOpMaxElements) {
      fail("rows", fmt::format("rows x cols <= {}", kRowOpMaxElements),
           fmt::format("{} x {} = {}", rows, cols, rows * cols));
    }
    uint64_t bytes = rows * cols * (int8 ? 1 : 2);
    uint64_t src = in.get(Fid::kRowOp_src), dst = in.get(Fid::kRowOp_dst);
    range("src", src, 1, 0, bytes, ub_size(), "unified buffer");
    range("dst", dst, 1, 0, bytes, ub_size(), "unified buffer");
    if (src != dst && src < dst + bytes && dst < src + bytes) {
      fail("dst", "src itself (in place) or a range disjoint from src",
           fmt::format("a partial overlap ([{:#x}, {:#x}) and [{:#x}, {:#x}))", src, src + bytes,
                       dst, dst + bytes));
    }
    uint64_t pb = rowop_params_bytes(kind, int8, cols);
    if (pb > 0) range("params", in.get(Fid::kRowOp_params), 1, 0, pb, ub_size(), "unified buffer");
  }

  const Program& p_;
  const arch::ArchConfig& a_;
  std::string file_;
  std::size_t idx_ = 0;
  std::vector<std::deque<TileShape>> fifo_;
  std::vector<std::optional<TileShape>> active_;
};

}  // namespace

void verify_program(const Program& p, const arch::ArchConfig& arch, const std::string& file) {
  Verifier(p, arch, file).run();
}

}  // namespace tpu::isa
