// Static checks of a program against an architecture, done before anything runs: every
// address range, tile size, dtype, MXU index and weight-FIFO occupancy.
#pragma once

#include <string>

#include "arch/arch_config.h"
#include "isa/program.h"

namespace tpu::isa {

/// Throws InputError naming the file, the instruction index (and source line when known),
/// the field, what was expected and what was found. `file` names the program in messages.
void verify_program(const Program& p, const arch::ArchConfig& arch, const std::string& file);

}  // namespace tpu::isa
