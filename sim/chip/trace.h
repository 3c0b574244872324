// Timelines a person can open: Chrome/Perfetto trace events (timeline.json, one track per
// unit, one span per DMA transfer, MXU pass, vector op or stall) and unit activity waves
// (waves.vcd). Recording is off unless requested; spans may arrive out of time order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tpu::sim {

class TraceRecorder {
 public:
  /// enabled=false makes every call a no-op (checked before any formatting).
  explicit TraceRecorder(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }

  /// A track (one per unit, by hierarchical path); returns its id.
  int track(const std::string& path);
  /// A span [start, end) in cycles on a track.
  void span(int track, const std::string& name, const std::string& category, int64_t start,
            int64_t end, const std::string& detail = "");

  /// Chrome trace-event JSON; timestamps in microseconds at `clock_mhz`.
  std::string chrome_json(double clock_mhz) const;
  /// Value change dump of one "busy" wire per track (1 while any span is open), cycle units.
  std::string vcd() const;

 private:
  struct Span {
    int track;
    std::string name, category, detail;
    int64_t start, end;
  };
  bool enabled_;
  std::vector<std::string> tracks_;
  std::vector<Span> spans_;
};

}  // namespace tpu::sim
