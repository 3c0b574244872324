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
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t t = 0; t < tracks_.size(); ++t) {
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 0}, {"tid", t},
                      {"args", {{"name", tracks_[t]}}}});
    events.push_back({{"ph", "M"}, {"name", "thread_sort_index"}, {"pid", 0}, {"tid", t},
                      {"args", {{"sort_index", t}}}});
  }
  events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", 0}, {"args", {{"name", "chip"}}}});
  std::vector<Span> sorted = spans_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Span& a, const Span& b) {
    return a.track != b.track ? a.track < b.track
                              : (a.start != b.start ? a.start < b.start : a.end > b.end);
  });
  for (const Span& s : sorted) {
    nlohmann::json e = {{"ph", "X"},
                        {"name", s.name},
                        {"cat", s.category},
                        {"pid", 0},
                        {"tid", s.track},
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
    ids.push_back(w.add_wire(path, "busy", 1));
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
