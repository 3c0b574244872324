// Chrome trace JSON and VCD output of recorded spans.
#include "sim/chip/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/mxu/vcd_writer.h"

namespace tpu::sim {

int TraceRecorder::track(const std::string& path) {
  tracks_.push_back(path);
  return static_cast<int>(tracks_.size()) - 1;
}

void TraceRecorder::span(int track, const std::string& name, const std::string& category,
                         int64_t start, int64_t end, const std::string& detail) {
  if (!enabled_ || end <= start) return;
  spans_.push_back({track, name, category, detail, start, end});
}

std::string TraceRecorder::chrome_json(double clock_mhz) const {
  // Spans of one unit may overlap (pipelined DMA transfers, a weight shift under a pass):
  // each unit's spans are packed greedily into lanes so that spans on one lane never
  // overlap, and every lane is its own Chrome thread named "<unit>" or "<unit> [k]".
  std::vector<Span> sorted = spans_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Span& a, const Span& b) {
    return a.track != b.track ? a.track < b.track
                              : (a.start != b.start ? a.start < b.start : a.end > b.end);
  });
  std::vector<std::vector<int64_t>> lane_end(tracks_.size());
  std::vector<std::pair<int, int>> placed;  // (track, lane) per sorted span
  for (const Span& s : sorted) {
    auto& lanes = lane_end[s.track];
    std::size_t lane = 0;
    while (lane < lanes.size() && lanes[lane] > s.start) ++lane;
    if (lane == lanes.size()) lanes.push_back(0);
    lanes[lane] = s.end;
    placed.emplace_back(s.track, static_cast<int>(lane));
  }
  std::vector<int> first_tid(tracks_.size(), 0);
  int next = 0;
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", 0}, {"args", {{"name", "chip"}}}});
  for (std::size_t t = 0; t < tracks_.size(); ++t) {
    first_tid[t] = next;
    std::size_t lanes = std::max<std::size_t>(1, lane_end[t].size());
    for (std::size_t l = 0; l < lanes; ++l, ++next) {
      std::string name = l == 0 ? tracks_[t] : fmt::format("{} [{}]", tracks_[t], l);
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 0}, {"tid", next},
                        {"args", {{"name", name}}}});
      events.push_back({{"ph", "M"}, {"name", "thread_sort_index"}, {"pid", 0}, {"tid", next},
                        {"args", {{"sort_index", next}}}});
    }
  }
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const Span& s = sorted[i];
    nlohmann::json e = {{"ph", "X"},
                        {"name", s.name},
                        {"cat", s.category},
                        {"pid", 0},
                        {"tid", first_tid[s.track] + placed[i].second},
                        {"ts", static_cast<double>(s.start) / clock_mhz},
                        {"dur", static_cast<double>(s.end - s.start) / clock_mhz},
                        {"args", {{"start_cycle", s.start}, {"end_cycle", s.end}}}};
    if (!s.detail.empty()) e["args"]["detail"] = s.detail;
    events.push_back(std::move(e));
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ns"}};
  return doc.dump(1) + "\n";
}

std::string TraceRecorder::vcd() const {
  // Busy level per track: +1 at a span start, -1 at its end; emit changes in time order.
  std::map<int64_t, std::map<int, int>> deltas;
  for (const Span& s : spans_) {
    ++deltas[s.start][s.track];
    --deltas[s.end][s.track];
  }
  std::ostringstream out;
  VcdWriter w(out);
  std::vector<int> ids;
  for (const auto& path : tracks_) {
    std::string scope = path;
    std::replace(scope.begin(), scope.end(), '.', '_');
    ids.push_back(w.add_wire(scope, "busy", 1));
  }
  std::vector<int> level(tracks_.size(), 0);
  for (std::size_t t = 0; t < tracks_.size(); ++t) w.set(0, ids[t], 0);
  for (const auto& [cycle, changes] : deltas) {
    for (const auto& [t, d] : changes) {
      level[t] += d;
      w.set(cycle, ids[t], level[t] > 0 ? 1 : 0);
    }
  }
  return out.str();
}

}  // namespace tpu::sim
