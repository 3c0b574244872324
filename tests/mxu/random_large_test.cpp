// Seeded random arrays, weight paths and pass sequences up to 256 x 256: the fast model
// against the stepped oracle (label long). A failing case is shrunk before it is printed.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mxu_test_util.h"

namespace tpu::sim {
namespace {

struct Case {
  ArrayConfig config;
  std::vector<PassSpec> seq;
  test::CompareOptions options;
};

std::string run(const Case& c) { return test::compare(c.config, c.seq, c.options); }

// Clamps every pass to the array after the array shrank.
void fit(Case* c) {
  for (PassSpec& p : c->seq) {
    const PassGeometry g = geometry(c->config, p);
    const int rows = std::min(g.stationary_rows, c->config.rows);
    const int cols = std::min(g.stationary_cols, c->config.cols);
    const PassSpec q = test::pass_for(c->config.dataflow, rows, cols, g.streamed);
    p.m = q.m;
    p.k = q.k;
    p.n = q.n;
  }
  c->config.weight_load_rows_per_cycle =
      std::min(c->config.weight_load_rows_per_cycle, c->config.rows);
}

// Greedy shrinking: halve, then decrement, any dimension while the case still fails.
Case shrink(Case c) {
  auto dims = [](Case& k) {
    std::vector<int*> d = {&k.config.rows, &k.config.cols, &k.config.weight_load_rows_per_cycle};
    for (PassSpec& p : k.seq) {
      d.push_back(&p.m);
      d.push_back(&p.k);
      d.push_back(&p.n);
    }
    return d;
  };
  bool progress = true;
  while (progress) {
    progress = false;
    if (c.seq.size() > 1) {
      for (std::size_t drop = 0; drop < c.seq.size() && !progress; ++drop) {
        Case t = c;
        t.seq.erase(t.seq.begin() + static_cast<std::ptrdiff_t>(drop));
        if (!t.seq.empty() && !t.seq[0].load) t.seq[0].load = true;
        if (!run(t).empty()) {
          c = t;
          progress = true;
        }
      }
    }
    const std::size_t n = dims(c).size();
    for (std::size_t i = 0; i < n && !progress; ++i) {
      for (int step : {2, 1}) {
        Case t = c;
        int* v = dims(t)[i];
        const int next = step == 2 ? *v / 2 : *v - 1;
        if (next < 1) continue;
        *v = next;
        fit(&t);
        // A reuse pass must keep its loading pass's shape; skip shrinks that break that.
        const std::string r = run(t);
        if (!r.empty() && r.find("threw: mxu pass") == std::string::npos) {
          c = t;
          progress = true;
          break;
        }
      }
    }
  }
  return c;
}

TEST(MxuRandomLarge, FastEqualsSteppedUpTo256x256) {
  std::mt19937_64 rng(20260101);
  auto pick = [&](int lo, int hi) {
    return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  for (int trial = 0; trial < 60; ++trial) {
    Case c;
    const bool big = trial % 4 == 0;
    c.config.rows = big ? pick(128, 256) : pick(1, 96);
    c.config.cols = big ? pick(128, 256) : pick(1, 96);
    c.config.dataflow = static_cast<arch::Dataflow>(rng() % 3);
    c.config.weight_load_rows_per_cycle = rng() % 2 ? 1 : pick(1, std::min(c.config.rows, 16));
    const int mode = pick(0, 2);
    c.config.weight_double_buffer = mode == 0;
    c.config.overlap = mode == 2 ? arch::Overlap::kNone : arch::Overlap::kPipelined;
    const int passes = pick(1, 3);
    for (int i = 0; i < passes; ++i) {
      PassSpec p = test::pass_for(c.config.dataflow, pick(1, c.config.rows), pick(1, c.config.cols),
                                  pick(1, big ? 300 : 200));
      if (i > 0 && rng() % 4 == 0 && c.config.dataflow != arch::Dataflow::kOutputStationary) {
        const PassGeometry prev = geometry(c.config, c.seq.back());
        p = test::pass_for(c.config.dataflow, prev.stationary_rows, prev.stationary_cols,
                           pick(1, 200));
        p.load = false;
      }
      p.accumulate = rng() % 2 == 0;
      if (rng() % 3 == 0) p.weights_ready_cycle = pick(0, 1500);
      if (rng() % 3 == 0) p.inputs_ready_cycle = pick(0, 1500);
      c.seq.push_back(p);
    }
    c.options.dtype = trial % 2 ? arch::DType::kBf16 : arch::DType::kInt8;
    c.options.seed = static_cast<uint64_t>(trial);
    c.options.numerics = !big || trial % 8 == 0;
    const std::string d = run(c);
    if (!d.empty()) {
      const Case small = shrink(c);
      ADD_FAILURE() << "trial " << trial << ": " << d << "\nshrunk to: " << run(small);
      return;
    }
  }
}

}  // namespace
}  // namespace tpu::sim
