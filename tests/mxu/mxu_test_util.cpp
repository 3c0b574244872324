// Shared helpers of the MAC-grid tests (see mxu_test_util.h).
#include "mxu_test_util.h"

#include <fmt/format.h>

#include <cstring>
#include <random>
#include <stdexcept>

#include "isa/kernels.h"
#include "sim/mxu/fast_kernels.h"
#include "sim/mxu/fast_timing.h"

namespace tpu::sim::test {

namespace {

const char* dataflow_short(arch::Dataflow df) {
  switch (df) {
    case arch::Dataflow::kWeightStationary:
      return "WS";
    case arch::Dataflow::kOutputStationary:
      return "OS";
    case arch::Dataflow::kInputStationary:
      return "IS";
  }
  return "?";
}

}  // namespace

uint16_t random_bf16(std::mt19937_64& rng) {
  const uint32_t r = static_cast<uint32_t>(rng());
  const uint16_t sign = (r & 1u) ? 0x8000 : 0;
  switch ((r >> 1) % 64) {
    case 0:
      return sign;  // signed zero
    case 1:
      return static_cast<uint16_t>(sign | 0x7F80);  // infinity
    case 2:
      return static_cast<uint16_t>(0x7FC0 | ((r >> 8) & 0x3F));  // NaN with payload
    case 3:
      return static_cast<uint16_t>(sign | ((r >> 8) & 0x7F) | 1);  // subnormal
    case 4:
      return static_cast<uint16_t>(sign | 0x7F7F);  // largest finite
    case 5:
      return static_cast<uint16_t>(sign | 0x0080 | ((r >> 8) & 0x7F));  // tiny normal
    default:
      break;
  }
  const uint32_t exponent = 120 + (r >> 8) % 16;
  return static_cast<uint16_t>(sign | (exponent << 7) | ((r >> 16) & 0x7F));
}

namespace {

struct PassData {
  std::vector<int8_t> a8, w8;
  std::vector<uint16_t> a16, w16;
  int acc_buffer = 0;  // index into the accumulator buffers
};

template <class T>
uint32_t bits_of(T v) {
  uint32_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}

// Bit equality, except that any two NaNs are equal: when two NaNs meet in one fp32 + or *,
// x86 returns the first source operand's payload and the compiler may order the operands
// of these commutative operations either way, so not even the reference pins that payload
// (docs/mxu.md, "Numerics").
template <class T>
bool same_bits(const std::vector<T>& x, const std::vector<T>& y, std::size_t* where) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] != x[i] && y[i] != y[i]) continue;
    if (std::memcmp(&x[i], &y[i], sizeof(T)) != 0) {
      *where = i;
      return false;
    }
  }
  return true;
}

std::string diff_timing(const PassTiming& f, const PassTiming& s) {
  std::string out;
  auto field = [&](const char* name, int64_t fv, int64_t sv) {
    if (out.empty() && fv != sv) out = fmt::format("{}: fast {} stepped {}", name, fv, sv);
  };
  field("shift_start_cycle", f.shift_start_cycle, s.shift_start_cycle);
  field("stream_start_cycle", f.stream_start_cycle, s.stream_start_cycle);
  field("first_output_cycle", f.first_output_cycle, s.first_output_cycle);
  field("last_output_cycle", f.last_output_cycle, s.last_output_cycle);
  field("window_start", f.window_start, s.window_start);
  field("window_end", f.window_end, s.window_end);
  field("busy_cycles", f.busy_cycles, s.busy_cycles);
  field("weight_shift_stall_cycles", f.weight_shift_stall_cycles, s.weight_shift_stall_cycles);
  field("weight_stall_cycles", f.weight_stall_cycles, s.weight_stall_cycles);
  field("input_stall_cycles", f.input_stall_cycles, s.input_stall_cycles);
  field("fill_drain_cycles", f.fill_drain_cycles, s.fill_drain_cycles);
  field("ub_read_values", f.ub_read_values, s.ub_read_values);
  field("acc_read_values", f.acc_read_values, s.acc_read_values);
  field("acc_write_values", f.acc_write_values, s.acc_write_values);
  field("useful_macs", f.useful_macs, s.useful_macs);
  if (out.empty() && f.mapping_efficiency != s.mapping_efficiency) out = "mapping_efficiency";
  return out;
}

}  // namespace

std::string describe(const ArrayConfig& c) {
  const bool os = c.dataflow == arch::Dataflow::kOutputStationary;
  std::string mode = c.overlap == arch::Overlap::kNone ? "none"
                     : c.double_buffered()             ? "double"
                                                       : "single";
  if (os) return fmt::format("{} {}x{} {}", dataflow_short(c.dataflow), c.rows, c.cols, mode);
  return fmt::format("{} {}x{} W={} {}", dataflow_short(c.dataflow), c.rows, c.cols,
                     c.weight_load_rows_per_cycle, mode);
}

std::string describe(const std::vector<PassSpec>& passes) {
  std::string out;
  for (const PassSpec& p : passes) {
    out += fmt::format("[m={} k={} n={}{}{} wr={} ir={}] ", p.m, p.k, p.n, p.load ? "" : " reuse",
                       p.accumulate ? " acc" : "", p.weights_ready_cycle, p.inputs_ready_cycle);
  }
  return out;
}

std::vector<ArrayConfig> weight_path_options(arch::Dataflow df, int rows, int cols,
                                             bool all_widths) {
  std::vector<ArrayConfig> out;
  std::vector<int> widths;
  if (df == arch::Dataflow::kOutputStationary) {
    widths = {1};  // OS has no stationary tile: the bus width does not apply
  } else if (all_widths) {
    for (int w = 1; w <= rows; ++w) widths.push_back(w);
  } else {
    widths = {1};
    if (rows > 1) widths.push_back(rows);
  }
  for (int w : widths) {
    for (int mode = 0; mode < 3; ++mode) {
      if (df == arch::Dataflow::kOutputStationary && mode == 1) continue;  // no buffer
      ArrayConfig c;
      c.rows = rows;
      c.cols = cols;
      c.dataflow = df;
      c.weight_load_rows_per_cycle = w;
      c.weight_double_buffer = mode == 0;
      c.overlap = mode == 2 ? arch::Overlap::kNone : arch::Overlap::kPipelined;
      out.push_back(c);
    }
  }
  return out;
}

PassSpec pass_for(arch::Dataflow df, int stationary_rows, int stationary_cols, int streamed) {
  PassSpec p;
  switch (df) {
    case arch::Dataflow::kWeightStationary:
      p.k = stationary_rows;
      p.n = stationary_cols;
      p.m = streamed;
      break;
    case arch::Dataflow::kInputStationary:
      p.k = stationary_rows;
      p.m = stationary_cols;
      p.n = streamed;
      break;
    case arch::Dataflow::kOutputStationary:
      p.m = stationary_rows;
      p.n = stationary_cols;
      p.k = streamed;
      break;
  }
  return p;
}

std::string compare(const ArrayConfig& config, const std::vector<PassSpec>& passes,
                    const CompareOptions& options) {
  const std::string where = describe(config) + " " + describe(passes);
  int64_t fast_total = 0;
  std::vector<PassTiming> fast;
  try {
    fast = time_passes(config, passes, &fast_total);
  } catch (const std::exception& e) {
    return where + ": fast model threw: " + e.what();
  }

  // Operands: one set per pass; a reuse pass multiplies with its loading pass's stationary
  // operand; an accumulating pass of the previous pass's output shape adds into its buffer.
  const bool bf16 = options.dtype == arch::DType::kBf16;
  const bool ws = config.dataflow == arch::Dataflow::kWeightStationary;
  const bool os = config.dataflow == arch::Dataflow::kOutputStationary;
  std::mt19937_64 rng(options.seed);
  std::vector<PassData> data(passes.size());
  std::vector<std::vector<int32_t>> acc32;
  std::vector<std::vector<float>> accf;
  std::vector<std::size_t> acc_ld;
  int loader = -1;
  for (std::size_t i = 0; i < passes.size() && options.numerics; ++i) {
    const PassSpec& p = passes[i];
    PassData& d = data[i];
    const std::size_t na = static_cast<std::size_t>(p.m) * static_cast<std::size_t>(p.k);
    const std::size_t nw = static_cast<std::size_t>(p.k) * static_cast<std::size_t>(p.n);
    const bool reuse = !os && !p.load;
    if (!reuse) loader = static_cast<int>(i);
    if (bf16) {
      d.a16.resize(na);
      d.w16.resize(nw);
      for (auto& v : d.a16) v = random_bf16(rng);
      for (auto& v : d.w16) v = random_bf16(rng);
    } else {
      d.a8.resize(na);
      d.w8.resize(nw);
      for (auto& v : d.a8) v = static_cast<int8_t>(rng());
      for (auto& v : d.w8) v = static_cast<int8_t>(rng());
    }
    if (reuse && loader >= 0) {
      const PassData& l = data[static_cast<std::size_t>(loader)];
      if (ws) {
        d.w8 = l.w8;
        d.w16 = l.w16;
      } else {
        d.a8 = l.a8;
        d.a16 = l.a16;
      }
    }
    const bool chain = i > 0 && p.accumulate && passes[i - 1].m == p.m && passes[i - 1].n == p.n;
    if (chain) {
      d.acc_buffer = data[i - 1].acc_buffer;
    } else {
      d.acc_buffer = static_cast<int>(acc32.size());
      const std::size_t nacc = static_cast<std::size_t>(p.m) * static_cast<std::size_t>(p.n);
      acc32.emplace_back(nacc);
      accf.emplace_back(nacc);
      acc_ld.push_back(static_cast<std::size_t>(p.n));
      for (auto& v : acc32.back()) v = static_cast<int32_t>(rng());
      for (auto& v : accf.back())
        v = static_cast<float>(static_cast<int32_t>(rng() % 2001) - 1000) / 7.0f;
    }
  }
  auto ref32 = acc32, fast32 = acc32, step32 = acc32;
  auto reff = accf, fastf = accf, stepf = accf;

  std::vector<PassOperands> ops;
  for (std::size_t i = 0; i < passes.size() && options.numerics; ++i) {
    const PassSpec& p = passes[i];
    const PassData& d = data[i];
    const auto b = static_cast<std::size_t>(d.acc_buffer);
    PassOperands o;
    o.lda = static_cast<std::size_t>(p.k);
    o.ldw = static_cast<std::size_t>(p.n);
    o.ldacc = acc_ld[b];
    if (bf16) {
      o.a = d.a16.data();
      o.w = d.w16.data();
      o.acc = stepf[b].data();
      isa::matmul_pass_bf16(d.a16.data(), o.lda, d.w16.data(), o.ldw, p.m, p.k, p.n, reff[b].data(),
                            o.ldacc, p.accumulate);
      matmul_pass_bf16_fast(d.a16.data(), o.lda, d.w16.data(), o.ldw, p.m, p.k, p.n,
                            fastf[b].data(), o.ldacc, p.accumulate);
    } else {
      o.a = d.a8.data();
      o.w = d.w8.data();
      o.acc = step32[b].data();
      isa::matmul_pass_int8(d.a8.data(), o.lda, d.w8.data(), o.ldw, p.m, p.k, p.n, ref32[b].data(),
                            o.ldacc, p.accumulate);
      matmul_pass_int8_fast(d.a8.data(), o.lda, d.w8.data(), o.ldw, p.m, p.k, p.n, fast32[b].data(),
                            o.ldacc, p.accumulate);
    }
    ops.push_back(o);
  }

  SteppedOptions so;
  so.dtype = options.dtype;
  SteppedResult st;
  try {
    st = run_stepped(config, passes, ops, so);
  } catch (const std::exception& e) {
    return where + ": stepped model threw: " + e.what();
  }

  if (st.total_cycles != fast_total) {
    return where + fmt::format(": total cycles: fast {} stepped {}", fast_total, st.total_cycles);
  }
  for (std::size_t i = 0; i < passes.size(); ++i) {
    const std::string d = diff_timing(fast[i], st.passes[i]);
    if (!d.empty()) return where + fmt::format(": pass {} {}", i, d);
    const SteppedPassEvents& ev = st.events[i];
    for (std::size_t v = 0; v < ev.input_cycles.size(); ++v) {
      const int64_t f = input_entry_cycle(fast[i], static_cast<int>(v));
      if (ev.input_cycles[v] != f) {
        return where + fmt::format(": pass {} vector {} enters: fast {} stepped {}", i, v, f,
                                   ev.input_cycles[v]);
      }
    }
    const PassSpec& p = passes[i];
    for (int m = 0; m < p.m; ++m) {
      for (int n = 0; n < p.n; ++n) {
        const int64_t f = output_cycle(config, p, fast[i], m, n);
        const int64_t s = ev.output_cycles[static_cast<std::size_t>(m * p.n + n)];
        if (s != f) {
          return where +
                 fmt::format(": pass {} output ({},{}) leaves: fast {} stepped {}", i, m, n, f, s);
        }
      }
    }
  }
  for (std::size_t b = 0; b < acc32.size(); ++b) {
    std::size_t at = 0;
    if (bf16) {
      if (!same_bits(stepf[b], reff[b], &at)) {
        return where +
               fmt::format(": bf16 stepped result differs from isa at element {}: {:#x} vs {:#x}",
                           at, bits_of(stepf[b][at]), bits_of(reff[b][at]));
      }
      if (!same_bits(fastf[b], reff[b], &at)) {
        return where +
               fmt::format(
                   ": bf16 fast-kernel result differs from isa at element {}: {:#x} vs {:#x}", at,
                   bits_of(fastf[b][at]), bits_of(reff[b][at]));
      }
    } else {
      if (!same_bits(step32[b], ref32[b], &at)) {
        return where + fmt::format(": int8 stepped result differs from isa at element {}", at);
      }
      if (!same_bits(fast32[b], ref32[b], &at)) {
        return where + fmt::format(": int8 fast-kernel result differs from isa at element {}", at);
      }
    }
  }
  return "";
}

}  // namespace tpu::sim::test
