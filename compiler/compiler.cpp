#include "compiler/compiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "isa/interpreter.h"

namespace tpu::compiler {

using isa::Fid;
using isa::Instruction;
using isa::Opcode;

namespace {

constexpr uint64_t kAlign = 64;
uint64_t align_up(uint64_t x, uint64_t a = kAlign) { return (x + a - 1) / a * a; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Where a tensor lives off chip.
struct Tensor {
  isa::Space space = isa::Space::kMem;
  uint64_t addr = 0;
  Shape shape;         ///< per sample
  uint64_t bytes = 0;  ///< whole batch
  std::string root;    ///< storage owner (reshape aliases share it)
  /// A tensor kept in the UB holds this core's samples only, from `home` (the block the
  /// resident allocator gave it); `addr` is then home minus the first sample's offset
  /// (modulo 2^64), so addr + a sample's offset in the batch lands in the block, as for a
  /// tensor in off-chip memory.
  uint64_t home = 0;
};

/// Returns the block at addr (in `used`, start -> length) to a free list, merged with its
/// neighbours; an address not in `used` is ignored.
void give_back(std::map<uint64_t, uint64_t>& free, std::map<uint64_t, uint64_t>& used, uint64_t addr) {
  auto u = used.find(addr);
  if (u == used.end()) return;
  uint64_t len = u->second;
  used.erase(u);
  auto next = free.lower_bound(addr);
  if (next != free.end() && next->first == addr + len) {
    len += next->second;
    next = free.erase(next);
  }
  if (next != free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == addr) {
      prev->second += len;
      return;
    }
  }
  free[addr] = len;
}

/// Off-chip memory. Regions (inputs, outputs, weights, parameters) are initialised before the
/// program runs, so no activation may ever have used their bytes: regions grow upward from 0,
/// activations are allocated from the top down (highest fit first) and freed after their last
/// reader, and a region is only placed below the lowest byte any activation ever used.
/// What does not fit goes to host memory.
///
/// With a parameter cache (`memory.parameter_cache_bytes` > 0) the lowest bytes of the memory
/// hold only parameters, placed whole in model order, each where the previous one ended if it
/// fits in what is left; one that does not fit stays in host memory (streamed every inference)
/// and later, smaller ones may still fit. Everything else (activations, and regions that are
/// not parameters) uses the memory above the cache.
class OffChipAllocator {
 public:
  OffChipAllocator(uint64_t mem_bytes, uint64_t cache_bytes)
      : act_low_(mem_bytes), top_(mem_bytes), cache_bytes_(cache_bytes), perm_next_(cache_bytes) {
    if (mem_bytes > cache_bytes) free_[cache_bytes] = mem_bytes - cache_bytes;
  }
  /// A parameter region (weights, biases, requantization records, tables): never reused.
  std::pair<isa::Space, uint64_t> parameter(uint64_t bytes) {
    if (cache_bytes_ == 0) return region(bytes);
    bytes = align_up(std::max<uint64_t>(bytes, 1));
    if (cache_next_ + bytes <= cache_bytes_) {
      uint64_t addr = cache_next_;
      cache_next_ += bytes;
      return {isa::Space::kMem, addr};
    }
    return host(bytes);
  }
  /// A region: never reused.
  std::pair<isa::Space, uint64_t> region(uint64_t bytes) {
    bytes = align_up(std::max<uint64_t>(bytes, 1));
    if (perm_next_ + bytes <= act_low_) {
      auto it = free_.find(perm_next_);
      if (it != free_.end() && it->second >= bytes) {
        uint64_t addr = perm_next_, left = it->second - bytes;
        free_.erase(it);
        if (left) free_[addr + bytes] = left;
        perm_next_ += bytes;
        return {isa::Space::kMem, addr};
      }
    }
    return host(bytes);
  }
  /// A region that lives in host memory whatever the room on chip.
  std::pair<isa::Space, uint64_t> host(uint64_t bytes) {
    uint64_t addr = host_next_;
    host_next_ += align_up(std::max<uint64_t>(bytes, 1), 4096);
    return {isa::Space::kHost, addr};
  }
  /// An activation tensor: freed with release().
  std::pair<isa::Space, uint64_t> activation(uint64_t bytes) {
    bytes = align_up(std::max<uint64_t>(bytes, 1));
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
      if (it->second < bytes) continue;
      uint64_t addr = it->first + it->second - bytes;
      if (addr < perm_next_) continue;
      uint64_t start = it->first, len = it->second;
      free_.erase(std::next(it).base());
      if (addr > start) free_[start] = addr - start;
      (void)len;
      used_[addr] = bytes;
      act_low_ = std::min(act_low_, addr);
      return {isa::Space::kMem, addr};
    }
    return host(bytes);
  }
  void release(isa::Space s, uint64_t addr) {
    if (s != isa::Space::kMem) return;
    give_back(free_, used_, addr);
  }
  /// Off-chip memory the program needs: cached parameters from the bottom, regions above
  /// them, activations from the top down to the lowest address any of them took.
  uint64_t footprint() const { return cache_next_ + (perm_next_ - cache_bytes_) + (top_ - act_low_); }
  uint64_t host_bytes() const { return host_next_; }

 private:
  std::map<uint64_t, uint64_t> free_, used_;
  uint64_t act_low_ = 0, top_ = 0, cache_bytes_ = 0, perm_next_ = 0, cache_next_ = 0, host_next_ = 0;
};

/// Activation tensors kept in the unified buffer between layers (docs/compiler.md): a reserved
/// range of the UB, first fit, each tensor freed after its last reader.
class UbResident {
 public:
  void reset(uint64_t lo, uint64_t hi) {
    free_.clear();
    used_.clear();
    if (hi > lo) free_[lo] = hi - lo;
  }
  std::optional<uint64_t> alloc(uint64_t bytes) {
    bytes = align_up(std::max<uint64_t>(bytes, 1));
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < bytes) continue;
      uint64_t addr = it->first, left = it->second - bytes;
      free_.erase(it);
      if (left) free_[addr + bytes] = left;
      used_[addr] = bytes;
      return addr;
    }
    return std::nullopt;
  }
  void release(uint64_t addr) {
    give_back(free_, used_, addr);
  }

 private:
  std::map<uint64_t, uint64_t> free_, used_;
};

/// One matrix pass of a job: a weight tile and where its inputs start.
struct PassDesc {
  int64_t wrow = 0, wcol = 0;  ///< tile origin in the weight matrix
  int k = 0;
  int r = 0, s = 0;            ///< kernel tap
  int64_t in_off = 0;          ///< first input channel
};

/// The passes that produce one block of output columns on one MXU.
struct Job {
  int64_t col0 = 0;
  int n = 0;
  int mxu = 0;
  std::vector<PassDesc> passes;
};

/// The weight matrix a matrix op reads its tiles from.
struct WeightMatrix {
  isa::Space space = isa::Space::kMem;
  uint64_t addr = 0;
  int64_t rows = 0, pitch = 0;  ///< rows and elements per row
  bool diag = false, transpose = false;
  uint64_t per_image = 0;       ///< bytes between images (two-input matmul: b per sample)
};

/// A band of output rows (window mode) or matrix rows (plain mode) of one image.
struct Band {
  int64_t image = 0;
  int64_t o0 = 0, on = 0;   ///< first output row / matrix row, count
  int64_t r0 = 0, rn = 0;   ///< input rows loaded (window mode)
  int64_t m = 0;            ///< accumulator rows (matrix rows streamed)
};

class Lowering {
 public:
  /// Lowers samples [img0, img1) of the batch (one core's share of `cores`). With several
  /// cores no off-chip activation memory is reused: cores are not synchronised, so a core
  /// could still read a tensor whose bytes another core had reallocated. Each core's own UB
  /// still keeps its samples' activations, reused after their last reader within the core;
  /// they are sized for the largest share (ceil(batch / cores) samples) on every core, so
  /// every core makes the same placement decisions and declares the same regions.
  Lowering(const arch::ArchConfig& a, const Workload& w, const CompileOptions& o, isa::MatType dt,
           int64_t img0, int64_t img1, int64_t cores)
      : a_(a), w_(w), opt_(o), dt_(dt), eb_(isa::mat_bytes(static_cast<int>(dt))),
        mem_(static_cast<uint64_t>(a.memory.kind == arch::MemoryKind::kNone ? 0 : a.memory.bytes),
             static_cast<uint64_t>(a.memory.kind == arch::MemoryKind::kNone ? 0 : a.memory.parameter_cache_bytes)),
        img0_(img0), img1_(img1), share_((w.batch + cores - 1) / cores), reuse_(cores == 1) {
    ub_work_ = static_cast<uint64_t>(a.unified_buffer.bytes);
  }

  Compiled run();

 private:
  // ---- emission ----
  void emit(Instruction in, std::string note = "") {
    // (+1: the layer-boundary sync this instruction may bring, below)
    if (prog_.code.size() + (in.op == Opcode::kMatmul && sync_pending_ ? 1 : 0) >= opt_.max_instructions) {
      const Op& op = w_.ops.at(static_cast<std::size_t>(std::max(0, op_index_)));
      fail(op, "", fmt::format("a workload that compiles to at most {} instructions", opt_.max_instructions),
           "more (reduce the batch or the tensor sizes)");
    }
    // Every field within its width (limits cached per field: this runs for every instruction).
    static const auto limits = [] {
      std::array<std::pair<int64_t, int64_t>, static_cast<std::size_t>(Fid::kCount)> l{};
      for (std::size_t f = 0; f < l.size(); ++f) l[f] = {isa::field_min(static_cast<Fid>(f)), isa::field_max(static_cast<Fid>(f))};
      return l;
    }();
    int nf = 0;
    const auto& fids = isa::fields_of(in.op, &nf);
    for (int i = 0; i < nf; ++i) {
      int64_t v = in.values[static_cast<std::size_t>(i)];
      const auto& lim = limits[static_cast<std::size_t>(fids[static_cast<std::size_t>(i)])];
      if (v < lim.first || v > lim.second) {
        const Op& op = w_.ops.at(static_cast<std::size_t>(std::max(0, op_index_)));
        fail(op, "",
             fmt::format("a layer whose instructions' fields fit the ISA ({}.{} in [{}, {}])",
                         isa::opcode_spec(in.op).mnemonic, isa::field_spec(fids[static_cast<std::size_t>(i)]).name,
                         isa::field_min(fids[static_cast<std::size_t>(i)]), isa::field_max(fids[static_cast<std::size_t>(i)])),
             fmt::format("{} (a shape this compiler cannot tile yet)", v));
      }
    }
    if (in.op == Opcode::kMatmul && sync_pending_) {
      // sequencer.layer_sync: the layer's first pass waits for the previous layers' results.
      sync_pending_ = false;
      Instruction s = Instruction::make(Opcode::kSync);
      s.set(Fid::kSync_units, 1 << 2);  // vector
      emit(s, "layer boundary (sequencer.layer_sync)");
    }
    prog_.code.push_back(in);
    prog_.lines.push_back(0);
    prog_.notes.push_back(std::move(note));
    out_.layer_of.push_back(layer_);
  }
  [[noreturn]] void fail(const Op& op, const std::string& key, const std::string& expected,
                         const std::string& found) const {
    throw InputError(op.where, "ops." + op.name + (key.empty() ? "" : "." + key), expected, found);
  }
  /// Starts a layer's UB allocation. Consecutive layers use alternate halves of the buffer
  /// when `half` (so a layer's loads need not wait for the previous layer's last reads);
  /// a layer that needs more takes the whole buffer.
  void ub_begin(bool half) {
    uint64_t U = ub_work_;
    uint64_t h = U / 2 / kAlign * kAlign;
    ub_base_ = half && ub_upper_ ? h : 0;
    ub_end_ = half ? ub_base_ + h : U;
    ub_next_ = ub_base_;
  }
  uint64_t ub_alloc(const Op& op, uint64_t bytes) {
    uint64_t at = ub_next_;
    ub_next_ = align_up(ub_next_ + bytes);
    if (ub_next_ > ub_end_) {
      fail(op, "", fmt::format("at most {} bytes of unified buffer", a_.unified_buffer.bytes),
           fmt::format("{} bytes needed", ub_next_));
    }
    return at;
  }
  void dma_load(isa::Space sp, uint64_t src, uint64_t ub, int64_t rows, int64_t row_bytes,
                int64_t src_stride, std::string note, int64_t ub_stride = 0);
  void dma_store(isa::Space sp, uint64_t dst, uint64_t ub, int64_t rows, int64_t row_bytes,
                 int64_t dst_stride, int64_t ub_stride, std::string note);
  uint64_t add_region(isa::Region r);
  uint64_t values_region(const std::string& name, isa::ElemType t, std::vector<uint8_t> bytes);
  /// Loads a parameter region into the UB; returns its UB address.
  uint64_t load_params(const Op& op, const std::string& region);

  // ---- layers ----
  void lower_matrix(const Op& op, const std::vector<const Op*>& chain);
  void lower_elementwise(const Op& op);
  void lower_pool(const Op& op);
  void lower_rowop(const Op& op);
  void lower_concat(const Op& op);
  void plan_resident(const std::map<std::string, std::string>& root);
  void lower_copy(const Op& op);
  void lower_slice(const Op& op);
  void emit_collective(const Op& op, const Tensor& t, isa::CollOp kind);
  void apply_unary(const Op& op, isa::Activation f, uint64_t ub, int64_t pixels, int64_t c,
                   uint64_t lut_ub, const std::string& note);
  uint64_t lut_for(const Op& op, isa::Activation f);

  const Tensor& tensor(const std::string& name) const { return tensors_.at(name); }
  void define_output(const Op& op);
  void release_dead(std::size_t op_index);

  const arch::ArchConfig& a_;
  Workload w_;
  CompileOptions opt_;
  isa::MatType dt_;
  int eb_;
  OffChipAllocator mem_;
  Compiled out_;
  isa::Program prog_;  ///< the program being built (out_.core_programs[0] when done)
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::size_t> last_use_;
  std::map<std::size_t, std::vector<std::string>> dies_at_;  ///< op index -> tensors last read there
  std::set<std::string> pinned_;  ///< inputs and outputs: never freed
  uint64_t ub_next_ = 0, ub_base_ = 0, ub_end_ = 0;
  uint64_t ub_work_ = 0;          ///< UB bytes for layers' buffers: [0, ub_work_)
  UbResident resident_;           ///< [ub_work_, UB size): activations kept on chip
  std::set<std::string> resident_ok_;  ///< tensors that may live in the UB
  bool ub_upper_ = false;  ///< the next layer starts in the upper half
  bool sync_pending_ = false;  ///< sequencer.layer_sync: sync before the next matmul
  int layer_ = -1;
  int op_index_ = 0;  ///< the workload op being lowered (for errors)
  int64_t img0_ = 0, img1_ = 1;  ///< this core's samples
  int64_t share_ = 1;            ///< samples a UB-resident tensor holds (the largest core share)
  bool reuse_ = true;            ///< free off-chip activations after their last reader
  std::vector<int64_t> acc_slot_;  ///< per MXU: next accumulator slot
  std::map<std::string, std::size_t> region_index_;  ///< region name -> index in the program
};

namespace {

// A DMA's rows x row_bytes as instructions can hold them: a contiguous copy larger than the
// row field becomes rows of half the size, or several copies when it does not halve evenly.
// `one(offset, rows, row_bytes)` emits each piece.
template <class Emit>
void split_contiguous(int64_t rows, int64_t row_bytes, bool contiguous, Emit one) {
  constexpr int64_t kChunk = int64_t{1} << 23;
  if (contiguous && rows == 1 && row_bytes > kChunk) {
    if (row_bytes % kChunk != 0) {
      for (int64_t off = 0; off < row_bytes; off += kChunk) one(off, 1, std::min(kChunk, row_bytes - off));
      return;
    }
    while (row_bytes > kChunk) {
      row_bytes /= 2;
      rows *= 2;
    }
  }
  one(0, rows, row_bytes);
}

}  // namespace

void Lowering::dma_load(isa::Space sp, uint64_t src, uint64_t ub, int64_t rows, int64_t row_bytes,
                        int64_t src_stride, std::string note, int64_t ub_stride) {
  split_contiguous(rows, row_bytes, src_stride == 0 && ub_stride == 0, [&](int64_t off, int64_t n, int64_t rb) {
    Instruction in = Instruction::make(Opcode::kDmaLoad);
    in.set(Fid::kDmaLoad_space, static_cast<int>(sp));
    in.set(Fid::kDmaLoad_src, static_cast<int64_t>(src) + off);
    in.set(Fid::kDmaLoad_ub, static_cast<int64_t>(ub) + off);
    in.set(Fid::kDmaLoad_rows, n);
    in.set(Fid::kDmaLoad_row_bytes, rb);
    in.set(Fid::kDmaLoad_src_stride, src_stride == rb ? 0 : src_stride);
    in.set(Fid::kDmaLoad_ub_stride, ub_stride == rb ? 0 : ub_stride);
    emit(in, note);
  });
}

void Lowering::dma_store(isa::Space sp, uint64_t dst, uint64_t ub, int64_t rows, int64_t row_bytes,
                         int64_t dst_stride, int64_t ub_stride, std::string note) {
  split_contiguous(rows, row_bytes, dst_stride == 0 && ub_stride == 0, [&](int64_t off, int64_t n, int64_t rb) {
    Instruction in = Instruction::make(Opcode::kDmaStore);
    in.set(Fid::kDmaStore_space, static_cast<int>(sp));
    in.set(Fid::kDmaStore_dst, static_cast<int64_t>(dst) + off);
    in.set(Fid::kDmaStore_ub, static_cast<int64_t>(ub) + off);
    in.set(Fid::kDmaStore_rows, n);
    in.set(Fid::kDmaStore_row_bytes, rb);
    in.set(Fid::kDmaStore_dst_stride, dst_stride == rb ? 0 : dst_stride);
    in.set(Fid::kDmaStore_ub_stride, ub_stride == rb ? 0 : ub_stride);
    emit(in, note);
  });
}

uint64_t Lowering::add_region(isa::Region r) {
  if (prog_.regions.size() >= isa::kMaxRegions) {
    const Op& op = w_.ops.at(static_cast<std::size_t>(std::max(0, op_index_)));
    fail(op, "", fmt::format("a workload that needs at most {} regions (inputs, outputs, weights, parameters)",
                             isa::kMaxRegions), "more");
  }
  if (!region_index_.emplace(r.name, prog_.regions.size()).second) {
    throw std::logic_error("compiler: region " + r.name + " declared twice");
  }
  // Inputs and outputs of a host-attached accelerator stay on the host, but for the tensors a
  // training step keeps on the device (Workload::on_device); parameters go to the parameter
  // cache when the architecture has one (isa::is_parameter).
  bool io = r.role != isa::RegionRole::kData && !w_.on_device.count(r.name);
  auto [sp, addr] = io && a_.host_link.carries_io ? mem_.host(r.bytes())
                    : isa::is_parameter(r)        ? mem_.parameter(r.bytes())
                                                  : mem_.region(r.bytes());
  r.space = sp;
  r.addr = addr;
  prog_.regions.push_back(std::move(r));
  return addr;
}

uint64_t Lowering::values_region(const std::string& name, isa::ElemType t, std::vector<uint8_t> bytes) {
  isa::Region r;
  r.name = name;
  r.dtype = t;
  r.shape = {bytes.size() / isa::kElemTypeBytes[static_cast<int>(t)]};
  r.role = isa::RegionRole::kData;
  r.init = isa::RegionInit::kValues;
  r.values = std::move(bytes);
  return add_region(std::move(r));
}

uint64_t Lowering::load_params(const Op& op, const std::string& region) {
  const isa::Region* r = &prog_.regions.at(region_index_.at(region));
  uint64_t ub = ub_alloc(op, r->bytes());
  dma_load(r->space, r->addr, ub, 1, static_cast<int64_t>(r->bytes()), 0,
           fmt::format("{}: parameters {}", op.name, region));
  return ub;
}

uint64_t Lowering::lut_for(const Op& op, isa::Activation f) {
  std::string name = std::string("lut__") + isa::kActivationNames[static_cast<int>(f)];
  if (!region_index_.count(name)) {
    auto t = int8_activation_table(f);
    values_region(name, isa::ElemType::kInt8, std::vector<uint8_t>(t.begin(), t.end()));
  }
  return load_params(op, name);
}

// f applied in place to `pixels` x `c` values at `ub` (after requantization, in the UB).
void Lowering::apply_unary(const Op& op, isa::Activation f, uint64_t ub, int64_t pixels, int64_t c,
                           uint64_t lut_ub, const std::string& note) {
  if (f == isa::Activation::kNone) return;
  int64_t count = pixels * c;
  if (dt_ == isa::MatType::kInt8 && f != isa::Activation::kRelu) {
    Instruction in = Instruction::make(Opcode::kRowOp);
    in.set(Fid::kRowOp_kind, static_cast<int>(isa::RowOpKind::kLut));
    in.set(Fid::kRowOp_dtype, static_cast<int>(dt_));
    in.set(Fid::kRowOp_src, static_cast<int64_t>(ub));
    in.set(Fid::kRowOp_dst, static_cast<int64_t>(ub));
    in.set(Fid::kRowOp_rows, pixels);
    in.set(Fid::kRowOp_cols, c);
    in.set(Fid::kRowOp_params, static_cast<int64_t>(lut_ub));
    emit(in, note);
    return;
  }
  (void)op;
  Instruction in = Instruction::make(Opcode::kVector);
  isa::VectorOp vop = isa::VectorOp::kRelu;
  switch (f) {
    case isa::Activation::kRelu6: vop = isa::VectorOp::kRelu6; break;
    case isa::Activation::kSigmoid: vop = isa::VectorOp::kSigmoid; break;
    case isa::Activation::kTanh: vop = isa::VectorOp::kTanh; break;
    case isa::Activation::kGelu: vop = isa::VectorOp::kGelu; break;
    default: break;
  }
  in.set(Fid::kVector_op, static_cast<int>(vop));
  in.set(Fid::kVector_dtype, static_cast<int>(dt_));
  in.set(Fid::kVector_a, static_cast<int64_t>(ub));
  in.set(Fid::kVector_dst, static_cast<int64_t>(ub));
  in.set(Fid::kVector_count, count);
  emit(in, note);
}

void Lowering::define_output(const Op& op) {
  Tensor t;
  t.shape = op.out;
  t.bytes = static_cast<uint64_t>(op.out.elements() * out_.batch * eb_);
  t.root = op.name;
  bool is_output = std::find(w_.outputs.begin(), w_.outputs.end(), op.name) != w_.outputs.end();
  if (is_output) {
    isa::Region r;
    r.name = op.name;
    r.dtype = dt_ == isa::MatType::kInt8 ? isa::ElemType::kInt8 : isa::ElemType::kBf16;
    r.shape.push_back(static_cast<uint64_t>(out_.batch));
    for (auto d : op.out.dims) r.shape.push_back(static_cast<uint64_t>(d));
    r.role = isa::RegionRole::kOutput;
    t.addr = add_region(r);
    t.space = prog_.regions.back().space;
    pinned_.insert(op.name);
    out_.outputs.emplace_back(op.name, op.name);
  } else if (auto at = resident_ok_.count(op.name)
                           ? resident_.alloc(static_cast<uint64_t>(op.out.elements() * share_ * eb_))
                           : std::nullopt) {
    t.space = isa::Space::kUb;
    t.home = *at;
    t.addr = *at - static_cast<uint64_t>(op.out.elements() * img0_ * eb_);
  } else {
    auto [sp, addr] = mem_.activation(t.bytes);
    t.space = sp;
    t.addr = addr;
  }
  tensors_[op.name] = t;
}

void Lowering::release_dead(std::size_t i) {
  auto d = dies_at_.find(i);
  if (d == dies_at_.end()) return;
  for (const auto& name : d->second) {
    auto t = tensors_.find(name);
    if (t == tensors_.end() || t->second.root != name || pinned_.count(name)) continue;
    if (t->second.space == isa::Space::kUb) {
      resident_.release(t->second.home);
    } else if (reuse_) {
      mem_.release(t->second.space, t->second.addr);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Matrix ops: conv2d, depthwise_conv2d, fully_connected, matmul (one or two inputs).

void Lowering::lower_matrix(const Op& op, const std::vector<const Op*>& chain) {
  LayerPlan& plan = out_.layers.back();
  const Tensor& x = tensor(op.inputs[0]);
  const Shape& xs = op.in[0];
  const Shape& ys = op.out;
  const int rows = static_cast<int>(a_.mxu.rows), cols = static_cast<int>(a_.mxu.cols);
  const int64_t acc_entries = a_.accumulators.entries;
  const bool int8 = dt_ == isa::MatType::kInt8;
  const int64_t B = out_.batch;
  const bool two_input = op.kind == OpKind::kMatmul && op.inputs.size() == 2;
  const bool depthwise = op.kind == OpKind::kDepthwise && op.multiplier == 1;
  const bool packed = packs_kernel_rows(op, rows);
  // Packed rows are stored in the UB with their horizontal padding materialised as zeros.
  const int64_t pad_l = packed ? op.pad_left : 0;
  const int64_t pad_r = packed ? std::max<int64_t>(0, (ys.w - 1) * op.sw + op.kw - op.pad_left - xs.w) : 0;
  const int64_t wp = xs.w + pad_l + pad_r;  // UB row width in pixels

  // Geometry: window mode for real convolutions, plain rows otherwise (batch folded in).
  bool window = (op.kind == OpKind::kConv2d || op.kind == OpKind::kDepthwise) &&
                (op.kh != 1 || op.kw != 1 || op.sh != 1 || op.sw != 1 || op.pad_top ||
                 op.pad_left || op.pad_bottom || op.pad_right);
  int64_t images = window || two_input ? B : 1;
  int64_t plain_rows = two_input ? xs.pixels() : B * xs.pixels();
  // A layer whose input stays in the UB (activations on chip) streams it from where it is
  // (plain rows, or window bands without the packed layout's padding columns), and one whose
  // result stays there is written in place: no band buffers, no copies.
  const bool direct_in = !two_input && x.space == isa::Space::kUb && (!window || !packed);
  const uint64_t x_addr = x.addr;
  const Tensor& y_final = tensor(chain.empty() ? op.name : chain.back()->name);
  const bool direct_out = !two_input && y_final.space == isa::Space::kUb;
  if (window && ys.w > acc_entries / 2) {
    fail(op, "", fmt::format("an output row of at most {} pixels (half the accumulators)", acc_entries / 2),
         fmt::format("{} pixels", ys.w));
  }

  // The passes this layer needs, bounded before any list is built.
  {
    double c_tiles = 0, passes = 0;
    auto cdiv = [](double a, double b) { return std::ceil(a / b); };
    if (two_input) {
      c_tiles = static_cast<double>(op.heads) * cdiv(static_cast<double>(ys.c / op.heads), cols);
      passes = cdiv(static_cast<double>(xs.c / op.heads), rows);
    } else if (depthwise) {
      c_tiles = cdiv(static_cast<double>(xs.c), std::min(rows, cols));
      passes = double{1} * op.kh * op.kw;
    } else {
      double groups = op.kind == OpKind::kConv2d ? op.groups : op.kind == OpKind::kDepthwise ? static_cast<double>(xs.c) : 1;
      c_tiles = groups * cdiv(static_cast<double>(ys.c) / groups, cols);
      passes = double{1} * op.kh * op.kw * cdiv(static_cast<double>(xs.c) / groups, rows);
    }
    double weights = two_input ? 0 : static_cast<double>(fan_in(op)) * static_cast<double>(ys.c) * eb_;
    if (c_tiles * passes * 2 > static_cast<double>(opt_.max_instructions) ||
        weights > static_cast<double>(isa::kMaxRegionBytes)) {
      fail(op, "", fmt::format("a layer of at most {} instructions and 4 GiB of weights", opt_.max_instructions),
           fmt::format("{:.3g} matrix passes, {:.3g} weight bytes", c_tiles * passes, weights));
    }
  }

  // Weights and jobs.
  WeightMatrix wm;
  std::vector<Job> jobs;
  int njob = 0;
  auto new_job = [&](int64_t col0, int n) {
    Job j;
    j.col0 = col0;
    j.n = n;
    ++njob;
    jobs.push_back(j);
    return &jobs.back();
  };
  if (two_input) {
    const Tensor& b = tensor(op.inputs[1]);
    const Shape& bs = op.in[1];
    int64_t K = xs.c / op.heads, N = ys.c / op.heads;
    wm.space = b.space;
    wm.addr = b.addr;
    wm.pitch = bs.c;
    wm.rows = bs.pixels();
    wm.transpose = op.transpose_b;
    wm.per_image = static_cast<uint64_t>(bs.elements() * eb_);
    // b spilled to host memory is staged through the UB a sample at a time (below).
    for (int64_t h = 0; h < op.heads; ++h) {
      for (int64_t n0 = 0; n0 < N; n0 += cols) {
        Job* j = new_job(h * N + n0, static_cast<int>(std::min<int64_t>(cols, N - n0)));
        for (int64_t k0 = 0; k0 < K; k0 += rows) {
          PassDesc p;
          p.k = static_cast<int>(std::min<int64_t>(rows, K - k0));
          p.wrow = op.transpose_b ? n0 : k0;
          p.wcol = op.transpose_b ? h * K + k0 : h * N + n0;
          p.in_off = h * K + k0;
          j->passes.push_back(p);
        }
      }
    }
  } else if (depthwise) {
    wm.rows = int64_t{op.kh} * op.kw;
    wm.pitch = xs.c;
    wm.diag = true;
    int T = std::min(rows, cols);
    for (int64_t c0 = 0; c0 < xs.c; c0 += T) {
      int n = static_cast<int>(std::min<int64_t>(T, xs.c - c0));
      Job* j = new_job(c0, n);
      for (int r = 0; r < op.kh; ++r) {
        for (int s = 0; s < op.kw; ++s) {
          PassDesc p;
          p.k = n;
          p.wrow = r * op.kw + s;
          p.wcol = c0;
          p.r = r;
          p.s = s;
          p.in_off = c0;
          j->passes.push_back(p);
        }
      }
    }
  } else if (packed) {
    // Small input channel counts: one pass per kernel row covers its kw taps (the kw x C
    // values of a padded input row are contiguous), weights rows (r, s, c) contiguous too.
    wm.rows = int64_t{op.kh} * op.kw * xs.c;
    wm.pitch = ys.c;
    for (int64_t n0 = 0; n0 < ys.c; n0 += cols) {
      Job* j = new_job(n0, static_cast<int>(std::min<int64_t>(cols, ys.c - n0)));
      for (int r = 0; r < op.kh; ++r) {
        PassDesc p;
        p.k = static_cast<int>(op.kw * xs.c);
        p.wrow = int64_t{r} * op.kw * xs.c;
        p.wcol = n0;
        p.r = r;
        j->passes.push_back(p);
      }
    }
  } else {
    // conv2d (any groups; depthwise with a multiplier is conv2d with groups = C), FC.
    int64_t groups = op.kind == OpKind::kConv2d ? op.groups : op.kind == OpKind::kDepthwise ? xs.c : 1;
    int64_t cin_g = xs.c / groups, cout_g = ys.c / groups;
    wm.rows = int64_t{op.kh} * op.kw * cin_g;
    wm.pitch = ys.c;
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t n0 = 0; n0 < cout_g; n0 += cols) {
        Job* j = new_job(g * cout_g + n0, static_cast<int>(std::min<int64_t>(cols, cout_g - n0)));
        for (int r = 0; r < op.kh; ++r) {
          for (int s = 0; s < op.kw; ++s) {
            for (int64_t k0 = 0; k0 < cin_g; k0 += rows) {
              PassDesc p;
              p.k = static_cast<int>(std::min<int64_t>(rows, cin_g - k0));
              p.wrow = (int64_t{r} * op.kw + s) * cin_g + k0;
              p.wcol = g * cout_g + n0;
              p.r = r;
              p.s = s;
              p.in_off = g * cin_g + k0;
              j->passes.push_back(p);
            }
          }
        }
      }
    }
  }
  if (!two_input) {
    isa::Region wr = weight_region(w_, op, dt_);
    wm.addr = add_region(wr);
    wm.space = prog_.regions.back().space;
  }
  uint64_t w_bytes = static_cast<uint64_t>(wm.rows * wm.pitch * eb_);

  // Parameters: int8 requantization records, or bf16 biases.
  std::string params_region;
  if (int8) {
    auto rq = requant_params(w_, op);
    std::vector<uint8_t> bytes(rq.size() * 12);
    for (std::size_t c = 0; c < rq.size(); ++c) {
      std::memcpy(&bytes[12 * c], &rq[c].bias, 4);
      std::memcpy(&bytes[12 * c + 4], &rq[c].multiplier, 4);
      std::memcpy(&bytes[12 * c + 8], &rq[c].shift, 4);
    }
    params_region = op.name + "__q";
    values_region(params_region, isa::ElemType::kInt32, std::move(bytes));
  } else if (op.bias) {
    params_region = op.name + "__b";
    add_region(bias_region(w_, op));
  }

  // Activation handling: fused into activate where the hardware can (bf16 any function;
  // int8 relu/relu6 as clamps), else a vector pass over the band in the UB.
  isa::Activation act = op.activation;
  isa::Activation act_func = isa::Activation::kNone;  // bf16 activate func
  int act_min = -128, act_max = 127;
  bool act_after = false;
  if (act != isa::Activation::kNone) {
    if (!int8) {
      act_func = act;
    } else if (act == isa::Activation::kRelu) {
      act_min = 0;
    } else if (act == isa::Activation::kRelu6) {
      act_min = 0;
      act_max = kInt8Relu6Max;
    } else {
      act_after = true;
    }
  }
  // Binary ops of the fused chain read a second tensor band into a side buffer.
  int side_tensors = 0;
  for (const Op* f : chain) side_tensors += (f->kind == OpKind::kAdd || f->kind == OpKind::kMul) ? 1 : 0;

  // ---- Band size and loop order ----
  uint64_t U = 0;  // the layer's UB budget (half the buffer when it fits, see ub_begin)
  uint64_t fixed = 0;
  if (!params_region.empty()) fixed += align_up(prog_.regions.at(region_index_.at(params_region)).bytes());
  bool needs_lut = int8 && (act_after || std::any_of(chain.begin(), chain.end(), [](const Op* f) {
                     isa::Activation g = f->kind == OpKind::kAdd || f->kind == OpKind::kMul
                                             ? f->activation : activation_of(f->kind);
                     return g != isa::Activation::kNone && g != isa::Activation::kRelu;
                   }));
  if (needs_lut) fixed += 2 * kAlign * 4 * (1 + chain.size());
  const int64_t in_row_bytes = xs.w * xs.c * eb_;  // window: one input row off chip
  const int64_t ub_row_bytes = wp * xs.c * eb_;     // and in the UB
  // kc: the input values of a row the band holds (plain rows: the whole row, xs.c, or one
  // slice of the contraction, below).
  auto band_bytes = [&](int64_t on, int64_t kc) -> uint64_t {
    uint64_t inb, outb;
    if (window) {
      int64_t rn = std::min<int64_t>(xs.h, (on - 1) * op.sh + int64_t{op.kh - 1} * op.dh + 1);
      inb = direct_in ? 0 : static_cast<uint64_t>(rn * ub_row_bytes);
      outb = static_cast<uint64_t>(on * ys.w * ys.c * eb_);
    } else {
      inb = direct_in ? 0 : static_cast<uint64_t>(on * kc * eb_);
      outb = static_cast<uint64_t>(on * ys.c * eb_);
    }
    return 2 * (align_up(inb) + (direct_out ? 0 : align_up(outb)) + side_tensors * align_up(outb));
  };
  int64_t max_on = window ? ys.h : plain_rows;
  int64_t acc_limit = window ? (acc_entries / 2) / ys.w : acc_entries / 2;
  auto best_band_in = [&](uint64_t budget, int64_t kc, int64_t cap) -> int64_t {
    int64_t lo = 0, hi = std::min(max_on, cap);
    while (lo < hi) {
      int64_t mid = (lo + hi + 1) / 2;
      if (fixed + band_bytes(mid, kc) <= budget) lo = mid; else hi = mid - 1;
    }
    return lo;
  };
  auto best_band = [&](uint64_t budget) { return best_band_in(budget, xs.c, acc_limit); };
  // Contraction in slices: a plain layer whose rows are long (a weight gradient contracts
  // over the whole batch, b x R values a row) holds few whole rows per band, and every band
  // loads every weight tile again. Holding a slice of kc values of many rows instead, the
  // band's passes for that slice run, the next slice's rows arrive in the other buffer, and
  // the accumulators sum over the slices; every item of the band (column tile x row part)
  // keeps its own accumulator slot until the last slice, so the band's rows are bounded by
  // the accumulators over twice the items one MXU holds. kc is the largest multiple of the
  // array's rows with which the band still reaches that bound (or one array row's worth).
  const bool sliceable = !window && !two_input && !direct_in && op.kind != OpKind::kDepthwise &&
                         (op.kind != OpKind::kConv2d || op.groups == 1) && xs.c > rows;
  const int64_t items_per_mxu = std::max<int64_t>(1, ceil_div(static_cast<int64_t>(jobs.size()), a_.mxu.count));
  const int64_t slice_cap = acc_entries / (2 * items_per_mxu);
  // A plain layer's rows are folded over the batch; each core holds at most share_ samples'
  // rows (the same bound on every core, so the cores decide alike), and its bands are
  // counted over those.
  const int64_t core_rows = std::min(max_on, share_ * xs.pixels());
  auto core_bands = [&](int64_t on) { return ceil_div(core_rows, std::max<int64_t>(1, on)); };
  auto slice_plan = [&](uint64_t budget) -> std::pair<int64_t, int64_t> {  // (on, kc)
    int64_t target = std::min(core_rows, slice_cap);
    // kc = t x rows, below the whole row and within what a matmul's ub_stride can step.
    int64_t lo = 1, hi = std::min(ceil_div(xs.c, rows) - 1, isa::field_max(Fid::kMatmul_ub_stride) / (int64_t{rows} * eb_));
    if (hi < 1 || best_band_in(budget, rows, slice_cap) < target) {
      return {best_band_in(budget, rows, slice_cap), rows};
    }
    while (lo < hi) {
      int64_t mid = (lo + hi + 1) / 2;
      if (best_band_in(budget, mid * rows, slice_cap) >= target) lo = mid; else hi = mid - 1;
    }
    return {target, lo * rows};
  };
  // Each order is ranked by the bytes its operands move (`traffic`: inputs, with halo rows
  // and per-group re-reads, the output and the weights) whether they cross the off-chip
  // memory or, read or written in place, the UB ports; `offchip` is the part that crosses
  // the off-chip memory or the host link (what --explain reports).
  uint64_t out_bytes = static_cast<uint64_t>(B * ys.elements() * eb_);
  const uint64_t out_offchip = direct_out ? 0 : out_bytes;
  auto input_bytes = [&](int64_t on) -> uint64_t {
    if (!window) return static_cast<uint64_t>(B * xs.elements() * eb_);
    int64_t total = 0;
    for (int64_t o0 = 0; o0 < ys.h; o0 += on) {
      int64_t n = std::min(on, ys.h - o0);
      int64_t r0 = std::max<int64_t>(0, o0 * op.sh - op.pad_top);
      int64_t r1 = std::min<int64_t>(xs.h, (o0 + n - 1) * op.sh - op.pad_top + int64_t{op.kh - 1} * op.dh + 1);
      total += std::max<int64_t>(0, r1 - r0);
    }
    return static_cast<uint64_t>(B * total * in_row_bytes);
  };
  auto input_offchip = [&](int64_t on) -> uint64_t { return direct_in ? 0 : input_bytes(on); };
  auto bands_of = [&](int64_t on) { return images * ceil_div(max_on, on); };
  struct Choice {
    std::string name;
    int64_t on = 0;
    bool staged = false;
    int64_t groups = 1;  // job groups (weights staged per group)
    uint64_t traffic = 0;  // the ranking figure (above)
    uint64_t offchip = 0;  // of which off chip
    bool ok = false;
    bool half = false;   // planned in half of the UB (overlaps the neighbouring layers)
    bool preferred = false;  // streams weights no slower than the array uses them
    int64_t kc = 0;          // contraction slice (0: whole rows)
    int stage_bufs = 1;      // two-input b staged from the host: UB buffers for it
    bool column_groups = false;  // the weight-groups order
  };
  // Traffic and preference of "stream weights per band" with c's band.
  auto price_stream = [&](Choice& c) {
    uint64_t wload = two_input ? w_bytes * static_cast<uint64_t>(images) * static_cast<uint64_t>(ceil_div(max_on, c.on))
                               : w_bytes * static_cast<uint64_t>(bands_of(c.on));
    // With fewer column tiles than MXUs, each MXU of a band loads its own copy.
    wload *= static_cast<uint64_t>(std::clamp<int64_t>(a_.mxu.count / std::max<int64_t>(1, static_cast<int64_t>(jobs.size())), 1, c.on));
    c.traffic = input_bytes(c.on) + out_bytes + wload;
    c.offchip = input_offchip(c.on) + out_offchip + wload;
    // One band holding every row: the weights cross once, as in the staged order, but
    // stream behind the passes instead of arriving all before the first.
    // Every MXU loads its own tile over the one memory; each streams its share of the rows.
    int64_t njobs = std::max<int64_t>(1, static_cast<int64_t>(jobs.size()));
    int64_t loaders = std::min<int64_t>(a_.mxu.count, njobs);
    int64_t parts = std::clamp<int64_t>(a_.mxu.count / njobs, 1, c.on);
    double tile_cycles = static_cast<double>(rows * cols * eb_) / a_.derived.memory_sustained_bytes_per_cycle;
    c.preferred = bands_of(c.on) == 1 && !two_input &&
                  static_cast<double>(loaders) * tile_cycles <= static_cast<double>(c.on * (window ? ys.w : 1) / parts);
  };
  // Every order is planned in half of the UB and in the whole of it; the least traffic
  // wins, the half on a tie (it lets consecutive layers overlap).
  std::vector<Choice> choices;
  for (int attempt = 0; attempt < 2; ++attempt) {
  ub_begin(attempt == 0);
  U = ub_end_ - ub_base_;
  std::size_t first_choice = choices.size();
  {
    Choice c{"stream weights per band", best_band(U), false, 1};
    c.ok = c.on > 0 && wm.space == isa::Space::kMem;
    if (c.ok) price_stream(c);
    choices.push_back(c);
  }
  // Image groups (below): with one band per image, G images share each streamed tile, so
  // weights cross the memory once per group. When a tile arrives no slower than the group's
  // passes use it, this order wins whatever its traffic: the staged order's up-front load
  // of every weight cannot overlap the array.
  if (window && !two_input && img1_ - img0_ > 1 && wm.space == isa::Space::kMem) {
    Choice c{"stream weights per image group", best_band(U), false, 1};
    int64_t njobs = static_cast<int64_t>(jobs.size());
    c.ok = c.on >= ys.h && a_.mxu.count <= njobs;
    if (c.ok) {
      int64_t nslot = std::max<int64_t>(1, acc_entries / (ys.h * ys.w));
      uint64_t per_band = band_bytes(ys.h, xs.c) / 2;
      int64_t g = std::min<int64_t>({img1_ - img0_, std::max<int64_t>(1, nslot / 2),
                                     per_band ? std::max<int64_t>(1, static_cast<int64_t>((U - std::min(U, fixed)) / per_band) - 1)
                                              : img1_ - img0_});
      g = ceil_div(img1_ - img0_, ceil_div(img1_ - img0_, g));
      c.traffic = input_bytes(c.on) + out_bytes + w_bytes * static_cast<uint64_t>(ceil_div(images, g));
      c.offchip = input_offchip(c.on) + out_offchip + w_bytes * static_cast<uint64_t>(ceil_div(images, g));
      double tile_cycles = static_cast<double>(rows * cols * eb_) / a_.derived.memory_sustained_bytes_per_cycle;
      c.preferred = g > 1 && static_cast<double>(a_.mxu.count) * tile_cycles <= static_cast<double>(g * ys.h * ys.w);
    }
    choices.push_back(c);
  }
  if (!two_input) {
    Choice c{"weights resident in the unified buffer", 0, true, 1};
    if (w_bytes < U) c.on = best_band(U - align_up(w_bytes));
    c.ok = c.on > 0;
    if (c.ok) {
      c.traffic = input_bytes(c.on) + out_bytes + w_bytes;
      c.offchip = input_offchip(c.on) + out_offchip + w_bytes;
    }
    choices.push_back(c);
    // Weight groups outer, inputs re-read per group (halves of the UB each).
    if (chain.empty() && !act_after && jobs.size() > 1) {
      Choice g{"weight groups outer, inputs re-read per group", best_band(U / 2), true, 0};
      g.column_groups = true;
      uint64_t per_job = static_cast<uint64_t>(wm.rows) * static_cast<uint64_t>(cols * eb_);
      int64_t jobs_per_group = per_job ? static_cast<int64_t>((U - U / 2) / per_job) : 0;
      if (g.on > 0 && jobs_per_group > 0) {
        g.groups = ceil_div(static_cast<int64_t>(jobs.size()), jobs_per_group);
        g.ok = g.groups > 1;
        g.traffic = input_bytes(g.on) * static_cast<uint64_t>(g.groups) + out_bytes + w_bytes;
        g.offchip = input_offchip(g.on) * static_cast<uint64_t>(g.groups) + out_offchip + w_bytes;
      }
      choices.push_back(g);
    }
  }
  if (two_input && wm.space == isa::Space::kHost) {
    // b spilled to host memory (load_weights reads mem or ub): each sample's b crosses the
    // host link into the UB and the tiles load from there; with two buffers, the next
    // sample's b arrives during this one's passes.
    Choice c{"stage each sample's b in the unified buffer", 0, true, 1};
    for (int nbufs : {2, 1}) {
      uint64_t need = static_cast<uint64_t>(nbufs) * align_up(w_bytes);
      if (need < U && (c.on = best_band(U - need)) > 0) {
        c.stage_bufs = nbufs;
        if (nbufs == 1) c.name += ", one buffer";
        break;
      }
    }
    c.ok = c.on > 0;
    if (c.ok) {
      c.traffic = input_bytes(c.on) + out_bytes + w_bytes * static_cast<uint64_t>(images);
      c.offchip = input_offchip(c.on) + out_offchip + w_bytes * static_cast<uint64_t>(images);
    }
    choices.push_back(c);
  }
  if (sliceable) {
    // The two orders above with the contraction in slices, when that holds more rows.
    const std::size_t whole_rows_end = choices.size();
    // Whole rows longer than a matmul's ub_stride can step over are not an option then.
    const bool whole_rows_fit = xs.c * eb_ <= isa::field_max(Fid::kMatmul_ub_stride);
    for (std::size_t i = first_choice; i < whole_rows_end; ++i) {
      Choice c = choices[i];
      if (!whole_rows_fit) choices[i].ok = false;
      if (c.column_groups) continue;  // only the streaming and the staged orders
      if (!c.staged && wm.space != isa::Space::kMem) continue;
      uint64_t budget = c.staged ? (w_bytes < U ? U - align_up(w_bytes) : 0) : U;
      auto [on, kc] = slice_plan(budget);
      // Offered when a core's rows take fewer bands than with whole rows.
      if (on <= 0 || (c.ok && whole_rows_fit && core_bands(on) >= core_bands(c.on))) continue;
      c.ok = true;
      c.on = on;
      c.kc = kc;
      c.traffic = input_bytes(c.on) + out_bytes + w_bytes;  // staged: the weights cross once
      c.offchip = input_offchip(c.on) + out_offchip + w_bytes;
      c.name += fmt::format(", contraction in slices of {}", kc);
      if (!c.staged) price_stream(c);
      choices.push_back(c);
    }
  }
  for (std::size_t i = first_choice; i < choices.size(); ++i) {
    choices[i].half = attempt == 0;
    choices[i].name += attempt == 0 ? " (half the UB)" : " (whole UB)";
  }
  }
  // The whole-row orders are ranked as above (preferred first, then the least traffic, the
  // earlier, half-UB one on a tie); the best sliced order (the same, then the fewest bands)
  // replaces that pick when it ranks higher, or ranks equal and takes fewer of a core's
  // bands than the pick (each band loads every weight tile again).
  auto better = [](const Choice& a, const Choice& b) {  // a ranks strictly higher than b
    return (a.preferred && !b.preferred) || (a.preferred == b.preferred && a.traffic < b.traffic);
  };
  const Choice* pick = nullptr;
  const Choice* sliced = nullptr;
  for (const auto& c : choices) {
    plan.options.push_back(c.ok ? fmt::format("{}: {} bytes moved, {} of them off chip, {} bands", c.name,
                                              c.traffic, c.offchip, bands_of(c.on))
                                : fmt::format("{}: does not fit", c.name));
    if (!c.ok) continue;
    const Choice*& best = c.kc ? sliced : pick;
    if (!best || better(c, *best) || (c.kc && !better(*best, c) && core_bands(c.on) < core_bands(best->on))) best = &c;
  }
  if (sliced && pick && (better(*pick, *sliced) || (!better(*sliced, *pick) && core_bands(sliced->on) >= core_bands(pick->on)))) {
    sliced = nullptr;
  }
  if (sliced) pick = sliced;
  if (!pick && two_input && wm.space == isa::Space::kHost) {
    fail(op, "inputs", fmt::format("b that fits off-chip memory or, staged from host memory a sample at a time, the "
                                   "unified buffer ({} bytes) beside the smallest band", a_.unified_buffer.bytes),
         fmt::format("{} bytes of b per sample in host memory", w_bytes));
  }
  if (!pick && wm.space == isa::Space::kHost) {
    fail(op, "", fmt::format("weights that fit off-chip memory or, staged from host memory, the unified buffer "
                             "({} bytes) one column tile at a time", a_.unified_buffer.bytes),
         fmt::format("{} bytes of weights in host memory", w_bytes));
  }
  if (!pick) {
    fail(op, "", fmt::format("a layer whose smallest band fits the unified buffer ({} bytes)", a_.unified_buffer.bytes),
         fmt::format("{} bytes for one output row", fixed + band_bytes(1, sliceable ? rows : xs.c)));
  }
  const int64_t on_max = pick->on;
  plan.loop_order = pick->name;
  plan.est_hbm_bytes = static_cast<int64_t>(pick->offchip);
  plan.weights_in = pick->staged ? (wm.space == isa::Space::kHost ? "host -> ub" : "mem -> ub")
                                 : "mem";
  plan.n_tiles = static_cast<int64_t>(jobs.size());
  plan.k_chunks = jobs.empty() ? 0 : static_cast<int64_t>(jobs[0].passes.size());

  // ---- UB layout ----
  ub_begin(pick->half);
  uint64_t params_ub = params_region.empty() ? 0 : load_params(op, params_region);
  uint64_t lut_act = act_after ? lut_for(op, act) : 0;
  int64_t jobs_per_group = pick->groups > 1 ? ceil_div(static_cast<int64_t>(jobs.size()), pick->groups)
                                            : static_cast<int64_t>(jobs.size());
  int64_t ngroups = ceil_div(static_cast<int64_t>(jobs.size()), jobs_per_group);
  uint64_t inb = 0, outb = 0;
  if (window) {
    int64_t rn = std::min<int64_t>(xs.h, (on_max - 1) * op.sh + int64_t{op.kh - 1} * op.dh + 1);
    inb = direct_in ? 0 : static_cast<uint64_t>(rn * ub_row_bytes);
    outb = static_cast<uint64_t>(on_max * ys.w * ys.c * eb_);
  } else {
    inb = direct_in ? 0 : static_cast<uint64_t>(on_max * (pick->kc ? pick->kc : xs.c) * eb_);
    outb = static_cast<uint64_t>(on_max * ys.c * eb_);
  }
  std::vector<uint64_t> in_ub(2), out_ub(2), side_ub(2, 0);
  for (auto& b : in_ub) b = ub_alloc(op, inb);
  const uint64_t outb_buf = direct_out ? 0 : outb;
  for (auto& b : out_ub) b = ub_alloc(op, outb_buf);
  if (side_tensors) {
    for (auto& b : side_ub) b = ub_alloc(op, outb);
  }
  std::vector<uint64_t> chain_luts(chain.size(), 0);
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const Op* f = chain[i];
    isa::Activation g = f->kind == OpKind::kAdd || f->kind == OpKind::kMul ? f->activation : activation_of(f->kind);
    if (int8 && g != isa::Activation::kNone && g != isa::Activation::kRelu) chain_luts[i] = lut_for(*f, g);
  }
  uint64_t stage_ub = 0;
  std::vector<uint64_t> stage_bufs;  // two-input b staged per sample
  if (pick->staged) {
    uint64_t stage_bytes = pick->groups > 1 ? static_cast<uint64_t>(wm.rows) * static_cast<uint64_t>(jobs_per_group * cols * eb_)
                                            : w_bytes;
    stage_ub = ub_alloc(op, stage_bytes);
    stage_bufs.push_back(stage_ub);
    for (int i = 1; two_input && i < pick->stage_bufs; ++i) stage_bufs.push_back(ub_alloc(op, stage_bytes));
  }
  // Image groups: when each band is a whole image of a window layer and every MXU has a
  // column tile of its own, G images share each weight tile (one load_weights, then one
  // pass per image with pop=0 after the first: the tile stays in the array, as TPU v1
  // streams H x W x N rows through a tile). G is bounded by the images, half the
  // accumulators and the UB left for more double-buffered bands.
  int64_t G = 1;
  const int64_t slot_rows = on_max * (window ? ys.w : 1);
  const int64_t nslots = std::max<int64_t>(1, acc_entries / slot_rows);
  if (window && !two_input && on_max >= ys.h && img1_ - img0_ > 1 &&
      a_.mxu.count <= std::min<int64_t>(static_cast<int64_t>(jobs.size()), jobs_per_group)) {
    uint64_t per_band = 2 * (align_up(inb) + align_up(outb_buf) + static_cast<uint64_t>(side_tensors) * align_up(outb));
    uint64_t left = ub_end_ > ub_next_ ? ub_end_ - ub_next_ : 0;
    G = std::min<int64_t>({img1_ - img0_, std::max<int64_t>(1, nslots / 2),
                           per_band ? 1 + static_cast<int64_t>(left / per_band) : img1_ - img0_});
    G = ceil_div(img1_ - img0_, ceil_div(img1_ - img0_, G));  // groups of equal size (8 = 4 + 4, not 5 + 3)
  }
  for (int64_t i = 1; i < G; ++i) {
    in_ub.push_back(ub_alloc(op, inb));
    in_ub.push_back(ub_alloc(op, inb));
    out_ub.push_back(ub_alloc(op, outb_buf));
    out_ub.push_back(ub_alloc(op, outb_buf));
    side_ub.push_back(side_tensors ? ub_alloc(op, outb) : 0);
    side_ub.push_back(side_tensors ? ub_alloc(op, outb) : 0);
  }
  // Buffers in group order: band bi uses buffer bi % 2G (groups alternate halves).
  auto order = [&](std::vector<uint64_t> v) {
    std::vector<uint64_t> o(v.size());
    for (int64_t t = 0; t < G; ++t) {
      o[static_cast<std::size_t>(t)] = v[static_cast<std::size_t>(2 * t)];
      o[static_cast<std::size_t>(G + t)] = v[static_cast<std::size_t>(2 * t + 1)];
    }
    return o;
  };
  in_ub = order(in_ub);
  out_ub = order(out_ub);
  side_ub = order(side_ub);
  const std::size_t nbuf = static_cast<std::size_t>(2 * G);
  if (packed && (pad_l || pad_r)) {
    // Zero the padding columns of every row of every input buffer once; band loads write
    // only the data columns.
    int64_t rn = static_cast<int64_t>(inb / static_cast<uint64_t>(ub_row_bytes));
    int64_t zb = std::max(pad_l, pad_r) * xs.c * eb_;
    std::string zname = op.name + "__zeros";
    isa::Region z;
    z.name = zname;
    z.dtype = isa::ElemType::kInt8;
    z.shape = {static_cast<uint64_t>(rn * zb)};
    z.init = isa::RegionInit::kZero;
    uint64_t zaddr = add_region(z);
    isa::Space zspace = prog_.regions.back().space;
    for (uint64_t buf : in_ub) {
      if (pad_l) dma_load(zspace, zaddr, buf, rn, pad_l * xs.c * eb_, zb, op.name + ": zero left padding", ub_row_bytes);
      if (pad_r) dma_load(zspace, zaddr, buf + static_cast<uint64_t>((pad_l + xs.w) * xs.c * eb_), rn, pad_r * xs.c * eb_, zb,
                          op.name + ": zero right padding", ub_row_bytes);
    }
  }

  // ---- Bands ----
  // This core's samples: images [img0_, img1_), or their rows when the batch is folded.
  std::vector<Band> bands;
  bool folded = images == 1 && !window && !two_input;
  int64_t im0 = folded ? 0 : img0_, im1 = folded ? 1 : img1_;
  int64_t row_lo = folded ? img0_ * xs.pixels() : 0, row_hi = folded ? img1_ * xs.pixels() : max_on;
  if (static_cast<double>(im1 - im0) * std::ceil(static_cast<double>(row_hi - row_lo) / static_cast<double>(on_max)) *
          static_cast<double>(jobs.size()) * 2 > static_cast<double>(opt_.max_instructions)) {
    fail(op, "", fmt::format("a workload that compiles to at most {} instructions", opt_.max_instructions),
         "more (reduce the batch or the tensor sizes)");
  }
  for (int64_t im = im0; im < im1; ++im) {
    for (int64_t o0 = row_lo; o0 < row_hi; o0 += on_max) {
      Band b;
      b.image = im;
      b.o0 = o0;
      b.on = std::min(on_max, row_hi - o0);
      if (window) {
        b.r0 = std::max<int64_t>(0, o0 * op.sh - op.pad_top);
        int64_t r1 = std::min<int64_t>(xs.h, (o0 + b.on - 1) * op.sh - op.pad_top + int64_t{op.kh - 1} * op.dh + 1);
        b.rn = std::max<int64_t>(1, r1 - b.r0);
        if (b.r0 >= xs.h) b.r0 = xs.h - 1;
        b.m = b.on * ys.w;
      } else {
        b.m = b.on;
      }
      bands.push_back(b);
    }
  }
  plan.bands = static_cast<int64_t>(bands.size());
  const uint64_t y_pixel_bytes = static_cast<uint64_t>(ys.c * eb_);

  auto load_band = [&](const Band& b, std::size_t bi) {
    if (direct_in) return;
    uint64_t dst = in_ub[bi % nbuf];
    if (window) {
      uint64_t src = x.addr + static_cast<uint64_t>(((b.image * xs.h + b.r0) * in_row_bytes));
      dma_load(x.space, src, dst + static_cast<uint64_t>(pad_l * xs.c * eb_), b.rn, in_row_bytes, 0,
               fmt::format("{}: input rows {}..{} of image {}", op.name, b.r0, b.r0 + b.rn - 1, b.image),
               packed ? ub_row_bytes : 0);
    } else {
      uint64_t row0 = static_cast<uint64_t>(b.image * xs.pixels() + b.o0);
      dma_load(x.space, x.addr + row0 * static_cast<uint64_t>(xs.c * eb_), dst, 1, b.on * xs.c * eb_, 0,
               fmt::format("{}: input rows {}..{}{}", op.name, b.o0, b.o0 + b.on - 1,
                           two_input ? fmt::format(" of sample {}", b.image) : ""));
    }
  };
  auto y_offset = [&](const Band& b) -> uint64_t {
    int64_t pix = window ? (b.image * ys.h + b.o0) * ys.w : (two_input ? b.image * ys.pixels() + b.o0 : b.o0);
    return static_cast<uint64_t>(pix) * y_pixel_bytes;
  };
  const Tensor& y = tensor(op.name);
  const std::string& final_name = chain.empty() ? op.name : chain.back()->name;
  const Tensor& yf = tensor(final_name);
  // Where band bi's result is assembled: its place in a UB-resident output, or a buffer.
  auto out_at = [&](std::size_t bi) -> uint64_t {
    return direct_out ? yf.addr + y_offset(bands[bi]) : out_ub[bi % nbuf];
  };

  // Work items: (column tile, part of a band's rows) on one MXU.
  struct Item {
    const Job* job;
    int64_t row0, rows;  // output rows (window) or matrix rows (plain) within the band
    int mxu = 0;
    std::vector<int64_t> acc0;  // per band of the group
  };
  // Column tiles [j0, j1) over a band of `on` rows: when there are fewer tiles than MXUs,
  // the rows are split so that every MXU has work.
  auto split_items = [&](std::size_t j0, std::size_t j1, int64_t on) {
    int64_t parts = std::clamp<int64_t>(a_.mxu.count / std::max<int64_t>(1, static_cast<int64_t>(j1 - j0)), 1, on);
    int64_t q = ceil_div(on, parts);
    std::vector<Item> items;
    for (std::size_t ji = j0; ji < j1; ++ji) {
      for (int64_t r = 0; r < on; r += q) items.push_back({&jobs[ji], r, std::min(q, on - r), 0, {}});
    }
    return items;
  };
  auto stage_all_weights = [&]() {
    dma_load(wm.space, wm.addr, stage_ub, 1, static_cast<int64_t>(w_bytes), 0, fmt::format("{}: all weights", op.name));
  };
  auto load_tile = [&](int mxu, const PassDesc& p, const Job& j, int64_t image, int64_t gcol0, int64_t stage_pitch) {
    Instruction lw = Instruction::make(Opcode::kLoadWeights);
    if (pick->staged) {
      lw.set(Fid::kLoadWeights_space, static_cast<int>(isa::WeightSource::kUb));
      lw.set(Fid::kLoadWeights_src, static_cast<int64_t>(stage_ub) + (p.wrow * stage_pitch + (p.wcol - (pick->groups > 1 ? gcol0 : 0))) * eb_);
      lw.set(Fid::kLoadWeights_stride, stage_pitch * eb_);
    } else {
      uint64_t base = wm.addr + wm.per_image * static_cast<uint64_t>(image);
      lw.set(Fid::kLoadWeights_space, static_cast<int>(isa::WeightSource::kMem));
      lw.set(Fid::kLoadWeights_src, static_cast<int64_t>(base) + (p.wrow * wm.pitch + p.wcol) * eb_);
      lw.set(Fid::kLoadWeights_stride, wm.pitch * eb_);
    }
    lw.set(Fid::kLoadWeights_k, p.k);
    lw.set(Fid::kLoadWeights_n, j.n);
    lw.set(Fid::kLoadWeights_dtype, static_cast<int>(dt_));
    lw.set(Fid::kLoadWeights_mxu, mxu);
    if (wm.transpose) lw.set(Fid::kLoadWeights_transpose, 1);
    if (wm.diag) lw.set(Fid::kLoadWeights_diag, 1);
    emit(lw, fmt::format("{} weights rows {}.. cols {}..", op.name, p.wrow, p.wcol));
  };
  auto activate_item = [&](const Item& x, int64_t acc0, uint64_t y_ub) {
    const Job& j = *x.job;
    int64_t row_pixels = window ? ys.w : 1;
    Instruction ac = Instruction::make(Opcode::kActivate);
    ac.set(Fid::kActivate_mxu, x.mxu);
    ac.set(Fid::kActivate_acc, acc0);
    ac.set(Fid::kActivate_rows, x.rows * row_pixels);
    ac.set(Fid::kActivate_n, j.n);
    ac.set(Fid::kActivate_ub, static_cast<int64_t>(y_ub) + (x.row0 * row_pixels * ys.c + j.col0) * eb_);
    ac.set(Fid::kActivate_ub_stride, ys.c * eb_);
    ac.set(Fid::kActivate_mode, static_cast<int>(dt_));
    if (int8) {
      ac.set(Fid::kActivate_params, static_cast<int64_t>(params_ub) + j.col0 * 12);
      ac.set(Fid::kActivate_act_min, act_min);
      ac.set(Fid::kActivate_act_max, act_max);
    } else {
      ac.set(Fid::kActivate_func, static_cast<int>(act_func));
      if (op.bias) {
        ac.set(Fid::kActivate_bias, 1);
        ac.set(Fid::kActivate_params, static_cast<int64_t>(params_ub) + j.col0 * 4);
      }
    }
    emit(ac, fmt::format("{}: cols {}..{}", op.name, j.col0, j.col0 + j.n - 1));
  };
  // A band's result in the UB: the unfused activation, the fused chain, the store.
  auto finish_band = [&](std::size_t bi, int64_t gcol0, int64_t gcol1) {
    const Band& b = bands[bi];
    const uint64_t y_ub = out_at(bi);
    int64_t pixels = b.m;
    if (act_after) {
      apply_unary(op, act, y_ub, pixels, ys.c, lut_act, fmt::format("{}: {}", op.name, isa::kActivationNames[static_cast<int>(act)]));
    }
    for (std::size_t ci = 0; ci < chain.size(); ++ci) {
      const Op* f = chain[ci];
      isa::Activation g = activation_of(f->kind);
      if (f->kind == OpKind::kAdd || f->kind == OpKind::kMul) {
        const std::string& other_name = f->inputs[0] == (ci == 0 ? op.name : chain[ci - 1]->name) ? f->inputs[1] : f->inputs[0];
        const Tensor& other = tensor(other_name);
        uint64_t side = side_ub[bi % nbuf];
        dma_load(other.space, other.addr + y_offset(b), side, 1, pixels * ys.c * eb_, 0,
                 fmt::format("{}: operand {}", f->name, other_name));
        Instruction v = Instruction::make(Opcode::kVector);
        v.set(Fid::kVector_op, static_cast<int>(f->kind == OpKind::kAdd ? isa::VectorOp::kAdd : isa::VectorOp::kMul));
        v.set(Fid::kVector_dtype, static_cast<int>(dt_));
        v.set(Fid::kVector_a, static_cast<int64_t>(y_ub));
        v.set(Fid::kVector_b, static_cast<int64_t>(side));
        v.set(Fid::kVector_dst, static_cast<int64_t>(y_ub));
        v.set(Fid::kVector_count, pixels * ys.c);
        emit(v, fmt::format("{} (fused)", f->name));
        g = f->activation;
      }
      apply_unary(*f, g, y_ub, pixels, ys.c, chain_luts[ci], fmt::format("{} (fused)", f->name));
    }
    if (direct_out) {
      // written in place
    } else if (pick->groups > 1) {
      dma_store(y.space, y.addr + y_offset(b) + static_cast<uint64_t>(gcol0 * eb_), y_ub + static_cast<uint64_t>(gcol0 * eb_),
                pixels, (gcol1 - gcol0) * eb_, ys.c * eb_, ys.c * eb_,
                fmt::format("{}: output cols {}..{}", op.name, gcol0, gcol1 - 1));
    } else {
      dma_store(yf.space, yf.addr + y_offset(b), y_ub, 1, pixels * ys.c * eb_, 0, 0,
                fmt::format("{}: output", final_name));
    }
  };

  // Contraction in slices (plain rows, one column group): per band, its slices in order,
  // each loaded one slice ahead into the other input buffer (strided: kc values of each of
  // the band's rows); every item keeps its accumulator slot over the slices, and the band is
  // activated, finished and stored after its last slice.
  auto emit_sliced = [&]() {
    const int64_t kc = pick->kc;
    const int64_t nsl = ceil_div(xs.c, kc);
    const int64_t count = a_.mxu.count;
    if (pick->staged) stage_all_weights();
    const std::size_t steps = bands.size() * static_cast<std::size_t>(nsl);
    auto load_slice = [&](std::size_t step) {
      const Band& b = bands[step / static_cast<std::size_t>(nsl)];
      int64_t k0 = static_cast<int64_t>(step % static_cast<std::size_t>(nsl)) * kc, kn = std::min(kc, xs.c - k0);
      uint64_t first = static_cast<uint64_t>((b.image * xs.pixels() + b.o0) * xs.c + k0);
      dma_load(x.space, x.addr + first * static_cast<uint64_t>(eb_), in_ub[step % 2], b.on, kn * eb_, xs.c * eb_,
               fmt::format("{}: input rows {}..{}, values {}..{}", op.name, b.o0, b.o0 + b.on - 1, k0, k0 + kn - 1),
               kc * eb_);
    };
    load_slice(0);
    for (std::size_t bi = 0; bi < bands.size(); ++bi) {
      const Band& b = bands[bi];
      std::vector<Item> items = split_items(0, jobs.size(), b.on);
      for (std::size_t it = 0; it < items.size(); ++it) {
        Item& x = items[it];
        x.mxu = static_cast<int>(it % static_cast<std::size_t>(count));
        x.acc0.push_back((acc_slot_[static_cast<std::size_t>(x.mxu)]++ % nslots) * slot_rows);
      }
      for (int64_t sl = 0; sl < nsl; ++sl) {
        const std::size_t step = bi * static_cast<std::size_t>(nsl) + static_cast<std::size_t>(sl);
        if (step + 1 < steps) load_slice(step + 1);
        const uint64_t in_base = in_ub[step % 2];
        const int64_t k0 = sl * kc, k1 = std::min(xs.c, k0 + kc);
        for (std::size_t w0 = 0; w0 < items.size(); w0 += static_cast<std::size_t>(count)) {
          const std::size_t w1 = std::min(items.size(), w0 + static_cast<std::size_t>(count));
          // The slice's passes (a job's passes run in order of in_off, every job alike).
          const auto& ps = items[w0].job->passes;
          auto at = [&](int64_t k) {
            return static_cast<std::size_t>(std::partition_point(ps.begin(), ps.end(), [&](const PassDesc& p) { return p.in_off < k; }) - ps.begin());
          };
          const std::size_t p0 = at(k0), p1 = at(k1);
          for (std::size_t pi = p0; pi < p1; ++pi) {
            for (std::size_t it = w0; it < w1; ++it) {
              const Item& x = items[it];
              const Job& j = *x.job;
              const PassDesc& p = j.passes[pi];
              load_tile(x.mxu, p, j, b.image, 0, wm.pitch);
              Instruction mm = Instruction::make(Opcode::kMatmul);
              mm.set(Fid::kMatmul_mxu, x.mxu);
              mm.set(Fid::kMatmul_dtype, static_cast<int>(dt_));
              mm.set(Fid::kMatmul_ub, static_cast<int64_t>(in_base) + (x.row0 * kc + p.in_off - k0) * eb_);
              mm.set(Fid::kMatmul_ub_stride, kc * eb_);
              mm.set(Fid::kMatmul_acc, x.acc0[0]);
              mm.set(Fid::kMatmul_rows, x.rows);
              mm.set(Fid::kMatmul_k, p.k);
              mm.set(Fid::kMatmul_n, j.n);
              mm.set(Fid::kMatmul_accumulate, pi > 0 ? 1 : 0);
              mm.set(Fid::kMatmul_pop, 1);
              emit(mm, fmt::format("{} tile cols {}..{} k {}..{} rows {}..{}", op.name, j.col0, j.col0 + j.n - 1,
                                   p.in_off, p.in_off + p.k - 1, b.o0 + x.row0, b.o0 + x.row0 + x.rows - 1));
            }
          }
        }
      }
      for (const Item& x : items) activate_item(x, x.acc0[0], out_at(bi));
      finish_band(bi, 0, jobs.back().col0 + jobs.back().n);
    }
  };
  if (pick->kc) emit_sliced();
  else
  for (int64_t g = 0; g < ngroups; ++g) {
    std::size_t j0 = static_cast<std::size_t>(g * jobs_per_group);
    std::size_t j1 = std::min(jobs.size(), static_cast<std::size_t>((g + 1) * jobs_per_group));
    int64_t gcol0 = jobs[j0].col0, gcol1 = jobs[j1 - 1].col0 + jobs[j1 - 1].n;
    int64_t stage_pitch = pick->groups > 1 ? gcol1 - gcol0 : wm.pitch;
    if (pick->staged && !two_input) {
      if (pick->groups > 1) {
        dma_load(wm.space, wm.addr + static_cast<uint64_t>(gcol0 * eb_), stage_ub, wm.rows,
                 stage_pitch * eb_, wm.pitch * eb_,
                 fmt::format("{}: weights, columns {}..{}", op.name, gcol0, gcol1 - 1));
      } else {
        stage_all_weights();
      }
    }
    for (std::size_t bi = 0; bi < std::min(bands.size(), static_cast<std::size_t>(G)); ++bi) load_band(bands[bi], bi);
    for (std::size_t g0 = 0; g0 < bands.size(); g0 += static_cast<std::size_t>(G)) {
      const std::size_t g1 = std::min(bands.size(), g0 + static_cast<std::size_t>(G));
      for (std::size_t bi = g1; bi < std::min(bands.size(), g1 + static_cast<std::size_t>(G)); ++bi) load_band(bands[bi], bi);
      const std::size_t ng = g1 - g0;
      if (two_input && pick->staged && (g0 == 0 || bands[g0].image != bands[g0 - 1].image)) {
        // This sample's b (staged on the previous sample's turn, or now for the first), then
        // the next sample's into the other buffer.
        const int64_t im = bands[g0].image;
        auto stage = [&](int64_t sample) {
          dma_load(wm.space, wm.addr + wm.per_image * static_cast<uint64_t>(sample),
                   stage_bufs[static_cast<std::size_t>(sample - img0_) % stage_bufs.size()], 1,
                   static_cast<int64_t>(w_bytes), 0, fmt::format("{}: b of sample {}", op.name, sample));
        };
        if (g0 == 0 || stage_bufs.size() == 1) stage(im);
        if (stage_bufs.size() > 1 && im + 1 < img1_) stage(im + 1);
        stage_ub = stage_bufs[static_cast<std::size_t>(im - img0_) % stage_bufs.size()];
      }
      // Work items: (column tile, part of the band's rows). When there are fewer column
      // tiles than MXUs, the band's rows are split so every MXU has work (the bands of a
      // group are whole images of the same height, so the split fits them all). Items
      // run in waves of one per MXU, their passes interleaved so that every MXU's queue is
      // fed; within an item, each pass's tile serves the group's bands one after another.
      const Band& b0 = bands[g0];
      const int64_t count = a_.mxu.count;
      std::vector<Item> items = split_items(j0, j1, b0.on);
      for (std::size_t w0 = 0; w0 < items.size(); w0 += static_cast<std::size_t>(count)) {
        std::size_t w1 = std::min(items.size(), w0 + static_cast<std::size_t>(count));
        std::size_t max_passes = 0;
        for (std::size_t it = w0; it < w1; ++it) {
          Item& x = items[it];
          x.mxu = static_cast<int>(it - w0);
          for (std::size_t t = 0; t < ng; ++t) {
            x.acc0.push_back((acc_slot_[static_cast<std::size_t>(x.mxu)]++ % nslots) * slot_rows);
          }
          max_passes = std::max(max_passes, x.job->passes.size());
        }
        for (std::size_t pi = 0; pi < max_passes; ++pi) {
          for (std::size_t it = w0; it < w1; ++it) {
            const Item& x = items[it];
            const Job& j = *x.job;
            if (pi >= j.passes.size()) continue;
            const PassDesc& p = j.passes[pi];
            load_tile(x.mxu, p, j, b0.image, gcol0, stage_pitch);
            for (std::size_t t = 0; t < ng; ++t) {
              const Band& b = bands[g0 + t];
              const uint64_t in_base =
                  !direct_in ? in_ub[(g0 + t) % nbuf]
                  : window   ? x_addr + static_cast<uint64_t>((b.image * xs.h + b.r0) * in_row_bytes)
                             : x_addr + static_cast<uint64_t>((b.image * xs.pixels() + b.o0) * xs.c * eb_);
              Instruction mm = Instruction::make(Opcode::kMatmul);
              mm.set(Fid::kMatmul_mxu, x.mxu);
              mm.set(Fid::kMatmul_dtype, static_cast<int>(dt_));
              mm.set(Fid::kMatmul_ub_stride, xs.c * eb_);
              mm.set(Fid::kMatmul_acc, x.acc0[t]);
              mm.set(Fid::kMatmul_k, p.k);
              mm.set(Fid::kMatmul_n, j.n);
              mm.set(Fid::kMatmul_accumulate, pi > 0 ? 1 : 0);
              mm.set(Fid::kMatmul_pop, t == 0 ? 1 : 0);
              if (window) {
                // The part's first window row, relative to the band's first input row; whole
                // rows before it move into the UB address so that off_h stays small.
                int64_t first = (b.o0 + x.row0) * op.sh - op.pad_top - b.r0;
                int64_t skip = std::clamp<int64_t>(first, 0, b.rn - 1);
                mm.set(Fid::kMatmul_ub, static_cast<int64_t>(in_base) + skip * ub_row_bytes + p.in_off * eb_);
                mm.set(Fid::kMatmul_rows, x.rows * ys.w);
                mm.set(Fid::kMatmul_out_w, ys.w);
                mm.set(Fid::kMatmul_in_h, b.rn - skip);
                mm.set(Fid::kMatmul_in_w, wp);
                mm.set(Fid::kMatmul_stride_h, op.sh);
                mm.set(Fid::kMatmul_stride_w, op.sw);
                mm.set(Fid::kMatmul_off_h, first - skip + int64_t{p.r} * op.dh);
                mm.set(Fid::kMatmul_off_w, packed ? 0 : int64_t{p.s} * op.dw - op.pad_left);
              } else {
                mm.set(Fid::kMatmul_ub, static_cast<int64_t>(in_base) + (x.row0 * xs.c + p.in_off) * eb_);
                mm.set(Fid::kMatmul_rows, x.rows);
              }
              emit(mm, fmt::format("{} tile cols {}..{} tap ({},{}) k {}..{} rows {}..{}{}", op.name, j.col0,
                                   j.col0 + j.n - 1, p.r, p.s, p.in_off, p.in_off + p.k - 1, b.o0 + x.row0,
                                   b.o0 + x.row0 + x.rows - 1, images > 1 ? fmt::format(" image {}", b.image) : ""));
            }
          }
        }
        for (std::size_t t = 0; t < ng; ++t) {
          const uint64_t y_ub = out_at(g0 + t);
          for (std::size_t it = w0; it < w1; ++it) {
            const Item& x = items[it];
            activate_item(x, x.acc0[t], y_ub);
          }
        }
      }
      for (std::size_t bi = g0; bi < g1; ++bi) finish_band(bi, gcol0, gcol1);
    }
  }
  // Array work actually performed: every pass occupies k x n PEs for its rows.
  for (const auto& j : jobs) {
    for (const auto& p : j.passes) {
      int64_t m_total = 0;
      for (const auto& b : bands) m_total += b.m;
      plan.array_macs += int64_t{p.k} * j.n * m_total;
      plan.array_mac_slots += int64_t{rows} * cols * m_total;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Vector-unit layers.

void Lowering::lower_elementwise(const Op& op) {
  // add/mul/activation functions over whole pixels, in chunks that fit the UB.
  const Shape& s = op.out;
  int64_t pixels = (img1_ - img0_) * s.pixels();
  const int64_t p_base = img0_ * s.pixels();  // this core's first pixel
  bool binary = op.kind == OpKind::kAdd || op.kind == OpKind::kMul;
  isa::Activation f = binary ? op.activation : activation_of(op.kind);
  ub_begin(ub_work_ / 2 >=
           static_cast<uint64_t>(s.c * eb_) * 4 + 8 * kAlign + 256);
  uint64_t lut = dt_ == isa::MatType::kInt8 && f != isa::Activation::kNone && f != isa::Activation::kRelu
                     ? lut_for(op, f) : 0;
  uint64_t U = ub_end_ - ub_next_;
  uint64_t per_pixel = static_cast<uint64_t>(s.c * eb_) * (binary ? 2 : 1) * 2;
  int64_t chunk = static_cast<int64_t>(std::min<uint64_t>(U / (per_pixel + 2 * kAlign), static_cast<uint64_t>(pixels)));
  chunk = std::min<int64_t>(chunk, (int64_t{1} << 23) / std::max<int64_t>(1, s.c * eb_));
  if (chunk < 1) fail(op, "", "one pixel's operands within the unified buffer", fmt::format("{} bytes", per_pixel));
  uint64_t a_ub[2], b_ub[2] = {0, 0};
  for (auto& x : a_ub) x = ub_alloc(op, static_cast<uint64_t>(chunk * s.c * eb_));
  if (binary) {
    for (auto& x : b_ub) x = ub_alloc(op, static_cast<uint64_t>(chunk * s.c * eb_));
  }
  const Tensor& a = tensor(op.inputs[0]);
  const Tensor* b = binary ? &tensor(op.inputs[1]) : nullptr;
  const Tensor& y = tensor(op.name);
  int i = 0;
  for (int64_t p0 = 0; p0 < pixels; p0 += chunk, ++i) {
    int64_t n = std::min(chunk, pixels - p0);
    uint64_t off = static_cast<uint64_t>((p_base + p0) * s.c * eb_);
    int64_t bytes = n * s.c * eb_;
    dma_load(a.space, a.addr + off, a_ub[i % 2], 1, bytes, 0, fmt::format("{}: {}", op.name, op.inputs[0]));
    if (binary) {
      dma_load(b->space, b->addr + off, b_ub[i % 2], 1, bytes, 0, fmt::format("{}: {}", op.name, op.inputs[1]));
      Instruction v = Instruction::make(Opcode::kVector);
      v.set(Fid::kVector_op, static_cast<int>(op.kind == OpKind::kAdd ? isa::VectorOp::kAdd : isa::VectorOp::kMul));
      v.set(Fid::kVector_dtype, static_cast<int>(dt_));
      v.set(Fid::kVector_a, static_cast<int64_t>(a_ub[i % 2]));
      v.set(Fid::kVector_b, static_cast<int64_t>(b_ub[i % 2]));
      v.set(Fid::kVector_dst, static_cast<int64_t>(a_ub[i % 2]));
      v.set(Fid::kVector_count, n * s.c);
      emit(v, op.name);
    }
    apply_unary(op, f, a_ub[i % 2], n, s.c, lut, op.name);
    dma_store(y.space, y.addr + off, a_ub[i % 2], 1, bytes, 0, 0, fmt::format("{}: output", op.name));
  }
}

void Lowering::lower_rowop(const Op& op) {
  const Shape& s = op.out;
  bool int8 = dt_ == isa::MatType::kInt8;
  bool softmax = op.kind == OpKind::kSoftmax;
  int64_t cols = softmax ? op.segment : s.c;
  // Parameter block: int8 scales, then layer_norm's eps, gamma, beta (fp32).
  std::vector<float> block;
  if (int8) {
    block = {static_cast<float>(kInt8ActScale), 0.0f, static_cast<float>(kInt8ActScale), 0.0f};
  }
  if (!softmax) {
    std::vector<float> gamma, beta;
    layer_norm_params(w_, op, &gamma, &beta);
    block.push_back(static_cast<float>(op.eps));
    block.insert(block.end(), gamma.begin(), gamma.end());
    block.insert(block.end(), beta.begin(), beta.end());
  }
  ub_begin(ub_work_ / 2 >=
           block.size() * 4 + static_cast<uint64_t>(cols * eb_) * 2 + 4 * kAlign);
  uint64_t params_ub = 0;
  if (!block.empty()) {
    std::vector<uint8_t> bytes(block.size() * 4);
    std::memcpy(bytes.data(), block.data(), bytes.size());
    values_region(op.name + "__p", isa::ElemType::kFp32, std::move(bytes));
    params_ub = load_params(op, op.name + "__p");
  }
  int64_t total_rows = (img1_ - img0_) * s.elements() / cols;
  const int64_t r_base = img0_ * s.elements() / cols;  // this core's first row
  uint64_t U = ub_end_ - ub_next_;
  uint64_t per_row = static_cast<uint64_t>(cols * eb_) * 2;
  int64_t chunk = static_cast<int64_t>(std::min<uint64_t>(U / (per_row + kAlign), static_cast<uint64_t>(total_rows)));
  chunk = std::min<int64_t>(chunk, (int64_t{1} << 23) / std::max<int64_t>(1, cols * eb_));
  if (chunk < 1) fail(op, "", "one row within the unified buffer", fmt::format("{} bytes", per_row));
  uint64_t buf[2];
  for (auto& x : buf) x = ub_alloc(op, static_cast<uint64_t>(chunk * cols * eb_));
  const Tensor& a = tensor(op.inputs[0]);
  const Tensor& y = tensor(op.name);
  int i = 0;
  for (int64_t r0 = 0; r0 < total_rows; r0 += chunk, ++i) {
    int64_t n = std::min(chunk, total_rows - r0);
    uint64_t off = static_cast<uint64_t>((r_base + r0) * cols * eb_);
    dma_load(a.space, a.addr + off, buf[i % 2], 1, n * cols * eb_, 0, fmt::format("{}: rows {}..{}", op.name, r0, r0 + n - 1));
    Instruction in = Instruction::make(Opcode::kRowOp);
    in.set(Fid::kRowOp_kind, static_cast<int>(softmax ? isa::RowOpKind::kSoftmax : isa::RowOpKind::kLayerNorm));
    in.set(Fid::kRowOp_dtype, static_cast<int>(dt_));
    in.set(Fid::kRowOp_src, static_cast<int64_t>(buf[i % 2]));
    in.set(Fid::kRowOp_dst, static_cast<int64_t>(buf[i % 2]));
    in.set(Fid::kRowOp_rows, n);
    in.set(Fid::kRowOp_cols, cols);
    in.set(Fid::kRowOp_params, static_cast<int64_t>(params_ub));
    emit(in, op.name);
    dma_store(y.space, y.addr + off, buf[i % 2], 1, n * cols * eb_, 0, 0, fmt::format("{}: output", op.name));
  }
}

void Lowering::lower_pool(const Op& op) {
  const Shape& xs = op.in[0];
  const Shape& ys = op.out;
  const Tensor& x = tensor(op.inputs[0]);
  const Tensor& y = tensor(op.name);
  int64_t in_row = xs.w * xs.c * eb_, out_row = ys.w * ys.c * eb_;
  auto rows_in = [&](int64_t on) { return std::min<int64_t>(xs.h, (on - 1) * op.sh + op.kh); };
  ub_begin(ub_work_ / 2 >=
           2 * (align_up(static_cast<uint64_t>(rows_in(1) * in_row)) + align_up(static_cast<uint64_t>(out_row))));
  uint64_t U = ub_end_ - ub_base_;
  int64_t lo = 0, hi = ys.h;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (2 * (align_up(static_cast<uint64_t>(rows_in(mid) * in_row)) + align_up(static_cast<uint64_t>(mid * out_row))) <= U) lo = mid; else hi = mid - 1;
  }
  int64_t on_max = lo;
  if (on_max < 1) fail(op, "", "one output row's window within the unified buffer", fmt::format("{} bytes", rows_in(1) * in_row));
  uint64_t in_ub[2], out_ub[2];
  for (auto& b : in_ub) b = ub_alloc(op, static_cast<uint64_t>(rows_in(on_max) * in_row));
  for (auto& b : out_ub) b = ub_alloc(op, static_cast<uint64_t>(on_max * out_row));
  int i = 0;
  for (int64_t im = img0_; im < img1_; ++im) {
    for (int64_t o0 = 0; o0 < ys.h; o0 += on_max, ++i) {
      int64_t on = std::min(on_max, ys.h - o0);
      int64_t r0 = std::max<int64_t>(0, o0 * op.sh - op.pad_top);
      int64_t r1 = std::min<int64_t>(xs.h, (o0 + on - 1) * op.sh - op.pad_top + op.kh);
      if (r0 >= xs.h) r0 = xs.h - 1;
      int64_t rn = std::max<int64_t>(1, r1 - r0);
      dma_load(x.space, x.addr + static_cast<uint64_t>((im * xs.h + r0) * in_row), in_ub[i % 2], rn, in_row, 0,
               fmt::format("{}: input rows {}..{} of image {}", op.name, r0, r0 + rn - 1, im));
      Instruction p = Instruction::make(Opcode::kPool);
      p.set(Fid::kPool_dtype, static_cast<int>(dt_));
      p.set(Fid::kPool_kind, static_cast<int>(op.kind == OpKind::kMaxPool ? isa::PoolKind::kMax : isa::PoolKind::kAvg));
      p.set(Fid::kPool_src, static_cast<int64_t>(in_ub[i % 2]));
      p.set(Fid::kPool_dst, static_cast<int64_t>(out_ub[i % 2]));
      p.set(Fid::kPool_in_h, rn);
      p.set(Fid::kPool_in_w, xs.w);
      p.set(Fid::kPool_channels, xs.c);
      p.set(Fid::kPool_win_h, op.kh);
      p.set(Fid::kPool_win_w, op.kw);
      p.set(Fid::kPool_stride_h, op.sh);
      p.set(Fid::kPool_stride_w, op.sw);
      p.set(Fid::kPool_pad_top, r0 - o0 * op.sh + op.pad_top);
      p.set(Fid::kPool_pad_left, op.pad_left);
      p.set(Fid::kPool_out_h, on);
      p.set(Fid::kPool_out_w, ys.w);
      emit(p, op.name);
      dma_store(y.space, y.addr + static_cast<uint64_t>((im * ys.h + o0) * out_row), out_ub[i % 2], 1, on * out_row, 0, 0,
                fmt::format("{}: output rows {}..{}", op.name, o0, o0 + on - 1));
    }
  }
}

void Lowering::lower_concat(const Op& op) {
  const Tensor& y = tensor(op.name);
  int64_t C = op.out.c, pixels = (img1_ - img0_) * op.out.pixels();
  const int64_t p_base = img0_ * op.out.pixels();
  ub_begin(true);
  uint64_t U = ub_end_ - ub_base_;
  int64_t c_off = 0;
  int i = 0;
  uint64_t buf[2] = {0, 0};
  int64_t max_c = 0;
  for (const auto& s : op.in) max_c = std::max(max_c, s.c);
  auto chunk_for = [&](uint64_t budget) {
    uint64_t usable = budget > 2 * kAlign ? budget - 2 * kAlign : 0;
    return std::min<int64_t>({pixels, static_cast<int64_t>(usable / 2 / static_cast<uint64_t>(max_c * eb_)), int64_t{1} << 19});
  };
  int64_t chunk = chunk_for(U);
  if (chunk < 1) {
    ub_begin(false);
    chunk = chunk_for(ub_end_ - ub_base_);
  }
  if (chunk < 1) fail(op, "", "one pixel within the unified buffer", "more");
  for (auto& b : buf) b = ub_alloc(op, static_cast<uint64_t>(chunk * max_c * eb_));
  for (std::size_t k = 0; k < op.inputs.size(); ++k) {
    const Tensor& x = tensor(op.inputs[k]);
    int64_t ci = op.in[k].c;
    for (int64_t p0 = 0; p0 < pixels; p0 += chunk, ++i) {
      int64_t n = std::min(chunk, pixels - p0);
      dma_load(x.space, x.addr + static_cast<uint64_t>((p_base + p0) * ci * eb_), buf[i % 2], 1, n * ci * eb_, 0,
               fmt::format("{}: {}", op.name, op.inputs[k]));
      dma_store(y.space, y.addr + static_cast<uint64_t>(((p_base + p0) * C + c_off) * eb_), buf[i % 2], n, ci * eb_, C * eb_, 0,
                fmt::format("{}: channels {}..{}", op.name, c_off, c_off + ci - 1));
    }
    c_off += ci;
  }
}

// A range of the last dimension: strided rows in, contiguous rows out, through the UB.
void Lowering::lower_slice(const Op& op) {
  const Tensor& x = tensor(op.inputs[0]);
  const Tensor& y = tensor(op.name);
  int64_t C = op.in[0].c, S = op.out.c, pixels = (img1_ - img0_) * op.out.pixels();
  const int64_t p_base = img0_ * op.out.pixels();
  ub_begin(false);
  uint64_t budget = ub_end_ - ub_base_ > 2 * kAlign ? (ub_end_ - ub_base_ - 2 * kAlign) / 2 : 0;
  budget = std::min<uint64_t>(budget, uint64_t{1} << 23);
  // Whole rows per chunk when a row fits, else pieces of one row.
  int64_t cols = std::min<int64_t>(S, static_cast<int64_t>(budget / static_cast<uint64_t>(eb_)));
  if (cols < 1) fail(op, "", "one value of the slice within the unified buffer", "none");
  int64_t chunk = cols == S ? std::min<int64_t>({pixels, static_cast<int64_t>(budget / static_cast<uint64_t>(S * eb_)), int64_t{1} << 19}) : 1;
  uint64_t bytes = static_cast<uint64_t>(chunk * cols * eb_);
  uint64_t buf[2] = {ub_alloc(op, bytes), ub_alloc(op, bytes)};
  int i = 0;
  for (int64_t p0 = 0; p0 < pixels; p0 += chunk) {
    int64_t n = std::min(chunk, pixels - p0);
    for (int64_t c0 = 0; c0 < S; c0 += cols, ++i) {
      int64_t w = std::min(cols, S - c0);
      dma_load(x.space, x.addr + static_cast<uint64_t>(((p_base + p0) * C + op.slice_begin + c0) * eb_), buf[i % 2], n,
               w * eb_, C * eb_, op.name + ": slice");
      dma_store(y.space, y.addr + static_cast<uint64_t>(((p_base + p0) * S + c0) * eb_), buf[i % 2], n, w * eb_, S * eb_,
                0, op.name + ": slice");
    }
  }
}

// Each core communicates its own samples' part of the tensor with the same core of the other
// chips (docs/pod.md).
void Lowering::emit_collective(const Op& op, const Tensor& t, isa::CollOp kind) {
  if (t.space != isa::Space::kMem) {
    fail(op, "", "a tensor in off-chip memory for a collective (it spilled to host memory)", "host");
  }
  if (dt_ != isa::MatType::kBf16) fail(op, "dtype", "bf16 for collectives (sums of int8 are not defined)", "int8");
  uint64_t count = static_cast<uint64_t>(op.out.elements() * (img1_ - img0_));
  uint64_t addr = t.addr + static_cast<uint64_t>(op.out.elements() * img0_ * eb_);
  if (count > static_cast<uint64_t>(isa::field_max(Fid::kCollective_count))) {
    fail(op, "", fmt::format("at most {} elements per collective", isa::field_max(Fid::kCollective_count)),
         std::to_string(count));
  }
  Instruction in = Instruction::make(Opcode::kCollective);
  in.set(Fid::kCollective_op, static_cast<int64_t>(kind));
  in.set(Fid::kCollective_dtype, static_cast<int64_t>(isa::CollType::kBf16));
  in.set(Fid::kCollective_space, static_cast<int64_t>(isa::IciSpace::kMem));
  in.set(Fid::kCollective_addr, static_cast<int64_t>(addr));
  in.set(Fid::kCollective_count, static_cast<int64_t>(count));
  in.set(Fid::kCollective_group, static_cast<int64_t>(opt_.comm_masks[static_cast<std::size_t>(op.comm_group)] & 7u));
  emit(in, fmt::format("{}: {} over the {} group", op.name, op_kind_name(op.kind), op.comm_group ? "tensor" : "data"));
}

void Lowering::lower_copy(const Op& op) {
  const Tensor& x = tensor(op.inputs[0]);
  const Tensor& y = tensor(op.name);
  uint64_t per_sample = static_cast<uint64_t>(op.in[0].elements() * eb_);
  uint64_t begin = static_cast<uint64_t>(img0_) * per_sample, end = static_cast<uint64_t>(img1_) * per_sample;
  ub_begin(true);
  uint64_t chunk = std::min<uint64_t>((ub_end_ - ub_base_ - 2 * kAlign) / 2, uint64_t{1} << 23);
  uint64_t buf[2] = {ub_alloc(op, chunk), ub_alloc(op, chunk)};
  int i = 0;
  for (uint64_t off = begin; off < end; off += chunk, ++i) {
    int64_t n = static_cast<int64_t>(std::min(chunk, end - off));
    dma_load(x.space, x.addr + off, buf[i % 2], 1, n, 0, op.name + ": copy");
    dma_store(y.space, y.addr + off, buf[i % 2], 1, n, 0, 0, op.name + ": copy");
  }
}

// ---------------------------------------------------------------------------------------

// Activations in the UB: with CompileOptions::ub_activations, intermediate tensors are placed
// in a range reserved at the top of the UB, sized by a pass over the ops to the peak of live
// intermediates plus the largest one (room for first fit's holes), at most half the buffer;
// what does not fit goes off chip. Each core keeps its own samples in its own UB, each tensor
// sized for the largest core share (share_), so every core reserves and places alike. Tensors
// a collective or a two-input matmul's streamed operand reads stay off chip (those read
// off-chip memory directly).
void Lowering::plan_resident(const std::map<std::string, std::string>& root) {
  if (!opt_.ub_activations) return;
  std::set<std::string> offchip;
  for (const Op& op : w_.ops) {
    if (op.kind == OpKind::kAllReduce || op.kind == OpKind::kAllGather) {
      for (const auto& n : op.inputs) offchip.insert(root.at(n));
      offchip.insert(op.name);
    }
    if (op.kind == OpKind::kMatmul && op.inputs.size() == 2) offchip.insert(root.at(op.inputs[1]));
  }
  uint64_t live = 0, peak = 0, largest = 0;
  std::map<std::string, uint64_t> counted;
  if (a_.host_link.carries_io) {
    // Inputs received from the host are copied in and may stay on chip too.
    for (const auto& in : w_.inputs) {
      if (offchip.count(in.name) || w_.on_device.count(in.name)) continue;
      uint64_t bytes = align_up(static_cast<uint64_t>(in.shape.elements() * share_ * eb_));
      resident_ok_.insert(in.name);
      counted[in.name] = bytes;
      live += bytes;
      largest = std::max(largest, bytes);
    }
    peak = live;
  }
  for (std::size_t i = 0; i < w_.ops.size(); ++i) {
    const Op& op = w_.ops[i];
    bool alias = op.kind == OpKind::kReshape || op.kind == OpKind::kAllReduce;
    bool output = std::find(w_.outputs.begin(), w_.outputs.end(), op.name) != w_.outputs.end();
    if (!alias && !output && !offchip.count(op.name)) {
      uint64_t bytes = align_up(static_cast<uint64_t>(op.out.elements() * share_ * eb_));
      resident_ok_.insert(op.name);
      counted[op.name] = bytes;
      live += bytes;
      peak = std::max(peak, live);
      largest = std::max(largest, bytes);
    }
    auto d = dies_at_.find(i);
    if (d == dies_at_.end()) continue;
    for (const auto& n : d->second) {
      auto c = counted.find(n);
      if (c != counted.end()) live -= c->second;
    }
  }
  uint64_t U = static_cast<uint64_t>(a_.unified_buffer.bytes);
  // The peak plus the largest tensor: first fit leaves holes as tensors die, and a tensor
  // that finds none goes off chip.
  uint64_t reserve = std::min(align_up(peak + largest), U / 2 / kAlign * kAlign);
  ub_work_ = U - reserve;
  out_.ub_activations = reserve > 0;
  resident_.reset(ub_work_, U);
}

Compiled Lowering::run() {
  out_.dtype = dt_;
  out_.batch = w_.batch;
  acc_slot_.assign(static_cast<std::size_t>(a_.mxu.count), 0);
  isa::parse_fingerprint(a_.fingerprint, &prog_.arch_fingerprint);

  // Liveness: the last op reading each tensor (through reshape aliases).
  std::map<std::string, std::string> root;
  for (const auto& in : w_.inputs) root[in.name] = in.name;
  for (std::size_t i = 0; i < w_.ops.size(); ++i) {
    const Op& op = w_.ops[i];
    for (const auto& n : op.inputs) last_use_[root.at(n)] = i;
    bool alias = op.kind == OpKind::kReshape || op.kind == OpKind::kAllReduce;
    root[op.name] = alias ? root.at(op.inputs[0]) : op.name;
  }
  for (const auto& [name, i] : last_use_) dies_at_[i].push_back(name);
  plan_resident(root);
  for (const auto& in : w_.inputs) {
    isa::Region r = input_region(w_, in, dt_, out_.batch);
    Tensor t;
    t.shape = in.shape;
    t.bytes = r.bytes();
    t.root = in.name;
    t.addr = add_region(r);
    t.space = prog_.regions.back().space;
    tensors_[in.name] = t;
    pinned_.insert(in.name);
  }
  // A host-attached accelerator receives its inputs over the host link once per inference:
  // one layer (`inputs__from_host`) copies them into off-chip memory, where the layers read
  // them (reading bands from the host would pay the link's latency per band). When they fit
  // the UB together, every input's load is issued before the first store, so the link's
  // latency is paid once; otherwise each input is copied in double-buffered chunks. The
  // copies are freed after their last reader like any activation.
  if (a_.host_link.carries_io && !w_.inputs.empty()) {
    struct Staged {
      std::string name;
      Tensor host, mem;
      uint64_t begin = 0, bytes = 0;  // this core's samples
    };
    std::vector<Staged> staged;
    for (const auto& in : w_.inputs) {
      if (w_.on_device.count(in.name)) continue;  // already in off-chip memory
      Staged st{in.name, tensors_.at(in.name), tensors_.at(in.name)};
      uint64_t per_sample = static_cast<uint64_t>(in.shape.elements() * eb_);
      // Kept in the UB when there is room (activations on chip, plan_resident): this core's
      // samples, sized for the largest share.
      auto [sp, addr] = [&]() -> std::pair<isa::Space, uint64_t> {
        if (resident_ok_.count(in.name)) {
          if (auto at = resident_.alloc(static_cast<uint64_t>(share_) * per_sample)) return {isa::Space::kUb, *at};
        }
        return mem_.activation(st.host.bytes);
      }();
      if (sp == isa::Space::kUb) {
        st.mem.space = sp;
        st.mem.home = addr;
        st.mem.addr = addr - static_cast<uint64_t>(img0_) * per_sample;
        st.begin = static_cast<uint64_t>(img0_) * per_sample;
        st.bytes = static_cast<uint64_t>(img1_ - img0_) * per_sample;
        staged.push_back(st);
        continue;
      }
      if (sp != isa::Space::kMem) continue;  // no room: the layers read it from the host
      st.mem.space = sp;
      st.mem.addr = addr;
      st.begin = static_cast<uint64_t>(img0_) * per_sample;
      st.bytes = static_cast<uint64_t>(img1_ - img0_) * per_sample;
      staged.push_back(st);
    }
    if (!staged.empty()) {
      LayerPlan plan;
      plan.name = "inputs__from_host";
      plan.op = "host_input";
      plan.shape = w_.inputs.front().shape.str();
      plan.first = prog_.code.size();
      out_.layers.push_back(plan);
      layer_ = static_cast<int>(out_.layers.size()) - 1;
      uint64_t together = 0;
      // Inputs kept in the UB are loaded where they stay; the others pass through buffers.
      for (const auto& st : staged) together += st.mem.space == isa::Space::kUb ? 0 : align_up(st.bytes);
      Op first;
      first.name = plan.name;
      first.where = w_.inputs.front().where;
      if (together <= ub_work_) {
        ub_begin(false);
        std::vector<uint64_t> ub;
        for (const auto& st : staged) {
          // An input kept in the UB is loaded where it stays.
          ub.push_back(st.mem.space == isa::Space::kUb ? st.mem.addr + st.begin : ub_alloc(first, st.bytes));
          dma_load(st.host.space, st.host.addr + st.begin, ub.back(), 1, static_cast<int64_t>(st.bytes), 0,
                   st.name + ": from the host");
        }
        for (std::size_t k = 0; k < staged.size(); ++k) {
          const auto& st = staged[k];
          if (st.mem.space == isa::Space::kUb) continue;
          dma_store(st.mem.space, st.mem.addr + st.begin, ub[k], 1, static_cast<int64_t>(st.bytes), 0, 0,
                    st.name + ": from the host");
        }
      } else {
        for (const auto& st : staged) {
          Op cp = first;
          cp.name = st.name + "__from_host";
          cp.inputs = {st.name};
          cp.in = {st.host.shape};
          tensors_[cp.name] = st.mem;
          lower_copy(cp);
          ub_upper_ = !ub_upper_;
        }
      }
      out_.layers.back().end = prog_.code.size();
      ub_upper_ = !ub_upper_;
      for (const auto& st : staged) {
        tensors_[st.name] = st.mem;
        pinned_.erase(st.name);
      }
    }
  }

  // Fusion groups: a matrix op followed by elementwise ops, each the only consumer of the
  // previous one's result (and none of them a workload output except the last).
  std::map<std::string, int> consumers;
  for (const auto& op : w_.ops) {
    for (const auto& n : op.inputs) consumers[n]++;
  }
  auto is_output = [&](const std::string& n) {
    return std::find(w_.outputs.begin(), w_.outputs.end(), n) != w_.outputs.end();
  };
  std::vector<bool> absorbed(w_.ops.size(), false);
  for (std::size_t i = 0; i < w_.ops.size(); ++i) {
    if (absorbed[i]) continue;
    const Op& op = w_.ops[i];
    op_index_ = static_cast<int>(i);
    std::vector<const Op*> chain;
    if (op.is_matrix() && opt_.fusion) {
      std::string cur = op.name;
      for (std::size_t k = i + 1; k < w_.ops.size(); ++k) {
        const Op& f = w_.ops[k];
        bool elementwise = f.kind == OpKind::kAdd || f.kind == OpKind::kMul ||
                           activation_of(f.kind) != isa::Activation::kNone;
        bool reads_cur = std::find(f.inputs.begin(), f.inputs.end(), cur) != f.inputs.end();
        if (!elementwise || !reads_cur || consumers[cur] != 1 || is_output(cur)) break;
        if (f.inputs.size() == 2 && f.inputs[0] == f.inputs[1]) break;
        if (f.inputs.size() == 2) {
          // The other operand must already be in off-chip memory.
          const std::string& other = f.inputs[0] == cur ? f.inputs[1] : f.inputs[0];
          if (!tensors_.count(other)) break;
        }
        chain.push_back(&f);
        cur = f.name;
      }
    }
    // --no-fusion: the activation of a matrix op becomes its own pass over off-chip memory.
    Op lowered = op;
    // (bf16 sigmoid/tanh/gelu stay in activate: applying them to a bf16-rounded pre-activation
    // would change the result; relu and relu6 commute with the rounding, and int8 applies
    // every function to the requantized value either way.)
    bool nonlinear_bf16 = dt_ == isa::MatType::kBf16 && op.activation != isa::Activation::kNone &&
                          op.activation != isa::Activation::kRelu && op.activation != isa::Activation::kRelu6;
    bool split_activation = !opt_.fusion && op.is_matrix() && op.activation != isa::Activation::kNone && !nonlinear_bf16;
    if (split_activation) lowered.activation = isa::Activation::kNone;

    LayerPlan plan;
    plan.name = op.name;
    plan.op = op_kind_name(op.kind);
    plan.shape = op.out.str();
    plan.matrix = op.is_matrix();
    plan.macs = op.macs * out_.batch;
    plan.first = prog_.code.size();
    for (const Op* f : chain) {
      plan.op += std::string("+") + op_kind_name(f->kind);
      plan.fused.push_back(f->name);
      plan.shape = f->out.str();
    }
    out_.layers.push_back(plan);
    layer_ = static_cast<int>(out_.layers.size()) - 1;

    if ((op.kind == OpKind::kReshape || op.kind == OpKind::kAllReduce) && !is_output(op.name)) {
      Tensor t = tensor(op.inputs[0]);
      t.shape = op.out;
      tensors_[op.name] = t;
      if (op.kind == OpKind::kAllReduce) emit_collective(op, t, isa::CollOp::kAllReduce);
    } else if (op.kind == OpKind::kAllGather) {
      // This chip's shard is copied to the start of the gathered tensor, then gathered in
      // place (docs/pod.md: tensor parallelism).
      define_output(op);
      lower_copy(op);
      emit_collective(op, tensor(op.name), isa::CollOp::kAllGather);
    } else if (op.kind == OpKind::kReshape) {
      // A reshaped output gets its own region: the bytes are copied through the UB.
      define_output(op);
      lower_copy(op);
    } else {
      if (chain.empty()) {
        define_output(op);
      } else {
        // Fused intermediates never reach off-chip memory: they alias the group's result.
        define_output(*chain.back());
        tensors_[op.name] = tensors_[chain.back()->name];
        for (const Op* f : chain) tensors_[f->name] = tensors_[chain.back()->name];
      }
      switch (op.kind) {
        case OpKind::kConv2d:
        case OpKind::kDepthwise:
        case OpKind::kFullyConnected:
        case OpKind::kMatmul:
          lower_matrix(lowered, chain);
          break;
        case OpKind::kMaxPool:
        case OpKind::kAvgPool:
          lower_pool(op);
          break;
        case OpKind::kSoftmax:
        case OpKind::kLayerNorm:
          lower_rowop(op);
          break;
        case OpKind::kConcat:
          lower_concat(op);
          break;
        case OpKind::kSlice:
          lower_slice(op);
          break;
        default:
          lower_elementwise(op);
          break;
      }
    }
    out_.layers.back().end = prog_.code.size();
    ub_upper_ = !ub_upper_;
    sync_pending_ = a_.sequencer.layer_sync;
    if (split_activation) {
      // The activation as a separate layer reading and writing off-chip memory in place.
      LayerPlan ap;
      ap.name = op.name + "_act";
      ap.op = isa::kActivationNames[static_cast<int>(op.activation)];
      ap.shape = op.out.str();
      ap.first = prog_.code.size();
      out_.layers.push_back(ap);
      layer_ = static_cast<int>(out_.layers.size()) - 1;
      Op act;
      act.name = op.name;
      act.kind = op.activation == isa::Activation::kRelu ? OpKind::kRelu
               : op.activation == isa::Activation::kRelu6 ? OpKind::kRelu6
               : op.activation == isa::Activation::kGelu ? OpKind::kGelu
               : op.activation == isa::Activation::kSigmoid ? OpKind::kSigmoid : OpKind::kTanh;
      act.inputs = {op.name};
      act.in = {op.out};
      act.out = op.out;
      act.where = op.where;
      lower_elementwise(act);
      out_.layers.back().end = prog_.code.size();
    }
    std::size_t last = i;
    for (const Op* f : chain) {
      std::size_t k = static_cast<std::size_t>(f - w_.ops.data());
      absorbed[k] = true;
      last = k;
    }
    for (std::size_t k = i; k <= last; ++k) release_dead(k);
  }
  emit(Instruction::make(Opcode::kHalt));
  out_.workload = w_;
  // Vectors grown by doubling give back their spare capacity: long programs are large.
  prog_.code.shrink_to_fit();
  prog_.lines.shrink_to_fit();
  prog_.notes.shrink_to_fit();
  out_.layer_of.shrink_to_fit();
  out_.core_programs.push_back(std::move(prog_));
  out_.offchip_bytes = mem_.footprint();
  out_.host_bytes = mem_.host_bytes();
  return std::move(out_);
}

}  // namespace

isa::MatType resolve_dtype(const arch::ArchConfig& arch, const Workload& w,
                           std::optional<isa::MatType> override_dtype) {
  std::optional<isa::MatType> want = override_dtype ? override_dtype : w.dtype;
  auto to_mat = [](arch::DType d) { return arch::dtype_name(d) == "int8" ? isa::MatType::kInt8 : isa::MatType::kBf16; };
  auto supported = [&](isa::MatType t) {
    return std::any_of(arch.mxu.dtypes.begin(), arch.mxu.dtypes.end(), [&](arch::DType d) { return to_mat(d) == t; });
  };
  if (!want) {
    if (arch.mxu.dtypes.empty()) {
      throw InputError(SourceLocation{w.file, 0, 0}, "dtype", "an architecture with an mxu dtype", "none");
    }
    return to_mat(arch.mxu.dtypes.front());
  }
  if (!supported(*want)) {
    std::string have;
    for (arch::DType d : arch.mxu.dtypes) have += (have.empty() ? "" : "|") + arch::dtype_name(d);
    throw InputError(SourceLocation{override_dtype ? "<command line>" : w.file, 0, 0},
                     override_dtype ? "--dtype" : "dtype",
                     fmt::format("a dtype of {}'s array ({})", arch.name, have),
                     isa::kMatTypeNames[static_cast<int>(*want)]);
  }
  return *want;
}

Compiled compile(const arch::ArchConfig& arch, const Workload& workload, const CompileOptions& opt) {
  Workload w = workload;
  if (opt.batch) {
    w.batch = *opt.batch;
    infer_shapes(w);
  }
  isa::MatType dt = resolve_dtype(arch, w, opt.dtype);
  // The batch is split over the cores (data parallel inside the chip); each core's program
  // declares the same regions and works on its own samples.
  int64_t cores = std::max<int64_t>(1, std::min<int64_t>(arch.cores, w.batch));
  // Each core keeps its own samples' activations in its own UB when they fit; a layer that
  // needs the part of the UB reserved for them, on any core, compiles every core with every
  // activation off chip (an error then is the workload's own), so the cores place alike.
  std::vector<Compiled> per_core;
  auto lower_all = [&](const CompileOptions& o) {
    per_core.clear();
    for (int64_t c = 0; c < cores; ++c) {
      int64_t b0 = w.batch * c / cores, b1 = w.batch * (c + 1) / cores;
      per_core.push_back(Lowering(arch, w, o, dt, b0, b1, cores).run());
    }
  };
  try {
    lower_all(opt);
  } catch (const InputError&) {
    if (!opt.ub_activations) throw;
    CompileOptions off = opt;
    off.ub_activations = false;
    lower_all(off);
  }
  Compiled out;
  for (int64_t c = 0; c < cores; ++c) {
    Compiled& one = per_core[static_cast<std::size_t>(c)];
    if (c == 0) {
      out = std::move(one);
      out.core_layer_of.push_back(out.layer_of);
    } else {
      if (!(one.program().regions == out.program().regions)) {
        throw std::logic_error("compiler: cores' programs declare different regions");
      }
      if (one.ub_activations != out.ub_activations) {
        throw std::logic_error("compiler: cores' programs place activations differently");
      }
      for (std::size_t i = 0; i < out.layers.size() && i < one.layers.size(); ++i) {
        out.layers[i].array_macs += one.layers[i].array_macs;
        out.layers[i].array_mac_slots += one.layers[i].array_mac_slots;
        out.layers[i].bands += one.layers[i].bands;
      }
      out.core_programs.push_back(std::move(one.core_programs.front()));
      out.core_layer_of.push_back(std::move(one.layer_of));
    }
  }
  return out;
}

std::string Compiled::explain() const {
  std::string s = fmt::format("{}: {} ops as {} layers, {} instructions, dtype {}, batch {}, activations {}\n",
                              workload.name, workload.ops.size(), layers.size(), program().code.size(),
                              isa::kMatTypeNames[static_cast<int>(dtype)], batch,
                              ub_activations ? "kept in the UB when they fit" : "off chip");
  for (const auto& l : layers) {
    s += fmt::format("{} [{}] -> {}  instructions {}..{}\n", l.name, l.op, l.shape, l.first,
                     l.end ? l.end - 1 : 0);
    if (!l.matrix) continue;
    s += fmt::format("  MACs {} (array occupied {}), bands {}, column tiles {}, passes per tile {}, "
                     "weights from {}\n",
                     l.macs, l.array_macs, l.bands, l.n_tiles, l.k_chunks, l.weights_in);
    for (const auto& o : l.options) s += "    option: " + o + "\n";
    s += fmt::format("  chosen: {} (estimated {} bytes off chip)\n", l.loop_order, l.est_hbm_bytes);
  }
  return s;
}

}  // namespace tpu::compiler
