// tpusim collective: one collective on a pod's interconnect, timed by the link-level network
// model, next to its closed-form alpha-beta cost.
#include <fmt/format.h>

#include <iostream>

#include "arch/error.h"
#include "arch/pod_config.h"
#include "sim/cli/commands.h"
#include "sim/pod/collective.h"

namespace tpu::cli {

namespace {

double parse_bytes(const std::string& s) {
  static const std::pair<const char*, double> units[] = {{"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
                                                         {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},
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
  double bytes = v * mult;
  if (num.empty() || pos != num.size() || !(bytes >= 1) || bytes > 1e15) {
    throw InputError(SourceLocation{"<command line>", 0, 0}, "--bytes",
                     "a size from 1 byte to 1 PB (e.g. 4096, 64MiB, 1GiB)", "'" + s + "'");
  }
  return bytes;
}

template <std::size_t N>
int pick(const std::string& s, const char* const (&names)[N], const char* key) {
  for (std::size_t i = 0; i < N; ++i) {
    if (s == names[i]) return static_cast<int>(i);
  }
  std::string all;
  for (const char* n : names) all += (all.empty() ? "" : "|") + std::string(n);
  throw InputError(SourceLocation{"<command line>", 0, 0}, key, all, "'" + s + "'");
}

}  // namespace

int run_collective(const CollectiveOptions& o) {
  arch::PodConfig p = arch::load_pod(o.pod, o.sets);
  auto op = static_cast<pod::CollectiveOp>(pick(o.op, pod::kCollectiveOpNames, "--op"));
  auto alg = static_cast<pod::Algorithm>(pick(o.algorithm, pod::kAlgorithmNames, "--algorithm"));
  double bytes = parse_bytes(o.bytes);
  pod::CollectiveResult r = pod::run_collective(p, op, bytes, alg);
  double chips = static_cast<double>(p.chips);
  auto row = [](const std::string& k, const std::string& v, const std::string& unit) {
    std::cout << fmt::format("  {:<30}{:>18} {}\n", k, v, unit);
  };
  std::cout << fmt::format("tpusim collective: {} of {} bytes per chip on {} ({} chips)\n", o.op, bytes, p.name,
                           p.chips);
  row("algorithm", pod::kAlgorithmNames[static_cast<int>(r.algorithm)], "");
  row("time", fmt::format("{:.3f}", r.seconds * 1e6), "us");
  if (op == pod::CollectiveOp::kAllToAll) {
    row("closed form (alpha-beta)", "-", "(none for direct sends)");
  } else {
    row("closed form (alpha-beta)", fmt::format("{:.3f}", r.closed_form_seconds * 1e6), "us");
  }
  row("algorithm bandwidth", fmt::format("{:.2f}", r.seconds > 0 ? bytes / r.seconds / 1e9 : 0.0), "GB/s per chip");
  row("pod all-reduce bandwidth", fmt::format("{:.2f}", r.seconds > 0 ? chips * bytes / r.seconds / 1e12 : 0.0),
      "TB/s (chips x bytes / time)");
  row("link bytes", fmt::format("{:.0f}", r.link_bytes), "bytes (every hop)");
  row("busiest link busy", fmt::format("{:.1f}", r.seconds > 0 ? 100 * r.max_link_busy / r.seconds : 0.0), "% of the time");
  return 0;
}

}  // namespace tpu::cli
