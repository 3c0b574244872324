// One TensorCore and the chip around it. Units are sc_modules named after the hardware
// (Sequencer, Dma, UnifiedBuffer, WeightFifo, Mxu, Accumulators, VectorUnit; Hbm and
// HostLink at chip level); queues between them are sc_fifos named producer2consumer_what.
// Every unit blocks on work and waits computed durations: there is no per-cycle process.
#pragma once

#include <systemc>

#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/interpreter.h"
#include "isa/program.h"
#include "sim/chip/memory_units.h"
#include "sim/chip/op.h"
#include "sim/chip/stats.h"
#include "sim/chip/trace.h"
#include "sim/mxu/fast_timing.h"

namespace tpu::sim {

class IciFabric;

/// What every unit of a chip shares.
struct ChipContext {
  const arch::ArchConfig& arch;
  Stats& stats;
  TraceRecorder& trace;
  Hbm* hbm = nullptr;
  HostLink* host = nullptr;
  std::string hang_unit;  ///< test hook: this unit never starts its first instruction
  const std::function<void(std::size_t)>* progress = nullptr;  ///< core 0 issue callback
  IciFabric* fabric = nullptr;  ///< the pod's interconnect (null: a chip alone, a pod of one)
  int chip_id = 0;              ///< this chip's index in the pod
  /// The first bad-data error a unit's functional model raised (a read of bytes never
  /// written, ...): it stopped the simulation; run_chip / run_pod rethrow it.
  std::exception_ptr error;
};

/// The pod's side of the ICI (sim/pod/pod_sim.h implements it for the detailed and the
/// symmetric backend). Calls come from a chip's ICI unit thread at the current SystemC time.
class IciFabric {
 public:
  virtual ~IciFabric() = default;
  /// A send issued now: reserves the port's link and returns the cycle the data arrives;
  /// the fabric lands the data (functional) and credits the receiving port then.
  virtual int64_t send(int chip, const isa::Instruction& in, isa::Interpreter* func) = 0;
  /// Suspends until `bytes` have arrived at the port (dim, side) of `chip`; consumes them.
  virtual void recv(int chip, int dim, int side, uint64_t bytes) = 0;
  /// Suspends until this chip's part of the collective is complete (data moved when
  /// functional); returns that cycle.
  /// Collectives pair up core by core: core k of a chip with core k of the others.
  virtual int64_t collective(int chip, int core, std::size_t index, const isa::Instruction& in,
                             isa::Interpreter* func) = 0;
};

/// A unit's "what am I waiting for", for the watchdog's report. Set on the hot path, so it
/// stores a static text and an instruction index and is formatted only when reported.
struct WaitState {
  const char* what = "idle";
  int64_t index = -1;  ///< instruction index, or -1
  void set(const char* w, int64_t i = -1) {
    what = w;
    index = i;
  }
  bool idle() const { return std::string(what) == "idle" || std::string(what) == "halted"; }
  std::string text() const;
};

class Core;

/// Busy, dependency-stall and slot-stall accounting of a DMA engine whose transfers start in
/// order but learn their ends later, possibly out of order (long HBM transfers end when
/// their last turn is reserved). A transfer is accounted once it and every earlier one have
/// an end; busy is the union of the transfer intervals, and a wait counts only where
/// nothing was in flight.
class InOrderAccount {
 public:
  /// States of `activity`: busy, dependency stall, and a slot stall (or -1 for none).
  InOrderAccount(Activity& activity, int busy, int dependency, int slot)
      : activity_(activity), busy_(busy), dependency_(dependency), slot_(slot) {}
  /// A transfer that reached the engine at `arrive`, had its producers done at `deps` and
  /// started at `start`; returns its ticket for end().
  int64_t begin(int64_t arrive, int64_t deps, int64_t start);
  /// Transfer `ticket` completes at `end`.
  void end(int64_t ticket, int64_t end);

 private:
  struct Entry {
    int64_t arrive, deps, start, end;
  };
  Activity& activity_;
  int busy_, dependency_, slot_;
  std::deque<Entry> pending_;
  int64_t first_ = 0;  // ticket of pending_.front()
  int64_t busy_until_ = 0;
};

class Dma : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Dma);
  Dma(sc_core::sc_module_name name, ChipContext& ctx, Core& core);
  sc_core::sc_fifo<Op*> seq2dma_cmd;
  sc_core::sc_fifo<Op*> seq2wdma_cmd;
  WaitState act_state, weight_state;
  void close(int64_t end);

 private:
  void act_thread();
  void weight_thread();
  ChipContext& ctx_;
  Core& core_;
  int act_track_, weight_track_;
  Activity act_, weight_;
  InOrderAccount act_account_, weight_account_;
  int act_requester_, weight_requester_;  // HBM requesters
};

class Mxu : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Mxu);
  Mxu(sc_core::sc_module_name name, ChipContext& ctx, Core& core, int index);
  sc_core::sc_fifo<Op*> seq2mxu_cmd;
  WaitState state;
  /// Ends the pass sequence (final drain) and accounts idle cycles up to `end`.
  void close(int64_t end);

 private:
  void thread();
  ChipContext& ctx_;
  Core& core_;
  int index_;
  FastArrayTimer timer_;
  bool any_pass_ = false;
  PassTiming last_;
  int track_, weight_track_;
  Activity activity_;
  int64_t& macs_;
  int64_t& passes_;
};

class VectorUnit : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(VectorUnit);
  VectorUnit(sc_core::sc_module_name name, ChipContext& ctx, Core& core);
  sc_core::sc_fifo<Op*> seq2vpu_cmd;
  WaitState state;
  void close(int64_t end) { activity_.close(end); }

 private:
  void thread();
  ChipContext& ctx_;
  Core& core_;
  int track_;
  Activity activity_;
  int64_t& elements_;
};

/// Executes the inter-chip instructions of a core (send, recv, collective) through the
/// pod's fabric: sends are issued one per cycle and overlap; recv and collectives hold the
/// unit until they complete.
class IciUnit : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(IciUnit);
  IciUnit(sc_core::sc_module_name name, ChipContext& ctx, Core& core);
  sc_core::sc_fifo<Op*> seq2ici_cmd;
  WaitState state;
  void close(int64_t end) { activity_.close(end); }

 private:
  void thread();
  ChipContext& ctx_;
  Core& core_;
  int track_;
  Activity activity_;
  int64_t& sent_bytes_;
};

class Sequencer : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Sequencer);
  Sequencer(sc_core::sc_module_name name, ChipContext& ctx, Core& core);
  WaitState state;
  bool halted() const { return halted_; }
  int64_t end_cycle() const { return end_cycle_; }
  void close(int64_t end);
  /// Per instruction of the program: when it issued and completed (close() records the ops
  /// still held; instructions never issued keep -1).
  const std::vector<InstrTiming>& timings() const { return timings_; }
  /// The most ops held at once (issued and not yet freed): a long program holds its
  /// in-flight window, not every instruction issued.
  int64_t peak_live_ops() const { return peak_live_ops_; }

 private:
  void thread();
  void retire_done();
  /// Frees `op` if its unit released it, it retired and no op holding it in its deps is
  /// left, and then the deps it held that become free in turn.
  void free_if_done(Op* op);
  /// A released op's unit has finished with it, and only that unit reads its deps (waiting
  /// for them): it stops holding them (freeing those that become free), so that a chain of
  /// dependent ops is not kept alive by its newest member.
  void drop_deps(Op* op);
  void record(const Op& op);
  ChipContext& ctx_;
  Core& core_;
  /// By program index: the ops issued and not yet freed (null otherwise). An op is freed
  /// when nothing can read it any more, so a long program holds only its in-flight window.
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<InstrTiming> timings_;
  std::vector<Op*> inflight_;
  std::vector<Op*> unreleased_;  ///< retired before their unit released them
  std::vector<Op*> retired_now_, free_work_;  ///< retire_done's reused lists
  int64_t vector_sync_from_ = -1;     ///< a sync waited for the vector unit from this cycle
  std::vector<int64_t*> by_opcode_;  ///< instructions issued, per opcode
  int64_t* issued_ = nullptr;         ///< instructions issued
  int64_t live_ops_ = 0, peak_live_ops_ = 0;
  bool halted_ = false;
  int64_t end_cycle_ = 0;
  int track_;
  Activity activity_;
};

class Core : public sc_core::sc_module {
 public:
  /// `prog` may be null (the core has nothing to run); `func` is null when data does not
  /// move (--no-functional).
  Core(sc_core::sc_module_name name, ChipContext& ctx, int index, const isa::Program* prog,
       isa::Interpreter* func);
  int index() const { return index_; }
  const isa::Program* program;
  isa::Interpreter* functional;
  UnifiedBuffer ub;
  std::vector<std::unique_ptr<WeightFifo>> wfifo;
  std::vector<std::unique_ptr<Accumulators>> acc;
  std::vector<std::unique_ptr<Mxu>> mxu;
  Dma dma;
  VectorUnit vpu;
  IciUnit ici;
  Sequencer seq;
  sc_core::sc_event halted_event;

 private:
  int index_;
};

/// Wait states of every unit of the core that is not idle, "path: what" each.
std::vector<std::string> stuck_units(const Core& core);

}  // namespace tpu::sim
