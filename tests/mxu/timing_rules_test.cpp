// The MAC-grid rules one at a time: the closed forms of docs/mxu.md, the tightness of every
// interlock (starting one cycle earlier corrupts a register in the stepped model), the cycle
// accounting, the numerics against the isa reference kernels, the VCD and the arch helper.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/kernels.h"
#include "mxu_test_util.h"
#include "sim/mxu/fast_kernels.h"
#include "sim/mxu/fast_timing.h"
#include "sim/mxu/stepped_array.h"

namespace tpu::sim {
namespace {

using arch::Dataflow;
using test::pass_for;

ArrayConfig make(Dataflow df, int R, int C, int W, int mode) {
  ArrayConfig c;
  c.rows = R;
  c.cols = C;
  c.dataflow = df;
  c.weight_load_rows_per_cycle = W;
  c.weight_double_buffer = mode == 0;
  c.overlap = mode == 2 ? arch::Overlap::kNone : arch::Overlap::kPipelined;
  return c;
}
constexpr int kDouble = 0, kSingle = 1, kNone = 2;

// ---- Closed forms for overlap: none on a full tile (docs/mxu.md, "Closed forms") ----

struct ClosedFormCase {
  Dataflow df;
  int R, C, W, T;
};

int64_t none_pass_cycles(const ClosedFormCase& k) {
  const int64_t S = (k.R + k.W - 1) / k.W;
  switch (k.df) {
    case Dataflow::kWeightStationary:
    case Dataflow::kInputStationary:
      return S + (k.T + k.R + k.C - 2);
    case Dataflow::kOutputStationary:
      return k.T + 2 * k.R + k.C - 3;
  }
  return 0;
}

TEST(MxuClosedForm, OverlapNoneWeightStationaryIsRPlusTPlusRPlusCMinus2) {
  for (int R : {1, 2, 5, 8, 32}) {
    for (int C : {1, 3, 8, 17}) {
      for (int T : {1, 4, 16, 40}) {
        const ArrayConfig c = make(Dataflow::kWeightStationary, R, C, 1, kNone);
        const std::vector<PassSpec> seq(3, pass_for(c.dataflow, R, C, T));
        const SteppedResult st = run_stepped(c, seq);
        const int64_t per_pass = R + (T + R + C - 2);  // the textbook figure, literally
        EXPECT_EQ(st.total_cycles, 3 * per_pass) << R << "x" << C << " T=" << T;
        for (int i = 0; i < 3; ++i) {
          EXPECT_EQ(st.passes[static_cast<std::size_t>(i)].stream_start_cycle, i * per_pass + R);
        }
        int64_t fast_total = 0;
        time_passes(c, seq, &fast_total);
        EXPECT_EQ(fast_total, 3 * per_pass);
      }
    }
  }
}

TEST(MxuClosedForm, OverlapNoneEveryDataflowAndBusWidth) {
  std::vector<ClosedFormCase> cases;
  for (Dataflow df :
       {Dataflow::kWeightStationary, Dataflow::kOutputStationary, Dataflow::kInputStationary}) {
    for (int R : {1, 4, 7, 16}) {
      for (int W : {1, 2, 3, R}) {
        if (W > R) continue;
        for (int C : {1, 5, 16}) {
          for (int T : {1, 3, R, 2 * R + 1}) cases.push_back({df, R, C, W, T});
        }
      }
    }
  }
  for (const ClosedFormCase& k : cases) {
    const ArrayConfig c = make(k.df, k.R, k.C, k.W, kNone);
    const std::vector<PassSpec> seq(2, pass_for(k.df, k.R, k.C, k.T));
    const SteppedResult st = run_stepped(c, seq);
    EXPECT_EQ(st.total_cycles, 2 * none_pass_cycles(k)) << test::describe(c) << " T=" << k.T;
  }
}

// Pipelined steady states: double-buffered passes with T >= S stream back to back; a
// single-buffered pass period is T + S - 1 (the shift starts with the last input); OS passes
// with K >= R stream back to back.
TEST(MxuClosedForm, PipelinedSteadyStates) {
  for (int R : {1, 3, 8}) {
    for (int C : {1, 4}) {
      for (int W : {1, R}) {
        const int S = (R + W - 1) / W;
        for (int T : {1, S, S + 2}) {
          const std::vector<PassSpec> seq(4, pass_for(Dataflow::kWeightStationary, R, C, T));
          const SteppedResult dbl =
              run_stepped(make(Dataflow::kWeightStationary, R, C, W, kDouble), seq);
          const int64_t period = std::max(T, S);
          EXPECT_EQ(dbl.total_cycles, S + 3 * period + T + R + C - 2) << R << " " << W << " " << T;
          const SteppedResult single =
              run_stepped(make(Dataflow::kWeightStationary, R, C, W, kSingle), seq);
          EXPECT_EQ(single.total_cycles, S + 3 * (T + S - 1) + T + R + C - 2);
        }
      }
      for (int K : {1, R, R + 3}) {
        const std::vector<PassSpec> seq(3, pass_for(Dataflow::kOutputStationary, R, C, K));
        const SteppedResult os =
            run_stepped(make(Dataflow::kOutputStationary, R, C, 1, kDouble), seq);
        EXPECT_EQ(os.total_cycles, 2 * std::max(K, R) + K + 2 * R + C - 3) << R << " K=" << K;
      }
    }
  }
}

// ---- Every interlock is tight: one cycle earlier corrupts a register ----

struct Forced {
  ArrayConfig config;
  std::vector<PassSpec> seq;
};

// Runs the stepped model with pass 1's shift or stream forced to `delta` cycles from the
// fast model's schedule.
void run_forced(const Forced& f, bool shift, int delta) {
  const std::vector<PassTiming> fast = time_passes(f.config, f.seq);
  SteppedOptions o;
  if (shift) {
    o.force_shift_start = {-1, fast[1].shift_start_cycle + delta};
  } else {
    o.force_stream_start = {-1, fast[1].stream_start_cycle + delta};
  }
  run_stepped(f.config, f.seq, {}, o);
}

TEST(MxuInterlocks, DoubleBufferShiftCannotStartBeforeThePendingTileIsSwitchedIn) {
  for (Dataflow df : {Dataflow::kWeightStationary, Dataflow::kInputStationary}) {
    for (int W : {1, 2}) {  // S >= 2, else the one weight bus is what blocks the cycle before
      // Pass 0's inputs arrive late, so the shadow (not the bus) is what holds tile 1 back:
      // its shift starts with pass 0's first input, at cycle 20.
      Forced f{make(df, 4, 3, W, kDouble), {pass_for(df, 4, 3, 2), pass_for(df, 4, 3, 2)}};
      f.seq[0].inputs_ready_cycle = 20;
      ASSERT_EQ(time_passes(f.config, f.seq)[1].shift_start_cycle, 20);
      EXPECT_NO_THROW(run_forced(f, true, 0));
      EXPECT_THROW(run_forced(f, true, -1), HazardError) << test::describe(f.config);
    }
  }
}

TEST(MxuInterlocks, SingleBufferShiftStartsWithTheLastInputNotBefore) {
  for (Dataflow df : {Dataflow::kWeightStationary, Dataflow::kInputStationary}) {
    for (int W : {1, 3}) {
      const Forced f{make(df, 5, 2, W, kSingle), {pass_for(df, 5, 2, 6), pass_for(df, 5, 2, 1)}};
      EXPECT_NO_THROW(run_forced(f, true, 0));
      EXPECT_THROW(run_forced(f, true, -1), HazardError) << test::describe(f.config);
    }
  }
}

TEST(MxuInterlocks, StreamCannotOvertakeTheWeightShift) {
  for (Dataflow df : {Dataflow::kWeightStationary, Dataflow::kInputStationary}) {
    for (int mode : {kDouble, kSingle}) {
      for (int W : {1, 2, 4}) {  // S >= 2, else the one input port blocks the cycle before
        const Forced f{make(df, 5, 4, W, mode), {pass_for(df, 5, 4, 1), pass_for(df, 5, 4, 3)}};
        EXPECT_NO_THROW(run_forced(f, false, 0));
        EXPECT_THROW(run_forced(f, false, -1), HazardError) << test::describe(f.config);
      }
    }
  }
}

TEST(MxuInterlocks, OutputStationaryResultChainIsFreeExactlyRCyclesLater) {
  for (int R : {2, 3, 6}) {
    // K2 = 1 < R: the second pass waits for the result chain (R = 1 never waits).
    const Forced f{make(Dataflow::kOutputStationary, R, 3, 1, kDouble),
                   {pass_for(Dataflow::kOutputStationary, R, 3, 4),
                    pass_for(Dataflow::kOutputStationary, R, 3, 1)}};
    EXPECT_NO_THROW(run_forced(f, false, 0));
    EXPECT_THROW(run_forced(f, false, -1), HazardError) << "R=" << R;
  }
}

// ---- Cycle accounting ----

TEST(MxuAccounting, EveryCycleIsCountedOnceAndWindowsTile) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const auto df = static_cast<Dataflow>(rng() % 3);
    const int R = 1 + static_cast<int>(rng() % 8), C = 1 + static_cast<int>(rng() % 8);
    const ArrayConfig c = make(df, R, C, 1 + static_cast<int>(rng() % static_cast<uint64_t>(R)),
                               static_cast<int>(rng() % 3));
    std::vector<PassSpec> seq;
    for (int i = 0; i < 4; ++i) {
      PassSpec p = pass_for(df, 1 + static_cast<int>(rng() % static_cast<uint64_t>(R)),
                            1 + static_cast<int>(rng() % static_cast<uint64_t>(C)),
                            1 + static_cast<int>(rng() % 12));
      p.weights_ready_cycle = static_cast<int64_t>(rng() % 60);
      p.inputs_ready_cycle = static_cast<int64_t>(rng() % 60);
      seq.push_back(p);
    }
    int64_t total = 0;
    const std::vector<PassTiming> t = time_passes(c, seq, &total);
    int64_t expected_start = 0;
    for (const PassTiming& p : t) {
      EXPECT_EQ(p.window_start, expected_start);
      EXPECT_EQ(p.busy_cycles + p.weight_shift_stall_cycles + p.weight_stall_cycles +
                    p.input_stall_cycles + p.fill_drain_cycles,
                p.window_cycles());
      expected_start = p.window_end;
    }
    EXPECT_EQ(expected_start, total);
    const std::string d = test::compare(c, seq, {false, arch::DType::kInt8, 0});
    EXPECT_EQ(d, "");
    SteppedOptions quiet;
    quiet.record_events = false;  // the figures do not depend on the event log
    const SteppedResult st = run_stepped(c, seq, {}, quiet);
    EXPECT_EQ(st.total_cycles, total);
    for (std::size_t i = 0; i < t.size(); ++i) EXPECT_TRUE(st.passes[i] == t[i]) << i;
  }
}

TEST(MxuAccounting, StallKindsFollowTheirCause) {
  const ArrayConfig c = make(Dataflow::kWeightStationary, 4, 4, 1, kDouble);
  PassSpec p = pass_for(c.dataflow, 4, 4, 2);
  std::vector<PassSpec> seq = {p, p};
  seq[1].weights_ready_cycle = 30;  // arrives long after pass 0 streamed (cycles 4, 5)
  const SteppedResult st = run_stepped(c, seq);
  const PassTiming& t1 = st.passes[1];
  EXPECT_EQ(st.passes[0].weight_shift_stall_cycles, 4);  // the first tile: R cycles
  EXPECT_EQ(t1.weight_stall_cycles, 30 - 6);             // from stream end (6) to arrival
  EXPECT_EQ(t1.weight_shift_stall_cycles, 4);            // then the whole shift
  EXPECT_EQ(t1.stream_start_cycle, 34);
  EXPECT_EQ(t1.fill_drain_cycles, 4 + 4 - 2);  // the final drain: R + C - 2
  // Pass 0 streams 4 vectors, as long as the shift of tile 1 that starts with it: the shift
  // is hidden, and the late inputs of pass 1 are an input stall.
  seq[0] = pass_for(c.dataflow, 4, 4, 4);
  seq[1].weights_ready_cycle = 0;
  seq[1].inputs_ready_cycle = 20;
  const SteppedResult in = run_stepped(c, seq);
  EXPECT_EQ(in.passes[1].shift_start_cycle, 4);
  EXPECT_EQ(in.passes[1].input_stall_cycles, 20 - 8);
  EXPECT_EQ(in.passes[1].weight_shift_stall_cycles, 0);
}

TEST(MxuAccounting, UtilizationAndMappingEfficiency) {
  const ArrayConfig c = make(Dataflow::kWeightStationary, 4, 8, 1, kNone);
  PassSpec p;
  p.m = 10;
  p.k = 2;
  p.n = 8;
  const std::vector<PassTiming> t = time_passes(c, {p});
  EXPECT_DOUBLE_EQ(t[0].mapping_efficiency, 2.0 * 8 / 32);
  EXPECT_EQ(t[0].window_cycles(), 4 + 10 + 4 + 8 - 2);
  EXPECT_DOUBLE_EQ(t[0].utilization(c), 10.0 * 2 * 8 / (32.0 * 24));
  EXPECT_EQ(t[0].ub_read_values, 20);
  EXPECT_EQ(t[0].acc_write_values, 80);
  EXPECT_EQ(t[0].acc_read_values, 0);
}

// ---- Numerics: stepped and fast equal the isa reference kernels ----

TEST(MxuNumerics, Int8WrapsLikeTheReference) {
  for (Dataflow df :
       {Dataflow::kWeightStationary, Dataflow::kOutputStationary, Dataflow::kInputStationary}) {
    const ArrayConfig c = make(df, 8, 8, 1, kDouble);
    PassSpec p;
    p.m = 8;
    p.k = 8;
    p.n = 8;
    p.accumulate = true;
    std::vector<int8_t> a(64, -128), w(64, -128);
    std::vector<int32_t> acc(64, INT32_MAX - 5), ref = acc, fast = acc;
    isa::matmul_pass_int8(a.data(), 8, w.data(), 8, 8, 8, 8, ref.data(), 8, true);
    matmul_pass_int8_fast(a.data(), 8, w.data(), 8, 8, 8, 8, fast.data(), 8, true);
    run_stepped(c, {p}, {{a.data(), 8, w.data(), 8, acc.data(), 8}});
    EXPECT_EQ(acc, ref);
    EXPECT_EQ(fast, ref);
    EXPECT_LT(ref[0], 0);  // it did wrap
  }
}

TEST(MxuNumerics, Bf16NegativeZeroProductsSumToPositiveZero) {
  for (Dataflow df :
       {Dataflow::kWeightStationary, Dataflow::kOutputStationary, Dataflow::kInputStationary}) {
    const ArrayConfig c = make(df, 3, 3, 1, kSingle);
    PassSpec p;
    p.m = 3;
    p.k = 3;
    p.n = 3;
    std::vector<uint16_t> a(9, 0x8000), w(9, 0x3F80);  // -0 * 1 = -0
    std::vector<float> acc(9, 1.0f), fast(9, 1.0f);
    SteppedOptions o;
    o.dtype = arch::DType::kBf16;
    run_stepped(c, {p}, {{a.data(), 3, w.data(), 3, acc.data(), 3}}, o);
    matmul_pass_bf16_fast(a.data(), 3, w.data(), 3, 3, 3, 3, fast.data(), 3, false);
    for (std::size_t i = 0; i < 9; ++i) {
      EXPECT_FALSE(std::signbit(acc[i]));
      EXPECT_EQ(acc[i], 0.0f);
      EXPECT_FALSE(std::signbit(fast[i]));
    }
  }
}

TEST(MxuNumerics, FastKernelsEqualReferenceOnLargeStridedPasses) {
  std::mt19937_64 rng(3);
  const int M = 67, K = 300, N = 129;
  const std::size_t lda = K + 5, ldw = N + 3, ldacc = N + 7;
  std::vector<int8_t> a8(M * lda), w8(K * ldw);
  std::vector<uint16_t> a16(M * lda), w16(K * ldw);
  for (auto& v : a8) v = static_cast<int8_t>(rng());
  for (auto& v : w8) v = static_cast<int8_t>(rng());
  for (auto& v : a16) v = static_cast<uint16_t>(0x3C00 + rng() % 0x0800) ^ (rng() % 2 ? 0x8000 : 0);
  for (auto& v : w16) v = static_cast<uint16_t>(0x3C00 + rng() % 0x0800) ^ (rng() % 2 ? 0x8000 : 0);
  for (bool accumulate : {false, true}) {
    std::vector<int32_t> r32(M * ldacc, 12345), f32 = r32;
    isa::matmul_pass_int8(a8.data(), lda, w8.data(), ldw, M, K, N, r32.data(), ldacc, accumulate);
    matmul_pass_int8_fast(a8.data(), lda, w8.data(), ldw, M, K, N, f32.data(), ldacc, accumulate);
    EXPECT_EQ(f32, r32);
    std::vector<float> rf(M * ldacc, 0.375f), ff = rf;
    isa::matmul_pass_bf16(a16.data(), lda, w16.data(), ldw, M, K, N, rf.data(), ldacc, accumulate);
    matmul_pass_bf16_fast(a16.data(), lda, w16.data(), ldw, M, K, N, ff.data(), ldacc, accumulate);
    EXPECT_EQ(std::memcmp(ff.data(), rf.data(), ff.size() * sizeof(float)), 0);
  }
}

// Every block edge of the register-blocked kernel (rows and columns that do not fill a block,
// k = 0), special operands (infinities, so inf - inf and 0 * inf; signed zeros, subnormals;
// with and without NaN operands, whose payloads must propagate as fl32_add/fl32_mul pin) and
// both subnormal modes: the same bits as the reference, nothing written outside the outputs.
TEST(MxuNumerics, FastBf16KernelEqualsReferenceAtEveryEdgeAndMode) {
  std::mt19937_64 rng(11);
  auto operand = [&](bool nans) {
    for (;;) {
      const uint16_t v = test::random_bf16(rng);
      if (nans || (v & 0x7FFFu) <= 0x7F80u) return v;
    }
  };
  for (int mode = 0; mode < 4; ++mode) {
    const bool nans = mode >= 2, flush = mode % 2 == 1;
    isa::NumericsOptions opt;
    opt.flush_subnormals = flush;
    for (int m : {1, 3, 4, 5, 6, 7, 9, 12, 13}) {
      for (int n : {1, 4, 7, 8, 9, 16, 17}) {
        for (int k : {0, 1, 2, 9}) {
          const std::size_t lda = k + 1, ldw = n + 2, ldacc = n + 3;
          std::vector<uint16_t> a(m * lda), w(std::max(k, 1) * ldw);
          for (auto& v : a) v = operand(nans);
          for (auto& v : w) v = operand(nans);
          for (bool accumulate : {false, true}) {
            std::vector<float> ref(m * ldacc);
            for (auto& v : ref) {
              v = static_cast<float>(static_cast<int>(rng() % 41) - 20) / 8.0f;
              if (nans && rng() % 16 == 0) {  // an accumulator NaN with its own payload
                const uint32_t bits = 0x7F800001u | static_cast<uint32_t>(rng() % 0x3FFFFF);
                std::memcpy(&v, &bits, 4);
              }
            }
            std::vector<float> fast = ref;
            isa::matmul_pass_bf16(a.data(), lda, w.data(), ldw, m, k, n, ref.data(), ldacc,
                                  accumulate, opt);
            matmul_pass_bf16_fast(a.data(), lda, w.data(), ldw, m, k, n, fast.data(), ldacc,
                                  accumulate, opt);
            ASSERT_EQ(std::memcmp(fast.data(), ref.data(), ref.size() * sizeof(float)), 0)
                << "m=" << m << " n=" << n << " k=" << k << " accumulate=" << accumulate
                << " flush=" << flush << " nans=" << nans;
          }
        }
      }
    }
  }
}

// Both int8 kernels (the SSE2 one that takes k in pairs, and the portable one) at every block
// edge: odd k (the last pair padded), rows and columns that do not fill a block, extreme
// values (-128 * -128 twice: pmaddwd's largest pair sum) and accumulators within 1000 of
// either int32 end, so that acc + sum wraps both ways.
TEST(MxuNumerics, FastInt8KernelsEqualReferenceAtEveryEdge) {
  std::mt19937_64 rng(12);
  for (int extreme = 0; extreme < 2; ++extreme) {
    for (int m : {1, 3, 4, 5, 7, 9}) {
      for (int n : {1, 3, 4, 7, 8, 9, 16, 17}) {
        for (int k : {0, 1, 2, 3, 8, 9}) {
          const std::size_t lda = k + 3, ldw = n + 1, ldacc = n + 5;
          std::vector<int8_t> a(m * lda), w(std::max(k, 1) * ldw);
          for (auto& v : a) v = extreme ? int8_t{-128} : static_cast<int8_t>(rng());
          for (auto& v : w) v = extreme ? static_cast<int8_t>(rng() % 2 ? -128 : 127) : static_cast<int8_t>(rng());
          for (bool accumulate : {false, true}) {
            std::vector<int32_t> ref(m * ldacc);
            for (auto& v : ref) {
              const auto near = static_cast<int32_t>(rng() % 1000);
              v = rng() % 2 ? std::numeric_limits<int32_t>::max() - near
                            : std::numeric_limits<int32_t>::min() + near;
            }
            std::vector<int32_t> fast = ref, rows = ref;
            isa::matmul_pass_int8(a.data(), lda, w.data(), ldw, m, k, n, ref.data(), ldacc, accumulate);
            matmul_pass_int8_fast(a.data(), lda, w.data(), ldw, m, k, n, fast.data(), ldacc, accumulate);
            matmul_pass_int8_rows(a.data(), lda, w.data(), ldw, m, k, n, rows.data(), ldacc, accumulate);
            ASSERT_EQ(fast, ref) << "m=" << m << " n=" << n << " k=" << k << " accumulate=" << accumulate;
            ASSERT_EQ(rows, ref) << "m=" << m << " n=" << n << " k=" << k << " accumulate=" << accumulate;
          }
        }
      }
    }
  }
}

// ---- Events and the VCD ----

TEST(MxuEvents, WeightStationaryOutputsLeaveOnTheSkewedWavefront) {
  const ArrayConfig c = make(Dataflow::kWeightStationary, 3, 4, 1, kDouble);
  PassSpec p = pass_for(c.dataflow, 3, 4, 5);
  const SteppedResult st = run_stepped(c, {p});
  const int64_t s = st.passes[0].stream_start_cycle;
  EXPECT_EQ(s, 3);  // after the R-cycle shift
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ(st.events[0].input_cycles[static_cast<std::size_t>(m)], s + m);
    for (int n = 0; n < 4; ++n) {
      // Vector m reaches row r at s + m + r and column n n cycles later; the sum leaves the
      // bottom row R - 1.
      EXPECT_EQ(st.events[0].output_cycles[static_cast<std::size_t>(m * 4 + n)],
                s + m + (3 - 1) + n);
    }
  }
}

TEST(MxuVcd, WritesTheEdgesWithTheFirstOutputAtItsCycle) {
  const ArrayConfig c = make(Dataflow::kWeightStationary, 2, 2, 1, kDouble);
  std::ostringstream vcd;
  SteppedOptions o;
  o.vcd = &vcd;
  const SteppedResult st = run_stepped(c, {pass_for(c.dataflow, 2, 2, 3)}, {}, o);
  const std::string text = vcd.str();
  EXPECT_NE(text.find("$enddefinitions $end"), std::string::npos);
  EXPECT_NE(text.find("in1_valid"), std::string::npos);
  EXPECT_NE(text.find("wbus0_issue"), std::string::npos);
  // out0_valid is declared after 2 x (valid, value) inputs and 2 bus wires: code index 6.
  const std::string out0_valid = std::string(1, static_cast<char>('!' + 6));
  const std::string rise = "#" + std::to_string(st.passes[0].first_output_cycle) + "\n";
  const std::size_t at = text.find(rise);
  ASSERT_NE(at, std::string::npos);
  const std::size_t next = text.find("\n#", at + 1);  // '#' alone may be a wire code
  EXPECT_NE(text.substr(at, next - at).find("1" + out0_valid + "\n"), std::string::npos);
  EXPECT_THROW(run_stepped(make(Dataflow::kWeightStationary, 65, 2, 1, kDouble),
                           {pass_for(c.dataflow, 1, 1, 1)}, {}, o),
               std::invalid_argument);
}

// ---- Configuration ----

TEST(MxuConfig, FromArchOverlapNoneImpliesSingleBuffer) {
  const std::string yaml = R"(name: small
clock_mhz: 1000
mxu:
  rows: 8
  cols: 4
  dataflow: input_stationary
  dtypes: [int8]
  weight_load_rows_per_cycle: 2
unified_buffer:
  bytes: 1MiB
  port_bytes_per_cycle: 32
accumulators:
  entries: 512
vector_unit:
  lanes: 8
memory:
  bytes: 16MiB
  bandwidth_gbps: 10
host_link:
  bandwidth_gbps: 1
)";
  const ArrayConfig piped = array_config_from_arch(arch::load_arch_string(yaml, "a.yaml"));
  EXPECT_EQ(piped.rows, 8);
  EXPECT_EQ(piped.cols, 4);
  EXPECT_EQ(piped.dataflow, Dataflow::kInputStationary);
  EXPECT_EQ(piped.shift_cycles(), 4);
  EXPECT_TRUE(piped.double_buffered());
  const ArrayConfig none =
      array_config_from_arch(arch::load_arch_string(yaml, "a.yaml", {"mxu.overlap=none"}));
  EXPECT_FALSE(none.weight_double_buffer);
  EXPECT_FALSE(none.double_buffered());
}

TEST(MxuConfig, BadConfigsAndPassesAreRejected) {
  ArrayConfig c = make(Dataflow::kWeightStationary, 4, 4, 5, kDouble);
  EXPECT_THROW(validate(c), std::invalid_argument);
  c.weight_load_rows_per_cycle = 1;
  PassSpec big;
  big.k = 5;
  EXPECT_THROW(time_passes(c, {big}), std::invalid_argument);
  EXPECT_THROW(run_stepped(c, {big}), std::invalid_argument);
  PassSpec reuse;
  reuse.load = false;
  EXPECT_THROW(time_passes(c, {reuse}), std::invalid_argument);
  EXPECT_THROW(run_stepped(c, {reuse}), std::invalid_argument);
  PassSpec first, other_shape;
  other_shape.n = 2;
  other_shape.load = false;
  EXPECT_THROW(time_passes(c, {first, other_shape}), std::invalid_argument);
  PassSpec zero;
  zero.m = 0;
  EXPECT_THROW(time_passes(c, {zero}), std::invalid_argument);
}

}  // namespace
}  // namespace tpu::sim
