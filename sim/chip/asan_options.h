// Default AddressSanitizer options for executables that run the SystemC chip model; include
// in exactly one translation unit of such an executable. SystemC switches between coroutine
// stacks that ASan does not see, and LeakSanitizer faults scanning them, so leak detection is
// off. Every other ASan check stays on. Without -fsanitize=address this is never called.
#pragma once

extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
