// Exactness of the fast MAC-grid model against the stepped PE-level oracle: exhaustive over
// every pass shape of every array up to 8 x 8 and over sequences of two and three passes
// (enumeration documented in docs/mxu.md, "Tests"; the sequence sweeps run up to 4 x 4 in the
// quick label and up to 8 x 8 in the long one). Each sweep enumerates from the smallest case
// up and stops at the first disagreement, which it prints: the smallest failing case.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mxu_test_util.h"

namespace tpu::sim {
namespace {

using arch::Dataflow;
using test::compare;
using test::pass_for;
using test::weight_path_options;

constexpr Dataflow kDataflows[] = {Dataflow::kWeightStationary, Dataflow::kOutputStationary,
                                   Dataflow::kInputStationary};
constexpr int kMaxSide = 8;
constexpr int kMaxStreamed = 16;

std::string name(Dataflow df) {
  return df == Dataflow::kWeightStationary ? "WS" : df == Dataflow::kOutputStationary ? "OS" : "IS";
}

class MxuExactness : public ::testing::TestWithParam<Dataflow> {};

// Every pass shape (used rows <= R, used columns <= C, 1..16 streamed vectors) of every
// array up to 8 x 8, under every buffering mode with the narrowest (W = 1) and widest
// (W = R) weight bus; numerics alternate between int8 and bf16 from case to case.
TEST_P(MxuExactness, EverySinglePassShapeUpTo8x8) {
  const Dataflow df = GetParam();
  uint64_t cases = 0;
  for (int R = 1; R <= kMaxSide; ++R) {
    for (int C = 1; C <= kMaxSide; ++C) {
      for (int rows = 1; rows <= R; ++rows) {
        for (int cols = 1; cols <= C; ++cols) {
          for (int T = 1; T <= kMaxStreamed; ++T) {
            for (const ArrayConfig& config : weight_path_options(df, R, C, false)) {
              test::CompareOptions o;
              o.dtype = cases % 2 == 0 ? arch::DType::kInt8 : arch::DType::kBf16;
              o.seed = cases;
              const std::string d = compare(config, {pass_for(df, rows, cols, T)}, o);
              ++cases;
              if (!d.empty()) {
                ADD_FAILURE() << "smallest disagreeing case: " << d;
                return;
              }
            }
          }
        }
      }
    }
  }
  RecordProperty("cases", std::to_string(cases));
}

// Pairs of passes on every array up to 8 x 8 with every weight-path option and every bus
// width: every pair of streamed lengths (1..16 each), the second pass using the full or a
// single column (the only shape figures that couple passes: the drain of the first pass
// and the tail), the second pass loading a new tile or reusing the first pass's tile, and
// its weights arriving at cycle 0 (never a stall) or late (3 * T1 + 1). Timing only.
void sweep_pairs(Dataflow df, int max_side) {
  uint64_t cases = 0;
  for (int R = 1; R <= max_side; ++R) {
    for (int C = 1; C <= max_side; ++C) {
      for (const ArrayConfig& config : weight_path_options(df, R, C, true)) {
        for (int T1 = 1; T1 <= kMaxStreamed; ++T1) {
          for (int T2 = 1; T2 <= kMaxStreamed; ++T2) {
            for (int variant = 0; variant < 6; ++variant) {
              const bool reuse = variant >= 4;
              if (reuse && df == Dataflow::kOutputStationary) continue;
              const int cols2 = reuse ? C : (variant % 2 == 0 ? C : 1);
              std::vector<PassSpec> seq = {pass_for(df, R, C, T1),
                                           pass_for(df, reuse ? R : 1, cols2, T2)};
              seq[1].load = !reuse;
              if (variant % 2 == 1) seq[1].weights_ready_cycle = 3 * T1 + 1;
              test::CompareOptions o;
              o.numerics = false;
              const std::string d = compare(config, seq, o);
              ++cases;
              if (!d.empty()) {
                ADD_FAILURE() << "smallest disagreeing case: " << d;
                return;
              }
            }
          }
        }
      }
    }
  }
  ::testing::Test::RecordProperty("cases", std::to_string(cases));
}

// Triples on every array up to 8 x 8 with W in {1, R}: every combination of streamed lengths
// from {1, 2, 3, R - 1, R, R + 1, 16} (the values around the shift and drain thresholds),
// with the middle pass narrow or reusing, inputs of the last pass late, int8 numerics with
// accumulation chained through all three passes.
void sweep_triples(Dataflow df, int max_side) {
  uint64_t cases = 0;
  for (int R = 1; R <= max_side; ++R) {
    for (int C = 1; C <= max_side; ++C) {
      std::vector<int> lengths = {1, 2, 3, R - 1, R, R + 1, kMaxStreamed};
      std::vector<int> ts;
      for (int t : lengths) {
        if (t >= 1 && t <= kMaxStreamed && std::find(ts.begin(), ts.end(), t) == ts.end()) {
          ts.push_back(t);
        }
      }
      for (const ArrayConfig& config : weight_path_options(df, R, C, false)) {
        for (int T1 : ts) {
          for (int T2 : ts) {
            for (int T3 : ts) {
              for (int variant = 0; variant < 3; ++variant) {
                if (variant == 2 && df == Dataflow::kOutputStationary) continue;
                std::vector<PassSpec> seq = {pass_for(df, R, C, T1), pass_for(df, R, C, T2),
                                             pass_for(df, R, C, T3)};
                if (variant == 1) seq[1] = pass_for(df, 1, 1, T2);
                if (variant == 2) seq[1].load = false;
                seq[2].inputs_ready_cycle = 2 * (T1 + T2);
                if (variant != 1) {
                  seq[1].accumulate = true;
                  seq[2].accumulate = true;
                }
                test::CompareOptions o;
                o.seed = cases;
                const std::string d = compare(config, seq, o);
                ++cases;
                if (!d.empty()) {
                  ADD_FAILURE() << "smallest disagreeing case: " << d;
                  return;
                }
              }
            }
          }
        }
      }
    }
  }
  ::testing::Test::RecordProperty("cases", std::to_string(cases));
}

TEST_P(MxuExactness, EveryPairOfPassesUpTo4x4) { sweep_pairs(GetParam(), 4); }
TEST_P(MxuExactness, ThreePassSequencesUpTo4x4) { sweep_triples(GetParam(), 4); }

// The same sweeps on every array up to 8 x 8 (label long: about three minutes).
class MxuExhaustiveLong : public ::testing::TestWithParam<Dataflow> {};
TEST_P(MxuExhaustiveLong, EveryPairOfPassesUpTo8x8) { sweep_pairs(GetParam(), kMaxSide); }
TEST_P(MxuExhaustiveLong, ThreePassSequencesUpTo8x8) { sweep_triples(GetParam(), kMaxSide); }

INSTANTIATE_TEST_SUITE_P(AllDataflows, MxuExactness, ::testing::ValuesIn(kDataflows),
                         [](const auto& info) { return name(info.param); });
INSTANTIATE_TEST_SUITE_P(AllDataflows, MxuExhaustiveLong, ::testing::ValuesIn(kDataflows),
                         [](const auto& info) { return name(info.param); });

}  // namespace
}  // namespace tpu::sim
