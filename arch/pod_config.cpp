// Pod schema and validation: dimensions, per-dimension wrap-around, ports per chip.
#include "arch/pod_config.h"

#include <fmt/format.h>

namespace tpu::arch {

const std::vector<std::string>& dim_topology_names() {
  static const std::vector<std::string> k = {"ring", "mesh", "torus"};
  return k;
}

namespace {

Schema<PodConfig> build_schema() {
  using C = PodConfig;
  Schema<C> s;
  s.add_string("name", [](C& c) -> std::string& { return c.name; }, "pod", "Name of the pod");
  s.add_enum_list<DimTopology>(
      "topology", [](C& c) -> std::vector<DimTopology>& { return c.topology; }, "",
      dim_topology_names(), /*distinct=*/false,
      "Per dimension: ring or torus (wrap-around links) or mesh (none); 1 to 3 entries");
  s.add_int_list("dims", [](C& c) -> std::vector<int64_t>& { return c.dims; }, "", 1, 1 << 16, 1,
                 3, "chips", "Chips along each dimension");
  s.add_int("links_per_direction", [](C& c) -> int64_t& { return c.links_per_direction; }, "1",
            1, 16, "", "Parallel links between neighbours, per direction");
  s.add_float("link_bandwidth_gbps", [](C& c) -> double& { return c.link_bandwidth_gbps; }, "",
              1e-3, 1e6, "GB/s", "Bandwidth of one link in one direction");
  s.add_float("link_latency_ns", [](C& c) -> double& { return c.link_latency_ns; }, "1000", 0,
              1e9, "ns", "Wire and serdes latency of one link");
  s.add_float("router_latency_ns", [](C& c) -> double& { return c.router_latency_ns; }, "0", 0,
              1e9, "ns", "Added per hop a message passes through a chip");
  s.add_int("ports_per_chip", [](C& c) -> int64_t& { return c.ports_per_chip; }, "", 1, 64, "",
            "ICI ports on each chip");
  return s;
}

// " with --set dims" when a command-line override gave one of `keys` (RawConfig::label names
// it then): a check that spans keys names the override that broke it, whichever key the
// message is about.
std::string with_overrides(const RawConfig& raw, std::initializer_list<const char*> keys) {
  std::string out;
  for (const char* k : keys) {
    if (raw.label(k) != k) out += (out.empty() ? " with " : ", ") + raw.label(k);
  }
  return out;
}

PodConfig finish(const RawConfig& raw) {
  PodConfig c = pod_schema().load(raw);
  if (c.topology.size() != c.dims.size()) {
    // Blame dims when only dims came from the command line.
    if (raw.label("dims") != "dims" && raw.label("topology") == "topology") {
      throw InputError(raw.where("dims"), raw.label("dims"),
                       fmt::format("one entry per dimension of topology ({})", c.topology.size()),
                       fmt::format("{} entries", c.dims.size()));
    }
    throw InputError(raw.where("topology"), raw.label("topology"),
                     fmt::format("one entry per dimension ({})", c.dims.size()),
                     fmt::format("{} entries", c.topology.size()));
  }
  int64_t chips = 1;
  int64_t ports = 0;
  for (std::size_t i = 0; i < c.dims.size(); ++i) {
    chips *= c.dims[i];
    if (chips > (int64_t{1} << 20)) {
      throw InputError(raw.where("dims"), raw.label("dims"), "at most 1048576 chips in all",
                       "more than that");
    }
    int64_t d = c.dims[i];
    bool wrap = c.topology[i] != DimTopology::kMesh;
    // A chip links to the neighbour on each side; in a 2-chip mesh it has only one
    // neighbour, in a 2-chip ring both sides lead to the same chip over separate links.
    int64_t neighbours = d == 1 ? 0 : (!wrap && d == 2 ? 1 : 2);
    ports += neighbours * c.links_per_direction;
  }
  c.chips = chips;
  c.ports_used = ports;
  if (ports > c.ports_per_chip) {
    throw InputError(raw.where("ports_per_chip"), raw.label("ports_per_chip"),
                     fmt::format("at least {} (the topology needs that many per chip{})", ports,
                                 with_overrides(raw, {"dims", "topology", "links_per_direction"})),
                     std::to_string(c.ports_per_chip));
  }
  c.fingerprint = fnv1a_hex(pod_schema().canonical(c));
  c.file = raw.file();
  return c;
}

}  // namespace

const Schema<PodConfig>& pod_schema() {
  static const Schema<PodConfig> s = build_schema();
  return s;
}

PodConfig load_pod(const std::string& path, const std::vector<std::string>& overrides,
                   const std::string& option) {
  std::vector<std::string> keys = pod_schema().keys();
  RawConfig raw = RawConfig::from_file(path, keys);
  for (const auto& o : overrides) raw.apply_override(o, keys, option);
  PodConfig c = finish(raw);
  // Checks made later (a collective's limits, the bisection cut) name origin(): with
  // overrides the pod is not the file alone.
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    c.overrides += (i == 0 ? "" : " ") + option + " " + overrides[i];
  }
  return c;
}

PodConfig load_pod_string(const std::string& yaml, const std::string& name,
                          const std::vector<std::string>& overrides) {
  std::vector<std::string> keys = pod_schema().keys();
  RawConfig raw = RawConfig::from_string(yaml, name, keys);
  for (const auto& o : overrides) raw.apply_override(o, keys);
  return finish(raw);
}

std::string dump_pod(const PodConfig& c) { return pod_schema().dump(c); }

}  // namespace tpu::arch
