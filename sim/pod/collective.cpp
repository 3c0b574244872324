#include "sim/pod/collective.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "arch/error.h"
#include "isa/numerics.h"

namespace tpu::pod {

namespace {

// Dimensions of the group with more than one chip, in increasing order.
std::vector<int> group_dims(const Network& net, const Group& g) {
  std::vector<int> out;
  for (int d = 0; d < net.dims(); ++d) {
    if ((g.mask >> d & 1u) && net.config().dims[at(d)] > 1) out.push_back(d);
  }
  return out;
}

// Element range [lo, hi) of chunk j of n over [base, base + len).
std::pair<int64_t, int64_t> chunk(int64_t base, int64_t len, int64_t j, int64_t n) {
  return {base + len * j / n, base + len * (j + 1) / n};
}

int64_t mod(int64_t a, int64_t n) { return ((a % n) + n) % n; }

// Hops of the dimension-ordered route from chip a to chip b (the shorter way round a ring).
double route_hops(const Network& net, int64_t a, int64_t b) {
  double hops = 0;
  for (int d = 0; d < net.dims(); ++d) {
    int64_t n = net.config().dims[at(d)], delta = std::abs(net.coord(a, d) - net.coord(b, d));
    hops += static_cast<double>(net.wraps(d) ? std::min(delta, n - delta) : delta);
  }
  return hops;
}

[[noreturn]] void bad_algorithm(const std::string& expected, Algorithm a) {
  throw InputError(SourceLocation{"<command line>", 0, 0}, "algorithm", expected,
                   kAlgorithmNames[static_cast<int>(a)]);
}

// Round s of ring rounds over `pos`-ordered rings (each a list of chips in ring order), one
// chunk per position over each ring's region [base, base + len), appended to `r` with
// `stream`. reduce-scatter: position x ends with chunk x; all-gather: position x starts with
// chunk x. bidir: the first half of every chunk goes forward, the second half backward.
void ring_round(const std::vector<std::vector<int64_t>>& rings, const std::vector<int64_t>& base,
                const std::vector<int64_t>& len, bool bidir, bool reduce, int64_t s, int stream, Round& r) {
  for (const auto& ring : rings) {
    auto n = static_cast<int64_t>(ring.size());
    for (int64_t x = 0; x < n; ++x) {
      int64_t me = ring[at(x)];
      int64_t b = base[at(me)], l = len[at(me)];
      // Forward: reduce-scatter sends chunk x-1-s, all-gather chunk x-s.
      auto [flo, fhi] = chunk(b, l, mod(reduce ? x - 1 - s : x - s, n), n);
      int64_t fmid = bidir ? flo + (fhi - flo) / 2 : fhi;
      if (fmid > flo) r.push_back({me, ring[at(mod(x + 1, n))], flo, fmid, flo, reduce, false, stream, s == 0});
      if (bidir) {
        auto [blo, bhi] = chunk(b, l, mod(reduce ? x + 1 + s : x + s, n), n);
        int64_t bmid = blo + (bhi - blo) / 2;
        if (bhi > bmid) r.push_back({me, ring[at(mod(x - 1, n))], bmid, bhi, bmid, reduce, true, stream, s == 0});
      }
    }
  }
}

// Round s (of n - 1) of the same phases along lines (a mesh dimension of more than two chips:
// no wrap-around link), chunk x again ending with (reduce-scatter) or starting from
// (all-gather) position x. The whole chunk goes each way. Reduce-scatter: chunk j's
// contributions from the positions left of j flow right, each position adding its own value
// to the partial sum it received, and those from the right flow left, pipelined so that each
// link carries one chunk per round: at round s position x sends right the partial of chunk
// n-1-s+x and position y sends left that of chunk s+y-n+1. Both partials reach j in the last
// round, right one first. All-gather: at round s position x passes chunk x-s right and chunk
// x+s left. A position's first send of the phase joins both directions (it adds, or sends,
// data the earlier phases brought from either side).
void line_round(const std::vector<std::vector<int64_t>>& lines, const std::vector<int64_t>& base,
                const std::vector<int64_t>& len, bool reduce, int64_t s, int stream, Round& r) {
  for (const auto& line : lines) {
    auto n = static_cast<int64_t>(line.size());
    for (int64_t x = 0; x < n; ++x) {
      int64_t me = line[at(x)];
      int64_t b = base[at(me)], l = len[at(me)];
      if (x + 1 < n) {  // right
        int64_t j = reduce ? n - 1 - s + x : x - s;
        bool sends = reduce ? x <= s : j >= 0;
        if (sends) {
          auto [lo, hi] = chunk(b, l, j, n);
          if (hi > lo) r.push_back({me, line[at(x + 1)], lo, hi, lo, reduce, false, stream, s == (reduce ? x : 0)});
        }
      }
      if (x > 0) {  // left
        int64_t j = reduce ? s + x - n + 1 : x + s;
        bool sends = reduce ? x >= n - 1 - s : j < n;
        if (sends) {
          auto [lo, hi] = chunk(b, l, j, n);
          if (hi > lo) r.push_back({me, line[at(x - 1)], lo, hi, lo, reduce, true, stream, s == (reduce ? n - 1 - x : 0)});
        }
      }
    }
  }
}

// All the rounds of ring_round, in order.
void ring_phase(const std::vector<std::vector<int64_t>>& rings, const std::vector<int64_t>& base,
                const std::vector<int64_t>& len, bool bidir, bool reduce,
                const std::function<void(const Round&)>& emit) {
  if (rings.empty()) return;
  int64_t n = static_cast<int64_t>(rings.front().size());
  Round r;
  for (int64_t s = 0; s + 1 < n; ++s) {
    r.clear();
    r.reserve(rings.size() * static_cast<std::size_t>(n) * (bidir ? 2 : 1));
    ring_round(rings, base, len, bidir, reduce, s, 0, r);
    emit(r);
  }
}

// All-to-all by forwarding along each dimension in turn. In the phase of dimension d every
// chip exchanges with the chips of its line along d: what it sends to the chip o positions
// away is everything it holds by then for the chips whose coordinate d is that chip's
// (members / n chunks of count / members elements). It travels hop by hop: at step t each
// chip passes to its neighbour what still has to go at least t hops, so every transfer
// crosses one link. Round a ring the shorter way (a chunk half way round: half each way);
// along a line the only way. multi-torus splits every chunk into one part per dimension,
// part p taking the dimensions in an order rotated by p, as for the all-reduce.
void all_to_all_forwarding(const Network& net, const Group& g, Algorithm a, int64_t count,
                           const std::function<void(const Round&)>& emit) {
  std::vector<int64_t> members = snake_members(net, g);
  auto total = static_cast<int64_t>(members.size());
  int64_t c = count / total;
  std::vector<int> dims = group_dims(net, g);
  if (c == 0 || dims.empty()) return;
  std::size_t k = a == Algorithm::kMultiTorus ? dims.size() : 1;
  for (std::size_t j = 0; j < dims.size(); ++j) {
    struct Line {
      int d;
      int64_t n, steps, agg;
      bool ring;
    };
    std::vector<Line> lines;
    int64_t steps = 0;
    for (std::size_t p = 0; p < k; ++p) {
      int d = dims[(p + j) % dims.size()];
      int64_t n = net.config().dims[at(d)];
      bool ring = net.wraps(d);
      int64_t cp = c * static_cast<int64_t>(p + 1) / static_cast<int64_t>(k) - c * static_cast<int64_t>(p) / static_cast<int64_t>(k);
      lines.push_back({d, n, ring ? n / 2 : n - 1, total / n * cp, ring});
      steps = std::max(steps, lines.back().steps);
    }
    for (int64_t t = 1; t <= steps; ++t) {
      Round r;
      for (std::size_t p = 0; p < k; ++p) {
        const Line& l = lines[p];
        if (t > l.steps || l.agg == 0) continue;
        for (int64_t chip : members) {
          int64_t x = net.coord(chip, l.d);
          for (int dir : {1, -1}) {
            // The chunks passing at step t left their source t - 1 hops back.
            int64_t s = x - dir * (t - 1);
            int64_t elements = 0;
            if (l.ring) {
              int64_t full = std::max<int64_t>(0, (l.n - 1) / 2 - t + 1);
              elements = full * l.agg;
              if (l.n % 2 == 0 && t <= l.n / 2) elements += dir > 0 ? l.agg / 2 : l.agg - l.agg / 2;
            } else if (s >= 0 && s < l.n) {
              int64_t farthest = dir > 0 ? l.n - 1 - s : s;
              elements = std::max<int64_t>(0, farthest - t + 1) * l.agg;
            }
            if (elements > 0) {
              r.push_back({chip, net.step(chip, l.d, dir), 0, elements, 0, false, dir < 0, static_cast<int>(p), t == 1});
            }
          }
        }
      }
      if (!r.empty()) emit(r);
    }
  }
}

}  // namespace

Group group_of(const Network& net, int64_t chip, unsigned mask) {
  auto c = net.coords(chip);
  for (int d = 0; d < net.dims(); ++d) {
    if (mask >> d & 1u) c[at(d)] = 0;
  }
  return Group{net.chip_at(c), mask};
}

std::vector<int64_t> snake_members(const Network& net, const Group& g) {
  std::vector<int> dims = group_dims(net, g);
  int64_t total = 1;
  for (int d : dims) total *= net.config().dims[at(d)];
  std::vector<int64_t> order;
  order.reserve(at(total));
  auto base = net.coords(g.leader);
  for (int64_t i = 0; i < total; ++i) {
    // Reflected mixed radix: a digit runs backwards when the digits above it are odd.
    auto c = base;
    int64_t rest = i;
    for (std::size_t k = 0; k < dims.size(); ++k) {
      int64_t n = net.config().dims[at(dims[k])];
      int64_t digit = rest % n;
      rest /= n;
      if (rest % 2 == 1) digit = n - 1 - digit;
      c[at(dims[k])] = digit;
    }
    order.push_back(net.chip_at(c));
  }
  return order;
}

namespace {

// The transfers of a schedule (host time and memory grow with them): rings send 2 x chips per
// round for chips - 1 rounds per phase; tori chips x (size - 1) per dimension; all-to-all's
// forwarding two per chip per step of every part's phases.
double schedule_transfers(const Network& net, const std::vector<int>& dims, CollectiveOp op, Algorithm a) {
  double members = 1, torus_rounds = 0, forwarding = 0;
  for (int d : dims) {
    members *= static_cast<double>(net.config().dims[at(d)]);
    torus_rounds += static_cast<double>(net.config().dims[at(d)] - 1);
  }
  for (int d : dims) {
    double n = static_cast<double>(net.config().dims[at(d)]);
    forwarding += 2 * members * (net.wraps(d) ? std::floor(n / 2) : n - 1) *
                  (a == Algorithm::kMultiTorus ? static_cast<double>(dims.size()) : 1);
  }
  if (op == CollectiveOp::kAllToAll && (a == Algorithm::kTorus || a == Algorithm::kMultiTorus)) return forwarding;
  if (a == Algorithm::kTree) return 4 * members;
  if (a == Algorithm::kTorus || a == Algorithm::kMultiTorus) return 8 * members * torus_rounds;
  return 4 * members * (members - 1);
}

// The schedule's time on an idle copy of the network, every member starting at 0.
double idle_seconds(const Network& net, const Group& g, CollectiveOp op, int64_t bytes, Algorithm a) {
  Network idle(net.config());
  std::vector<double> ready(at(idle.chips()), 0.0);
  time_rounds(idle, g, op, a, bytes, 1, ready);
  return *std::max_element(ready.begin(), ready.end());
}

}  // namespace

Algorithm resolve_algorithm(const Network& net, const Group& g, CollectiveOp op, int64_t bytes, Algorithm a) {
  std::vector<int> dims = group_dims(net, g);
  // A mesh dimension of more than two chips has no wrap-around link: a ring over the snake
  // order closes through a multi-hop route; the torus schedules run along its lines.
  bool open_mesh = std::any_of(dims.begin(), dims.end(), [&](int d) { return !net.wraps(d) && net.config().dims[at(d)] > 2; });
  if (a == Algorithm::kAuto) {
    if (op == CollectiveOp::kAllToAll) {
      a = Algorithm::kMultiTorus;  // forwarding along every dimension at once (meshes too)
    } else if (dims.empty()) {
      a = Algorithm::kTree;  // one chip: nothing to send
    } else {
      // Every port at once (scatter and all-gather for a broadcast; lines along mesh
      // dimensions); a single ring for an all-reduce over one ring dimension. The tree sends
      // the whole buffer at each of its log2(chips) levels but takes fewer latencies on some
      // shapes: whichever costs less on an idle network (both closed forms are exact there up
      // to the tree's contention).
      Algorithm wide = op == CollectiveOp::kBroadcast || dims.size() > 1 || open_mesh ? Algorithm::kMultiTorus
                                                                                       : Algorithm::kBidirRing;
      a = wide;
      if (op == CollectiveOp::kAllReduce || op == CollectiveOp::kBroadcast) {
        // Where the dimensions are alike the closed forms are exact. With unlike ones the
        // multi-torus form overstates the time (it takes each phase as long as its slowest
        // part): time both on an idle network instead, where that is cheap.
        bool alike = std::all_of(dims.begin(), dims.end(), [&](int d) {
          return net.config().dims[at(d)] == net.config().dims[at(dims.front())] && net.wraps(d) == net.wraps(dims.front());
        });
        bool simulate = !alike && schedule_transfers(net, dims, op, Algorithm::kTree) +
                                          schedule_transfers(net, dims, op, wide) <=
                                      kMaxAutoSimulatedTransfers;
        auto cost = [&](Algorithm x) {
          return simulate ? idle_seconds(net, g, op, bytes, x) : closed_form(net, g, op, static_cast<double>(bytes), x);
        };
        double tree = cost(Algorithm::kTree), other = cost(wide);
        if (tree < other) a = Algorithm::kTree;
      }
    }
  }
  if (op == CollectiveOp::kBroadcast && (a == Algorithm::kRing || a == Algorithm::kBidirRing)) {
    bad_algorithm("tree, torus, multi-torus or auto for broadcast", a);
  }
  if (a == Algorithm::kTree && op != CollectiveOp::kAllReduce && op != CollectiveOp::kBroadcast) {
    bad_algorithm(fmt::format("ring, bidir-ring, torus, multi-torus or auto for {}", kCollectiveOpNames[static_cast<int>(op)]), a);
  }
  if (op == CollectiveOp::kAllToAll && a == Algorithm::kBidirRing) {
    bad_algorithm("ring, torus, multi-torus or auto for all-to-all", a);
  }
  if (op == CollectiveOp::kAllToAll && a == Algorithm::kRing) {
    int64_t members = 1;
    for (int d : dims) members *= net.config().dims[at(d)];
    if (members > kMaxAllToAllChips) {
      throw InputError(SourceLocation{net.config().origin(), 0, 0}, "algorithm",
                       fmt::format("a ring all-to-all over at most {} chips (direct sends, chips^2 transfers; "
                                   "torus or multi-torus forward hop by hop and go further)",
                                   kMaxAllToAllChips),
                       fmt::format("{} chips", members));
    }
  }
  double members = 1;
  for (int d : dims) members *= static_cast<double>(net.config().dims[at(d)]);
  double transfers = schedule_transfers(net, dims, op, a);
  if (transfers > kMaxScheduleTransfers) {
    throw InputError(SourceLocation{net.config().origin(), 0, 0}, "algorithm",
                     fmt::format("a schedule of at most {:.0f} transfers ({}a smaller pod or group)",
                                 kMaxScheduleTransfers,
                                 a != Algorithm::kTorus && a != Algorithm::kMultiTorus && dims.size() > 1
                                     ? "torus or multi-torus, or "
                                     : ""),
                     fmt::format("{} over {:.0f} chips: {:.0f} transfers", kAlgorithmNames[static_cast<int>(a)], members,
                                 transfers));
  }

  return a;
}

void collective_rounds(const Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count,
                       const std::function<void(const Round&)>& emit) {
  std::vector<int64_t> members = snake_members(net, g);
  int64_t n = static_cast<int64_t>(members.size());
  if (n < 2 || count <= 0) return;
  std::vector<int64_t> base(at(net.chips()), 0), len(at(net.chips()), count);
  bool rs = op == CollectiveOp::kAllReduce || op == CollectiveOp::kReduceScatter;
  bool ag = op == CollectiveOp::kAllReduce || op == CollectiveOp::kAllGather;
  switch (a) {
    case Algorithm::kRing:
    case Algorithm::kBidirRing: {
      if (op == CollectiveOp::kAllToAll) {
        // Equal chunks of count / n elements (a remainder at the end stays where it is).
        int64_t c = count / n;
        for (int64_t s = 1; s < n && c > 0; ++s) {
          Round r;
          for (int64_t i = 0; i < n; ++i) {
            int64_t j = (i + s) % n;
            r.push_back({members[at(i)], members[at(j)], i * c, (i + 1) * c, j * c, false, false});
          }
          emit(r);
        }
        return;
      }
      bool bidir = a == Algorithm::kBidirRing;
      if (rs) ring_phase({members}, base, len, bidir, true, emit);
      if (ag) ring_phase({members}, base, len, bidir, false, emit);
      return;
    }
    case Algorithm::kTorus:
    case Algorithm::kMultiTorus: {
      if (op == CollectiveOp::kAllToAll) {
        all_to_all_forwarding(net, g, a, count, emit);
        return;
      }
      // Dimension-ordered: a bidirectional reduce-scatter along each dimension over the region
      // the chip owns so far, then all-gathers back in reverse order. multi-torus splits the
      // buffer into one part per dimension; part p takes the dimensions in an order rotated
      // by p, so that in every phase each part uses a different dimension's links.
      std::vector<int> dims = group_dims(net, g);
      std::size_t k = a == Algorithm::kMultiTorus ? std::max<std::size_t>(dims.size(), 1) : 1;
      struct Phase {
        std::vector<std::vector<int64_t>> rings;  // lines, along a mesh dimension
        std::vector<int64_t> base, len;
        bool line = false;
      };
      std::vector<std::vector<Phase>> parts(k);
      for (std::size_t p = 0; p < k; ++p) {
        int64_t plo = count * static_cast<int64_t>(p) / static_cast<int64_t>(k);
        int64_t phi = count * static_cast<int64_t>(p + 1) / static_cast<int64_t>(k);
        for (int64_t c : members) {
          base[at(c)] = plo;
          len[at(c)] = phi - plo;
        }
        for (std::size_t j = 0; j < dims.size(); ++j) {
          int d = dims[(p + j) % dims.size()];
          int64_t nd = net.config().dims[at(d)];
          // Two chips without wrap-around still form a ring (one link each way).
          Phase ph{{}, base, len, !net.wraps(d) && nd > 2};
          for (int64_t c : members) {
            if (net.coord(c, d) != 0) continue;
            std::vector<int64_t> ring;
            for (int64_t i = 0; i < nd; ++i) ring.push_back(net.step(c, d, i));
            ph.rings.push_back(std::move(ring));
          }
          for (int64_t c : members) {
            auto [lo, hi] = chunk(base[at(c)], len[at(c)], net.coord(c, d), nd);
            base[at(c)] = lo;
            len[at(c)] = hi - lo;
          }
          parts[p].push_back(std::move(ph));
        }
      }
      // Phase j of every part at once: round r of each part's phase j in one round.
      auto phase = [&](std::size_t j, bool reduce) {
        // Round s of every part's phase j at once, built into one reused buffer.
        int64_t rounds = 0;
        std::size_t size = 0;
        for (std::size_t p = 0; p < k; ++p) {
          const Phase& ph = parts[p][j];
          if (ph.rings.empty()) continue;
          rounds = std::max(rounds, static_cast<int64_t>(ph.rings.front().size()) - 1);
          size += ph.rings.size() * ph.rings.front().size() * 2;
        }
        Round merged;
        merged.reserve(size);
        for (int64_t s = 0; s < rounds; ++s) {
          merged.clear();
          for (std::size_t p = 0; p < k; ++p) {
            const Phase& ph = parts[p][j];
            if (ph.rings.empty() || s + 1 >= static_cast<int64_t>(ph.rings.front().size())) continue;
            if (ph.line) {
              line_round(ph.rings, ph.base, ph.len, reduce, s, static_cast<int>(p), merged);
            } else {
              ring_round(ph.rings, ph.base, ph.len, true, reduce, s, static_cast<int>(p), merged);
            }
          }
          emit(merged);
        }
      };
      // Broadcast: scatter rank 0's buffer so that every chip holds the shard a
      // reduce-scatter would have left it, then all-gather. Phase j of part p: each chip that
      // shares rank 0's coordinates in the dimensions not yet scattered sends, along its
      // line, chunk x of what it holds to the chip at coordinate x, pipelined hop by hop:
      // in round s the source injects the chunk s places from the far end and each chip
      // on the way passes on the chunk it received in round s - 1 (the shorter way round a
      // ring, a chunk half way round split in two halves; along a line the only way).
      // Chips on the way keep the chunks they pass on, which the all-gather brings anyway.
      auto scatter = [&](std::size_t j) {
        int64_t root = members.front();
        std::vector<Round> merged;
        for (std::size_t p = 0; p < k; ++p) {
          int d = dims[(p + j) % dims.size()];
          int64_t nd = net.config().dims[at(d)];
          bool ring = net.wraps(d);
          const Phase& ph = parts[p][j];
          for (int64_t c : members) {
            bool source = true;
            for (std::size_t i = j; i < dims.size(); ++i) {
              int e = dims[(p + i) % dims.size()];
              source = source && net.coord(c, e) == net.coord(root, e);
            }
            if (!source) continue;
            int64_t r = net.coord(c, d);
            for (int dir : {1, -1}) {
              int64_t h = ring ? nd / 2 : dir > 0 ? nd - 1 - r : r;
              for (int64_t round = 0; round < h; ++round) {
                if (merged.size() <= at(round)) merged.emplace_back();
                for (int64_t hop = 0; hop <= round; ++hop) {
                  int64_t dist = h - round + hop;  // of the chunk passing at this hop
                  auto [lo, hi] = chunk(ph.base[at(c)], ph.len[at(c)], mod(r + dir * dist, nd), nd);
                  if (ring && nd % 2 == 0 && dist == nd / 2) {
                    int64_t mid = lo + (hi - lo) / 2;
                    (dir > 0 ? hi : lo) = mid;
                  }
                  if (hi <= lo) continue;
                  // The source's own sends start from the whole of what it holds.
                  Xfer x{net.step(c, d, dir * hop), net.step(c, d, dir * (hop + 1)), lo, hi, lo, false, dir < 0,
                         static_cast<int>(p), hop == 0};
                  merged[at(round)].push_back(x);
                }
              }
            }
          }
        }
        for (const Round& round : merged) emit(round);
      };
      if (op == CollectiveOp::kBroadcast) {
        for (std::size_t j = 0; j < dims.size(); ++j) scatter(j);
      }
      if (rs) {
        for (std::size_t j = 0; j < dims.size(); ++j) phase(j, true);
      }
      if (ag || op == CollectiveOp::kBroadcast) {
        for (std::size_t j = dims.size(); j-- > 0;) phase(j, false);
      }
      return;
    }
    case Algorithm::kTree: {
      // Binary tree over the snake order: reduce towards rank 0, then broadcast back.
      std::vector<int64_t> spans;
      for (int64_t span = 1; span < n; span *= 2) spans.push_back(span);
      auto level = [&](int64_t span, bool up) {
        Round r;
        for (int64_t k = 0; k + span < n; k += 2 * span) {
          int64_t lo_rank = members[at(k)], hi_rank = members[at(k + span)];
          r.push_back({up ? hi_rank : lo_rank, up ? lo_rank : hi_rank, 0, count, 0, up, false});
        }
        emit(r);
      };
      if (op == CollectiveOp::kAllReduce) {
        for (int64_t s : spans) level(s, true);
      }
      for (std::size_t i = spans.size(); i-- > 0;) level(spans[i], false);
      return;
    }
    case Algorithm::kAuto:
      return;
  }
}

void time_round_list(Network& net, const std::function<void(const std::function<void(const Round&)>&)>& rounds,
                     int elem_bytes, std::vector<double>& ready) {
  // Per stream and direction (2 x stream + backward), when each chip has the data its next
  // send in that direction needs.
  std::vector<std::vector<double>> streams(2, ready);
  rounds([&](const Round& r) {
    for (const Xfer& x : r) {
      while (streams.size() < 2 * static_cast<std::size_t>(x.stream) + 2) streams.push_back(ready);
    }
    std::vector<std::vector<double>> next = streams;
    // The round's transfers claim their links in the order they become ready (ties in
    // schedule order), so that one which waits for its data does not hold up those behind it
    // in the list that are ready earlier.
    std::vector<std::pair<double, std::size_t>> order;
    order.reserve(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      const Xfer& x = r[i];
      std::size_t fwd = 2 * static_cast<std::size_t>(x.stream), own = fwd + (x.backward_on_tie ? 1 : 0);
      double start = streams[own][at(x.from)];
      if (x.join) {
        start = std::max(streams[fwd][at(x.from)], streams[fwd + 1][at(x.from)]);
        for (std::size_t d : {fwd, fwd + 1}) next[d][at(x.from)] = std::max(next[d][at(x.from)], start);
      }
      order.emplace_back(start, i);
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [start, i] : order) {
      const Xfer& x = r[i];
      std::size_t own = 2 * static_cast<std::size_t>(x.stream) + (x.backward_on_tie ? 1 : 0);
      double t = net.send_to(x.from, x.to, static_cast<double>((x.hi - x.lo) * elem_bytes), start, x.backward_on_tie);
      next[own][at(x.to)] = std::max(next[own][at(x.to)], t);
    }
    streams = std::move(next);
  });
  for (const auto& s : streams) {
    for (std::size_t c = 0; c < ready.size(); ++c) ready[c] = std::max(ready[c], s[c]);
  }
}

void time_rounds(Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count, int elem_bytes,
                 std::vector<double>& ready) {
  time_round_list(
      net, [&](const std::function<void(const Round&)>& emit) { collective_rounds(net, g, op, a, count, emit); },
      elem_bytes, ready);
}

void move_data(const Network& net, const Group& g, CollectiveOp op, Algorithm a, int64_t count, ReduceType t,
               CollectiveData& data) {
  int eb = t == ReduceType::kFp32 ? 4 : 2;
  std::map<int64_t, std::vector<uint8_t>> original;  // all-to-all reads the buffers as they began
  if (op == CollectiveOp::kAllToAll) {
    for (int64_t c : snake_members(net, g)) original[c] = data.read(c, 0, count);
    // Its result is a permutation whatever the route: the direct sends move the data, the
    // forwarding schedules (torus, multi-torus) only decide the time.
    a = Algorithm::kRing;
  }
  collective_rounds(net, g, op, a, count, [&](const Round& r) {
    std::vector<std::vector<uint8_t>> payload;
    for (const Xfer& x : r) {
      if (op == CollectiveOp::kAllToAll) {
        const auto& o = original.at(x.from);
        payload.emplace_back(o.begin() + x.src_lo * eb, o.begin() + (x.src_lo + x.hi - x.lo) * eb);
      } else {
        payload.push_back(data.read(x.from, x.src_lo, x.src_lo + x.hi - x.lo));
      }
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
      const Xfer& x = r[i];
      std::vector<uint8_t>& in = payload[i];
      if (x.reduce) {
        std::vector<uint8_t> local = data.read(x.to, x.lo, x.hi);
        for (int64_t e = 0; e < x.hi - x.lo; ++e) {
          if (t == ReduceType::kFp32) {
            float u, v;
            std::memcpy(&u, &local[at(e * 4)], 4);
            std::memcpy(&v, &in[at(e * 4)], 4);
            float s = u + v;
            std::memcpy(&in[at(e * 4)], &s, 4);
          } else {
            uint16_t u, v;
            std::memcpy(&u, &local[at(e * 2)], 2);
            std::memcpy(&v, &in[at(e * 2)], 2);
            uint16_t s = isa::fp32_to_bf16(isa::bf16_to_fp32(u) + isa::bf16_to_fp32(v));
            std::memcpy(&in[at(e * 2)], &s, 2);
          }
        }
      }
      data.write(x.to, x.lo, in);
    }
  });
}

double closed_form(const Network& net, const Group& g, CollectiveOp op, double bytes, Algorithm a) {
  const arch::PodConfig& pod = net.config();
  double beta = 1.0 / (pod.link_bandwidth_gbps * 1e9 * static_cast<double>(pod.links_per_direction));
  double alpha = pod.link_latency_ns * 1e-9;
  std::vector<int> group = group_dims(net, g);
  double p = 1;
  for (int d : group) p *= static_cast<double>(pod.dims[at(d)]);
  double phases = op == CollectiveOp::kAllReduce ? 2 : 1;
  if (op == CollectiveOp::kAllToAll) {
    // Direct sends contend on multi-hop routes: no closed form. Forwarding round a ring of n:
    // the link in each direction carries n^2/8 chunks (n even; (n^2-1)/8 odd) in n/2 steps;
    // along a line (a mesh dimension) the load is uneven: no closed form either.
    if (a != Algorithm::kTorus && a != Algorithm::kMultiTorus) return 0;
    std::vector<double> dims;
    for (int d : group) {
      if (!net.wraps(d)) return 0;
      dims.push_back(static_cast<double>(pod.dims[at(d)]));
    }
    double k = a == Algorithm::kMultiTorus ? static_cast<double>(std::max<std::size_t>(dims.size(), 1)) : 1;
    double t = 0;
    for (std::size_t j = 0; j < dims.size(); ++j) {
      double slowest = 0;
      for (std::size_t q = 0; q < static_cast<std::size_t>(k); ++q) {
        double n = dims[(q + j) % dims.size()];
        double chunk_hops = std::fmod(n, 2) == 0 ? n * n / 8 : (n * n - 1) / 8;
        slowest = std::max(slowest, chunk_hops * bytes / (n * k) * beta + std::floor(n / 2) * alpha);
      }
      t += slowest;
    }
    return t;
  }
  switch (a) {
    case Algorithm::kRing:
      return phases * (p - 1) * (bytes / p * beta + alpha);
    case Algorithm::kBidirRing:
      return phases * (p - 1) * (bytes / (2 * p) * beta + alpha);
    case Algorithm::kTorus:
    case Algorithm::kMultiTorus: {
      // Phase j: each part's ring (or line) along its j-th dimension over what it holds by
      // then; the parts' phases run at once, so a phase takes as long as its slowest part.
      // (Exact when the dimensions are alike. Otherwise a part may start its next phase
      // early, which the simulation lets it do, on links another part still uses.)
      std::vector<double> dims;
      std::vector<bool> line;
      for (int d : group) {
        dims.push_back(static_cast<double>(pod.dims[at(d)]));
        line.push_back(!net.wraps(d));  // two chips of a mesh: one link, as a line
      }
      std::size_t k = a == Algorithm::kMultiTorus ? std::max<std::size_t>(dims.size(), 1) : 1;
      std::vector<double> held(k, bytes / static_cast<double>(k));
      double t = 0, scatter = 0;
      for (std::size_t j = 0; j < dims.size(); ++j) {
        double slowest = 0, slowest_scatter = 0;
        for (std::size_t p = 0; p < k; ++p) {
          std::size_t e = (p + j) % dims.size();
          double n = dims[e];
          // A line sends whole chunks each way (a ring halves them).
          slowest = std::max(slowest, (n - 1) * (held[p] / (line[e] ? n : 2 * n) * beta + alpha));
          // Broadcast's pipelined scatter: round a ring, floor(n/2) rounds of one chunk
          // (held / n) each way, the first of them half a chunk when n is even; along a line
          // from its end (rank 0 is at coordinate 0), n - 1 rounds.
          double h = line[e] ? n - 1 : std::floor(n / 2), first = !line[e] && std::fmod(n, 2) == 0 ? 0.5 : 1;
          slowest_scatter = std::max(slowest_scatter, (h - 1 + first) * held[p] / n * beta + h * alpha);
          held[p] /= n;
        }
        t += slowest;
        scatter += slowest_scatter;
      }
      return phases * t + (op == CollectiveOp::kBroadcast ? scatter : 0);
    }
    case Algorithm::kTree: {
      // Binary tree over the snake order: at span s, rank k (a multiple of 2s) and rank k+s
      // exchange the whole buffer over their route; a level takes as long as its longest
      // route (the pairs of a level are taken not to contend).
      std::vector<int64_t> members = snake_members(net, g);
      auto n = static_cast<int64_t>(members.size());
      double t = 0;
      for (int64_t span = 1; span < n; span *= 2) {
        double hops = 0;
        for (int64_t k = 0; k + span < n; k += 2 * span) {
          hops = std::max(hops, route_hops(net, members[at(k)], members[at(k + span)]));
        }
        t += bytes * beta + hops * alpha + std::max(0.0, hops - 1) * pod.router_latency_ns * 1e-9;
      }
      return phases * t;
    }
    default:
      return 0;
  }
}

double closed_form(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm a) {
  Network net(pod);
  return closed_form(net, Group{0, (1u << net.dims()) - 1}, op, bytes, a);
}

CollectiveResult run_collective(const arch::PodConfig& pod, CollectiveOp op, double bytes, Algorithm algorithm) {
  Network net(pod);
  CollectiveResult r;
  Group g{0, (1u << net.dims()) - 1};
  int64_t count = static_cast<int64_t>(std::llround(bytes));
  r.algorithm = resolve_algorithm(net, g, op, count, algorithm);
  std::vector<double> ready(at(pod.chips), 0.0);
  time_rounds(net, g, op, r.algorithm, count, 1, ready);
  r.seconds = *std::max_element(ready.begin(), ready.end());
  r.closed_form_seconds = closed_form(pod, op, bytes, r.algorithm);
  r.link_bytes = net.link_bytes();
  r.injected_bytes = net.injected_bytes();
  r.max_link_busy = net.max_link_busy();
  return r;
}

}  // namespace tpu::pod
