// Access sets of instructions and waiting on completions.
#include "sim/chip/op.h"

#include "sim/chip/clock.h"

namespace tpu::sim {

namespace {

using isa::Fid;

uint64_t extent(uint64_t rows, uint64_t stride, uint64_t row_bytes) {
  if (stride == 0) stride = row_bytes;
  return (rows - 1) * stride + row_bytes;
}

Access range(Access::Space s, uint64_t lo, uint64_t bytes, bool write, int mxu = 0) {
  Access a;
  a.space = s;
  a.mxu = static_cast<uint8_t>(mxu);
  a.write = write;
  a.lo = lo;
  a.hi = lo + bytes;
  return a;
}

Access::Space offchip(int64_t space) {
  return space == 0 ? Access::kMem : space == 1 ? Access::kHost : Access::kUb;
}

}  // namespace

UnitKind unit_of(const isa::Instruction& in) {
  switch (in.op) {
    case isa::Opcode::kDmaLoad:
    case isa::Opcode::kDmaStore:
      return UnitKind::kDma;
    case isa::Opcode::kLoadWeights:
      return UnitKind::kWeightDma;
    case isa::Opcode::kMatmul:
      return UnitKind::kMxu;
    case isa::Opcode::kActivate:
    case isa::Opcode::kPool:
    case isa::Opcode::kVector:
    case isa::Opcode::kRowOp:
      return UnitKind::kVector;
    case isa::Opcode::kSend:
    case isa::Opcode::kRecv:
    case isa::Opcode::kCollective:
      return UnitKind::kIci;
    default:
      return UnitKind::kNone;
  }
}

std::vector<Access> accesses_of(const isa::Instruction& in) {
  std::vector<Access> out;
  auto ici = [](int64_t space) { return space == static_cast<int>(isa::IciSpace::kUb) ? Access::kUb : Access::kMem; };
  switch (in.op) {
    case isa::Opcode::kSend:
      out.push_back(range(ici(in.get(Fid::kSend_space)), in.get(Fid::kSend_src), in.get(Fid::kSend_bytes), false));
      break;
    case isa::Opcode::kRecv:
      out.push_back(range(ici(in.get(Fid::kRecv_space)), in.get(Fid::kRecv_dst), in.get(Fid::kRecv_bytes), true));
      break;
    case isa::Opcode::kCollective:
      out.push_back(range(ici(in.get(Fid::kCollective_space)), in.get(Fid::kCollective_addr),
                          in.get(Fid::kCollective_count) *
                              static_cast<uint64_t>(isa::coll_type_bytes(in.get(Fid::kCollective_dtype))),
                          true));
      break;
    case isa::Opcode::kDmaLoad: {
      uint64_t rows = in.get(Fid::kDmaLoad_rows), rb = in.get(Fid::kDmaLoad_row_bytes);
      out.push_back(range(offchip(in.get(Fid::kDmaLoad_space)), in.get(Fid::kDmaLoad_src),
                          extent(rows, in.get(Fid::kDmaLoad_src_stride), rb), false));
      out.push_back(range(Access::kUb, in.get(Fid::kDmaLoad_ub),
                          extent(rows, in.get(Fid::kDmaLoad_ub_stride), rb), true));
      break;
    }
    case isa::Opcode::kDmaStore: {
      uint64_t rows = in.get(Fid::kDmaStore_rows), rb = in.get(Fid::kDmaStore_row_bytes);
      out.push_back(range(Access::kUb, in.get(Fid::kDmaStore_ub),
                          extent(rows, in.get(Fid::kDmaStore_ub_stride), rb), false));
      out.push_back(range(offchip(in.get(Fid::kDmaStore_space)), in.get(Fid::kDmaStore_dst),
                          extent(rows, in.get(Fid::kDmaStore_dst_stride), rb), true));
      break;
    }
    case isa::Opcode::kLoadWeights: {
      // Source rows: k rows of n values, or with transpose n rows of k values.
      bool transpose = in.get(Fid::kLoadWeights_transpose) != 0;
      uint64_t k = in.get(Fid::kLoadWeights_k), n = in.get(Fid::kLoadWeights_n);
      uint64_t rb = (transpose ? k : n) * isa::mat_bytes(in.get(Fid::kLoadWeights_dtype));
      bool ub = in.get(Fid::kLoadWeights_space) == static_cast<int>(isa::WeightSource::kUb);
      bool diag = in.get(Fid::kLoadWeights_diag) != 0;
      out.push_back(range(ub ? Access::kUb : Access::kMem, in.get(Fid::kLoadWeights_src),
                          extent(diag ? 1 : transpose ? n : k, in.get(Fid::kLoadWeights_stride), rb), false));
      break;
    }
    case isa::Opcode::kMatmul: {
      uint64_t vec = in.get(Fid::kMatmul_k) * isa::mat_bytes(in.get(Fid::kMatmul_dtype));
      uint64_t vectors = in.get(Fid::kMatmul_out_w) == 0
                             ? static_cast<uint64_t>(in.get(Fid::kMatmul_rows))
                             : static_cast<uint64_t>(in.get(Fid::kMatmul_in_h) * in.get(Fid::kMatmul_in_w));
      out.push_back(range(Access::kUb, in.get(Fid::kMatmul_ub),
                          extent(vectors, in.get(Fid::kMatmul_ub_stride), vec), false));
      out.push_back(range(Access::kAcc, in.get(Fid::kMatmul_acc), in.get(Fid::kMatmul_rows), true,
                          static_cast<int>(in.get(Fid::kMatmul_mxu))));
      break;
    }
    case isa::Opcode::kActivate: {
      bool int8 = in.get(Fid::kActivate_mode) == 0;
      int ob = int8 ? 1 : (in.get(Fid::kActivate_out_fp32) ? 4 : 2);
      uint64_t n = in.get(Fid::kActivate_n);
      out.push_back(range(Access::kAcc, in.get(Fid::kActivate_acc), in.get(Fid::kActivate_rows),
                          false, static_cast<int>(in.get(Fid::kActivate_mxu))));
      if (int8 || in.get(Fid::kActivate_bias)) {
        out.push_back(range(Access::kUb, in.get(Fid::kActivate_params), n * (int8 ? 12 : 4), false));
      }
      out.push_back(range(Access::kUb, in.get(Fid::kActivate_ub),
                          extent(in.get(Fid::kActivate_rows), in.get(Fid::kActivate_ub_stride), n * ob),
                          true));
      break;
    }
    case isa::Opcode::kPool: {
      uint64_t eb = isa::mat_bytes(in.get(Fid::kPool_dtype)), c = in.get(Fid::kPool_channels);
      out.push_back(range(Access::kUb, in.get(Fid::kPool_src),
                          in.get(Fid::kPool_in_h) * in.get(Fid::kPool_in_w) * c * eb, false));
      out.push_back(range(Access::kUb, in.get(Fid::kPool_dst),
                          in.get(Fid::kPool_out_h) * in.get(Fid::kPool_out_w) * c * eb, true));
      break;
    }
    case isa::Opcode::kVector: {
      uint64_t bytes = in.get(Fid::kVector_count) * isa::mat_bytes(in.get(Fid::kVector_dtype));
      out.push_back(range(Access::kUb, in.get(Fid::kVector_a), bytes, false));
      if (isa::is_binary(static_cast<isa::VectorOp>(in.get(Fid::kVector_op)))) {
        out.push_back(range(Access::kUb, in.get(Fid::kVector_b), bytes, false));
      }
      out.push_back(range(Access::kUb, in.get(Fid::kVector_dst), bytes, true));
      break;
    }
    case isa::Opcode::kRowOp: {
      auto kind = static_cast<isa::RowOpKind>(in.get(Fid::kRowOp_kind));
      bool int8 = in.get(Fid::kRowOp_dtype) == 0;
      uint64_t cols = in.get(Fid::kRowOp_cols);
      uint64_t bytes = in.get(Fid::kRowOp_rows) * cols * (int8 ? 1 : 2);
      out.push_back(range(Access::kUb, in.get(Fid::kRowOp_src), bytes, false));
      uint64_t pb = isa::rowop_params_bytes(kind, int8, cols);
      if (pb > 0) out.push_back(range(Access::kUb, in.get(Fid::kRowOp_params), pb, false));
      out.push_back(range(Access::kUb, in.get(Fid::kRowOp_dst), bytes, true));
      break;
    }
    default:
      break;
  }
  return out;
}

void wait_done(const Op* op, int slot) {
  while (!op->scheduled) sc_core::wait(op->scheduled_event);
  wait_until(op->done_cycle, slot);
}

const Op* wait_deps(const Op* op, int64_t since, int slot) {
  const Op* last = nullptr;
  for (const Op* d : op->deps) {
    wait_done(d, slot);
    if (d->done_cycle > since && (last == nullptr || d->done_cycle > last->done_cycle)) last = d;
  }
  return last;
}

}  // namespace tpu::sim
