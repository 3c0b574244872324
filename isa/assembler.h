// Text assembly for programs: directives (.arch, .region, .equ), labels, comments and one
// instruction per line as `mnemonic field=value ...`. docs/isa.md gives the grammar.
#pragma once

#include <string>

#include "isa/program.h"

namespace tpu::isa {

/// Parses assembly text. Throws InputError naming file, line, column, the field or
/// directive, what was expected and what was found. Does not check against an architecture
/// (see verify_program).
Program assemble(const std::string& text, const std::string& file);

/// Canonical assembly: every region, every required or non-default field, notes as
/// comments. assemble(disassemble(p)) == p for every program that encodes.
std::string disassemble(const Program& p);

/// Reads a program from a file: binary if it starts with the binary magic, else assembly.
/// Files larger than 256 MiB are refused.
Program load_program(const std::string& path);

}  // namespace tpu::isa
