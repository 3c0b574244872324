// Generator of the ISA reference (docs/isa.md) from the instruction table.
#include "isa/isa_doc.h"

#include <fmt/format.h>

#include "isa/encoding.h"
#include "isa/isa_table.h"

namespace tpu::isa {

namespace {

const char* kIntro = R"(# tpusim instruction set

Generated from `isa/isa_table.h` by `tpusim isa --markdown`; a test fails when this file and
the table disagree. The ISA is TPU-style CISC: a few coarse instructions, each executed by
one unit, issued in program order into decoupled per-unit queues (see DESIGN.md 4.2).

## Machine state

- `mem`: off-chip memory behind the DMA (HBM, DDR or a parameter cache; `memory.bytes`).
- `host`: host memory over the host link (2^40 bytes addressable).
- Unified buffer (UB): `unified_buffer.bytes`, byte-addressed, per core.
- Per MXU: a weight FIFO of `mxu.weight_fifo_depth` tiles, the tile held by the array, and
  `accumulators.entries` accumulator rows of `mxu.cols` 32-bit values (int32 or fp32).
- Programs run on core 0; each instruction's `mxu` field picks one of the core's MXUs.

Reading memory or accumulators that were never written is an error (exit 2), as is every
static rule below, checked by the verifier before anything runs.

## Rules checked before running

- Every address range lies inside its memory; regions do not overlap; `data` regions have
  an `init`.
- Tiles: 1 <= k <= `mxu.rows`, 1 <= n <= `mxu.cols`; the dtype is one the array supports.
- At most `mxu.weight_fifo_depth` tiles are loaded and not yet popped, per MXU, counted in
  program order (so the timed model can never deadlock on the FIFO).
- `matmul` with `pop=1` needs a tile in the FIFO; with `pop=0` the array must hold one; its
  k, n and dtype must equal the tile's.
- Accumulator rows `acc .. acc+rows-1` lie below `accumulators.entries`; `accumulate=1` and
  `activate` need rows written before with the same type (int32 for int8, fp32 for bf16).
- `activate` in int8 mode: `func=none`, -128 <= act_min <= act_max <= 127, params holds n
  records of {bias, multiplier, shift} int32 little-endian with multiplier 0 or in
  [2^30, 2^31) and shift in [-31, 30].
- `load_weights` with `transpose=1` reads n source rows of k values (`stride` bytes apart,
  0: k x element size) and loads the tile `w[k][n] = src[n][k]`.
- `rowop`: rows > 0, cols > 0, rows x cols <= 2^28; `kind=lut` needs `dtype=int8`; src, dst
  and the parameter block lie inside the UB; dst equals src (in place) or does not overlap
  it. When it runs, int8 softmax/layer_norm parameters need finite scales > 0 and integral
  zero points in [-128, 127].

## Convolution-window addressing (`matmul` with `out_w > 0`)

Input vector m (m = 0 .. rows-1) is the k values at UB address
`ub + (ih * in_w + iw) * ub_stride` where `oh = m / out_w`, `ow = m % out_w`,
`ih = oh * stride_h + off_h`, `iw = ow * stride_w + off_w`. Positions outside
`[0, in_h) x [0, in_w)` read `k` copies of `pad`. A KxK convolution is K*K matmuls (one per
kernel tap, `off_h = r*dilation - pad_top`, `off_w = s*dilation - pad_left`) accumulating
into the same rows: no im2col copy is ever made in memory.

)";

const char* kFormats = R"(
## Assembly

One statement per line; `;` or `#` starts a comment (a comment on an instruction line is
kept as that instruction's note). Fields are `name=value`, in any order, separated by spaces
or commas; optional fields take their default.

```
.arch 0123456789abcdef            ; optional: the architecture fingerprint the program is for
.region NAME addr=EXPR dtype=int8|bf16|int32|fp32 shape=AxBx.. [space=mem|host]
        [role=input|output|data] [init=none|zero|random|values] [seed=N]
        [scale=X]
.values NAME V V ...              ; literal elements of an init=values region, in order
.equ NAME EXPR                    ; a constant
label:                            ; the index of the next instruction
    mnemonic field=value ...
```

Values are decimal or `0x` hex integers, enum names, masks `a|b`, or expressions
`SYMBOL`, `SYMBOL+N`, `SYMBOL-N` over regions (their address; `NAME_bytes` is their size),
`.equ` constants and labels. `.values` elements are integers for int8/int32 and, for
bf16/fp32, finite decimal numbers (rounded to nearest even, never flushed) or `bits:0xHEX`
bit patterns (NaN, infinity and bf16 subnormals print this way). `init=random` fills from
`seed`: int8 uniform in [-127, 127], int32 in [-32768, 32767], bf16/fp32 uniform in [-2, 2) times
`scale` (an fp32 factor, default 1, applied before rounding; weights are scaled to their fan-in).
Element i comes from the (i+1)-th output of a splitmix64 stream started at `seed`, computed
directly from i: a functional run generates a random region's bytes when they are read and
stores only the pages the program writes over, so read-only inputs and weights cost no memory.
`tpusim disasm` prints the canonical form:
`asm -> binary -> disasm -> asm` reproduces the binary exactly.

## Binary format (version 3, little-endian)

| bytes | content |
|---|---|
| 4 | magic `TPUB` |
| 2 | format version (3; 3 widened the DMA space field for `ub`) |
| 2 | reserved, 0 |
| 4 | ISA hash: FNV-1a of this table; a binary from another instruction set is refused |
| 8 | architecture fingerprint (0: any) |
| 4 | region count |
| 4 | instruction count |
| per region | name length (1 byte), name, space, dtype, role, init, rank (1 byte each), address (8), seed (8), scale (fp32, 4), rank dimensions (8 each), then for init=values the region's bytes |
| 32 per instruction | byte 0 the opcode; fields packed from bit 8 upward in table order, each in its width, signed fields in two's complement; unused bits zero |
)";

std::string field_type(const FieldSpec& s) {
  switch (s.kind) {
    case FieldKind::kUnsigned:
      return fmt::format("u{}", s.bits);
    case FieldKind::kSigned:
      return fmt::format("s{}", s.bits);
    case FieldKind::kFlag:
      return "flag";
    case FieldKind::kEnum:
    case FieldKind::kMask: {
      std::string out = s.kind == FieldKind::kEnum ? "enum: " : "mask: ";
      for (int i = 0; i < s.name_count; ++i) out += (i ? " \\| " : "") + std::string(s.names[i]);
      return out;
    }
  }
  return "";
}

}  // namespace

std::string isa_markdown() {
  std::string out = kIntro;
  out += "## Instructions\n\n| opcode | mnemonic | unit | summary |\n|---|---|---|---|\n";
  for (int i = 0; i < kOpcodeCount; ++i) {
    const OpcodeSpec& o = opcode_spec(static_cast<Opcode>(i));
    out += fmt::format("| {} | `{}` | {} | {} |\n", i, o.mnemonic,
                       kUnitNames[static_cast<int>(o.unit)], o.summary);
  }
  for (int i = 0; i < kOpcodeCount; ++i) {
    auto op = static_cast<Opcode>(i);
    const OpcodeSpec& o = opcode_spec(op);
    out += fmt::format("\n### `{}` (opcode {}, {})\n\n{}\n", o.mnemonic, i,
                       kUnitNames[static_cast<int>(o.unit)], o.summary);
    int count = 0;
    const auto& fields = fields_of(op, &count);
    if (count == 0) {
      out += "\nNo fields.\n";
      continue;
    }
    out += "\n| field | bits | type | default | meaning |\n|---|---|---|---|---|\n";
    for (int k = 0; k < count; ++k) {
      const FieldSpec& s = field_spec(fields[k]);
      int lo = field_bit_offset(fields[k]);
      out += fmt::format("| `{}` | {}..{} | {} | {} | {} |\n", s.name, lo, lo + s.bits - 1,
                         field_type(s), field_required(fields[k]) ? "required" : s.default_text,
                         s.doc);
    }
  }
  out += kFormats;
  out += fmt::format("\nThis table's ISA hash: `{:08x}`.\n", isa_hash());
  out += R"(
The decoder checks a binary as the assembler checks its source (region names used once, every
field in range, the length exactly what the counts say) and names the byte offset where the
offending field starts (`prog.tbin: region name (byte 64): expected a region name used once,
found 'a' again`); in an instruction, the index and the byte that holds the field's first
bit (`prog.tbin: instruction 2 (byte 256): opcode: expected an opcode below )" +
         std::to_string(kOpcodeCount) + R"(, found 200`).
A file is read as a binary when it starts with the magic; a file named
`.tbin` that does not (empty, text) is refused as such rather than read as assembly, and a
program with no instructions at all, in either form, is refused (`halt` is the shortest
program).
)";
  return out;
}

}  // namespace tpu::isa
