// libsystemc's main() references sc_main; the tests use gtest's main and start simulations
// through tpu::sim::run_chip, so this is never called.
#include "sim/chip/asan_options.h"

extern "C" int sc_main(int, char**) { return 0; }
