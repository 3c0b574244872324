// VcdWriter: header with one scope per group of wires, then value changes per cycle.
#include "sim/mxu/vcd_writer.h"

#include <stdexcept>

namespace tpu::sim {

namespace {

// Identifier codes use the printable characters '!'..'~' (base 94), as VCD allows.
std::string code_for(std::size_t index) {
  std::string code;
  do {
    code.push_back(static_cast<char>('!' + index % 94));
    index /= 94;
  } while (index > 0);
  return code;
}

}  // namespace

VcdWriter::VcdWriter(std::ostream& out) : out_(out) {}

int VcdWriter::add_wire(const std::string& scope, const std::string& name, int width) {
  if (started_) throw std::logic_error("VcdWriter: add_wire after the first value");
  if (width < 1 || width > 64) throw std::invalid_argument("VcdWriter: width must be 1..64");
  Wire w;
  w.scope = scope;
  w.name = name;
  w.width = width;
  w.code = code_for(wires_.size());
  wires_.push_back(w);
  return static_cast<int>(wires_.size()) - 1;
}

void VcdWriter::header() {
  out_ << "$timescale 1ns $end\n";
  std::string scope;
  bool open = false;
  for (const Wire& w : wires_) {
    if (!open || w.scope != scope) {
      if (open) out_ << "$upscope $end\n";
      out_ << "$scope module " << w.scope << " $end\n";
      scope = w.scope;
      open = true;
    }
    out_ << "$var wire " << w.width << ' ' << w.code << ' ' << w.name << " $end\n";
  }
  if (open) out_ << "$upscope $end\n";
  out_ << "$enddefinitions $end\n";
  started_ = true;
}

void VcdWriter::set(int64_t cycle, int id, uint64_t value, bool known) {
  if (!started_) header();
  Wire& w = wires_.at(static_cast<std::size_t>(id));
  if (w.width < 64) value &= (uint64_t{1} << w.width) - 1;
  if (w.written && w.known == known && (!known || w.value == value)) return;
  if (cycle < time_) throw std::logic_error("VcdWriter: time went backwards");
  if (cycle != time_) {
    out_ << '#' << cycle << '\n';
    time_ = cycle;
  }
  if (w.width == 1) {
    out_ << (known ? static_cast<char>('0' + (value & 1)) : 'x') << w.code << '\n';
  } else {
    out_ << 'b';
    for (int bit = w.width - 1; bit >= 0; --bit) {
      out_ << (known ? static_cast<char>('0' + ((value >> bit) & 1)) : 'x');
    }
    out_ << ' ' << w.code << '\n';
  }
  w.value = value;
  w.known = known;
  w.written = true;
}

}  // namespace tpu::sim
