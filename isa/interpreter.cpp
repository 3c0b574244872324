// Golden interpreter: instruction semantics of docs/isa.md on top of the reference kernels.
#include "isa/interpreter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "arch/error.h"
#include "isa/kernels.h"
#include "isa/verifier.h"

namespace tpu::isa {

namespace {

template <class T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // hosts are little-endian (x86-64, aarch64)
  return v;
}

// Per-thread working buffers of the instructions that move whole operands (vector, pool,
// matmul gathers, DMA rows), reused so that an operand costs no allocation, zero-fill or page
// faults per instruction. A buffer grown past kKeepBytes is released after its instruction,
// so a rare large operand does not stay resident for the rest of the run. Nothing here
// waits, so the SystemC threads of one OS thread never interleave inside an instruction.
struct Scratch {
  static constexpr std::size_t kKeepBytes = std::size_t{16} << 20;
  std::vector<uint8_t> a8, b8, o8;
  std::vector<uint16_t> a16, b16, o16;

  template <class T>
  static void drop_if_large(std::vector<T>& v) {
    if (v.capacity() * sizeof(T) > kKeepBytes) std::vector<T>().swap(v);
  }
  void trim() {
    drop_if_large(a8);
    drop_if_large(b8);
    drop_if_large(o8);
    drop_if_large(a16);
    drop_if_large(b16);
    drop_if_large(o16);
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <class T>
T* grow(std::vector<T>& v, uint64_t elems) {
  if (v.size() < elems) v.resize(static_cast<std::size_t>(elems));
  return v.data();
}

}  // namespace

OffChipMemory::OffChipMemory(const arch::ArchConfig& arch)
    : mem(static_cast<uint64_t>(arch.memory.bytes)),
      host(uint64_t{1} << 40),
      pages_left(std::make_shared<uint64_t>(kMaxStoredBytes / SparseMemory::kPageBytes)) {
  mem.share_budget(pages_left);
  host.share_budget(pages_left);
}

namespace {

std::string stored_limit() {
  return fmt::format("at most {} bytes of off-chip, host and unified-buffer memory written by a "
                     "functional run (use --no-functional)",
                     kMaxStoredBytes);
}

}  // namespace

Interpreter::Interpreter(const arch::ArchConfig& arch, Program program, std::string file,
                         std::shared_ptr<OffChipMemory> offchip)
    : Interpreter(arch, std::optional<Program>(std::move(program)), nullptr, std::move(file),
                  std::move(offchip)) {}

Interpreter::Interpreter(const arch::ArchConfig& arch, const Program* program, std::string file,
                         std::shared_ptr<OffChipMemory> offchip)
    : Interpreter(arch, std::nullopt, program, std::move(file), std::move(offchip)) {}

Interpreter::Interpreter(const arch::ArchConfig& arch, std::optional<Program> own,
                         const Program* borrowed, std::string file,
                         std::shared_ptr<OffChipMemory> offchip)
    : arch_(arch),
      own_(std::move(own)),
      program_(own_ ? *own_ : *borrowed),
      file_(std::move(file)),
      offchip_(offchip ? std::move(offchip) : std::make_shared<OffChipMemory>(arch)),
      ub_(static_cast<uint64_t>(arch.unified_buffer.bytes)),
      mxus_(static_cast<std::size_t>(arch.mxu.count)) {
  numerics_.flush_subnormals = arch.numerics.flush_subnormals;
  ub_.share_budget(offchip_->pages_left);
  verify_program(program_, arch_, file_);
  // Bound what a functional run may allocate, whatever the config or program says.
  // The cores of a chip share the off-chip memory; their accumulators are bounded together.
  uint64_t cells = static_cast<uint64_t>(arch.accumulators.entries) *
                   static_cast<uint64_t>(arch.mxu.cols) * static_cast<uint64_t>(arch.mxu.count);
  if (cells > kMaxAccumulatorValues || offchip_->accumulator_values > kMaxAccumulatorValues - cells) {
    throw InputError(SourceLocation{file_, 0, 0}, "accumulators.entries",
                     fmt::format("at most {} accumulator values per chip (entries x mxu.cols x "
                                 "mxu.count x the cores used) for a functional run; use --no-functional",
                                 kMaxAccumulatorValues),
                     fmt::format("{}", offchip_->accumulator_values + cells));
  }
  offchip_->accumulator_values += cells;
  region_index_.reserve(program_.regions.size());
  for (std::size_t i = 0; i < program_.regions.size(); ++i) region_index_.emplace(program_.regions[i].name, i);
  uint64_t data = 0;
  for (const Region& r : program_.regions) data += r.init == RegionInit::kRandom ? 0 : r.bytes();
  if (data > kMaxRegionDataBytes) {
    throw InputError(SourceLocation{file_, 0, 0}, "regions",
                     fmt::format("at most {} bytes of region data other than init=random (generated "
                                 "when read) for a functional run; use --no-functional",
                                 kMaxRegionDataBytes),
                     fmt::format("{} bytes", data));
  }
}

void Interpreter::fail(const std::string& field, const std::string& expected,
                       const std::string& found) const {
  int line = pc_ < program_.lines.size() ? program_.lines[pc_] : 0;
  throw InputError(SourceLocation{file_, line, 0},
                   fmt::format("instruction {} ({}) {}", pc_,
                               opcode_spec(program_.code[pc_].op).mnemonic, field),
                   expected, found);
}

namespace {

// Element i of a seeded region, as its bytes (random_bytes below).
template <class T, class F>
void fill_elements(uint64_t seed, uint64_t first, uint64_t count, uint8_t* out, F value) {
  constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
  uint64_t state = seed + first * kGamma;
  for (uint64_t k = 0; k < count; ++k) {
    T v = value(splitmix64(state));  // advances state by kGamma: element first + k
    std::memcpy(out + k * sizeof(T), &v, sizeof(T));
  }
}

}  // namespace

void Interpreter::random_bytes(ElemType dtype, uint64_t seed, float scale, const NumericsOptions& opt,
                               uint64_t offset, uint8_t* out, uint64_t len) {
  // Element i is the (i + 1)-th output of a splitmix64 stream from the seed: computed
  // directly from i, so any byte range is produced without the ones before it.
  auto eb = static_cast<uint64_t>(kElemTypeBytes[static_cast<int>(dtype)]);
  // Uniform in [0, 1) from the top 24 bits: exact in fp32.
  auto unit = [](uint64_t x) { return static_cast<float>(x >> 40) / 16777216.0f; };
  auto elements = [&](uint64_t first, uint64_t count, uint8_t* to) {
    switch (dtype) {
      case ElemType::kInt8:
        fill_elements<int8_t>(seed, first, count, to,
                              [](uint64_t x) { return static_cast<int8_t>(static_cast<int>(x % 255) - 127); });
        break;
      case ElemType::kInt32:
        fill_elements<int32_t>(seed, first, count, to,
                               [](uint64_t x) { return static_cast<int32_t>(x % 65536) - 32768; });
        break;
      case ElemType::kBf16:
        fill_elements<uint16_t>(seed, first, count, to, [&](uint64_t x) {
          return fp32_to_bf16((unit(x) * 4.0f - 2.0f) * scale, opt);
        });
        break;
      case ElemType::kFp32:
        fill_elements<float>(seed, first, count, to, [&](uint64_t x) { return (unit(x) * 4.0f - 2.0f) * scale; });
        break;
    }
  };
  // A partial element at either end goes through a scratch element; whole ones straight out.
  uint64_t end = offset + len;
  uint64_t first = (offset + eb - 1) / eb, last = end / eb;  // whole elements [first, last)
  if (first >= last) {  // inside one element (or two partial ones)
    for (uint64_t i = offset / eb; i * eb < end; ++i) {
      uint8_t v[4];
      elements(i, 1, v);
      uint64_t lo = std::max(offset, i * eb), hi = std::min(end, (i + 1) * eb);
      std::memcpy(out + (lo - offset), v + (lo - i * eb), hi - lo);
    }
    return;
  }
  if (offset % eb) {
    uint8_t v[4];
    elements(offset / eb, 1, v);
    std::memcpy(out, v + offset % eb, first * eb - offset);
  }
  elements(first, last - first, out + (first * eb - offset));
  if (end % eb) {
    uint8_t v[4];
    elements(last, 1, v);
    std::memcpy(out + (last * eb - offset), v, end % eb);
  }
}

NpyArray Interpreter::random_fill(const Region& r, const NumericsOptions& opt) {
  NpyArray a;
  a.dtype = r.dtype;
  a.shape = r.shape;
  a.data.resize(r.bytes());
  random_bytes(r.dtype, r.seed, r.scale, opt, 0, a.data.data(), a.data.size());
  return a;
}

const Region* Interpreter::region(const std::string& name) const {
  auto it = region_index_.find(name);
  return it == region_index_.end() ? nullptr : &program_.regions[it->second];
}

void Interpreter::set_input(const std::string& name, const NpyArray& data) {
  const Region* r = region(name);
  auto fail_input = [&](const std::string& expected, const std::string& found) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--input " + name, expected, found);
  };
  if (!r) fail_input("the name of a region of the program", "no region of that name");
  if (r->role != RegionRole::kInput) {
    fail_input("a region with role=input", kRegionRoleNames[static_cast<int>(r->role)]);
  }
  if (data.dtype != r->dtype) {
    fail_input(fmt::format("dtype {} ({})", kElemTypeNames[static_cast<int>(r->dtype)],
                           npy_descr(r->dtype)),
               kElemTypeNames[static_cast<int>(data.dtype)]);
  }
  if (data.shape != r->shape) {
    auto fmt_shape = [](const std::vector<uint64_t>& s) {
      return s.empty() ? std::string("() (a scalar)") : fmt::format("{}", fmt::join(s, "x"));
    };
    fail_input("shape " + fmt_shape(r->shape), "shape " + fmt_shape(data.shape));
  }
  inputs_[name] = data;
}

void Interpreter::run() {
  init_regions();
  for (std::size_t i = 0; i < program_.code.size(); ++i) {
    execute_at(i);
    if (program_.code[i].op == Opcode::kHalt) break;
  }
}

void Interpreter::execute_at(std::size_t index) {
  pc_ = index;
  const Instruction& in = program_.code[pc_];
  ++stats_.executed[static_cast<int>(in.op)];
  try {
    execute(in);
    scratch().trim();
    if (after_execute_) after_execute_(index);
  } catch (const SparseMemory::Full&) {
    fail("write", stored_limit(), "a write past it");
  }
}

void Interpreter::init_regions() {
  for (const Region& r : program_.regions) {
    SparseMemory& m = space(r.space);
    try {
      if (auto it = inputs_.find(r.name); it != inputs_.end()) {
        m.write(r.addr, it->second.data.data(), it->second.data.size());
      } else if (r.init == RegionInit::kValues) {
        m.write(r.addr, r.values.data(), r.values.size());
      } else if (r.init == RegionInit::kRandom) {
        // Generated when read, stored only where written over: a read-only random region (a
        // weight, a training step's seeded operand) costs no memory.
        ElemType dtype = r.dtype;
        uint64_t seed = r.seed;
        float scale = r.scale;
        NumericsOptions opt = numerics_;
        uint32_t scale_bits = 0;
        std::memcpy(&scale_bits, &scale, 4);
        // Exactly what the bytes depend on: the same key means the same data.
        std::string key = fmt::format("{}/{}/{:08x}/{}", static_cast<int>(dtype), seed, scale_bits,
                                      opt.flush_subnormals);
        m.add_generated(r.addr, r.bytes(), key, [=](uint64_t offset, uint8_t* out, uint64_t len) {
          random_bytes(dtype, seed, scale, opt, offset, out, len);
        });
      } else if (r.init == RegionInit::kZero) {
        std::vector<uint8_t> zeros(static_cast<std::size_t>(std::min<uint64_t>(r.bytes(), uint64_t{1} << 20)), 0);
        for (uint64_t at = 0; at < r.bytes(); at += zeros.size()) {
          m.write(r.addr + at, zeros.data(), std::min<uint64_t>(zeros.size(), r.bytes() - at));
        }
      } else if (r.role == RegionRole::kInput) {
        throw InputError(SourceLocation{file_, 0, 0}, "region " + r.name,
                         "data for the input (--input " + r.name + "=FILE.npy, or init= in the program)",
                         "none");
      }
    } catch (const SparseMemory::Full&) {
      throw InputError(SourceLocation{file_, 0, 0}, "region " + r.name, stored_limit(),
                       fmt::format("{} more bytes", r.bytes()));
    }
  }
  std::size_t cells = static_cast<std::size_t>(arch_.accumulators.entries * arch_.mxu.cols);
  for (Mxu& m : mxus_) {
    m.acc_i32.reset();
    m.acc_f32.reset();
    m.tag.assign(cells, kUnwritten);
  }
}

void Interpreter::check_readable(const SparseMemory& m, uint64_t addr, uint64_t len,
                                 const char* field) const {
  if (len <= m.readable_bytes()) return;
  // More bytes than the memory holds written pages: some byte was never written. Find the
  // first in chunks rather than allocating the whole length (a collective's count can name
  // gigabytes).
  uint64_t bad = 0;
  std::vector<uint8_t> chunk(static_cast<std::size_t>(std::min<uint64_t>(len, uint64_t{1} << 20)));
  for (uint64_t at = 0; at < len; at += chunk.size()) {
    if (!m.read(addr + at, chunk.data(), std::min<uint64_t>(chunk.size(), len - at), &bad)) {
      fail(field, "bytes written before they are read", fmt::format("byte {:#x} never written", bad));
    }
  }
}

void Interpreter::read_into(const SparseMemory& m, uint64_t addr, uint64_t len, const char* field,
                            void* dst) const {
  uint64_t bad = 0;
  if (!m.read(addr, dst, len, &bad)) {
    fail(field, "bytes written before they are read", fmt::format("byte {:#x} never written", bad));
  }
}

std::vector<uint8_t> Interpreter::read(const SparseMemory& m, uint64_t addr, uint64_t len,
                                       const char* field) const {
  check_readable(m, addr, len, field);
  std::vector<uint8_t> out(len);
  read_into(m, addr, len, field, out.data());
  return out;
}

template <class T>
const T* Interpreter::read_scratch(std::vector<T>& buf, const SparseMemory& m, uint64_t addr,
                                   uint64_t len, const char* field) const {
  check_readable(m, addr, len, field);
  T* p = grow(buf, (len + sizeof(T) - 1) / sizeof(T));
  read_into(m, addr, len, field, p);
  return p;
}

std::vector<uint8_t> Interpreter::read_bytes(IciSpace s, uint64_t addr, uint64_t len) const {
  return read(s == IciSpace::kUb ? ub_ : offchip_->mem, addr, len, "addr");
}

void Interpreter::write_bytes(IciSpace s, uint64_t addr, const uint8_t* data, uint64_t len) {
  try {
    (s == IciSpace::kUb ? ub_ : offchip_->mem).write(addr, data, len);
  } catch (const SparseMemory::Full&) {
    throw InputError(SourceLocation{file_, 0, 0}, "data received over the ICI", stored_limit(),
                     fmt::format("{} more bytes at {:#x}", len, addr));
  }
}

void Interpreter::execute(const Instruction& in) {
  switch (in.op) {
    case Opcode::kDmaLoad:
      dma(in, true);
      break;
    case Opcode::kDmaStore:
      dma(in, false);
      break;
    case Opcode::kLoadWeights:
      load_weights(in);
      break;
    case Opcode::kMatmul:
      matmul(in);
      break;
    case Opcode::kActivate:
      activate(in);
      break;
    case Opcode::kPool:
      pool(in);
      break;
    case Opcode::kVector:
      vector(in);
      break;
    case Opcode::kRowOp:
      rowop(in);
      break;
    case Opcode::kCollective: {
      // Alone, a chip is a pod of one: every collective leaves the buffer as it is (it must
      // have been written). In a pod the fabric moves the data (sim/pod/pod_sim.cpp).
      auto sp = static_cast<IciSpace>(in.get(Fid::kCollective_space));
      read_bytes(sp, in.get(Fid::kCollective_addr),
                 in.get(Fid::kCollective_count) * static_cast<uint64_t>(coll_type_bytes(in.get(Fid::kCollective_dtype))));
      break;
    }
    case Opcode::kSend:
    case Opcode::kRecv:
      fail("dim", "a neighbouring chip (send and recv run in a pod: tpusim run --pod)", "a single chip");
    default:  // nop, sync: no functional effect
      break;
  }
}

void Interpreter::dma(const Instruction& in, bool load) {
  Fid f_space = load ? Fid::kDmaLoad_space : Fid::kDmaStore_space;
  SparseMemory& off = space(static_cast<Space>(in.get(f_space)));
  uint64_t rows = in.get(load ? Fid::kDmaLoad_rows : Fid::kDmaStore_rows);
  uint64_t rb = in.get(load ? Fid::kDmaLoad_row_bytes : Fid::kDmaStore_row_bytes);
  uint64_t off_addr = in.get(load ? Fid::kDmaLoad_src : Fid::kDmaStore_dst);
  uint64_t off_stride = in.get(load ? Fid::kDmaLoad_src_stride : Fid::kDmaStore_dst_stride);
  uint64_t ub_addr = in.get(load ? Fid::kDmaLoad_ub : Fid::kDmaStore_ub);
  uint64_t ub_stride = in.get(load ? Fid::kDmaLoad_ub_stride : Fid::kDmaStore_ub_stride);
  if (off_stride == 0) off_stride = rb;
  if (ub_stride == 0) ub_stride = rb;
  std::vector<uint8_t>& row = scratch().a8;
  for (uint64_t r = 0; r < rows; ++r) {
    if (load) {
      const uint8_t* bytes = read_scratch(row, off, off_addr + r * off_stride, rb, "src");
      ub_.write(ub_addr + r * ub_stride, bytes, rb);
    } else {
      const uint8_t* bytes = read_scratch(row, ub_, ub_addr + r * ub_stride, rb, "ub");
      off.write(off_addr + r * off_stride, bytes, rb);
    }
  }
  stats_.dma_bytes += rows * rb;
}

void Interpreter::load_weights(const Instruction& in) {
  Tile t;
  t.k = in.get(Fid::kLoadWeights_k);
  t.n = in.get(Fid::kLoadWeights_n);
  t.dtype = in.get(Fid::kLoadWeights_dtype);
  const int eb = mat_bytes(t.dtype);
  uint64_t rb = static_cast<uint64_t>(t.n) * eb;
  bool transpose = in.get(Fid::kLoadWeights_transpose) != 0;
  // Source rows: k rows of n values, or with transpose n rows of k values.
  bool diag = in.get(Fid::kLoadWeights_diag) != 0;
  int64_t src_rows = diag ? 1 : transpose ? t.n : t.k;
  uint64_t src_rb = static_cast<uint64_t>(transpose ? t.k : t.n) * eb;
  uint64_t stride = in.get(Fid::kLoadWeights_stride);
  if (stride == 0) stride = src_rb;
  bool from_ub = in.get(Fid::kLoadWeights_space) == static_cast<int>(WeightSource::kUb);
  const SparseMemory& src = from_ub ? ub_ : offchip_->mem;
  uint64_t base = in.get(Fid::kLoadWeights_src);
  // The tile's bytes: int8 values, or bf16 bit patterns in 16-bit words for the kernel.
  const uint64_t tile_bytes = static_cast<uint64_t>(t.k) * rb;
  uint8_t* dst;
  if (eb == 1) {
    t.data.resize(static_cast<std::size_t>(tile_bytes));
    dst = t.data.data();
  } else {
    t.data16.resize(static_cast<std::size_t>(tile_bytes / 2));
    dst = reinterpret_cast<uint8_t*>(t.data16.data());
  }
  std::vector<uint8_t>& scratch_row = scratch().a8;
  for (int64_t r = 0; r < src_rows; ++r) {
    if (!diag && !transpose) {
      read_into(src, base + r * stride, src_rb, "src", dst + r * rb);
      continue;
    }
    const uint8_t* row = read_scratch(scratch_row, src, base + r * stride, src_rb, "src");
    if (diag) {
      // w[i][i] = src[i], zeros elsewhere (n = k).
      for (int64_t i = 0; i < t.k; ++i) std::memcpy(dst + i * rb + i * eb, row + i * eb, eb);
      continue;
    }
    // Source row r is tile column r: w[kk][r] = src[r][kk].
    for (int64_t kk = 0; kk < t.k; ++kk) {
      std::memcpy(dst + kk * rb + r * eb, row + kk * eb, eb);
    }
  }
  stats_.weight_bytes += tile_bytes;
  mxus_[in.get(Fid::kLoadWeights_mxu)].fifo.push_back(std::move(t));
}

void Interpreter::matmul(const Instruction& in) {
  Mxu& m = mxus_[in.get(Fid::kMatmul_mxu)];
  if (in.get(Fid::kMatmul_pop)) {
    m.active = std::move(m.fifo.front());
    m.fifo.pop_front();
  }
  const Tile& t = *m.active;  // presence and shape checked by the verifier
  int64_t rows = in.get(Fid::kMatmul_rows);
  int eb = mat_bytes(t.dtype);
  uint64_t vec_bytes = static_cast<uint64_t>(t.k) * eb;
  uint64_t stride = in.get(Fid::kMatmul_ub_stride);
  if (stride == 0) stride = vec_bytes;
  uint64_t ub = in.get(Fid::kMatmul_ub);
  int64_t out_w = in.get(Fid::kMatmul_out_w);

  // Gather the M x K input block through the addressing mode (no im2col copy in the UB:
  // this temporary is the stream of vectors entering the array). A padded position enters
  // as the pad value (int8) or +0.0 (bf16).
  const uint64_t block_bytes = static_cast<uint64_t>(rows) * vec_bytes;
  uint8_t* a = eb == 1 ? grow(scratch().a8, block_bytes)
                       : reinterpret_cast<uint8_t*>(grow(scratch().a16, block_bytes / 2));
  const int pad = eb == 1 ? static_cast<int>(static_cast<int8_t>(in.get(Fid::kMatmul_pad))) : 0;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = a + r * vec_bytes;
    if (out_w == 0) {
      read_into(ub_, ub + r * stride, vec_bytes, "ub", dst);
      continue;
    }
    int64_t oh = r / out_w, ow = r % out_w;
    int64_t ih = oh * in.get(Fid::kMatmul_stride_h) + in.get(Fid::kMatmul_off_h);
    int64_t iw = ow * in.get(Fid::kMatmul_stride_w) + in.get(Fid::kMatmul_off_w);
    if (ih >= 0 && ih < in.get(Fid::kMatmul_in_h) && iw >= 0 && iw < in.get(Fid::kMatmul_in_w)) {
      uint64_t pixel = static_cast<uint64_t>(ih * in.get(Fid::kMatmul_in_w) + iw);
      read_into(ub_, ub + pixel * stride, vec_bytes, "ub", dst);
    } else {
      std::memset(dst, pad, vec_bytes);
    }
  }

  int64_t acc0 = in.get(Fid::kMatmul_acc);
  int64_t cols = arch_.mxu.cols;
  bool accumulate = in.get(Fid::kMatmul_accumulate) != 0;
  uint8_t tag = t.dtype == 0 ? kInt32 : kFp32;
  if (accumulate) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < t.n; ++c) {
        uint8_t have = m.tag[(acc0 + r) * cols + c];
        if (have != tag) {
          fail("accumulate", fmt::format("accumulator row {} holding {} values", acc0 + r,
                                         tag == kInt32 ? "int32" : "fp32"),
               have == kUnwritten ? "a row never written" : "values of the other type");
        }
      }
    }
  }
  std::size_t acc_offset = static_cast<std::size_t>(acc0 * cols);
  const std::size_t cells = m.tag.size();
  if (t.dtype == 0 && !m.acc_i32) m.acc_i32.reset(new int32_t[cells]);
  if (t.dtype != 0 && !m.acc_f32) m.acc_f32.reset(new float[cells]);
  if (t.dtype == 0) {
    matmul_int8_(reinterpret_cast<const int8_t*>(scratch().a8.data()), t.k,
                 reinterpret_cast<const int8_t*>(t.data.data()), t.n, static_cast<int>(rows),
                 static_cast<int>(t.k), static_cast<int>(t.n), m.acc_i32.get() + acc_offset,
                 cols, accumulate);
  } else {
    matmul_bf16_(scratch().a16.data(), t.k, t.data16.data(), t.n, static_cast<int>(rows),
                 static_cast<int>(t.k), static_cast<int>(t.n), m.acc_f32.get() + acc_offset,
                 cols, accumulate, numerics_);
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::memset(m.tag.data() + (acc0 + r) * cols, tag, static_cast<std::size_t>(t.n));
  }
  stats_.macs += static_cast<uint64_t>(rows) * t.k * t.n;
}

void Interpreter::activate(const Instruction& in) {
  Mxu& m = mxus_[in.get(Fid::kActivate_mxu)];
  int64_t rows = in.get(Fid::kActivate_rows), n = in.get(Fid::kActivate_n);
  int64_t acc0 = in.get(Fid::kActivate_acc), cols = arch_.mxu.cols;
  bool int8 = in.get(Fid::kActivate_mode) == static_cast<int>(MatType::kInt8);
  bool out_fp32 = in.get(Fid::kActivate_out_fp32) != 0;
  uint8_t want = int8 ? kInt32 : kFp32;
  int out_bytes = int8 ? 1 : (out_fp32 ? 4 : 2);
  uint64_t rb = static_cast<uint64_t>(n) * out_bytes;
  uint64_t stride = in.get(Fid::kActivate_ub_stride);
  if (stride == 0) stride = rb;
  uint64_t ub = in.get(Fid::kActivate_ub);

  std::vector<RequantParams> rq;
  std::vector<float> bias;
  if (int8) {
    auto raw = read(ub_, in.get(Fid::kActivate_params), static_cast<uint64_t>(n) * 12, "params");
    for (int64_t c = 0; c < n; ++c) {
      RequantParams p;
      p.bias = load_le<int32_t>(&raw[12 * c]);
      p.multiplier = load_le<int32_t>(&raw[12 * c + 4]);
      p.shift = load_le<int32_t>(&raw[12 * c + 8]);
      if (p.multiplier < 0 || (p.multiplier != 0 && p.multiplier < (1 << 30)) || p.shift < -31 ||
          p.shift > 30) {
        fail("params", "multiplier 0 or in [2^30, 2^31) and shift in [-31, 30]",
             fmt::format("channel {}: multiplier {}, shift {}", c, p.multiplier, p.shift));
      }
      rq.push_back(p);
    }
  } else if (in.get(Fid::kActivate_bias)) {
    auto raw = read(ub_, in.get(Fid::kActivate_params), static_cast<uint64_t>(n) * 4, "params");
    for (int64_t c = 0; c < n; ++c) bias.push_back(load_le<float>(&raw[4 * c]));
  }
  auto func = static_cast<Activation>(in.get(Fid::kActivate_func));
  int32_t zp = static_cast<int32_t>(in.get(Fid::kActivate_out_zp));
  int32_t lo = static_cast<int32_t>(in.get(Fid::kActivate_act_min));
  int32_t hi = static_cast<int32_t>(in.get(Fid::kActivate_act_max));
  std::vector<uint8_t> row(rb);
  for (int64_t r = 0; r < rows; ++r) {
    std::size_t base = static_cast<std::size_t>((acc0 + r) * cols);
    for (int64_t c = 0; c < n; ++c) {
      if (m.tag[base + c] != want) {
        fail("acc", fmt::format("accumulator row {} holding {} values", acc0 + r,
                                int8 ? "int32" : "fp32"),
             m.tag[base + c] == kUnwritten ? "a value never written" : "values of the other type");
      }
      if (int8) {
        int8_t q = requantize(m.acc_i32[base + c], rq[c], zp, lo, hi);
        std::memcpy(&row[c], &q, 1);
      } else {
        float x = m.acc_f32[base + c];
        if (!bias.empty()) x = x + bias[c];
        x = apply_activation(x, func);
        if (out_fp32) {
          std::memcpy(&row[4 * c], &x, 4);
        } else {
          uint16_t b = fp32_to_bf16(x, numerics_);
          std::memcpy(&row[2 * c], &b, 2);
        }
      }
    }
    ub_.write(ub + r * stride, row.data(), rb);
  }
}

void Interpreter::pool(const Instruction& in) {
  PoolShape s;
  s.in_h = static_cast<int>(in.get(Fid::kPool_in_h));
  s.in_w = static_cast<int>(in.get(Fid::kPool_in_w));
  s.channels = static_cast<int>(in.get(Fid::kPool_channels));
  s.win_h = static_cast<int>(in.get(Fid::kPool_win_h));
  s.win_w = static_cast<int>(in.get(Fid::kPool_win_w));
  s.stride_h = static_cast<int>(in.get(Fid::kPool_stride_h));
  s.stride_w = static_cast<int>(in.get(Fid::kPool_stride_w));
  s.pad_top = static_cast<int>(in.get(Fid::kPool_pad_top));
  s.pad_left = static_cast<int>(in.get(Fid::kPool_pad_left));
  s.out_h = static_cast<int>(in.get(Fid::kPool_out_h));
  s.out_w = static_cast<int>(in.get(Fid::kPool_out_w));
  auto kind = static_cast<PoolKind>(in.get(Fid::kPool_kind));
  int eb = mat_bytes(in.get(Fid::kPool_dtype));
  uint64_t in_elems = static_cast<uint64_t>(s.in_h) * s.in_w * s.channels;
  uint64_t out_elems = static_cast<uint64_t>(s.out_h) * s.out_w * s.channels;
  Scratch& sc = scratch();
  const uint8_t* dst;
  if (eb == 1) {
    const uint8_t* src = read_scratch(sc.a8, ub_, in.get(Fid::kPool_src), in_elems, "src");
    uint8_t* out = grow(sc.o8, out_elems);
    pool_int8(reinterpret_cast<const int8_t*>(src), reinterpret_cast<int8_t*>(out), s, kind);
    dst = out;
  } else {
    const uint16_t* src = read_scratch(sc.a16, ub_, in.get(Fid::kPool_src), in_elems * 2, "src");
    uint16_t* out = grow(sc.o16, out_elems);
    pool_bf16(src, out, s, kind, numerics_);
    dst = reinterpret_cast<const uint8_t*>(out);
  }
  ub_.write(in.get(Fid::kPool_dst), dst, out_elems * eb);
}

void Interpreter::vector(const Instruction& in) {
  auto op = static_cast<VectorOp>(in.get(Fid::kVector_op));
  uint64_t count = in.get(Fid::kVector_count);
  int eb = mat_bytes(in.get(Fid::kVector_dtype));
  const bool binary = is_binary(op);
  Scratch& sc = scratch();
  const uint8_t* out;
  if (eb == 1) {
    const uint8_t* a = read_scratch(sc.a8, ub_, in.get(Fid::kVector_a), count, "a");
    const uint8_t* b = binary ? read_scratch(sc.b8, ub_, in.get(Fid::kVector_b), count, "b") : nullptr;
    uint8_t* o = grow(sc.o8, count);
    elementwise_int8(op, reinterpret_cast<const int8_t*>(a), reinterpret_cast<const int8_t*>(b),
                     reinterpret_cast<int8_t*>(o), count);
    out = o;
  } else {
    const uint16_t* a = read_scratch(sc.a16, ub_, in.get(Fid::kVector_a), count * 2, "a");
    const uint16_t* b =
        binary ? read_scratch(sc.b16, ub_, in.get(Fid::kVector_b), count * 2, "b") : nullptr;
    uint16_t* o = grow(sc.o16, count);
    elementwise_bf16(op, a, b, o, count, numerics_);
    out = reinterpret_cast<const uint8_t*>(o);
  }
  ub_.write(in.get(Fid::kVector_dst), out, count * eb);
}

void Interpreter::rowop(const Instruction& in) {
  auto kind = static_cast<RowOpKind>(in.get(Fid::kRowOp_kind));
  bool int8 = in.get(Fid::kRowOp_dtype) == static_cast<int>(MatType::kInt8);
  int rows = static_cast<int>(in.get(Fid::kRowOp_rows));
  int cols = static_cast<int>(in.get(Fid::kRowOp_cols));
  uint64_t count = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  int eb = int8 ? 1 : 2;
  auto src = read(ub_, in.get(Fid::kRowOp_src), count * eb, "src");
  uint64_t params = in.get(Fid::kRowOp_params);
  std::vector<uint8_t> out(count * eb);

  if (kind == RowOpKind::kLut) {
    auto table = read(ub_, params, 256, "params");
    lut_int8(reinterpret_cast<const int8_t*>(src.data()), reinterpret_cast<int8_t*>(out.data()),
             count, reinterpret_cast<const int8_t*>(table.data()));
    ub_.write(in.get(Fid::kRowOp_dst), out.data(), out.size());
    return;
  }
  uint64_t bytes = rowop_params_bytes(kind, int8, static_cast<uint64_t>(cols));
  std::vector<uint8_t> raw = bytes ? read(ub_, params, bytes, "params") : std::vector<uint8_t>{};
  std::size_t at = 0;
  auto next = [&] {
    float v = load_le<float>(&raw[at]);
    at += 4;
    return v;
  };
  RowQuant q;
  if (int8) {
    q.in_scale = next();
    q.in_zero_point = next();
    q.out_scale = next();
    q.out_zero_point = next();
    auto bad_scale = [](float s) { return !(std::isfinite(s) && s > 0.0f); };
    auto bad_zp = [](float z) { return !(z >= -128.0f && z <= 127.0f && z == std::nearbyint(z)); };
    if (bad_scale(q.in_scale) || bad_scale(q.out_scale) || bad_zp(q.in_zero_point) ||
        bad_zp(q.out_zero_point)) {
      fail("params", "finite scales > 0 and integral zero points in [-128, 127]",
           fmt::format("in_scale {}, in_zp {}, out_scale {}, out_zp {}", q.in_scale,
                       q.in_zero_point, q.out_scale, q.out_zero_point));
    }
  }
  float eps = 0.0f;
  std::vector<float> gamma, beta;
  if (kind == RowOpKind::kLayerNorm) {
    eps = next();
    for (int i = 0; i < cols; ++i) gamma.push_back(next());
    for (int i = 0; i < cols; ++i) beta.push_back(next());
  }
  if (int8) {
    const auto* x = reinterpret_cast<const int8_t*>(src.data());
    auto* y = reinterpret_cast<int8_t*>(out.data());
    if (kind == RowOpKind::kSoftmax) {
      softmax_int8(x, y, rows, cols, q);
    } else {
      layer_norm_int8(x, y, rows, cols, q, eps, gamma.data(), beta.data());
    }
  } else {
    std::vector<uint16_t> x(count), y(count);
    std::memcpy(x.data(), src.data(), src.size());
    if (kind == RowOpKind::kSoftmax) {
      softmax_bf16(x.data(), y.data(), rows, cols, numerics_);
    } else {
      layer_norm_bf16(x.data(), y.data(), rows, cols, eps, gamma.data(), beta.data(), numerics_);
    }
    std::memcpy(out.data(), y.data(), out.size());
  }
  ub_.write(in.get(Fid::kRowOp_dst), out.data(), out.size());
}

NpyArray Interpreter::read_region(const std::string& name) const {
  const Region* r = region(name);
  if (!r) throw InputError(SourceLocation{file_, 0, 0}, "region", "a region of the program", name);
  NpyArray a;
  a.dtype = r->dtype;
  a.shape = r->shape;
  a.data.resize(r->bytes());
  uint64_t bad = 0;
  const SparseMemory& m = r->space == Space::kHost ? offchip_->host : offchip_->mem;
  if (!m.read(r->addr, a.data.data(), a.data.size(), &bad)) {
    throw InputError(SourceLocation{file_, 0, 0}, "region " + name,
                     "every byte written by the program",
                     fmt::format("byte {:#x} never written", bad));
  }
  return a;
}

std::vector<std::string> Interpreter::output_names() const {
  std::vector<std::string> out;
  for (const auto& r : program_.regions) {
    if (r.role == RegionRole::kOutput) out.push_back(r.name);
  }
  return out;
}

}  // namespace tpu::isa
