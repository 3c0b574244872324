// NumPy .npy files (format 1.0/2.0, little-endian, C order) for tensors in and out of runs.
// bf16 tensors are stored as uint16 bit patterns ('<u2').
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa_table.h"

namespace tpu::isa {

struct NpyArray {
  ElemType dtype = ElemType::kInt8;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;  ///< raw little-endian elements, C order
};

/// NumPy dtype string for an element type: |i1, <u2 (bf16 bits), <i4, <f4.
const char* npy_descr(ElemType t);

/// Reads a .npy file: a regular file, or a pipe or FIFO (`--input x=<(python gen.py)`), read
/// as its data arrives, waiting at most `idle` for each next byte (and for a FIFO's writer).
/// Throws InputError for anything but a C-ordered little-endian array of one of the four
/// element types, when the data does not match the header, or when a pipe goes quiet.
NpyArray read_npy(const std::string& path, std::chrono::milliseconds idle = std::chrono::seconds(60));
NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name);
std::vector<uint8_t> format_npy(const NpyArray& a);
void write_npy(const std::string& path, const NpyArray& a);

}  // namespace tpu::isa
