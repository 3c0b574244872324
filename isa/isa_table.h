// The instruction set, declared once. Opcodes, operand fields (width, kind, default) and the
// unit that executes each instruction come from the two X-macro tables below; the encoder,
// decoder, assembler, disassembler and docs/isa.md are all generated from them.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "isa/kernels.h"

namespace tpu::isa {

/// Units that execute instructions (the `sync` mask names them too).
enum class Unit : uint8_t { kSequencer, kDma, kMxu, kVector, kIci };
inline constexpr const char* kUnitNames[] = {"sequencer", "dma", "mxu", "vector", "ici"};

/// Element types of tensors in memory.
enum class ElemType : uint8_t { kInt8, kBf16, kInt32, kFp32 };
inline constexpr const char* kElemTypeNames[] = {"int8", "bf16", "int32", "fp32"};
inline constexpr int kElemTypeCount = 4;
inline constexpr int kElemTypeBytes[] = {1, 2, 4, 4};

/// Matrix operand types (the MXU multiplies these).
enum class MatType : uint8_t { kInt8, kBf16 };
inline constexpr const char* kMatTypeNames[] = {"int8", "bf16"};
/// Bytes of one element of a matrix operand type given as its field value (0 int8, 1 bf16).
inline constexpr int mat_bytes(int64_t mat_type) { return mat_type == 0 ? 1 : 2; }

/// Bytes of a rowop's parameter block (docs/numerics.md section 8): int8 softmax/layer_norm
/// start with 4 fp32 quantization values (16 bytes); layer_norm adds fp32 eps, cols gamma and
/// cols beta; lut is 256 int8 entries; bf16 softmax reads none.
inline constexpr uint64_t rowop_params_bytes(RowOpKind kind, bool int8, uint64_t cols) {
  if (kind == RowOpKind::kLut) return 256;
  uint64_t quant = int8 ? 16 : 0;
  return kind == RowOpKind::kLayerNorm ? quant + 4 + 8 * cols : quant;
}
/// Largest rows x cols of one rowop.
inline constexpr uint64_t kRowOpMaxElements = uint64_t{1} << 28;

/// Memories a DMA reads or writes besides the unified buffer.
enum class Space : uint8_t { kMem, kHost, kUb };
/// DMA spaces; regions are placed in the first two only. `ub`: a copy within the unified
/// buffer (activations kept on chip between layers).
inline constexpr const char* kSpaceNames[] = {"mem", "host", "ub"};

/// Where load_weights reads a tile from.
enum class WeightSource : uint8_t { kMem, kUb };
inline constexpr const char* kWeightSourceNames[] = {"mem", "ub"};

/// Masks for sync.units.
inline constexpr const char* kSyncUnitNames[] = {"dma", "mxu", "vector", "ici"};

/// Inter-chip (ICI) instructions (docs/pod.md): the memory a transfer or collective touches,
/// the direction of a port along a pod dimension, collective operations and algorithms, the
/// element type a collective reduces in, and the pod dimensions a collective spans.
enum class IciSpace : uint8_t { kMem, kUb };
inline constexpr const char* kIciSpaceNames[] = {"mem", "ub"};
inline constexpr const char* kIciDirNames[] = {"plus", "minus"};
enum class CollOp : uint8_t { kAllReduce, kReduceScatter, kAllGather, kAllToAll, kBroadcast };
inline constexpr const char* kCollOpNames[] = {"all_reduce", "reduce_scatter", "all_gather",
                                               "all_to_all", "broadcast"};
enum class CollAlgorithm : uint8_t { kAuto, kRing, kBidirRing, kTorus, kTree, kMultiTorus };
inline constexpr const char* kCollAlgorithmNames[] = {"auto", "ring", "bidir_ring", "torus", "tree", "multi_torus"};
enum class CollType : uint8_t { kFp32, kBf16 };
inline constexpr const char* kCollTypeNames[] = {"fp32", "bf16"};
inline constexpr int coll_type_bytes(int64_t t) { return t == 0 ? 4 : 2; }
inline constexpr const char* kPodDimNames[] = {"d0", "d1", "d2"};

enum class FieldKind : uint8_t {
  kUnsigned,  ///< non-negative integer of `bits` bits
  kSigned,    ///< two's-complement integer of `bits` bits
  kFlag,      ///< 0 or 1
  kEnum,      ///< index into `names`
  kMask,      ///< bit set over `names`, written a|b in assembly
};

// I(opcode, mnemonic, unit, summary)
#define TPU_ISA_OPCODES(I)                                                                     \
  I(Nop, "nop", kSequencer, "Does nothing.")                                                    \
  I(Halt, "halt", kSequencer, "Ends the program once every earlier instruction has completed.") \
  I(Sync, "sync", kSequencer,                                                                   \
    "Holds issue until every earlier instruction of the named units has completed.")           \
  I(DmaLoad, "dma_load", kDma,                                                                  \
    "Copies `rows` rows of `row_bytes` bytes from off-chip or host memory (or, space=ub, "     \
    "another place in the unified buffer) into the unified buffer.")                           \
  I(DmaStore, "dma_store", kDma,                                                                \
    "Copies `rows` rows of `row_bytes` bytes from the unified buffer to off-chip or host "     \
    "memory (or, space=ub, another place in the unified buffer).")                             \
  I(LoadWeights, "load_weights", kDma,                                                          \
    "Reads a k x n weight tile (row-major, `stride` bytes between rows; with transpose=1 "     \
    "stored as its n x k transpose) and pushes it onto the weight FIFO of MXU `mxu`.")         \
  I(Matmul, "matmul", kMxu,                                                                     \
    "Streams `rows` input vectors of k values from the unified buffer through MXU `mxu` and "  \
    "writes (or adds) the k x n products into accumulator rows acc..acc+rows-1. With pop=1 "   \
    "the next tile is taken from the weight FIFO first; otherwise the array keeps its tile. "  \
    "With out_w > 0, input vector m is read through a convolution window (see below).")        \
  I(Activate, "activate", kVector,                                                              \
    "Reads `rows` x n accumulator values of MXU `mxu`, applies bias, requantization (int8) "   \
    "or the activation function (bf16), and writes the results to the unified buffer.")       \
  I(Pool, "pool", kVector,                                                                      \
    "Max or average pooling of one NHWC image in the unified buffer into another.")            \
  I(Vector, "vector", kVector,                                                                  \
    "Elementwise op over `count` elements of the unified buffer: dst = a OP b (or OP a).")     \
  I(RowOp, "rowop", kVector,                                                                    \
    "Row-wise op over `rows` contiguous rows of `cols` values in the unified buffer: softmax, " \
    "layer_norm or an int8 lookup table (docs/numerics.md section 8).")                      \
  I(Send, "send", kIci,                                                                         \
    "Copies `bytes` bytes at `src` over the ICI port of pod dimension `dim`, direction `dir`, "  \
    "to `dst` in the same memory of the neighbouring chip; completes when the data has "       \
    "arrived.")                                                                                \
  I(Recv, "recv", kIci,                                                                         \
    "Waits until `bytes` bytes sent by the neighbour on dimension `dim`, direction `dir` have " \
    "arrived (they land at `dst`) and consumes them from the port's count.")                   \
  I(Collective, "collective", kIci,                                                             \
    "A collective over the chips that share this chip's coordinates outside the `group` "      \
    "dimensions, in place on `count` elements at `addr` (docs/pod.md: schedules, shards and "  \
    "the order of the sums).")

// F(opcode, field, kind, bits, default ("" = required), names, description)
#define TPU_ISA_FIELDS(F)                                                                      \
  F(Sync, units, kMask, 4, "", kSyncUnitNames, "Units to wait for (dma|mxu|vector|ici).")          \
  F(DmaLoad, space, kEnum, 2, "mem", kSpaceNames, "Source memory (ub: copy within the UB).")    \
  F(DmaLoad, src, kUnsigned, 40, "", nullptr, "Source byte address.")                          \
  F(DmaLoad, ub, kUnsigned, 32, "", nullptr, "Destination unified-buffer byte address.")       \
  F(DmaLoad, rows, kUnsigned, 20, "1", nullptr, "Rows to copy.")                               \
  F(DmaLoad, row_bytes, kUnsigned, 24, "", nullptr, "Bytes per row (> 0).")                    \
  F(DmaLoad, src_stride, kUnsigned, 32, "0", nullptr,                                          \
    "Bytes between source rows (0: row_bytes, contiguous).")                                   \
  F(DmaLoad, ub_stride, kUnsigned, 24, "0", nullptr,                                           \
    "Bytes between destination rows (0: row_bytes).")                                          \
  F(DmaStore, space, kEnum, 2, "mem", kSpaceNames, "Destination memory (ub: copy within the UB).") \
  F(DmaStore, dst, kUnsigned, 40, "", nullptr, "Destination byte address.")                    \
  F(DmaStore, ub, kUnsigned, 32, "", nullptr, "Source unified-buffer byte address.")           \
  F(DmaStore, rows, kUnsigned, 20, "1", nullptr, "Rows to copy.")                              \
  F(DmaStore, row_bytes, kUnsigned, 24, "", nullptr, "Bytes per row (> 0).")                   \
  F(DmaStore, dst_stride, kUnsigned, 32, "0", nullptr,                                         \
    "Bytes between destination rows (0: row_bytes).")                                          \
  F(DmaStore, ub_stride, kUnsigned, 24, "0", nullptr,                                          \
    "Bytes between source rows (0: row_bytes).")                                               \
  F(LoadWeights, space, kEnum, 1, "mem", kWeightSourceNames, "Memory the tile is read from.")  \
  F(LoadWeights, src, kUnsigned, 40, "", nullptr, "Byte address of weight row 0.")             \
  F(LoadWeights, k, kUnsigned, 16, "", nullptr, "Tile rows (reduction size, <= mxu.rows).")    \
  F(LoadWeights, n, kUnsigned, 16, "", nullptr, "Tile columns (outputs, <= mxu.cols).")        \
  F(LoadWeights, stride, kUnsigned, 32, "0", nullptr,                                          \
    "Bytes between source rows (0: n x element size; with transpose=1, k x element size).")    \
  F(LoadWeights, dtype, kEnum, 1, "", kMatTypeNames, "Weight type.")                           \
  F(LoadWeights, mxu, kUnsigned, 6, "0", nullptr, "Target MXU of the core.")                   \
  F(LoadWeights, transpose, kFlag, 1, "0", nullptr,                                            \
    "1: the source holds the tile transposed, n rows of k values; the tile is "                \
    "w[k][n] = src[n][k].")                                                                    \
  F(LoadWeights, diag, kFlag, 1, "0", nullptr,                                                 \
    "1: the source is one row of k values and the tile (n = k) is diagonal, w[i][i] = src[i], "\
    "zeros elsewhere: depthwise convolution, k channels per pass.")                            \
  F(Matmul, mxu, kUnsigned, 6, "0", nullptr, "MXU of the core.")                               \
  F(Matmul, dtype, kEnum, 1, "", kMatTypeNames, "Operand type (must equal the tile's).")       \
  F(Matmul, ub, kUnsigned, 32, "", nullptr, "Unified-buffer byte address of input vector 0.")  \
  F(Matmul, ub_stride, kUnsigned, 20, "0", nullptr,                                            \
    "Bytes between consecutive input vectors / pixels (0: k x element size).")                 \
  F(Matmul, acc, kUnsigned, 20, "", nullptr, "First accumulator row.")                         \
  F(Matmul, rows, kUnsigned, 24, "", nullptr, "Input vectors streamed (M, > 0).")              \
  F(Matmul, k, kUnsigned, 16, "", nullptr, "Values per input vector (= tile rows).")           \
  F(Matmul, n, kUnsigned, 16, "", nullptr, "Outputs per vector (= tile columns).")             \
  F(Matmul, accumulate, kFlag, 1, "0", nullptr, "1: add to the accumulators; 0: overwrite.")   \
  F(Matmul, pop, kFlag, 1, "0", nullptr, "1: take the next tile from the weight FIFO first.")  \
  F(Matmul, out_w, kUnsigned, 16, "0", nullptr,                                                \
    "Convolution window: output width (0: plain rows, vector m at ub + m x ub_stride).")       \
  F(Matmul, in_h, kUnsigned, 16, "0", nullptr, "Convolution window: input height.")            \
  F(Matmul, in_w, kUnsigned, 16, "0", nullptr, "Convolution window: input width.")             \
  F(Matmul, stride_h, kUnsigned, 4, "1", nullptr, "Convolution window: vertical stride.")      \
  F(Matmul, stride_w, kUnsigned, 4, "1", nullptr, "Convolution window: horizontal stride.")    \
  F(Matmul, off_h, kSigned, 12, "0", nullptr,                                                  \
    "Convolution window: row offset of this kernel tap (r x dilation - pad_top).")             \
  F(Matmul, off_w, kSigned, 12, "0", nullptr,                                                  \
    "Convolution window: column offset of this kernel tap (s x dilation - pad_left).")         \
  F(Matmul, pad, kSigned, 9, "0", nullptr,                                                     \
    "Value read for window positions outside the input (int8: the input zero point; bf16: "    \
    "must be 0).")                                                                             \
  F(Activate, mxu, kUnsigned, 6, "0", nullptr, "MXU whose accumulators are read.")             \
  F(Activate, acc, kUnsigned, 20, "", nullptr, "First accumulator row.")                       \
  F(Activate, rows, kUnsigned, 24, "", nullptr, "Accumulator rows to read (> 0).")             \
  F(Activate, n, kUnsigned, 16, "", nullptr, "Values per row (channels, <= mxu.cols).")        \
  F(Activate, ub, kUnsigned, 32, "", nullptr, "Unified-buffer byte address of output row 0.")  \
  F(Activate, ub_stride, kUnsigned, 20, "0", nullptr,                                          \
    "Bytes between output rows (0: n x output element size).")                                 \
  F(Activate, mode, kEnum, 1, "", kMatTypeNames,                                               \
    "int8: int32 accumulators requantized to int8; bf16: fp32 accumulators.")                  \
  F(Activate, out_fp32, kFlag, 1, "0", nullptr, "bf16 mode: write fp32 instead of bf16.")      \
  F(Activate, func, kEnum, 3, "none", kActivationNames,                                        \
    "bf16 mode: activation function (int8 mode: none; use act_min/act_max).")                  \
  F(Activate, params, kUnsigned, 32, "0", nullptr,                                             \
    "Unified-buffer address of per-channel parameters (int8: n x {bias, multiplier, shift} "   \
    "int32; bf16 with bias=1: n fp32 biases).")                                                \
  F(Activate, bias, kFlag, 1, "0", nullptr, "bf16 mode: add the fp32 biases at params.")       \
  F(Activate, out_zp, kSigned, 9, "0", nullptr, "int8 mode: output zero point.")               \
  F(Activate, act_min, kSigned, 9, "-128", nullptr, "int8 mode: clamp minimum.")               \
  F(Activate, act_max, kSigned, 9, "127", nullptr, "int8 mode: clamp maximum.")                \
  F(Pool, dtype, kEnum, 1, "", kMatTypeNames, "Element type.")                                 \
  F(Pool, kind, kEnum, 1, "", kPoolKindNames, "max or avg.")                                   \
  F(Pool, src, kUnsigned, 32, "", nullptr, "Unified-buffer address of the input image.")       \
  F(Pool, dst, kUnsigned, 32, "", nullptr, "Unified-buffer address of the output image.")      \
  F(Pool, in_h, kUnsigned, 16, "", nullptr, "Input height.")                                   \
  F(Pool, in_w, kUnsigned, 16, "", nullptr, "Input width.")                                    \
  F(Pool, channels, kUnsigned, 16, "", nullptr, "Channels.")                                   \
  F(Pool, win_h, kUnsigned, 8, "", nullptr, "Window height.")                                  \
  F(Pool, win_w, kUnsigned, 8, "", nullptr, "Window width.")                                   \
  F(Pool, stride_h, kUnsigned, 8, "1", nullptr, "Vertical stride.")                            \
  F(Pool, stride_w, kUnsigned, 8, "1", nullptr, "Horizontal stride.")                          \
  F(Pool, pad_top, kUnsigned, 8, "0", nullptr, "Rows of padding above.")                       \
  F(Pool, pad_left, kUnsigned, 8, "0", nullptr, "Columns of padding to the left.")             \
  F(Pool, out_h, kUnsigned, 16, "", nullptr, "Output height.")                                 \
  F(Pool, out_w, kUnsigned, 16, "", nullptr, "Output width.")                                  \
  F(Vector, op, kEnum, 4, "", kVectorOpNames,                                                  \
    "Operation (relu6, sigmoid, tanh, gelu: bf16 only, fp32 as in activate).")                                    \
  F(Vector, dtype, kEnum, 1, "", kMatTypeNames, "Element type.")                               \
  F(Vector, a, kUnsigned, 32, "", nullptr, "Unified-buffer address of operand a.")             \
  F(Vector, b, kUnsigned, 32, "0", nullptr, "Unified-buffer address of operand b (binary ops).") \
  F(Vector, dst, kUnsigned, 32, "", nullptr, "Unified-buffer address of the result.")          \
  F(Vector, count, kUnsigned, 32, "", nullptr, "Elements (> 0).")                             \
  F(RowOp, kind, kEnum, 2, "", kRowOpKindNames, "softmax, layer_norm or lut (int8 only).")     \
  F(RowOp, dtype, kEnum, 1, "", kMatTypeNames, "Element type of src and dst.")                 \
  F(RowOp, src, kUnsigned, 32, "", nullptr, "Unified-buffer address of row 0 of the input.")   \
  F(RowOp, dst, kUnsigned, 32, "", nullptr,                                                    \
    "Unified-buffer address of row 0 of the output (= src, or disjoint from it).")             \
  F(RowOp, rows, kUnsigned, 24, "", nullptr,                                                   \
    "Rows (> 0); row r starts at src + r x cols x element size.")                              \
  F(RowOp, cols, kUnsigned, 20, "", nullptr, "Values per row (> 0).")                          \
  F(RowOp, params, kUnsigned, 32, "0", nullptr,                                                \
    "Unified-buffer address of the parameter block (int8: 4 fp32 in_scale, in_zp, out_scale, " \
    "out_zp first; layer_norm: fp32 eps, cols gamma, cols beta; lut: 256 int8; bf16 softmax: " \
    "unused).")                                                                                \
  F(Send, dim, kUnsigned, 2, "", nullptr, "Pod dimension of the port (< the pod's dimensions).") \
  F(Send, dir, kEnum, 1, "", kIciDirNames, "Direction along it: plus or minus.")               \
  F(Send, space, kEnum, 1, "mem", kIciSpaceNames, "Memory read here and written there.")       \
  F(Send, src, kUnsigned, 40, "", nullptr, "Source byte address on this chip.")                \
  F(Send, dst, kUnsigned, 40, "", nullptr, "Destination byte address on the neighbour.")       \
  F(Send, bytes, kUnsigned, 32, "", nullptr, "Bytes (> 0).")                                   \
  F(Recv, dim, kUnsigned, 2, "", nullptr, "Pod dimension of the port.")                        \
  F(Recv, dir, kEnum, 1, "", kIciDirNames,                                                     \
    "Side the data comes from: minus receives what the neighbour at -1 sent with dir=plus.")   \
  F(Recv, space, kEnum, 1, "mem", kIciSpaceNames, "Memory the data lands in.")                 \
  F(Recv, dst, kUnsigned, 40, "", nullptr, "Byte address the data lands at (scoreboard: later "\
    "readers of the range wait for this recv).")                                               \
  F(Recv, bytes, kUnsigned, 32, "", nullptr, "Bytes to wait for (> 0).")                       \
  F(Collective, op, kEnum, 3, "", kCollOpNames,                                                \
    "all_reduce, reduce_scatter, all_gather, all_to_all or broadcast (from group rank 0).")    \
  F(Collective, algorithm, kEnum, 3, "auto", kCollAlgorithmNames,                              \
    "auto, ring, bidir_ring, torus (dimension-ordered), tree or multi_torus (every dimension "  \
    "at once on its own part of the data).")                              \
  F(Collective, dtype, kEnum, 1, "fp32", kCollTypeNames,                                       \
    "Element type: sums are taken in it (bf16: each add rounded to bf16).")                    \
  F(Collective, space, kEnum, 1, "mem", kIciSpaceNames, "Memory of the buffer.")               \
  F(Collective, addr, kUnsigned, 40, "", nullptr, "Byte address of the buffer.")               \
  F(Collective, count, kUnsigned, 32, "", nullptr, "Elements of the buffer (> 0).")            \
  F(Collective, group, kMask, 3, "d0|d1|d2", kPodDimNames,                                     \
    "Pod dimensions the collective spans (the rest select the group).")

enum class Opcode : uint8_t {
#define TPU_ISA_OPCODE_ENUM(name, mnemonic, unit, summary) k##name,
  TPU_ISA_OPCODES(TPU_ISA_OPCODE_ENUM)
#undef TPU_ISA_OPCODE_ENUM
      kCount
};
inline constexpr int kOpcodeCount = static_cast<int>(Opcode::kCount);

/// Every operand field of every opcode, named k<Opcode>_<field>.
enum class Fid : uint16_t {
#define TPU_ISA_FIELD_ENUM(op, field, kind, bits, def, names, doc) k##op##_##field,
  TPU_ISA_FIELDS(TPU_ISA_FIELD_ENUM)
#undef TPU_ISA_FIELD_ENUM
      kCount
};
inline constexpr int kFieldCount = static_cast<int>(Fid::kCount);

struct OpcodeSpec {
  const char* mnemonic;
  Unit unit;
  const char* summary;
};

struct FieldSpec {
  Opcode op;
  const char* name;
  FieldKind kind;
  int bits;
  const char* default_text;  ///< "" when the field is required
  const char* const* names;  ///< enum / mask names (null otherwise)
  int name_count;
  const char* doc;
};

/// Instruction words are this many bytes, little-endian; byte 0 is the opcode.
inline constexpr int kInstructionBytes = 32;
/// Largest number of fields one opcode has.
inline constexpr int kMaxFields = 20;

const OpcodeSpec& opcode_spec(Opcode op);
const FieldSpec& field_spec(Fid f);
/// Fields of one opcode, in table (= encoding) order.
const std::array<Fid, kMaxFields>& fields_of(Opcode op, int* count);
/// Index of field f within its opcode's field list (the slot Instruction stores it in).
int field_slot(Fid f);
/// Bit offset of field f within the instruction word (after the 8 opcode bits).
int field_bit_offset(Fid f);
/// Default value of a field (0 for required ones).
int64_t field_default(Fid f);
bool field_required(Fid f);
/// Valid range of a field's value given its kind and bits.
int64_t field_min(Fid f);
int64_t field_max(Fid f);
/// 32-bit FNV-1a hash of the whole table; binaries record it so that a program encoded by a
/// different instruction set is rejected.
uint32_t isa_hash();
/// Opcode by mnemonic; false when unknown.
bool opcode_by_mnemonic(const std::string& mnemonic, Opcode* op);

}  // namespace tpu::isa
