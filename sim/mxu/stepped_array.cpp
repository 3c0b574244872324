// The stepped oracle. Each cycle: the controller decides which vector enters and whether a
// tile shift starts (its interlocks are the rules of docs/mxu.md), the cycle is classified,
// then every PE computes its next registers from the current ones (two-phase update).
// Values carry tags (pass, vector, tile) so that any schedule that would corrupt a register
// throws HazardError instead of silently producing a number.
#include "sim/mxu/stepped_array.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "sim/mxu/vcd_writer.h"

namespace tpu::sim {

namespace {

struct Int8Policy {
  using In = int8_t;
  using Acc = int32_t;
  static Acc zero() { return 0; }
  static Acc mac(Acc s, In a, In w, const isa::NumericsOptions&) {
    return isa::wrap_add(s, static_cast<int32_t>(a) * static_cast<int32_t>(w));
  }
  static Acc accumulate(Acc acc, Acc s) { return isa::wrap_add(acc, s); }
  static uint64_t bits(In v) { return static_cast<uint8_t>(v); }
  static uint64_t bits(Acc v) { return static_cast<uint32_t>(v); }
};

struct Bf16Policy {
  using In = uint16_t;
  using Acc = float;
  static Acc zero() { return 0.0f; }
  static Acc mac(Acc s, In a, In w, const isa::NumericsOptions& opt) {
    const float product = isa::bf16_mul(a, w, opt);
    return isa::fl32_add(s, product);
  }
  static Acc accumulate(Acc acc, Acc s) { return isa::fl32_add(acc, s); }
  static uint64_t bits(In v) { return v; }
  static uint64_t bits(Acc v) {
    uint32_t u = 0;
    static_assert(sizeof(u) == sizeof(v));
    std::memcpy(&u, &v, sizeof(u));
    return u;
  }
};

enum class Kind : uint8_t { kBusy, kShift, kWeight, kInput, kDrain };

// A streamed operand travelling through the grid with its tag.
template <class In>
struct Flow {
  bool valid = false;
  In value{};
  int32_t pass = -1;
  int32_t vec = -1;
  int32_t tile = -1;
  bool first = false;  // first vector of a pass that switches to a new tile
};

template <class Acc>
struct Psum {
  bool valid = false;
  Acc value{};
  int32_t pass = -1;
  int32_t vec = -1;  // WS/IS: the vector; OS: the next reduction step expected
};

template <class In>
struct Weight {
  bool valid = false;
  In value{};
  int32_t tile = -1;
};

template <class In>
struct BusEntry {
  bool valid = false;
  int32_t dest = -1;
  In value{};
  int32_t tile = -1;
};

template <class Acc>
struct Result {
  bool valid = false;
  Acc value{};
  int32_t pass = -1;
  int32_t row = -1;
};

struct Entered {
  int32_t pass = -1;
  int32_t vec = -1;
};

struct PassState {
  PassGeometry g;
  int32_t tile = -1;  // index of the pass whose tile this pass multiplies with
  int64_t t0 = -1;    // first issue cycle of its own tile (loading passes)
  int64_t s = -1;     // stream start
  int64_t useful_outputs = 0;
  int64_t emitted = 0;
  int64_t first_out = -1;
  int64_t last_out = -1;
};

template <class Num>
class Grid {
 public:
  using In = typename Num::In;
  using Acc = typename Num::Acc;

  Grid(const ArrayConfig& config, const std::vector<PassSpec>& passes,
       const std::vector<PassOperands>& operands, const SteppedOptions& options)
      : c_(config),
        passes_(passes),
        ops_(operands),
        opt_(options),
        R_(config.rows),
        C_(config.cols),
        W_(config.weight_load_rows_per_cycle),
        S_(config.shift_cycles()),
        ws_(config.dataflow == arch::Dataflow::kWeightStationary),
        os_(config.dataflow == arch::Dataflow::kOutputStationary),
        none_(config.overlap == arch::Overlap::kNone),
        dbl_(config.double_buffered()) {
    const std::size_t pes = static_cast<std::size_t>(R_) * static_cast<std::size_t>(C_);
    a_.assign(pes, {});
    a_next_ = a_;
    w_.assign(pes, {});
    w_next_ = w_;
    psum_.assign(pes, {});
    psum_next_ = psum_;
    if (os_) {
      out_.assign(pes, {});
      out_next_ = out_;
      down_.assign(pes, {});
      down_next_ = down_;
      drain_pass_.assign(static_cast<std::size_t>(C_), -1);
    } else {
      shadow_ = w_;
      shadow_next_ = w_;
      bus_.assign(pes * static_cast<std::size_t>(W_), {});
      bus_next_ = bus_;
    }
    state_.resize(passes_.size());
    int32_t tile = -1;
    for (std::size_t i = 0; i < passes_.size(); ++i) {
      PassState& st = state_[i];
      st.g = geometry(c_, passes_[i]);
      if (!os_ && loads(i)) tile = static_cast<int32_t>(i);
      if (!os_ && !loads(i)) {
        if (tile < 0 ||
            state_[static_cast<std::size_t>(tile)].g.stationary_rows != st.g.stationary_rows ||
            state_[static_cast<std::size_t>(tile)].g.stationary_cols != st.g.stationary_cols) {
          throw std::invalid_argument(
              "mxu pass: load=false needs a tile of the same shape already in the array");
        }
      }
      st.tile = tile;
      st.useful_outputs = static_cast<int64_t>(passes_[i].m) * passes_[i].n;
    }
    if (opt_.record_events) {
      events_.resize(passes_.size());
      for (std::size_t i = 0; i < passes_.size(); ++i) {
        events_[i].input_cycles.assign(static_cast<std::size_t>(state_[i].g.streamed), -1);
        events_[i].output_cycles.assign(static_cast<std::size_t>(state_[i].useful_outputs), -1);
      }
    }
    if (opt_.vcd != nullptr) setup_vcd();
  }

  SteppedResult run() {
    const std::size_t P = passes_.size();
    // Watchdog: every pass finishes within its own worst case after the latest ready cycle.
    int64_t bound = 16;
    for (const PassSpec& p : passes_) {
      bound = std::max(bound, std::max(p.weights_ready_cycle, p.inputs_ready_cycle) + 16);
    }
    for (const PassState& st : state_) bound += S_ + st.g.streamed + 2 * R_ + 2 * C_ + 4;
    for (int64_t f : opt_.force_shift_start) bound = std::max(bound, f + bound);
    for (int64_t f : opt_.force_stream_start) bound = std::max(bound, f + bound);
    int64_t t = 0;
    for (;; ++t) {
      const bool work_left = next_stream_ < P || active_ >= 0 || live_ > 0;
      if (!work_left) break;
      if (t > bound) {
        throw std::logic_error("mxu stepped model: no progress by cycle " + std::to_string(t));
      }
      control(t);
      step(t);
    }
    SteppedResult r;
    r.stepped_cycles = t;
    int64_t end = 0;
    for (const PassState& st : state_) end = std::max(end, st.last_out + 1);
    r.total_cycles = P == 0 ? 0 : end;
    r.passes.resize(P);
    for (std::size_t i = 0; i < P; ++i) fill_static(i, &r.passes[i]);
    for (int64_t x = 0; x < r.total_cycles; ++x) {
      const auto [pass, kind] = classes_.at(static_cast<std::size_t>(x));
      PassTiming& pt = r.passes.at(static_cast<std::size_t>(pass));
      if (pt.window_end == 0) pt.window_start = x;
      pt.window_end = x + 1;
      switch (kind) {
        case Kind::kBusy:
          ++pt.busy_cycles;
          break;
        case Kind::kShift:
          ++pt.weight_shift_stall_cycles;
          break;
        case Kind::kWeight:
          ++pt.weight_stall_cycles;
          break;
        case Kind::kInput:
          ++pt.input_stall_cycles;
          break;
        case Kind::kDrain:
          ++pt.fill_drain_cycles;
          break;
      }
    }
    r.events = std::move(events_);
    return r;
  }

 private:
  std::size_t at(int r, int c) const {
    return static_cast<std::size_t>(r) * static_cast<std::size_t>(C_) + static_cast<std::size_t>(c);
  }
  std::size_t bus_at(int l, int r, int c) const {
    return static_cast<std::size_t>(l) * static_cast<std::size_t>(R_) *
               static_cast<std::size_t>(C_) +
           at(r, c);
  }
  bool loads(std::size_t i) const { return !os_ && passes_[i].load; }

  [[noreturn]] void hazard(int64_t t, int r, int c, const std::string& what) const {
    throw HazardError("mxu stepped model: PE(" + std::to_string(r) + "," + std::to_string(c) +
                      ") at cycle " + std::to_string(t) + ": " + what);
  }

  int64_t forced(const std::vector<int64_t>& v, std::size_t i) const {
    return i < v.size() ? v[i] : -1;
  }

  // Has pass i's last useful result left the array before cycle t?
  bool drained_before(std::size_t i, int64_t t) const {
    const PassState& st = state_[i];
    return st.emitted == st.useful_outputs && st.last_out < t;
  }

  // ---- Controller ----

  bool can_stream(std::size_t i, int64_t t) const {
    const int64_t f = forced(opt_.force_stream_start, i);
    if (f >= 0) return t == f;
    const PassSpec& p = passes_[i];
    const PassState& st = state_[i];
    if (loads(i) && (st.t0 < 0 || t < st.t0 + S_)) return false;  // tile not fully issued
    if (t < p.inputs_ready_cycle) return false;
    if (!ws_ && t < p.weights_ready_cycle) return false;
    if (i > 0 && !drain_ok(i, t)) return false;
    return true;
  }

  // The drain interlocks: overlap none waits for the previous results; OS's result chain
  // must have moved the previous pass's row-0 result out of PE(0,0)'s output register by the
  // time this pass's first result is written there (cycle t + K - 1).
  bool drain_ok(std::size_t i, int64_t t) const {
    if (none_) return drained_before(i - 1, t);
    if (os_) {
      const PassState& prev = state_[i - 1];
      const int64_t column0_drain_start = prev.s + prev.g.streamed + R_ - 1;
      return t + state_[i].g.streamed - 1 >= column0_drain_start;
    }
    return true;
  }

  bool can_shift(std::size_t j, int64_t t) const {
    const bool bus_busy = last_t0_ >= 0 && t < last_t0_ + S_;
    const int64_t f = forced(opt_.force_shift_start, j);
    if (f >= 0) return t == f && !bus_busy;
    if (bus_busy) return false;
    if (ws_ && t < passes_[j].weights_ready_cycle) return false;
    if (j == 0) return true;
    if (none_) return drained_before(j - 1, t);
    if (dbl_) {
      // The shadow registers are free once the tile in them has been switched in, which
      // starts with the first input of the pass that uses it.
      const int32_t prev_tile = state_[j - 1].tile;
      return prev_tile < 0 || (state_[static_cast<std::size_t>(prev_tile)].s >= 0 &&
                               state_[static_cast<std::size_t>(prev_tile)].s <= t);
    }
    // Single buffer: the weights may be overwritten from the cycle the previous pass's last
    // input enters (the landing wave follows that input's wavefront).
    const PassState& prev = state_[j - 1];
    return prev.s >= 0 && prev.s + prev.g.streamed - 1 <= t;
  }

  void control(int64_t t) {
    const std::size_t P = passes_.size();
    Entered e;
    if (active_ < 0 && next_stream_ < P && can_stream(next_stream_, t)) {
      active_ = static_cast<int32_t>(next_stream_);
      active_vec_ = 0;
      state_[next_stream_].s = t;
      ++next_stream_;
    }
    if (active_ >= 0) {
      e = {active_, active_vec_};
      if (opt_.record_events) {
        events_[static_cast<std::size_t>(active_)]
            .input_cycles[static_cast<std::size_t>(active_vec_)] = t;
      }
      if (++active_vec_ == state_[static_cast<std::size_t>(active_)].g.streamed) active_ = -1;
    }
    entered_.push_back(e);

    if (!os_) {
      while (next_shift_ < P && !loads(next_shift_)) ++next_shift_;
      if (next_shift_ < P && can_shift(next_shift_, t)) {
        state_[next_shift_].t0 = t;
        shifts_.push_back({static_cast<int32_t>(next_shift_), t});
        last_t0_ = t;
        ++next_shift_;
      }
      while (!shifts_.empty() && t - shifts_.front().t0 - (C_ - 1) >= S_) {
        shifts_.erase(shifts_.begin());
      }
    }
    classes_.push_back(classify(t, e));
    // A forced start that this cycle could not honour (the input port or the weight bus was
    // busy, or an earlier pass had not started) is a mistake in the test, not a hazard.
    if (next_stream_ < P && forced(opt_.force_stream_start, next_stream_) >= 0 &&
        forced(opt_.force_stream_start, next_stream_) <= t) {
      throw std::logic_error("mxu stepped model: forced stream start of pass " +
                             std::to_string(next_stream_) + " at cycle " + std::to_string(t) +
                             " is blocked by the input port");
    }
    if (!os_ && next_shift_ < P && forced(opt_.force_shift_start, next_shift_) >= 0 &&
        forced(opt_.force_shift_start, next_shift_) <= t) {
      throw std::logic_error("mxu stepped model: forced shift start of pass " +
                             std::to_string(next_shift_) + " at cycle " + std::to_string(t) +
                             " is blocked by the weight bus");
    }
  }

  std::pair<int32_t, Kind> classify(int64_t t, const Entered& e) const {
    if (e.pass >= 0) return {e.pass, Kind::kBusy};
    const std::size_t P = passes_.size();
    if (next_stream_ >= P) return {static_cast<int32_t>(P) - 1, Kind::kDrain};
    const std::size_t i = next_stream_;
    const auto pass = static_cast<int32_t>(i);
    const PassSpec& p = passes_[i];
    const PassState& st = state_[i];
    if (i > 0 && !drain_ok(i, t)) return {pass, Kind::kDrain};
    if (loads(i)) {
      if (st.t0 >= 0 && t < st.t0 + S_) return {pass, Kind::kShift};
      if (st.t0 < 0) {
        if (ws_ && t < p.weights_ready_cycle) return {pass, Kind::kWeight};
        return {pass, unexplained(i, t)};
      }
    }
    if (!ws_ && t < p.weights_ready_cycle) return {pass, Kind::kWeight};
    if (t < p.inputs_ready_cycle) return {pass, Kind::kInput};
    return {pass, unexplained(i, t)};
  }

  Kind unexplained(std::size_t i, int64_t t) const {
    if (forced(opt_.force_stream_start, i) >= 0 || forced(opt_.force_shift_start, i) >= 0) {
      return Kind::kInput;  // a forced schedule waits for no rule
    }
    throw std::logic_error("mxu stepped model: pass " + std::to_string(i) + " idles at cycle " +
                           std::to_string(t) + " with every interlock satisfied");
  }

  // ---- Operand access ----

  In load_in(const void* base, std::size_t ld, int row, int col) const {
    if (base == nullptr) return In{};
    return static_cast<const In*>(
        base)[static_cast<std::size_t>(row) * ld + static_cast<std::size_t>(col)];
  }
  const PassOperands* operands(int32_t pass) const {
    return ops_.empty() ? nullptr : &ops_[static_cast<std::size_t>(pass)];
  }
  In a_value(int32_t pass, int m, int k) const {
    const PassOperands* o = operands(pass);
    return o == nullptr ? In{} : load_in(o->a, o->lda, m, k);
  }
  In w_value(int32_t pass, int k, int n) const {
    const PassOperands* o = operands(pass);
    return o == nullptr ? In{} : load_in(o->w, o->ldw, k, n);
  }

  Entered entered_at(int64_t cycle) const {
    if (cycle < 0) return {};
    return entered_[static_cast<std::size_t>(cycle)];
  }

  // Streamed element entering array row r (WS/IS) at cycle t.
  void row_edge(int64_t t, int r, Flow<In>* f) const {
    const Entered e = entered_at(t - r);
    f->valid = e.pass >= 0;
    if (!f->valid) return;
    const PassState& st = state_[static_cast<std::size_t>(e.pass)];
    f->pass = e.pass;
    f->vec = e.vec;
    f->tile = st.tile;
    f->first = e.vec == 0 && loads(static_cast<std::size_t>(e.pass));
    f->value = In{};
    if (r < st.g.stationary_rows) {
      f->value = ws_ ? a_value(e.pass, e.vec, r) : w_value(e.pass, r, e.vec);
    }
  }
  Flow<In> row_edge(int64_t t, int r) const {
    Flow<In> f;
    row_edge(t, r, &f);
    return f;
  }

  // The weight-bus lane l entering column c from the top at cycle t.
  void feed(int64_t t, int l, int c, BusEntry<In>* b) const {
    b->valid = false;
    for (const Shift& sh : shifts_) {
      const int64_t j = t - sh.t0 - c;
      if (j < 0 || j >= S_) continue;
      const int64_t k = j * W_ + l;
      if (k >= R_) return;
      const PassState& st = state_[static_cast<std::size_t>(sh.pass)];
      b->valid = true;
      b->dest = static_cast<int32_t>(k);
      b->tile = sh.pass;
      b->value = In{};
      const int row = static_cast<int>(k);
      if (row < st.g.stationary_rows && c < st.g.stationary_cols) {
        b->value = ws_ ? w_value(sh.pass, row, c) : a_value(sh.pass, c, row);
      }
      return;
    }
  }
  BusEntry<In> feed(int64_t t, int l, int c) const {
    BusEntry<In> b;
    feed(t, l, c, &b);
    return b;
  }

  // ---- Results ----

  void emit(int64_t t, int32_t pass, int m, int n, Acc value) {
    PassState& st = state_[static_cast<std::size_t>(pass)];
    const PassSpec& p = passes_[static_cast<std::size_t>(pass)];
    if (m >= p.m || n >= p.n) return;  // an unused row or column carries zeros out
    ++st.emitted;
    if (st.first_out < 0) st.first_out = t;
    st.last_out = std::max(st.last_out, t);
    if (opt_.record_events) {
      events_[static_cast<std::size_t>(pass)]
          .output_cycles[static_cast<std::size_t>(m) * static_cast<std::size_t>(p.n) +
                         static_cast<std::size_t>(n)] = t;
    }
    const PassOperands* o = operands(pass);
    if (o == nullptr || o->acc == nullptr) return;
    Acc* acc = static_cast<Acc*>(o->acc) + static_cast<std::size_t>(m) * o->ldacc +
               static_cast<std::size_t>(n);
    *acc = p.accumulate ? Num::accumulate(*acc, value) : value;
  }

  // ---- One cycle of the PE grid ----

  void step(int64_t t) {
    live_ = 0;
    if (os_) {
      step_os(t);
    } else {
      step_stationary(t);
    }
    std::swap(a_, a_next_);
    std::swap(psum_, psum_next_);
    std::swap(w_, w_next_);
    if (os_) {
      std::swap(out_, out_next_);
      std::swap(down_, down_next_);
    } else {
      std::swap(shadow_, shadow_next_);
      std::swap(bus_, bus_next_);
    }
    if (vcd_ != nullptr) trace(t);
  }

  // Next-state registers are written in place (not assembled on the stack and copied), which
  // keeps the oracle fast enough for exhaustive sweeps.
  void step_stationary(int64_t t) {
    for (int r = 0; r < R_; ++r) {
      for (int c = 0; c < C_; ++c) {
        const std::size_t i = at(r, c);
        Flow<In>& a_in = a_next_[i];
        if (c == 0) {
          row_edge(t, r, &a_in);
        } else {
          a_in = a_[at(r, c - 1)];
        }
        Weight<In>& w = w_next_[i];
        w = w_[i];
        Weight<In>& shadow = shadow_next_[i];
        shadow = shadow_[i];
        Psum<Acc>& out = psum_next_[i];
        out.valid = false;
        if (a_in.valid) {
          if (a_in.first && dbl_) {  // the new tile takes effect with this wavefront
            if (!shadow.valid || shadow.tile != a_in.tile) {
              hazard(t, r, c,
                     "switch to tile " + std::to_string(a_in.tile) + " finds shadow tile " +
                         std::to_string(shadow.tile));
            }
            w = shadow;
            shadow.valid = false;
          }
          if (!w.valid || w.tile != a_in.tile) {
            hazard(t, r, c,
                   "vector of pass " + std::to_string(a_in.pass) + " needs tile " +
                       std::to_string(a_in.tile) + " but meets tile " +
                       std::to_string(w.valid ? w.tile : -1));
          }
          Acc in_value = Num::zero();  // the partial sum enters the top row as +0
          if (r > 0) {
            const Psum<Acc>& in = psum_[at(r - 1, c)];
            if (!in.valid || in.pass != a_in.pass || in.vec != a_in.vec) {
              hazard(t, r, c, "partial sum and input belong to different vectors");
            }
            in_value = in.value;
          }
          out.valid = true;
          out.value = Num::mac(in_value, a_in.value, w.value, opt_.numerics);
          out.pass = a_in.pass;
          out.vec = a_in.vec;
          live_ += 2;
        } else if (r > 0 && psum_[at(r - 1, c)].valid) {
          hazard(t, r, c, "partial sum arrives without its input");
        }
        for (int l = 0; l < W_; ++l) {
          BusEntry<In>& keep = bus_next_[bus_at(l, r, c)];
          if (r == 0) {
            feed(t, l, c, &keep);
          } else {
            keep = bus_[bus_at(l, r - 1, c)];
          }
          if (!keep.valid) continue;
          if (keep.dest == r) {
            if (dbl_) {
              if (shadow.valid) {
                hazard(t, r, c,
                       "tile " + std::to_string(keep.tile) + " lands on shadow tile " +
                           std::to_string(shadow.tile));
              }
              shadow.valid = true;
              shadow.value = keep.value;
              shadow.tile = keep.tile;
            } else {
              w.valid = true;
              w.value = keep.value;
              w.tile = keep.tile;
            }
            keep.valid = false;
          } else {
            ++live_;
          }
        }
        if (r == R_ - 1 && out.valid) {
          if (ws_) {
            emit(t, out.pass, out.vec, c, out.value);
          } else {
            emit(t, out.pass, c, out.vec, out.value);
          }
        }
      }
    }
  }

  // Output-stationary: operands meet in PE(m, n) at s + k + m + n; the last step writes the
  // result into the PE's output register; a column's output registers shift down one row
  // per cycle once its bottom PE has written its result.
  Flow<In> os_edge(int64_t t, int idx, bool row) const {
    const Entered e = entered_at(t - idx);
    Flow<In> f;
    if (e.pass < 0) return f;
    const PassSpec& p = passes_[static_cast<std::size_t>(e.pass)];
    f.valid = true;
    f.pass = e.pass;
    f.vec = e.vec;
    if (row && idx < p.m) f.value = a_value(e.pass, idx, e.vec);
    if (!row && idx < p.n) f.value = w_value(e.pass, e.vec, idx);
    return f;
  }

  void step_os(int64_t t) {
    // 1. Result chains: entries of the draining pass move down one row; the bottom one has
    //    already left (it left when it was written there).
    for (int c = 0; c < C_; ++c) {
      const int32_t p = drain_pass_[static_cast<std::size_t>(c)];
      for (int r = 0; r < R_; ++r) out_next_[at(r, c)] = {};
      for (int r = 0; r < R_; ++r) {
        const Result<Acc>& e = out_[at(r, c)];
        if (e.valid && e.pass != p) out_next_[at(r, c)] = e;  // not draining yet: stays
      }
      bool remaining = false;
      for (int r = R_ - 2; r >= 0; --r) {
        const Result<Acc>& e = out_[at(r, c)];
        if (!e.valid || e.pass != p) continue;
        Result<Acc>& dst = out_next_[at(r + 1, c)];
        if (dst.valid) hazard(t, r + 1, c, "draining result runs into a waiting result");
        dst = e;
        remaining = true;
        if (r + 1 == R_ - 1) emit(t, e.pass, e.row, c, e.value);
      }
      if (!remaining) drain_pass_[static_cast<std::size_t>(c)] = -1;
    }
    // 2. MACs.
    for (int r = 0; r < R_; ++r) {
      for (int c = 0; c < C_; ++c) {
        const std::size_t i = at(r, c);
        const Flow<In> a_in = c == 0 ? os_edge(t, r, true) : a_[at(r, c - 1)];
        const Flow<In> w_in = r == 0 ? os_edge(t, c, false) : down_[at(r - 1, c)];
        Psum<Acc> acc = psum_[i];
        if (a_in.valid) {
          const int32_t K = state_[static_cast<std::size_t>(a_in.pass)].g.streamed;
          Acc base = Num::zero();  // the stationary sum starts at +0 with the first step
          if (a_in.vec > 0) {
            if (!acc.valid || acc.pass != a_in.pass || acc.vec != a_in.vec) {
              hazard(t, r, c, "accumulator holds another pass or step");
            }
            base = acc.value;
          } else if (acc.valid) {
            hazard(t, r, c, "new pass starts over an unfinished accumulator");
          }
          const Acc v = Num::mac(base, a_in.value, w_in.value, opt_.numerics);
          if (a_in.vec == K - 1) {
            Result<Acc>& dst = out_next_[i];
            if (dst.valid) hazard(t, r, c, "result written over an undrained result");
            dst = {true, v, a_in.pass, r};
            acc = {};
            if (r == R_ - 1) {
              int32_t& d = drain_pass_[static_cast<std::size_t>(c)];
              if (d >= 0) hazard(t, r, c, "column starts a drain while draining");
              d = a_in.pass;
              emit(t, a_in.pass, r, c, v);
            }
          } else {
            acc = {true, v, a_in.pass, a_in.vec + 1};
          }
        }
        a_next_[i] = a_in;
        down_next_[i] = w_in;
        psum_next_[i] = acc;
        live_ += (a_in.valid ? 1 : 0) + (w_in.valid ? 1 : 0) + (acc.valid ? 1 : 0);
      }
    }
    for (const Result<Acc>& e : out_next_) {
      if (e.valid) ++live_;
    }
  }

  // ---- Results that do not depend on stepping ----

  void fill_static(std::size_t i, PassTiming* t) const {
    const PassSpec& p = passes_[i];
    const PassState& st = state_[i];
    t->shift_start_cycle = loads(i) ? st.t0 : -1;
    t->stream_start_cycle = st.s;
    t->first_output_cycle = st.first_out;
    t->last_output_cycle = st.last_out;
    const auto M = static_cast<int64_t>(p.m), K = static_cast<int64_t>(p.k),
               N = static_cast<int64_t>(p.n);
    t->ub_read_values = M * K;
    t->acc_read_values = p.accumulate ? M * N : 0;
    t->acc_write_values = M * N;
    t->useful_macs = M * K * N;
    t->mapping_efficiency = static_cast<double>(st.g.stationary_rows) * st.g.stationary_cols /
                            (static_cast<double>(R_) * C_);
  }

  // ---- VCD of the edges ----

  void setup_vcd() {
    if (R_ > 64 || C_ > 64) {
      throw std::invalid_argument("mxu stepped model: VCD only for arrays up to 64 x 64");
    }
    vcd_ = std::make_unique<VcdWriter>(*opt_.vcd);
    const int in_bits = static_cast<int>(sizeof(In) * 8);
    for (int r = 0; r < R_; ++r) {
      vcd_in_valid_.push_back(vcd_->add_wire("left_edge", "in" + std::to_string(r) + "_valid", 1));
      vcd_in_.push_back(vcd_->add_wire("left_edge", "in" + std::to_string(r), in_bits));
    }
    for (int c = 0; c < C_; ++c) {
      vcd_wbus_.push_back(vcd_->add_wire("top_edge", "wbus" + std::to_string(c) + "_issue", 1));
      if (os_) {
        vcd_wtop_.push_back(vcd_->add_wire("top_edge", "w" + std::to_string(c), in_bits));
      }
    }
    for (int c = 0; c < C_; ++c) {
      vcd_out_valid_.push_back(
          vcd_->add_wire("bottom_edge", "out" + std::to_string(c) + "_valid", 1));
      vcd_out_.push_back(vcd_->add_wire("bottom_edge", "out" + std::to_string(c), 32));
    }
  }

  void trace(int64_t t) {
    for (int r = 0; r < R_; ++r) {
      const Flow<In> f = os_ ? os_edge(t, r, true) : row_edge(t, r);
      vcd_->set(t, vcd_in_valid_[static_cast<std::size_t>(r)], f.valid ? 1 : 0);
      vcd_->set(t, vcd_in_[static_cast<std::size_t>(r)], Num::bits(f.value), f.valid);
    }
    for (int c = 0; c < C_; ++c) {
      if (os_) {
        const Flow<In> f = os_edge(t, c, false);
        vcd_->set(t, vcd_wbus_[static_cast<std::size_t>(c)], f.valid ? 1 : 0);
        vcd_->set(t, vcd_wtop_[static_cast<std::size_t>(c)], Num::bits(f.value), f.valid);
      } else {
        vcd_->set(t, vcd_wbus_[static_cast<std::size_t>(c)], feed(t, 0, c).valid ? 1 : 0);
      }
      // The bottom-edge register written this cycle (now in the current arrays).
      bool valid = false;
      Acc value{};
      if (os_) {
        const Result<Acc>& e = out_[at(R_ - 1, c)];
        valid = e.valid;  // a result sits in the bottom register only in its exit cycle
        value = e.value;
      } else {
        const Psum<Acc>& e = psum_[at(R_ - 1, c)];
        valid = e.valid;
        value = e.value;
      }
      vcd_->set(t, vcd_out_valid_[static_cast<std::size_t>(c)], valid ? 1 : 0);
      vcd_->set(t, vcd_out_[static_cast<std::size_t>(c)], Num::bits(value), valid);
    }
  }

  struct Shift {
    int32_t pass;
    int64_t t0;
  };

  const ArrayConfig& c_;
  const std::vector<PassSpec>& passes_;
  const std::vector<PassOperands>& ops_;
  const SteppedOptions& opt_;
  const int R_, C_, W_, S_;
  const bool ws_, os_, none_, dbl_;

  std::vector<Flow<In>> a_, a_next_;
  std::vector<Psum<Acc>> psum_, psum_next_;  // WS/IS partial sums; OS accumulators
  std::vector<Weight<In>> w_, w_next_;       // WS/IS current weights
  std::vector<Flow<In>> down_, down_next_;   // OS: weights moving down
  std::vector<Weight<In>> shadow_, shadow_next_;
  std::vector<BusEntry<In>> bus_, bus_next_;  // [lane][row][col]
  std::vector<Result<Acc>> out_, out_next_;   // OS output registers
  std::vector<int32_t> drain_pass_;           // OS: pass draining in each column

  std::vector<PassState> state_;
  std::vector<SteppedPassEvents> events_;
  std::vector<Entered> entered_;
  std::vector<std::pair<int32_t, Kind>> classes_;
  std::vector<Shift> shifts_;
  std::size_t next_stream_ = 0;
  std::size_t next_shift_ = 0;
  int32_t active_ = -1;
  int32_t active_vec_ = 0;
  int64_t last_t0_ = -1;
  int64_t live_ = 0;  // values in flight after the last step

  std::unique_ptr<VcdWriter> vcd_;
  std::vector<int> vcd_in_valid_, vcd_in_, vcd_wbus_, vcd_wtop_, vcd_out_valid_, vcd_out_;
};

}  // namespace

SteppedResult run_stepped(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                          const std::vector<PassOperands>& operands,
                          const SteppedOptions& options) {
  validate(config);
  for (const PassSpec& p : passes) check_pass(config, p);
  if (!operands.empty() && operands.size() != passes.size()) {
    throw std::invalid_argument("mxu stepped model: operands must be empty or one per pass");
  }
  if (options.dtype == arch::DType::kInt8) {
    return Grid<Int8Policy>(config, passes, operands, options).run();
  }
  return Grid<Bf16Policy>(config, passes, operands, options).run();
}

}  // namespace tpu::sim
