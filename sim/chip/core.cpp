// The units of a core: how each spends its cycles on the instructions the sequencer issues.
#include "sim/chip/core.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "arch/error.h"
#include "sim/chip/clock.h"
#include "sim/mxu/array_config.h"

namespace tpu::sim {

using isa::Fid;
using isa::Opcode;

namespace {

std::string op_name(const Op& op) {
  return fmt::format("{} #{}", isa::opcode_spec(op.inst->op).mnemonic, op.index);
}

std::string note_of(const Core& core, const Op& op) {
  if (core.program && op.index < core.program->notes.size()) return core.program->notes[op.index];
  return "";
}

// The hang hook of the watchdog test: the named unit blocks forever on its first command.
void maybe_hang(const ChipContext& ctx, const std::string& unit, WaitState& state) {
  if (ctx.hang_unit == unit) {
    state.set("a test hook that never fires");
    sc_core::sc_event never;
    sc_core::wait(never);
  }
}

// Runs instruction `index` on the functional model. Bad data (a read of bytes never written,
// ...) is an InputError; it must not leave a SystemC process (the kernel would wrap it as an
// internal error), so it is kept in the context, the simulation stops, and run_chip /
// run_pod rethrow it: one clear error, exit code 2. Running out of memory in the functional
// model (a program's data too large for the host) is handled the same way.
void execute(ChipContext& ctx, isa::Interpreter* func, std::size_t index) {
  if (!func) return;
  try {
    func->execute_at(index);
  } catch (const InputError&) {
    if (!ctx.error) ctx.error = std::current_exception();
    sc_core::sc_stop();
    sc_core::sc_event never;
    while (true) sc_core::wait(never);
  } catch (const std::bad_alloc&) {
    if (!ctx.error) ctx.error = std::current_exception();
    sc_core::sc_stop();
    sc_core::sc_event never;
    while (true) sc_core::wait(never);
  }
}

}  // namespace

// ---------------------------------------------------------------- InOrderAccount

int64_t InOrderAccount::begin(int64_t arrive, int64_t deps, int64_t start) {
  pending_.push_back({arrive, deps, start, -1});
  return first_ + static_cast<int64_t>(pending_.size()) - 1;
}

void InOrderAccount::end(int64_t ticket, int64_t end) {
  pending_.at(static_cast<std::size_t>(ticket - first_)).end = end;
  while (!pending_.empty() && pending_.front().end >= 0) {
    const Entry& e = pending_.front();
    int64_t free_from = std::max(e.arrive, busy_until_);
    activity_.add(dependency_, std::max<int64_t>(0, std::min(e.deps, e.start) - free_from));
    if (slot_ >= 0) {
      activity_.add(slot_, std::max<int64_t>(0, e.start - std::max(e.deps, free_from)));
    }
    activity_.add(busy_, std::max<int64_t>(0, e.end - std::max(e.start, busy_until_)));
    busy_until_ = std::max(busy_until_, e.end);
    pending_.pop_front();
    ++first_;
  }
}

// ---------------------------------------------------------------- Dma

Dma::Dma(sc_core::sc_module_name name, ChipContext& ctx, Core& core)
    : sc_module(name),
      seq2dma_cmd("seq2dma_cmd", static_cast<int>(ctx.arch.sequencer.queue_depth)),
      seq2wdma_cmd("seq2wdma_cmd", static_cast<int>(ctx.arch.sequencer.queue_depth)),
      ctx_(ctx),
      core_(core),
      act_track_(ctx.trace.track(std::string(this->name()) + ".act")),
      weight_track_(ctx.trace.track(std::string(this->name()) + ".weight")),
      act_(ctx.stats, std::string(this->name()) + ".act", {"idle", "busy", "dependency_stall"}),
      weight_(ctx.stats, std::string(this->name()) + ".weight",
              {"idle", "busy", "dependency_stall", "fifo_full_stall"}),
      act_account_(act_, 1, 2, -1),
      weight_account_(weight_, 1, 2, 3),
      act_requester_(ctx.hbm->add_requester()),
      weight_requester_(ctx.hbm->add_requester()) {
  SC_THREAD(act_thread);
  SC_THREAD(weight_thread);
}

void Dma::close(int64_t end) {
  act_.close(end);
  weight_.close(end);
}

void Dma::act_thread() {
  while (true) {
    act_state.set("idle");
    Op* op = nullptr;
    seq2dma_cmd.read(op);
    maybe_hang(ctx_, name(), act_state);
    int64_t arrive = now_cycle();
    act_state.set("producers of instruction", static_cast<int64_t>(op->index));
    int slot = slot::kDmaAct + core_.index();
    wait_deps(op, arrive, slot);
    int64_t t = now_cycle();
    const isa::Instruction& in = *op->inst;
    bool load = in.op == Opcode::kDmaLoad;
    uint64_t rows = in.get(load ? Fid::kDmaLoad_rows : Fid::kDmaStore_rows);
    uint64_t bytes = rows * in.get(load ? Fid::kDmaLoad_row_bytes : Fid::kDmaStore_row_bytes);
    const auto space = static_cast<isa::Space>(in.get(load ? Fid::kDmaLoad_space : Fid::kDmaStore_space));
    uint64_t addr = in.get(load ? Fid::kDmaLoad_src : Fid::kDmaStore_dst);
    uint64_t ub_addr = in.get(load ? Fid::kDmaLoad_ub : Fid::kDmaStore_ub);
    Transfer u = core_.ub.access(t, ub_addr, bytes, load);
    int64_t ticket = act_account_.begin(arrive, t, t);
    // Completes when the later of the two sides finishes (known once the off-chip side has
    // reserved its last burst).
    auto finish = [this, op, t, u, load, ticket](const Transfer& off) {
      int64_t done = std::max(off.end, u.end);
      op->complete_at(done);
      if (ctx_.trace.enabled()) {
        ctx_.trace.span(act_track_, op_name(*op), load ? "dma_load" : "dma_store", t, done,
                        note_of(core_, *op));
      }
      act_account_.end(ticket, done);
      op->released = true;  // the thread's own last use came before the transfer
    };
    execute(ctx_, core_.functional, op->index);
    for (const Access& a : op->accesses) {
      if (a.write && a.space == Access::kUb) core_.ub.note_written(a.lo, a.hi);
    }
    if (space == isa::Space::kUb) {
      // A copy within the UB: the other side is a second UB port access.
      finish(core_.ub.access(t, addr, bytes, !load));
    } else if (space == isa::Space::kHost) {
      finish(ctx_.host->transfer(t, bytes, !load));
    } else {
      ctx_.hbm->transfer(act_requester_, addr, bytes, !load, finish);
    }
    wait_until(now_cycle() + 1, slot);  // one transfer issued per cycle
  }
}

void Dma::weight_thread() {
  while (true) {
    weight_state.set("idle");
    Op* op = nullptr;
    seq2wdma_cmd.read(op);
    maybe_hang(ctx_, name(), weight_state);
    int64_t arrive = now_cycle();
    const isa::Instruction& in = *op->inst;
    int mxu = static_cast<int>(in.get(Fid::kLoadWeights_mxu));
    weight_state.set("producers of instruction", static_cast<int64_t>(op->index));
    int slot = slot::kDmaWeight + core_.index();
    wait_deps(op, arrive, slot);
    int64_t t_deps = now_cycle();
    weight_state.set("a free slot in its MXU's weight FIFO for instruction", static_cast<int64_t>(op->index));
    core_.wfifo[mxu]->take_slot();
    int64_t t = now_cycle();
    // A diagonal tile reads one row of k values; the array still shifts in k rows.
    uint64_t bytes = in.get(Fid::kLoadWeights_k) *
                     (in.get(Fid::kLoadWeights_diag) ? 1 : in.get(Fid::kLoadWeights_n)) *
                     isa::mat_bytes(in.get(Fid::kLoadWeights_dtype));
    bool from_ub = in.get(Fid::kLoadWeights_space) == static_cast<int>(isa::WeightSource::kUb);
    if (!from_ub && ctx_.arch.mxu.weight_whole_tiles) {
      bytes = static_cast<uint64_t>(ctx_.arch.mxu.rows * ctx_.arch.mxu.cols) * isa::mat_bytes(in.get(Fid::kLoadWeights_dtype));
    }
    uint64_t src = in.get(Fid::kLoadWeights_src);
    int64_t tile = core_.wfifo[mxu]->push();
    int64_t ticket = weight_account_.begin(arrive, t_deps, t);
    auto finish = [this, op, t, mxu, tile, ticket](const Transfer& tr) {
      core_.wfifo[mxu]->arrive(tile, tr.end);
      op->complete_at(tr.end);
      if (ctx_.trace.enabled()) {
        ctx_.trace.span(weight_track_, op_name(*op), "load_weights", t, tr.end, note_of(core_, *op));
      }
      weight_account_.end(ticket, tr.end);
      op->released = true;
    };
    execute(ctx_, core_.functional, op->index);
    if (from_ub) {
      finish(core_.ub.access(t, src, bytes, false));
    } else {
      ctx_.hbm->transfer(weight_requester_, src, bytes, false, finish);
    }
    wait_until(now_cycle() + 1, slot);
  }
}

// ---------------------------------------------------------------- Mxu

namespace {
enum MxuState { kMxuIdle, kMxuBusy, kMxuFillDrain, kMxuWeightShift, kMxuWeightStall, kMxuInputStall, kMxuRawStall };
}

Mxu::Mxu(sc_core::sc_module_name name, ChipContext& ctx, Core& core, int index)
    : sc_module(name),
      seq2mxu_cmd("seq2mxu_cmd", static_cast<int>(ctx.arch.sequencer.queue_depth)),
      ctx_(ctx),
      core_(core),
      index_(index),
      timer_(array_config_from_arch(ctx.arch)),
      track_(ctx.trace.track(this->name())),
      weight_track_(ctx.trace.track(std::string(this->name()) + ".weights")),
      activity_(ctx.stats, this->name(),
                {"idle", "busy", "fill_drain", "weight_shift_stall", "weight_stall",
                 "input_stall", "raw_stall"}),
      macs_(ctx.stats.counter(std::string(this->name()) + ".useful_macs")),
      passes_(ctx.stats.counter(std::string(this->name()) + ".passes")) {
  SC_THREAD(thread);
}

void Mxu::thread() {
  while (true) {
    state.set("idle");
    Op* op = nullptr;
    seq2mxu_cmd.read(op);
    maybe_hang(ctx_, name(), state);
    int64_t arrive = now_cycle();
    const isa::Instruction& in = *op->inst;
    state.set("producers of instruction", static_cast<int64_t>(op->index));
    const Op* producer = wait_deps(op, arrive, slot::kMxu + index_);
    int64_t t_deps = now_cycle();
    PassSpec spec;
    spec.m = static_cast<int>(in.get(Fid::kMatmul_rows));
    spec.k = static_cast<int>(in.get(Fid::kMatmul_k));
    spec.n = static_cast<int>(in.get(Fid::kMatmul_n));
    spec.load = in.get(Fid::kMatmul_pop) != 0;
    spec.accumulate = in.get(Fid::kMatmul_accumulate) != 0;
    // Input vectors stream from a buffer port; if the port is slower than the array, the
    // stream's start is held back by the difference (the array never starves mid-pass). The
    // port is reserved now, before waiting for the tile, so that buffer reservations stay in
    // time order.
    uint64_t bytes = static_cast<uint64_t>(spec.m) * spec.k * isa::mat_bytes(in.get(Fid::kMatmul_dtype));
    Transfer ub = core_.ub.access(t_deps, in.get(Fid::kMatmul_ub), bytes, false);
    int64_t extra = std::max<int64_t>(0, (ub.end - ub.start) - spec.m);
    spec.inputs_ready_cycle = ub.start + extra;
    if (spec.load) {
      state.set("a tile in the weight FIFO for instruction", static_cast<int64_t>(op->index));
      spec.weights_ready_cycle = core_.wfifo[index_]->pop();
    }
    PassTiming t = timer_.add(spec);
    execute(ctx_, core_.functional, op->index);
    core_.acc[index_]->wrote(t.acc_write_values);
    macs_ += t.useful_macs;
    ++passes_;

    // Account the pass window: the array's own figures, with the input stall split into
    // idle (no instruction yet), input-data / RAW stall (waiting for a DMA / vector producer).
    activity_.add(kMxuBusy, t.busy_cycles);
    activity_.add(kMxuFillDrain, t.fill_drain_cycles);
    activity_.add(kMxuWeightShift, t.weight_shift_stall_cycles);
    activity_.add(kMxuWeightStall, t.weight_stall_cycles);
    int64_t dep_wait = std::clamp<int64_t>(t_deps - std::max(arrive, t.window_start), 0,
                                           t.input_stall_cycles);
    int64_t idle = std::clamp<int64_t>(arrive - t.window_start, 0, t.input_stall_cycles - dep_wait);
    // Held back by a sync on the vector unit (sequencer.layer_sync): the part of the wait
    // after the sync began is a RAW stall, not idle.
    int64_t sync_raw = op->vector_sync_from >= 0
                           ? std::clamp<int64_t>(arrive - std::max(t.window_start, op->vector_sync_from), 0, idle)
                           : 0;
    idle -= sync_raw;
    int dep_state = producer && producer->unit == UnitKind::kVector ? kMxuRawStall : kMxuInputStall;
    activity_.add(dep_state, dep_wait);
    activity_.add(kMxuIdle, idle);
    activity_.add(kMxuRawStall, sync_raw);
    activity_.add(kMxuInputStall, t.input_stall_cycles - dep_wait - idle - sync_raw);
    op->mxu_cycles = {t.busy_cycles, t.fill_drain_cycles, t.weight_shift_stall_cycles,
                      t.weight_stall_cycles, (dep_state == kMxuRawStall ? dep_wait : 0) + sync_raw,
                      t.input_stall_cycles - idle - sync_raw - (dep_state == kMxuRawStall ? dep_wait : 0)};

    op->complete_at(t.last_output_cycle + 1);
    if (t.shift_start_cycle >= 0) {
      if (ctx_.trace.enabled()) {
        ctx_.trace.span(weight_track_, fmt::format("weight shift #{}", op->index), "weight_shift",
                        t.shift_start_cycle,
                        t.shift_start_cycle + timer_.config().shift_cycles());
      }
    }
    if (ctx_.trace.enabled()) {
      ctx_.trace.span(track_, op_name(*op), "matmul", t.stream_start_cycle, t.last_output_cycle + 1,
                      note_of(core_, *op));
    }
    last_ = t;
    any_pass_ = true;
    state.set("streaming instruction", static_cast<int64_t>(op->index));
    op->released = true;
    wait_until(t.window_end, slot::kMxu + index_);
  }
}

void Mxu::close(int64_t end) {
  if (any_pass_) {
    PassTiming last = last_;
    timer_.finish(&last);
    activity_.add(kMxuFillDrain, last.fill_drain_cycles - last_.fill_drain_cycles);
  }
  activity_.close(end);
}

// ---------------------------------------------------------------- VectorUnit

namespace {
// Operations per element on the vector unit (docs/chip.md): transcendental functions are
// evaluated as a few polynomial steps (4 ops).
constexpr int kTranscendentalOps = 4;
int ops_per_element(const isa::Instruction& in) {
  if (in.op == Opcode::kActivate) {
    auto f = static_cast<isa::Activation>(in.get(Fid::kActivate_func));
    return (f == isa::Activation::kSigmoid || f == isa::Activation::kTanh ||
            f == isa::Activation::kGelu)
               ? kTranscendentalOps
               : 1;
  }
  if (in.op == Opcode::kVector) {
    auto f = isa::vector_activation(static_cast<isa::VectorOp>(in.get(Fid::kVector_op)));
    return (f == isa::Activation::kSigmoid || f == isa::Activation::kTanh ||
            f == isa::Activation::kGelu)
               ? kTranscendentalOps
               : 1;
  }
  if (in.op == Opcode::kRowOp) {
    // Passes over each row, one op per element each, the exp pass costing a transcendental:
    // softmax = max (1) + subtract, exp and sum (4) + divide (1); layer_norm = sum (1) +
    // squared deviations (1) + normalize, scale and shift (1); lut = one lookup. int8
    // dequantization and requantization ride in the first and last pass.
    switch (static_cast<isa::RowOpKind>(in.get(Fid::kRowOp_kind))) {
      case isa::RowOpKind::kSoftmax:
        return 1 + kTranscendentalOps + 1;
      case isa::RowOpKind::kLayerNorm:
        return 3;
      case isa::RowOpKind::kLut:
        return 1;
    }
  }
  return 1;
}
enum VpuState { kVpuIdle, kVpuBusy, kVpuDepStall };
}  // namespace

VectorUnit::VectorUnit(sc_core::sc_module_name name, ChipContext& ctx, Core& core)
    : sc_module(name),
      seq2vpu_cmd("seq2vpu_cmd", static_cast<int>(ctx.arch.sequencer.queue_depth)),
      ctx_(ctx),
      core_(core),
      track_(ctx.trace.track(this->name())),
      activity_(ctx.stats, this->name(), {"idle", "busy", "dependency_stall"}),
      elements_(ctx.stats.counter(std::string(this->name()) + ".elements")) {
  SC_THREAD(thread);
}

void VectorUnit::thread() {
  const auto& a = ctx_.arch;
  int64_t per_cycle = a.vector_unit.lanes * a.vector_unit.ops_per_lane_per_cycle;
  while (true) {
    state.set("idle");
    Op* op = nullptr;
    seq2vpu_cmd.read(op);
    maybe_hang(ctx_, name(), state);
    int64_t arrive = now_cycle();
    activity_.enter(kVpuDepStall, arrive);
    state.set("producers of instruction", static_cast<int64_t>(op->index));
    wait_deps(op, arrive, slot::kVector + core_.index());
    int64_t t = now_cycle();
    const isa::Instruction& in = *op->inst;
    int64_t elements = 0;
    uint64_t in_bytes = 0, out_bytes = 0, in_addr = 0, out_addr = 0;
    switch (in.op) {
      case Opcode::kActivate: {
        bool int8 = in.get(Fid::kActivate_mode) == 0;
        int64_t n = in.get(Fid::kActivate_n);
        elements = in.get(Fid::kActivate_rows) * n;
        int ob = int8 ? 1 : (in.get(Fid::kActivate_out_fp32) ? 4 : 2);
        out_bytes = static_cast<uint64_t>(elements) * ob;
        in_bytes = (int8 || in.get(Fid::kActivate_bias)) ? static_cast<uint64_t>(n) * (int8 ? 12 : 4) : 0;
        in_addr = in.get(Fid::kActivate_params);
        out_addr = in.get(Fid::kActivate_ub);
        core_.acc[in.get(Fid::kActivate_mxu)]->read(elements);
        break;
      }
      case Opcode::kPool: {
        int eb = isa::mat_bytes(in.get(Fid::kPool_dtype));
        int64_t c = in.get(Fid::kPool_channels);
        int64_t outs = in.get(Fid::kPool_out_h) * in.get(Fid::kPool_out_w) * c;
        elements = outs * in.get(Fid::kPool_win_h) * in.get(Fid::kPool_win_w);
        in_bytes = static_cast<uint64_t>(in.get(Fid::kPool_in_h) * in.get(Fid::kPool_in_w) * c * eb);
        out_bytes = static_cast<uint64_t>(outs * eb);
        in_addr = in.get(Fid::kPool_src);
        out_addr = in.get(Fid::kPool_dst);
        break;
      }
      case Opcode::kRowOp: {
        auto kind = static_cast<isa::RowOpKind>(in.get(Fid::kRowOp_kind));
        bool int8 = in.get(Fid::kRowOp_dtype) == 0;
        int64_t cols = in.get(Fid::kRowOp_cols);
        elements = in.get(Fid::kRowOp_rows) * cols;
        // The rows are read once and written once (a row is held in the unit between
        // passes), plus the parameter block, as activate reads its parameters.
        in_bytes = static_cast<uint64_t>(elements) * (int8 ? 1 : 2) +
                   isa::rowop_params_bytes(kind, int8, static_cast<uint64_t>(cols));
        out_bytes = static_cast<uint64_t>(elements) * (int8 ? 1 : 2);
        break;
      }
      default: {  // vector
        int eb = isa::mat_bytes(in.get(Fid::kVector_dtype));
        elements = in.get(Fid::kVector_count);
        bool binary = isa::is_binary(static_cast<isa::VectorOp>(in.get(Fid::kVector_op)));
        in_bytes = static_cast<uint64_t>(elements * eb * (binary ? 2 : 1));
        out_bytes = static_cast<uint64_t>(elements * eb);
        in_addr = in.get(Fid::kVector_a);  // both operands as one stream from the first
        out_addr = in.get(Fid::kVector_dst);
        break;
      }
    }
    int64_t compute = (elements * ops_per_element(in) + per_cycle - 1) / per_cycle;
    int64_t busy_end = t + compute;
    if (in_bytes) busy_end = std::max(busy_end, core_.ub.access(t, in_addr, in_bytes, false).end);
    if (out_bytes) busy_end = std::max(busy_end, core_.ub.access(t, out_addr, out_bytes, true).end);
    int64_t done = busy_end + a.vector_unit.latency_cycles;
    execute(ctx_, core_.functional, op->index);
    for (const Access& acc : op->accesses) {
      if (acc.write && acc.space == Access::kUb) core_.ub.note_written(acc.lo, acc.hi);
    }
    elements_ += elements;
    op->complete_at(done);
    if (ctx_.trace.enabled()) {
      ctx_.trace.span(track_, op_name(*op), isa::opcode_spec(in.op).mnemonic, t, done,
                      note_of(core_, *op));
    }
    activity_.enter(kVpuBusy, t);
    state.set("executing instruction", static_cast<int64_t>(op->index));
    op->released = true;
    wait_until(busy_end, slot::kVector + core_.index());
    activity_.enter(kVpuIdle, busy_end);
  }
}

// ---------------------------------------------------------------- IciUnit

namespace {
enum IciState { kIciIdle, kIciBusy, kIciDepStall, kIciRecvWait };
}

IciUnit::IciUnit(sc_core::sc_module_name name, ChipContext& ctx, Core& core)
    : sc_module(name),
      seq2ici_cmd("seq2ici_cmd", static_cast<int>(ctx.arch.sequencer.queue_depth)),
      ctx_(ctx),
      core_(core),
      track_(ctx.trace.track(this->name())),
      activity_(ctx.stats, this->name(), {"idle", "busy", "dependency_stall", "recv_wait"}),
      sent_bytes_(ctx.stats.counter(std::string(this->name()) + ".sent_bytes")) {
  SC_THREAD(thread);
}

void IciUnit::thread() {
  while (true) {
    state.set("idle");
    Op* op = nullptr;
    seq2ici_cmd.read(op);
    maybe_hang(ctx_, name(), state);
    int64_t arrive = now_cycle();
    activity_.enter(kIciDepStall, arrive);
    state.set("producers of instruction", static_cast<int64_t>(op->index));
    int slot = slot::kIci + core_.index();
    wait_deps(op, arrive, slot);
    int64_t t = now_cycle();
    const isa::Instruction& in = *op->inst;
    int64_t done = t;
    switch (in.op) {
      case Opcode::kSend:
        activity_.enter(kIciBusy, t);
        done = ctx_.fabric->send(ctx_.chip_id, in, core_.functional);
        sent_bytes_ += static_cast<int64_t>(in.get(Fid::kSend_bytes));
        op->complete_at(done);
        state.set("issue of instruction", static_cast<int64_t>(op->index));
        wait_until(now_cycle() + 1, slot);  // one send issued per cycle
        break;
      case Opcode::kRecv:
        activity_.enter(kIciRecvWait, t);
        state.set("data on its port for recv", static_cast<int64_t>(op->index));
        ctx_.fabric->recv(ctx_.chip_id, static_cast<int>(in.get(Fid::kRecv_dim)),
                          static_cast<int>(in.get(Fid::kRecv_dir)), in.get(Fid::kRecv_bytes));
        done = now_cycle();
        for (const Access& a : op->accesses) {
          if (a.space == Access::kUb) core_.ub.note_written(a.lo, a.hi);
        }
        op->complete_at(done);
        break;
      default:  // collective
        activity_.enter(kIciBusy, t);
        state.set("the other chips of collective", static_cast<int64_t>(op->index));
        if (ctx_.fabric) {
          done = ctx_.fabric->collective(ctx_.chip_id, core_.index(), op->index, in, core_.functional);
        } else {
          execute(ctx_, core_.functional, op->index);  // a pod of one chip
        }
        op->complete_at(done);
        wait_until(done, slot);
        break;
    }
    if (ctx_.trace.enabled()) {
      ctx_.trace.span(track_, op_name(*op), isa::opcode_spec(in.op).mnemonic, t, std::max(done, t + 1),
                      note_of(core_, *op));
    }
    op->released = true;
    activity_.enter(kIciIdle, now_cycle());
  }
}

// ---------------------------------------------------------------- Sequencer

namespace {
enum SeqState { kSeqIdle, kSeqIssue, kSeqQueueFull, kSeqSync, kSeqDrain };
}

Sequencer::Sequencer(sc_core::sc_module_name name, ChipContext& ctx, Core& core)
    : sc_module(name),
      ctx_(ctx),
      core_(core),
      track_(ctx.trace.track(this->name())),
      activity_(ctx.stats, this->name(),
                {"idle", "issue", "queue_full_stall", "sync_stall", "halt_drain"}) {
  issued_ = &ctx.stats.counter(std::string(this->name()) + ".instructions");
  for (int k = 0; k < isa::kOpcodeCount; ++k) {
    by_opcode_.push_back(&ctx.stats.counter(std::string(this->name()) + ".count." +
                                            isa::opcode_spec(static_cast<Opcode>(k)).mnemonic));
  }
  SC_THREAD(thread);
}

namespace {
bool raw_is_same_mxu(const Op& earlier, const isa::Instruction& in) {
  return earlier.unit == UnitKind::kMxu && in.op == Opcode::kMatmul &&
         earlier.inst->get(Fid::kMatmul_mxu) == in.get(Fid::kMatmul_mxu);
}
}  // namespace

void Sequencer::record(const Op& op) {
  InstrTiming& t = timings_.at(op.index);
  t.issue = op.issue_cycle;
  t.done = op.scheduled ? op.done_cycle : -1;
  t.mxu = op.mxu_cycles;
}

void Sequencer::free_if_done(Op* first) {
  std::vector<Op*>& work = free_work_;
  work.assign(1, first);
  while (!work.empty()) {
    Op* op = work.back();
    work.pop_back();
    if (!op->released || !op->retired || op->dependents > 0 || op->parked) continue;
    record(*op);
    for (Op* d : op->deps) {
      if (--d->dependents == 0) work.push_back(d);  // once: its last holder is gone
    }
    ops_.at(op->index).reset();
    --live_ops_;
  }
}

void Sequencer::drop_deps(Op* op) {
  for (Op* d : op->deps) {
    if (--d->dependents == 0) free_if_done(d);
  }
  op->deps.clear();
  op->deps.shrink_to_fit();
}

void Sequencer::retire_done() {
  int64_t now = now_cycle();
  std::vector<Op*>& retired = retired_now_;
  retired.clear();
  inflight_.erase(std::remove_if(inflight_.begin(), inflight_.end(),
                                 [&](Op* o) {
                                   if (!o->done_by(now)) {
                                     if (o->released && !o->deps.empty()) drop_deps(o);
                                     return false;
                                   }
                                   retired.push_back(o);
                                   return true;
                                 }),
                  inflight_.end());
  // Ops retired before their unit released them (a unit may still trace an op after its
  // completion is known) are parked, and freed only from here, never by another op's
  // cascade, so that no freed op is left in the list.
  unreleased_.erase(std::remove_if(unreleased_.begin(), unreleased_.end(),
                                   [&](Op* o) {
                                     if (!o->released) return false;
                                     o->parked = false;
                                     drop_deps(o);
                                     free_if_done(o);
                                     return true;
                                   }),
                    unreleased_.end());
  for (Op* o : retired) {
    o->retired = true;
    if (o->released) {
      drop_deps(o);
      free_if_done(o);
    } else {
      o->parked = true;
      unreleased_.push_back(o);
    }
  }
}

void Sequencer::close(int64_t end) {
  activity_.close(end);
  for (const auto& op : ops_) {
    if (op) record(*op);
  }
}

void Sequencer::thread() {
  const isa::Program* p = core_.program;
  std::size_t n = p ? p->code.size() : 0;
  ops_.resize(n);
  timings_.assign(n, InstrTiming{});
  for (std::size_t i = 0; i < n; ++i) {
    const isa::Instruction& in = p->code[i];
    activity_.enter(kSeqIssue, now_cycle());
    state.set("issue of instruction", static_cast<int64_t>(i));
    wait_until(now_cycle() + ctx_.arch.sequencer.issue_cycles, slot::kSequencer + core_.index());
    ++*issued_;
    ++*by_opcode_[static_cast<int>(in.op)];
    if (in.op == Opcode::kHalt) break;
    if (in.op == Opcode::kNop) continue;
    retire_done();
    if (in.op == Opcode::kSync) {
      activity_.enter(kSeqSync, now_cycle());
      int64_t mask = in.get(Fid::kSync_units);
      const int64_t sync_start = now_cycle();
      for (Op* o : inflight_) {
        bool match = ((mask & 1) && (o->unit == UnitKind::kDma || o->unit == UnitKind::kWeightDma)) ||
                     ((mask & 2) && o->unit == UnitKind::kMxu) || ((mask & 4) && o->unit == UnitKind::kVector) ||
                     ((mask & 8) && o->unit == UnitKind::kIci);
        if (match && o->unit == UnitKind::kVector && !o->done_by(sync_start)) vector_sync_from_ = sync_start;
        if (match) {
          state.set("sync: completion of instruction", static_cast<int64_t>(o->index));
          wait_done(o, slot::kSequencer + core_.index());
        }
      }
      execute(ctx_, core_.functional, i);
      continue;
    }
    auto op = std::make_unique<Op>();
    op->index = i;
    op->inst = &in;
    op->unit = unit_of(in);
    op->issue_cycle = now_cycle();
    op->vector_sync_from = vector_sync_from_;
    vector_sync_from_ = -1;
    if (ctx_.progress && core_.index() == 0) (*ctx_.progress)(i);
    op->accesses = accesses_of(in);
    for (Op* o : inflight_) {
      // Passes on one MXU run in order and their results reach the accumulators in order,
      // so accumulating passes pipeline without a scoreboard wait.
      if (raw_is_same_mxu(*o, in)) continue;
      bool conflict = false;
      for (const Access& a : op->accesses) {
        for (const Access& b : o->accesses) conflict = conflict || a.conflicts(b);
      }
      if (conflict) {
        op->deps.push_back(o);
        ++o->dependents;
      }
    }
    Op* raw = op.get();
    inflight_.push_back(raw);
    ops_[i] = std::move(op);
    peak_live_ops_ = std::max(peak_live_ops_, ++live_ops_);
    sc_core::sc_fifo<Op*>* q = nullptr;
    switch (raw->unit) {
      case UnitKind::kDma:
        q = &core_.dma.seq2dma_cmd;
        break;
      case UnitKind::kWeightDma:
        q = &core_.dma.seq2wdma_cmd;
        break;
      case UnitKind::kMxu:
        q = &core_.mxu[in.get(Fid::kMatmul_mxu)]->seq2mxu_cmd;
        break;
      case UnitKind::kIci:
        q = &core_.ici.seq2ici_cmd;
        break;
      default:
        q = &core_.vpu.seq2vpu_cmd;
        break;
    }
    if (!q->nb_write(raw)) {
      activity_.enter(kSeqQueueFull, now_cycle());
      state.set("room in the unit queue for instruction", static_cast<int64_t>(i));
      q->write(raw);
    }
  }
  activity_.enter(kSeqDrain, now_cycle());
  for (Op* o : inflight_) {
    state.set("halt: completion of instruction", static_cast<int64_t>(o->index));
    wait_done(o, slot::kSequencer + core_.index());
  }
  end_cycle_ = now_cycle();
  activity_.enter(kSeqIdle, end_cycle_);
  state.set("halted");
  halted_ = true;
  core_.halted_event.notify(sc_core::SC_ZERO_TIME);
}

// ---------------------------------------------------------------- Core

Core::Core(sc_core::sc_module_name name, ChipContext& ctx, int index, const isa::Program* prog,
           isa::Interpreter* func)
    : sc_module(name),
      program(prog),
      functional(func),
      ub("ub", ctx.arch, ctx.stats),
      dma("dma", ctx, *this),
      vpu("vpu", ctx, *this),
      ici("ici", ctx, *this),
      seq("seq", ctx, *this),
      index_(index) {
  for (int i = 0; i < ctx.arch.mxu.count; ++i) {
    wfifo.push_back(std::make_unique<WeightFifo>(fmt::format("wfifo{}", i).c_str(), ctx.arch, ctx.stats));
    acc.push_back(std::make_unique<Accumulators>(fmt::format("acc{}", i).c_str(), ctx.stats));
    mxu.push_back(std::make_unique<Mxu>(fmt::format("mxu{}", i).c_str(), ctx, *this, i));
  }
}

std::string WaitState::text() const {
  return index >= 0 ? fmt::format("{} {}", what, index) : std::string(what);
}

std::vector<std::string> stuck_units(const Core& core) {
  std::vector<std::string> out;
  auto add = [&](const sc_core::sc_object& o, const WaitState& s, const std::string& suffix = "") {
    if (!s.idle()) out.push_back(std::string(o.name()) + suffix + ": waiting for " + s.text());
  };
  add(core.seq, core.seq.state);
  add(core.dma, core.dma.act_state, ".act");
  add(core.dma, core.dma.weight_state, ".weight");
  for (const auto& m : core.mxu) add(*m, m->state);
  add(core.vpu, core.vpu.state);
  add(core.ici, core.ici.state);
  return out;
}

}  // namespace tpu::sim
