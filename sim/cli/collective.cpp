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

constexpr double kMaxBytes = 1125899906842624.0;  // 1 PiB per chip

double parse_bytes(const std::string& s) {
  static const std::pair<const char*, double> units[] = {
      {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
      {"PiB", 1125899906842624.0}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
      {"B", 1.0}};
  std::string num = s;
  double mult = 1;
  for (const auto& [u, m] : units) {
    std::string us(u);
    if (num.size() > us.size() && num.compare(num.size() - us.size(), us.size(), us) == 0) {
      num = num.substr(0, num.size() - us.size());
      mult = m;
      break;
    }
  }
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(num, &pos);
  } catch (...) {
    pos = 0;
  }
  // Decimal text only, exponent allowed (std::stod also takes hex, "inf" and leading blanks).
  bool plain = num.find_first_not_of("0123456789.eE+-") == std::string::npos &&
               !num.empty() && (std::isdigit(static_cast<unsigned char>(num[0])) || num[0] == '.');
  double bytes = v * mult;
  if (!plain || pos != num.size() || !(bytes >= 1) || bytes > kMaxBytes) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--bytes",
                     "a size from 1 byte to 1 PiB (e.g. 4096, 64MiB, 1GiB, 2TB; B, KB..PB, KiB..PiB)",
                     "'" + s + "'");
  }
  if (bytes != std::floor(bytes)) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--bytes", "a whole number of bytes",
                     fmt::format("'{}' ({} bytes)", s, bytes));
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
    return run_bisection(o, p, parse_bytes(o.bytes));
  }
  auto op = static_cast<pod::CollectiveOp>(op_index);
  auto alg = static_cast<pod::Algorithm>(pick(o.algorithm, pod::kAlgorithmNames, "--algorithm"));
  double bytes = parse_bytes(o.bytes);
  pod::CollectiveResult r = pod::run_collective(p, op, bytes, alg);
  double chips = static_cast<double>(p.chips);
  auto per_second = [&](double v) { return r.seconds > 0 ? v / r.seconds : 0.0; };
  bool direct = op == pod::CollectiveOp::kAllToAll;  // no closed form for direct sends
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
    row("closed form (alpha-beta)", "-", "(none for direct sends)");
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
