// tpusim collective: one collective on a pod's interconnect, timed by the link-level network
// model, next to its closed-form alpha-beta cost; or the bisection pattern (--op bisection).
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "arch/error.h"
#include "arch/pod_config.h"
#include "sim/cli/commands.h"
#include "sim/pod/bisection.h"
#include "sim/pod/collective.h"

namespace tpu::cli {

namespace {

constexpr uint64_t kMaxBytes = uint64_t{1} << 50;  // 1 PiB per chip

// The exact value of decimal text times `mult`: digits with an optional fraction and
// exponent ("4096", "1.5", "2e3", ".5"). kNotANumber for other text, kTooBig above
// kMaxBytes, 0 below 1, kNotWhole for a fraction of a byte above 1. Exact, unlike
// std::stod: "1125899906842624.01" is not whole and "0.99999999999999999999" is below 1.
constexpr uint64_t kNotANumber = ~uint64_t{0}, kNotWhole = kNotANumber - 1, kTooBig = kNotANumber - 2;
uint64_t exact_value(const std::string& num, uint64_t mult) {
  auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  std::size_t i = 0;
  std::string digits;  // integer and fraction digits
  int64_t scale = 0;   // the value is digits x 10^scale
  while (i < num.size() && digit(num[i])) digits += num[i++];
  if (i < num.size() && num[i] == '.') {
    for (++i; i < num.size() && digit(num[i]); ++i) {
      digits += num[i];
      --scale;
    }
  }
  if (digits.empty()) return kNotANumber;
  if (i < num.size() && (num[i] == 'e' || num[i] == 'E')) {
    ++i;
    bool minus = i < num.size() && num[i] == '-';
    if (i < num.size() && (num[i] == '-' || num[i] == '+')) ++i;
    if (i == num.size()) return kNotANumber;
    int64_t e = 0;
    for (; i < num.size() && digit(num[i]); ++i) e = std::min<int64_t>(e * 10 + (num[i] - '0'), 1 << 30);
    scale += minus ? -e : e;
  }
  if (i != num.size()) return kNotANumber;
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return 0;
  while (digits.back() == '0') {  // trailing zeros into the scale
    digits.pop_back();
    ++scale;
  }
  // Nonzero digits x 10^scale x mult: above 2^50 when scale > 16, below 1 when
  // scale < -(digits + 16) (mult is at most 2^50 < 10^16).
  auto len = static_cast<int64_t>(digits.size());
  if (scale > 16) return kTooBig;
  if (scale < -(len + 16)) return 0;
  if (scale > 0) digits.append(static_cast<std::size_t>(scale), '0');
  // digits x mult, in decimal (mult < 2^51, so a digit's product and carry fit in 64 bits).
  std::string product(digits.size() + 17, '0');
  uint64_t carry = 0;
  for (std::size_t k = 0; k < product.size(); ++k) {
    uint64_t d = k < digits.size() ? static_cast<uint64_t>(digits[digits.size() - 1 - k] - '0') : 0;
    uint64_t v = d * mult + carry;
    product[product.size() - 1 - k] = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  bool fraction = false;
  if (scale < 0) {  // divide by 10^-scale: the dropped digits are the fraction
    auto drop = static_cast<std::size_t>(-scale);
    fraction = product.find_first_not_of('0', product.size() - drop) != std::string::npos;
    product.erase(product.size() - drop);
  }
  product.erase(0, std::min(product.find_first_not_of('0'), product.size()));
  if (product.size() > 16) return kTooBig;
  uint64_t v = product.empty() ? 0 : std::stoull(product);
  if (v > kMaxBytes) return kTooBig;
  if (v == 0) return 0;  // below 1
  return fraction ? kNotWhole : v;
}

uint64_t parse_bytes(const std::string& s) {
  static const std::pair<const char*, uint64_t> units[] = {
      {"KiB", uint64_t{1} << 10}, {"MiB", uint64_t{1} << 20}, {"GiB", uint64_t{1} << 30},
      {"TiB", uint64_t{1} << 40}, {"PiB", uint64_t{1} << 50}, {"KB", 1000},
      {"MB", 1000000}, {"GB", 1000000000}, {"TB", 1000000000000}, {"PB", 1000000000000000},
      {"B", 1}};
  std::string num = s;
  uint64_t mult = 1;
  for (const auto& [u, m] : units) {
    std::string us(u);
    if (num.size() > us.size() && num.compare(num.size() - us.size(), us.size(), us) == 0) {
      num = num.substr(0, num.size() - us.size());
      mult = m;
      break;
    }
  }
  uint64_t bytes = exact_value(num, mult);
  if (bytes == kNotWhole) {
    // The bytes it comes to ("0.3KiB" is 307.2 bytes) when a double shows the fraction.
    double approx = num.find_first_of("eE") == std::string::npos && num.size() <= 40
                        ? std::stod(num) * static_cast<double>(mult) : 0.0;
    bool show = approx > 0 && approx != std::floor(approx);
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--bytes", "a whole number of bytes",
                     show ? fmt::format("'{}' ({} bytes)", s, approx) : "'" + s + "'");
  }
  if (bytes == kNotANumber || bytes == kTooBig || bytes < 1) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--bytes",
                     "a size from 1 byte to 1 PiB (e.g. 4096, 64MiB, 1GiB, 2TB; B, KB..PB, KiB..PiB)",
                     "'" + s + "'");
  }
  return bytes;
}

// The index of `s` in `names`; N when it is `also` (a choice outside the table).
template <std::size_t N>
int pick(const std::string& s, const char* const (&names)[N], const char* key, const std::string& also = "") {
  for (std::size_t i = 0; i < N; ++i) {
    if (s == names[i]) return static_cast<int>(i);
  }
  if (!also.empty() && s == also) return static_cast<int>(N);
  std::string all;
  for (const char* n : names) all += (all.empty() ? "" : "|") + std::string(n);
  if (!also.empty()) all += "|" + also;
  throw InputError(SourceLocation{"<command line>", 0, 0}, key, all, "'" + s + "'");
}

void row(const std::string& k, const std::string& v, const std::string& unit) {
  std::cout << fmt::format("  {:<30}{:>18} {}\n", k, v, unit);
}

// --op bisection: every chip to its partner across the pod's narrowest cut (sim/pod/bisection.h).
int run_bisection(const CollectiveOptions& o, const arch::PodConfig& p, double bytes) {
  if (o.algorithm != "auto") {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--algorithm", "auto for --op bisection (a fixed pattern)",
                     "'" + o.algorithm + "'");
  }
  pod::BisectionResult r = pod::run_bisection(p, bytes);
  if (o.json) {
    nlohmann::json j = {{"pod", p.name},
                        {"chips", p.chips},
                        {"dims", p.dims},
                        {"op", "bisection"},
                        {"bytes", bytes},
                        {"dim", r.dim},
                        {"seconds", r.seconds},
                        {"cut_links", r.cut_links},
                        {"link_bandwidth", r.link_bandwidth},
                        {"bytes_lower_to_upper", r.bytes_lower_to_upper},
                        {"bytes_upper_to_lower", r.bytes_upper_to_lower},
                        {"bandwidth_per_direction", r.bandwidth_per_direction()},
                        {"cut_capacity_per_direction", r.cut_capacity_per_direction()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("tpusim collective: bisection, {} bytes per chip to the chip half way round dimension {} "
                           "on {} ({} chips)\n",
                           bytes, r.dim, p.name, p.chips);
  row("time", fmt::format("{:.3f}", r.seconds * 1e6), "us");
  row("links crossing the cut", fmt::format("{}", r.cut_links), "per direction (wrap-around links included)");
  row("bytes crossing the cut", fmt::format("{:.0f}", r.bytes_lower_to_upper), "per direction");
  row("bisection bandwidth", fmt::format("{:.3f}", r.bandwidth_per_direction() / 1e12),
      "TB/s per direction (bytes crossing / time)");
  row("cut capacity", fmt::format("{:.3f}", r.cut_capacity_per_direction() / 1e12),
      "TB/s per direction (links x link bandwidth)");
  return 0;
}

}  // namespace

int run_collective(const CollectiveOptions& o) {
  arch::PodConfig p = arch::load_pod(o.pod, o.sets);
  int op_index = pick(o.op, pod::kCollectiveOpNames, "--op", "bisection");
  if (op_index == static_cast<int>(std::size(pod::kCollectiveOpNames))) {
    return run_bisection(o, p, static_cast<double>(parse_bytes(o.bytes)));
  }
  auto op = static_cast<pod::CollectiveOp>(op_index);
  auto alg = static_cast<pod::Algorithm>(pick(o.algorithm, pod::kAlgorithmNames, "--algorithm"));
  auto bytes = static_cast<double>(parse_bytes(o.bytes));
  pod::CollectiveResult r = pod::run_collective(p, op, bytes, alg);
  double chips = static_cast<double>(p.chips);
  auto per_second = [&](double v) { return r.seconds > 0 ? v / r.seconds : 0.0; };
  // No closed form for an all-to-all's direct sends or its forwarding along mesh lines.
  bool direct = op == pod::CollectiveOp::kAllToAll && r.closed_form_seconds <= 0;
  if (o.json) {
    nlohmann::json j = {{"pod", p.name},
                        {"chips", p.chips},
                        {"dims", p.dims},
                        {"op", o.op},
                        {"bytes", bytes},
                        {"algorithm", pod::kAlgorithmNames[static_cast<int>(r.algorithm)]},
                        {"seconds", r.seconds},
                        {"closed_form_seconds", direct ? nlohmann::json() : nlohmann::json(r.closed_form_seconds)},
                        {"algorithm_bandwidth", per_second(bytes)},
                        {"chips_x_algorithm_bandwidth", per_second(chips * bytes)},
                        {"injected_bytes", r.injected_bytes},
                        {"injection_bandwidth", per_second(r.injected_bytes)},
                        {"link_bytes", r.link_bytes},
                        {"max_link_busy_seconds", r.max_link_busy},
                        {"link_bandwidth", p.link_bandwidth_gbps * 1e9 * static_cast<double>(p.links_per_direction)},
                        {"ports_per_chip", p.ports_per_chip}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("tpusim collective: {} of {} bytes per chip on {} ({} chips)\n", o.op, bytes, p.name,
                           p.chips);
  row("algorithm", pod::kAlgorithmNames[static_cast<int>(r.algorithm)], "");
  row("time", fmt::format("{:.3f}", r.seconds * 1e6), "us");
  if (direct) {
    row("closed form (alpha-beta)", "-",
        r.algorithm == pod::Algorithm::kRing ? "(none for direct sends)" : "(none along mesh lines)");
  } else {
    row("closed form (alpha-beta)", fmt::format("{:.3f}", r.closed_form_seconds * 1e6), "us");
  }
  row("algorithm bandwidth", fmt::format("{:.2f}", per_second(bytes) / 1e9), "GB/s per chip");
  row("chips x algorithm bandwidth", fmt::format("{:.2f}", per_second(chips * bytes) / 1e12),
      "TB/s (chips x bytes / time)");
  row("injection bandwidth", fmt::format("{:.2f}", per_second(r.injected_bytes) / 1e12),
      "TB/s (bytes all chips sent / time)");
  row("link bytes", fmt::format("{:.0f}", r.link_bytes), "bytes (every hop)");
  row("busiest link busy", fmt::format("{:.1f}", r.seconds > 0 ? 100 * r.max_link_busy / r.seconds : 0.0),
      "% of the time");
  return 0;
}

}  // namespace tpu::cli
