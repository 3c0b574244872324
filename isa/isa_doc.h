// docs/isa.md is generated from the ISA table by isa_markdown(); a test fails when the
// committed file differs (regenerate with `tpusim isa --markdown > docs/isa.md`).
#pragma once

#include <string>

namespace tpu::isa {

std::string isa_markdown();

}  // namespace tpu::isa
