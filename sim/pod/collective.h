// Collectives on the pod network: each algorithm is a schedule of rounds of transfers of
// element ranges between the chips of a group. One schedule drives both the time (every
// transfer on its links, sim/pod/network.h) and, in the detailed backend, the data (real
// sums in a documented order). See docs/pod.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arch/pod_config.h"
#include "sim/pod/network.h"

namespace tpu::pod {

enum class CollectiveOp : uint8_t { kAllReduce, kReduceScatter, kAllGather, kAllToAll, kBroadcast };
inline constexpr const char* kCollectiveOpNames[] = {"all-reduce", "reduce-scatter", "all-gather",
                                                     "all-to-all", "broadcast"};
enum class Algorithm : uint8_t { kAuto, kRing, kBidirRing, kTorus, kTree, kMultiTorus };
inline constexpr const char* kAlgorithmNames[] = {"auto", "ring", "bidir-ring", "torus", "tree", "multi-torus"};

/// Largest group an all-to-all's direct sends (ring) may span (it is chips^2 transfers).
inline constexpr int64_t kMaxAllToAllChips = 1024;
/// Largest schedule simulated (transfers of one collective), bounding host time and memory.
inline constexpr double kMaxScheduleTransfers = 1e8;
/// Auto times its two candidates on an idle network (where their closed forms are not
/// exact) when together they take at most this many transfers.
inline constexpr double kMaxAutoSimulatedTransfers = 2e6;

/// The chips of one collective: those that share `leader`'s coordinates outside the
/// dimensions of `mask` (bit d: pod dimension d).
struct Group {
  int64_t leader = 0;
  unsigned mask = 0;
};
/// The group of `chip` for `mask` (its leader has coordinate 0 in every masked dimension).
Group group_of(const Network& net, int64_t chip, unsigned mask);
/// Members in snake order: consecutive members are neighbours; rank 0 is the leader.
std::vector<int64_t> snake_members(const Network& net, const Group& g);

/// One transfer of a round: elements [src_lo, src_lo + (hi - lo)) of `from`'s buffer (as
/// they were when the collective began, for all-to-all; as they are at the round's start
/// otherwise) go to elements [lo, hi) of `to`'s buffer, added (`reduce`: to = to + from, in
/// that operand order) or copied.
struct Xfer {
  int64_t from = 0, to = 0;
  int64_t lo = 0, hi = 0, src_lo = 0;
  bool reduce = false;
  bool backward_on_tie = false;  ///< route of a bidirectional ring's backward half
  /// Independent parts of the data (multi-torus): a transfer waits only for the earlier
  /// rounds' transfers of its own stream, and within it only for those that came in its own
  /// direction (forward, or backward: `backward_on_tie`), as each direction carries its own
  /// halves of the chunks.
  int stream = 0;
  /// The first send of a phase: the sender first waits for everything its stream has
  /// received in both directions (the data the phase starts from).
  bool join = false;
};
using Round = std::vector<Xfer>;

/// The algorithm `a` resolves to for a buffer of `bytes` (auto: docs/pod.md; for all-reduce
/// and broadcast the faster of the tree and the torus schedule on an idle network). Throws
/// InputError when the group's topology or the op cannot run it.
Algorithm resolve_algorithm(const Network& net, const Group& g, CollectiveOp op, int64_t bytes, Algorithm a);

/// Calls `round` for each round of the schedule, in order. `a` must be resolved.
/// All-to-all under torus or multi-torus: forwarding steps, one link each, whose [lo, hi)
/// gives only the size (they carry chunks of several origins); move_data applies the
/// all-to-all's permutation through its direct sends (ring) whatever `a` is.
void collective_rounds(const Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count,
                       const std::function<void(const Round&)>& round);

/// Times rounds of transfers on `net`: `rounds` calls its argument once per round, in
/// order. Each chip starts at ready[chip] (seconds; indexed by pod chip id), updated to when
/// it has received everything. A transfer starts when its sender has the data it needs
/// (`Xfer::stream`, `Xfer::join`); a round's transfers claim their links in the order they
/// become ready, ties in list order.
void time_round_list(Network& net, const std::function<void(const std::function<void(const Round&)>&)>& rounds,
                     int elem_bytes, std::vector<double>& ready);

/// Runs the schedule's transfers on `net` (each member starts at ready[chip], seconds;
/// ready is indexed by pod chip id and updated to each member's finish time).
void time_rounds(Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count, int elem_bytes,
                 std::vector<double>& ready);

/// Where the detailed backend's data lives: the buffer of each chip, element-addressed.
class CollectiveData {
 public:
  virtual ~CollectiveData() = default;
  virtual std::vector<uint8_t> read(int64_t chip, int64_t lo, int64_t hi) = 0;
  virtual void write(int64_t chip, int64_t lo, const std::vector<uint8_t>& bytes) = 0;
};
/// Element types a collective reduces in.
enum class ReduceType : uint8_t { kFp32, kBf16 };
/// Moves the data of the schedule: every round's payloads are read first, then applied.
/// Sums are local + incoming in the element type (bf16: the fp32 sum rounded to bf16).
void move_data(const Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count, ReduceType t,
               CollectiveData& data);

struct CollectiveResult {
  double seconds = 0;
  Algorithm algorithm = Algorithm::kAuto;  ///< the one used
  double closed_form_seconds = 0;         ///< alpha-beta cost on an idle network
  double link_bytes = 0;                  ///< bytes that crossed links (every hop)
  double injected_bytes = 0;              ///< bytes that left their source chips (each transfer once)
  double max_link_busy = 0;               ///< seconds the busiest link was busy
};

/// Runs a collective over every chip of the pod on an idle network, all chips starting at
/// 0. `bytes` is each chip's buffer (all-reduce: the vector reduced; reduce-scatter: the
/// input, each chip keeps bytes / chips; all-gather: the output; all-to-all: bytes / chips
/// to every chip; broadcast: from chip 0). Reductions are free here (the vector unit's time
/// is the chip model's). Throws InputError for algorithms the topology cannot run.
CollectiveResult run_collective(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm algorithm);

/// The alpha-beta cost of `algorithm` (not auto) on an idle network, for tests and reports.
double closed_form(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm algorithm);
/// The same for group `g` of `net`'s pod (0 where there is none).
double closed_form(const Network& net, const Group& g, CollectiveOp op, double bytes, Algorithm algorithm);

}  // namespace tpu::pod
