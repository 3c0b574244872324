// The run report: report.json (schema in docs/report.md) and the human summary, both
// derived from the counters of a ChipResult. Ratios are computed here, never in the model.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "arch/arch_config.h"
#include "isa/program.h"
#include "sim/chip/chip.h"

namespace tpu::sim {

inline constexpr int kReportSchemaVersion = 1;

/// report.json for a program run (`tpusim exec`).
nlohmann::json make_report(const arch::ArchConfig& arch,
                           const std::vector<const isa::Program*>& programs,
                           const std::string& program_name, const ChipResult& result,
                           bool functional);

/// A short aligned table with units, for stdout.
std::string summary_text(const nlohmann::json& report);

}  // namespace tpu::sim
