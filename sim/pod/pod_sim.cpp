#include "sim/pod/pod_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <tuple>

#include "arch/error.h"
#include "sim/chip/clock.h"
#include "sim/pod/collective.h"

namespace tpu::pod {

namespace {

using isa::Fid;
using isa::Opcode;

static_assert(static_cast<int>(isa::CollOp::kBroadcast) == static_cast<int>(CollectiveOp::kBroadcast));
static_assert(static_cast<int>(isa::CollAlgorithm::kTree) == static_cast<int>(Algorithm::kTree));
static_assert(static_cast<int>(isa::CollAlgorithm::kMultiTorus) == static_cast<int>(Algorithm::kMultiTorus));

// The network works in seconds, the chips in cycles of their clock.
struct Clock {
  double hz;
  double seconds(int64_t cycle) const { return static_cast<double>(cycle) / hz; }
  int64_t cycle(double s) const { return static_cast<int64_t>(std::ceil(s * hz - 1e-6)); }
};

// Both backends' fabric: ports with credits, a queue of landings (data and credits that
// arrive later), collectives (detailed: gathered over the group and run on the shared
// network when the last member arrives; symmetric: the time of the same schedule on an idle
// pod), and the pod's watchdog end.
class Fabric : public sc_core::sc_module, public sim::IciFabric {
 public:
  SC_HAS_PROCESS(Fabric);
  Fabric(sc_core::sc_module_name name, const arch::ArchConfig& arch, const arch::PodConfig& pod, bool symmetric)
      : sc_module(name), pod_(pod), net_(pod), clock_{arch.clock_mhz * 1e6}, symmetric_(symmetric) {
    for (std::size_t i = 0; i < at(pod.chips) * pod.dims.size() * 2; ++i) ports_.push_back(std::make_unique<Port>());
    // The symmetric backend's representative sits in the middle of every dimension, so that
    // it has neighbours both ways on a mesh too.
    std::vector<int64_t> mid;
    for (int64_t d : pod.dims) mid.push_back(d / 2);
    rep_ = net_.chip_at(mid);
    SC_THREAD(land);
    SC_THREAD(watch);
  }

  std::vector<sim::Chip*> chips;
  std::vector<isa::Interpreter*> funcs;  // core 0's interpreter per chip (null: timing only)
  int concurrent_cores = 1;              // cores per chip whose programs run collectives
  std::vector<CollectiveRecord> records;
  std::exception_ptr error;
  const Network& network() const { return net_; }
  int64_t representative() const { return rep_; }

  // Chip-0 port figures of the symmetric backend's collectives (their idle-pod runs).
  std::vector<double> sym_port_busy, sym_port_bytes;

  int64_t send(int chip, const isa::Instruction& in, isa::Interpreter* func) override {
    int dim = static_cast<int>(in.get(Fid::kSend_dim));
    int dir = in.get(Fid::kSend_dir) == 0 ? 1 : -1;
    uint64_t bytes = in.get(Fid::kSend_bytes);
    int64_t now = sim::now_cycle();
    double arrive_s = net_.send(symmetric_ ? rep_ : chip, dim, dir, 1, static_cast<double>(bytes), clock_.seconds(now));
    int64_t arrive = std::max(now + 1, clock_.cycle(arrive_s));
    // The receiver's side is the one facing the sender; a symmetric pod's representative
    // receives what its mirror neighbour sent the same way.
    int64_t to = symmetric_ ? chip : net_.step(chip, dim, dir);
    int side = dir > 0 ? 1 : 0;
    std::shared_ptr<std::vector<uint8_t>> payload;
    auto space = static_cast<isa::IciSpace>(in.get(Fid::kSend_space));
    uint64_t dst = in.get(Fid::kSend_dst);
    if (func && !symmetric_) {
      payload = std::make_shared<std::vector<uint8_t>>(
          guarded([&] { return func->read_bytes(space, in.get(Fid::kSend_src), bytes); }));
    }
    schedule(arrive, [this, to, dim, side, bytes, payload, space, dst] {
      if (payload && funcs[at(to)]) {
        guarded([&] {
          funcs[at(to)]->write_bytes(space, dst, payload->data(), payload->size());
          return 0;
        });
      }
      Port& p = port(to, dim, side);
      p.credit += bytes;
      p.arrived.notify(sc_core::SC_ZERO_TIME);
    });
    return arrive;
  }

  void recv(int chip, int dim, int side, uint64_t bytes) override {
    Port& p = port(chip, dim, side);
    while (p.credit < bytes) sc_core::wait(p.arrived);
    p.credit -= bytes;
  }

  int64_t collective(int chip, int core, std::size_t index, const isa::Instruction& in, isa::Interpreter* func) override {
    auto op = static_cast<CollectiveOp>(in.get(Fid::kCollective_op));
    auto alg = static_cast<Algorithm>(in.get(Fid::kCollective_algorithm));
    auto type = static_cast<ReduceType>(in.get(Fid::kCollective_dtype));
    int64_t count = static_cast<int64_t>(in.get(Fid::kCollective_count));
    int eb = isa::coll_type_bytes(in.get(Fid::kCollective_dtype));
    unsigned mask = static_cast<unsigned>(in.get(Fid::kCollective_group)) & ((1u << net_.dims()) - 1);
    int64_t now = sim::now_cycle();
    if (symmetric_) return symmetric_collective(core, index, op, alg, count, eb, mask, now);

    Group g = group_of(net_, chip, mask);
    int64_t seq = seq_[std::make_tuple(chip, core, mask)]++;
    auto key = std::make_tuple(g.leader, core, mask, seq);
    auto& slot = pending_[key];
    if (!slot) {
      slot = std::make_unique<Pending>();
      slot->members = snake_members(net_, g);
      slot->op = op;
      slot->alg = alg;
      slot->type = type;
      slot->count = count;
      slot->first_chip = chip;
      slot->first_index = index;
      slot->core = core;
    } else if (slot->op != op || slot->alg != alg || slot->type != type || slot->count != count) {
      fail(InputError(SourceLocation{"<pod>", 0, 0}, fmt::format("chip {} instruction {}", chip, index),
                      fmt::format("the same collective as chip {} instruction {} (op, algorithm, dtype, count)",
                                  slot->first_chip, slot->first_index),
                      "a different one"));
    }
    Pending& p = *slot;
    p.arrivals[chip] = Member{now, static_cast<uint64_t>(in.get(Fid::kCollective_addr)), static_cast<isa::IciSpace>(in.get(Fid::kCollective_space)),
                              func, -1};
    if (p.arrivals.size() == p.members.size()) {
      run_group(p, g, eb, index);
    } else {
      while (p.arrivals.at(chip).done < 0) sc_core::wait(p.done_event);
    }
    int64_t done = p.arrivals.at(chip).done;
    if (++p.picked_up == p.members.size()) pending_.erase(key);
    return done;
  }

  // Wait states of collectives still gathering their members (for the watchdog).
  std::vector<std::string> stuck() const {
    std::vector<std::string> out;
    for (const auto& [key, p] : pending_) {
      std::string missing;
      for (int64_t c : p->members) {
        if (!p->arrivals.count(c)) missing += (missing.empty() ? "" : ", ") + std::to_string(c);
      }
      out.push_back(fmt::format("pod: collective of chip {} instruction {} waiting for chips {}", p->first_chip,
                                p->first_index, missing));
    }
    return out;
  }

 private:
  struct Port {
    uint64_t credit = 0;
    sc_core::sc_event arrived;
  };
  struct Member {
    int64_t arrive;
    uint64_t addr;
    isa::IciSpace space;
    isa::Interpreter* func;
    int64_t done;
  };
  struct Pending {
    std::vector<int64_t> members;
    CollectiveOp op;
    Algorithm alg;
    ReduceType type;
    int64_t count;
    int64_t first_chip;
    std::size_t first_index;
    int core = 0;
    std::map<int64_t, Member> arrivals;
    std::size_t picked_up = 0;
    sc_core::sc_event done_event;
  };
  struct Landing {
    int64_t cycle;
    uint64_t order;
    std::function<void()> fn;
    bool operator>(const Landing& o) const { return std::tie(cycle, order) > std::tie(o.cycle, o.order); }
  };
  class MemberData : public CollectiveData {
   public:
    MemberData(Pending& p, int eb) : p_(p), eb_(static_cast<uint64_t>(eb)) {}
    std::vector<uint8_t> read(int64_t chip, int64_t lo, int64_t hi) override {
      const Member& m = p_.arrivals.at(chip);
      return m.func->read_bytes(m.space, m.addr + static_cast<uint64_t>(lo) * eb_, static_cast<uint64_t>(hi - lo) * eb_);
    }
    void write(int64_t chip, int64_t lo, const std::vector<uint8_t>& bytes) override {
      const Member& m = p_.arrivals.at(chip);
      m.func->write_bytes(m.space, m.addr + static_cast<uint64_t>(lo) * eb_, bytes.data(), bytes.size());
    }

   private:
    Pending& p_;
    uint64_t eb_;
  };

  Port& port(int64_t chip, int dim, int side) {
    return *ports_[(at(chip) * pod_.dims.size() + static_cast<std::size_t>(dim)) * 2 + static_cast<std::size_t>(side)];
  }

  // The last member arrived: the schedule runs on the shared network from each member's
  // arrival, and (functional) its data moves.
  void run_group(Pending& p, const Group& g, int eb, std::size_t index) {
    Algorithm a = guarded([&] { return resolve_algorithm(net_, g, p.op, p.count * eb, p.alg); });
    std::vector<double> ready(at(net_.chips()), 0.0);
    for (const auto& [c, m] : p.arrivals) ready[at(c)] = clock_.seconds(m.arrive);
    time_rounds(net_, g, p.op, a, p.count, eb, ready);
    bool data = std::all_of(p.arrivals.begin(), p.arrivals.end(), [](const auto& kv) { return kv.second.func; });
    if (data) {
      MemberData d(p, eb);
      guarded([&] {
        move_data(net_, g, p.op, a, p.count, p.type, d);
        return 0;
      });
    }
    for (auto& [c, m] : p.arrivals) m.done = std::max(m.arrive, clock_.cycle(ready[at(c)]));
    p.done_event.notify(sc_core::SC_ZERO_TIME);
    if (p.arrivals.count(0) && p.core == 0) {  // chip 0's core 0: the report's collectives
      const Member& m0 = p.arrivals.at(0);
      records.push_back({p.first_chip == 0 ? p.first_index : index, kCollectiveOpNames[static_cast<int>(p.op)],
                         kAlgorithmNames[static_cast<int>(a)], p.count * eb, static_cast<int64_t>(p.members.size()),
                         g.mask, m0.arrive, m0.done});
    }
  }

  int64_t symmetric_collective(int core, std::size_t index, CollectiveOp op, Algorithm alg, int64_t count, int eb,
                               unsigned mask, int64_t now) {
    if (concurrent_cores > 1) {
      // Several cores communicate, so collectives may overlap: every chip issues what the
      // representative issues, when it does, on the pod's shared network.
      Group g = group_of(net_, rep_, mask);
      Algorithm a = guarded([&] { return resolve_algorithm(net_, g, op, count * eb, alg); });
      std::vector<double> ready(at(net_.chips()), clock_.seconds(now));
      time_rounds(net_, g, op, a, count, eb, ready);
      // The representative stands for every chip: it goes on when the last member is done.
      int64_t done = std::max(now, clock_.cycle(*std::max_element(ready.begin(), ready.end())));
      if (core == 0) {
        records.push_back({index, kCollectiveOpNames[static_cast<int>(op)], kAlgorithmNames[static_cast<int>(a)],
                           count * eb, static_cast<int64_t>(snake_members(net_, g).size()), mask, now, done});
      }
      return done;
    }
    auto key = std::make_tuple(op, alg, count * eb, mask);
    auto it = sym_cache_.find(key);
    if (it == sym_cache_.end()) {
      Network idle(pod_);
      Group g{0, mask};
      SymRun run;
      run.algorithm = guarded([&] { return resolve_algorithm(idle, g, op, count * eb, alg); });
      // One communicating core per chip: its collectives run one after another, each on an
      // idle network, every chip starting together.
      std::vector<double> ready(at(idle.chips()), 0.0);
      time_rounds(idle, g, op, run.algorithm, count, eb, ready);
      run.seconds = *std::max_element(ready.begin(), ready.end());
      run.members = static_cast<int64_t>(snake_members(idle, g).size());
      for (int d = 0; d < idle.dims(); ++d) {
        for (int dir : {1, -1}) {
          run.port_busy.push_back(idle.link_busy(0, d, dir));
          run.port_bytes.push_back(idle.link_bytes(0, d, dir));
        }
      }
      run.link_bytes = idle.link_bytes();
      run.max_link_busy = idle.max_link_busy();
      it = sym_cache_.emplace(key, std::move(run)).first;
    }
    const SymRun& r = it->second;
    sym_port_busy.resize(r.port_busy.size(), 0.0);
    sym_port_bytes.resize(r.port_bytes.size(), 0.0);
    for (std::size_t i = 0; i < r.port_busy.size(); ++i) {
      sym_port_busy[i] += r.port_busy[i];
      sym_port_bytes[i] += r.port_bytes[i];
    }
    sym_link_bytes += r.link_bytes;
    sym_max_link_busy = std::max(sym_max_link_busy, r.max_link_busy);
    int64_t done = now + clock_.cycle(r.seconds);
    if (core == 0) {
      records.push_back({index, kCollectiveOpNames[static_cast<int>(op)], kAlgorithmNames[static_cast<int>(r.algorithm)],
                         count * eb, r.members, mask, now, done});
    }
    return done;
  }

 public:
  double sym_link_bytes = 0, sym_max_link_busy = 0;

 private:
  struct SymRun {
    Algorithm algorithm;
    double seconds = 0;
    int64_t members = 0;
    std::vector<double> port_busy, port_bytes;
    double link_bytes = 0, max_link_busy = 0;
  };

  // Runs f; an InputError (bad data, an algorithm the topology cannot run) ends the whole
  // simulation and is rethrown by run_pod.
  template <typename F>
  auto guarded(F f) -> decltype(f()) {
    try {
      return f();
    } catch (const InputError& e) {
      fail(e);
    }
  }

  [[noreturn]] void fail(const InputError& e) {
    if (!error) error = std::make_exception_ptr(e);
    sc_core::sc_stop();
    sc_core::sc_event never;
    while (true) sc_core::wait(never);
  }

  void schedule(int64_t cycle, std::function<void()> fn) {
    landings_.push({cycle, order_++, std::move(fn)});
    wake_.notify(sc_core::SC_ZERO_TIME);
  }

  void land() {
    while (true) {
      if (landings_.empty()) {
        sc_core::wait(wake_);
        continue;
      }
      int64_t now = sim::now_cycle();
      if (landings_.top().cycle > now) {
        sc_core::wait(sim::until(landings_.top().cycle, sim::slot::kFabric), wake_);
        continue;
      }
      Landing l = landings_.top();
      landings_.pop();
      l.fn();
    }
  }

  void watch() {
    for (sim::Chip* c : chips) c->wait_halted();
    sc_core::sc_stop();
  }

  arch::PodConfig pod_;
  Network net_;
  Clock clock_;
  bool symmetric_;
  int64_t rep_ = 0;
  std::vector<std::unique_ptr<Port>> ports_;
  std::priority_queue<Landing, std::vector<Landing>, std::greater<Landing>> landings_;
  uint64_t order_ = 0;
  sc_core::sc_event wake_;
  std::map<std::tuple<int64_t, int, unsigned, int64_t>, std::unique_ptr<Pending>> pending_;
  std::map<std::tuple<int64_t, int, unsigned>, int64_t> seq_;
  std::map<std::tuple<CollectiveOp, Algorithm, int64_t, unsigned>, SymRun> sym_cache_;
};

// Static checks of the programs against the pod, before anything runs.
void check_programs(const arch::PodConfig& pod, const Network& net, const std::vector<std::vector<sim::CoreProgram>>& programs,
                    bool symmetric) {
  for (std::size_t c = 0; c < programs.size(); ++c) {
    for (std::size_t k = 0; k < programs[c].size(); ++k) {
      const isa::Program* p = programs[c][k].program;
      if (!p) continue;
      for (std::size_t i = 0; i < p->code.size(); ++i) {
        const isa::Instruction& in = p->code[i];
        bool xfer = in.op == Opcode::kSend || in.op == Opcode::kRecv;
        if (!xfer && in.op != Opcode::kCollective) continue;
        auto where = [&] {
          return SourceLocation{fmt::format("<chip {} core {}>", c, k), i < p->lines.size() ? p->lines[i] : 0, 0};
        };
        if (!xfer) continue;
        if (k != 0) {
          throw InputError(where(), fmt::format("instruction {}", i), "send and recv on core 0 only",
                           fmt::format("{} on core {}", isa::opcode_spec(in.op).mnemonic, k));
        }
        int64_t dim = in.get(in.op == Opcode::kSend ? Fid::kSend_dim : Fid::kRecv_dim);
        if (dim >= static_cast<int64_t>(pod.dims.size())) {
          throw InputError(where(), "dim", fmt::format("a dimension of {} (0..{})", pod.name, pod.dims.size() - 1),
                           std::to_string(dim));
        }
        // send: the neighbour it goes to; recv: the neighbour the data comes from.
        int dir = in.get(in.op == Opcode::kSend ? Fid::kSend_dir : Fid::kRecv_dir) == 0 ? 1 : -1;
        if (!symmetric && net.step(static_cast<int64_t>(c), static_cast<int>(dim), dir) < 0) {
          throw InputError(where(), "dir", "a neighbour in that direction", "the edge of a mesh dimension");
        }
      }
    }
  }
}

}  // namespace

PodResult run_pod(const arch::ArchConfig& arch, const arch::PodConfig& pod,
                  const std::vector<std::vector<sim::CoreProgram>>& programs, const PodRunOptions& options) {
  bool symmetric = options.backend == Backend::kSymmetric;
  SourceLocation cl{"<command line>", 0, 0};
  if (symmetric && programs.size() != 1) {
    throw InputError(cl, "programs", "one representative chip for the symmetric backend", std::to_string(programs.size()));
  }
  if (!symmetric && static_cast<int64_t>(programs.size()) != pod.chips) {
    throw InputError(cl, "programs", fmt::format("one per chip of {} ({})", pod.name, pod.chips),
                     std::to_string(programs.size()));
  }
  if (!symmetric && pod.chips > kMaxDetailedChips) {
    throw InputError(cl, "--backend",
                     fmt::format("symmetric for pods of more than {} chips (detailed simulates every chip)", kMaxDetailedChips),
                     fmt::format("detailed with {} chips", pod.chips));
  }
  for (const auto& cps : programs) {
    if (cps.size() > static_cast<std::size_t>(arch.cores)) {
      throw InputError(cl, "programs", fmt::format("at most one per core ({})", arch.cores), std::to_string(cps.size()));
    }
  }
  if (!symmetric) {
    // Every chip keeps every instruction it issued (about 1 KB each): bound the host memory.
    double instructions = 0;
    for (const auto& cps : programs) {
      for (const auto& cp : cps) instructions += cp.program ? static_cast<double>(cp.program->code.size()) : 0;
    }
    if (instructions > kMaxDetailedInstructions) {
      throw InputError(cl, "--backend",
                       fmt::format("symmetric for this step: the detailed backend simulates at most {:.0e} "
                                   "instructions over all chips (about 1 KB of host memory each)",
                                   kMaxDetailedInstructions),
                       fmt::format("{:.2e} instructions on {} chips", instructions, programs.size()));
    }
  }
  check_programs(pod, Network(pod), programs, symmetric);

  sim::fresh_context();
  bool functional = options.chip.functional && !symmetric;
  std::size_t n = programs.size();
  std::vector<std::unique_ptr<sim::Stats>> stats;
  std::vector<std::unique_ptr<sim::TraceRecorder>> traces;
  std::vector<std::unique_ptr<sim::ChipContext>> ctxs;
  std::vector<std::unique_ptr<sim::Chip>> chips;
  PodResult result;
  {
    Fabric fabric("pod", arch, pod, symmetric);
    fabric.concurrent_cores = 0;
    for (const auto& cp : programs.front()) {
      bool any = cp.program && std::any_of(cp.program->code.begin(), cp.program->code.end(),
                                           [](const isa::Instruction& in) { return in.op == Opcode::kCollective; });
      fabric.concurrent_cores += any ? 1 : 0;
    }
    fabric.concurrent_cores = std::max(fabric.concurrent_cores, 1);
    for (std::size_t c = 0; c < n; ++c) {
      stats.push_back(std::make_unique<sim::Stats>());
      traces.push_back(std::make_unique<sim::TraceRecorder>(options.chip.trace && c == 0));
      ctxs.push_back(std::make_unique<sim::ChipContext>(sim::ChipContext{
          arch, *stats.back(), *traces.back(), nullptr, nullptr, c == 0 ? options.chip.hang_unit : std::string(),
          c == 0 && options.chip.progress ? &options.chip.progress : nullptr, &fabric, static_cast<int>(c), {}}));
      std::vector<const isa::Program*> progs;
      std::vector<isa::Interpreter*> funcs;
      for (const sim::CoreProgram& cp : programs[c]) {
        progs.push_back(cp.program);
        funcs.push_back(functional ? cp.functional : nullptr);
        sim::prepare_functional(funcs.back());
      }
      fabric.funcs.push_back(funcs.empty() ? nullptr : funcs.front());
      chips.push_back(std::make_unique<sim::Chip>(fmt::format("chip{}", c).c_str(), *ctxs.back(), progs, funcs, false));
      fabric.chips.push_back(chips.back().get());
    }
    sc_core::sc_start();
    if (fabric.error) std::rethrow_exception(fabric.error);
    for (const auto& ctx : ctxs) {
      if (ctx->error) std::rethrow_exception(ctx->error);
    }
    sim::ChipOptions chip_opt = options.chip;
    result.completed = true;
    for (std::size_t c = 0; c < n; ++c) {
      chip_opt.trace = options.chip.trace && c == 0;
      sim::ChipResult r;
      sim::finish_chip(*chips[c], arch, *stats[c], *traces[c], chip_opt, r);
      const Network& net = fabric.network();
      for (int d = 0; d < net.dims(); ++d) {
        for (int dir : {1, -1}) {
          std::string path = fmt::format("chip.ici.port_d{}_{}", d, dir > 0 ? "plus" : "minus");
          std::size_t k = static_cast<std::size_t>(d * 2 + (dir > 0 ? 0 : 1));
          int64_t chip_id = symmetric ? fabric.representative() : static_cast<int64_t>(c);
          double busy = net.link_busy(chip_id, d, dir);
          double bytes = net.link_bytes(chip_id, d, dir);
          if (symmetric && k < fabric.sym_port_busy.size()) {
            busy += fabric.sym_port_busy[k];
            bytes += fabric.sym_port_bytes[k];
          }
          r.counters[path + ".busy_cycles"] = static_cast<int64_t>(std::llround(busy * arch.clock_mhz * 1e6));
          r.counters[path + ".bytes"] = static_cast<int64_t>(std::llround(bytes));
        }
      }
      result.completed = result.completed && r.completed;
      for (const std::string& s : r.stuck) result.stuck.push_back(fmt::format("chip{}: {}", c, s));
      result.cycles = std::max(result.cycles, r.cycles);
      result.chips.push_back(std::move(r));
    }
    if (!result.completed) {
      auto s = fabric.stuck();
      result.stuck.insert(result.stuck.end(), s.begin(), s.end());
    }
    result.collectives = fabric.records;
    result.link_bytes = fabric.network().link_bytes() + fabric.sym_link_bytes;
    result.max_link_busy = std::max(fabric.network().max_link_busy(), fabric.sym_max_link_busy);
    chips.clear();
  }
  return result;
}

}  // namespace tpu::pod
