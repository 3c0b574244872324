#include "compiler/parallel.h"

#include <algorithm>
#include <map>
#include <vector>

namespace tpu::compiler {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Inserts `comm` right after the op producing comm.inputs[0] and renames every later read of
// that tensor (and the workload output, when `rename_output`) to the comm op's result.
void insert_after(Workload& w, std::size_t producer, Op comm, bool rename_output) {
  const std::string from = comm.inputs[0], to = comm.name;
  for (std::size_t i = producer + 1; i < w.ops.size(); ++i) {
    for (auto& in : w.ops[i].inputs) {
      if (in == from) in = to;
    }
  }
  if (rename_output) std::replace(w.outputs.begin(), w.outputs.end(), from, to);
  w.ops.insert(w.ops.begin() + static_cast<std::ptrdiff_t>(producer + 1), std::move(comm));
}

Op comm_op(const Op& producer, OpKind kind, const std::string& suffix, int group, int64_t parts) {
  Op c;
  c.name = producer.name + suffix;
  c.kind = kind;
  c.inputs = {producer.name};
  c.where = producer.where;
  c.comm_group = group;
  c.parts = parts;
  return c;
}

}  // namespace

Workload shard_tensor(const Workload& in, int64_t tensor, std::set<std::string>* sharded) {
  Workload w = in;
  if (tensor <= 1) return w;
  for (std::size_t i = 0; i < w.ops.size(); ++i) {
    Op& op = w.ops[i];
    bool gemm = op.kind == OpKind::kFullyConnected || (op.kind == OpKind::kConv2d && op.groups == 1) ||
                (op.kind == OpKind::kMatmul && op.inputs.size() == 1);
    if (!gemm || op.filters < tensor || op.filters % tensor != 0) continue;
    op.filters /= tensor;
    sharded->insert(op.name);
    insert_after(w, i, comm_op(op, OpKind::kAllGather, "__ag", 1, tensor), true);
    ++i;
  }
  infer_shapes(w);
  return w;
}

Workload insert_gradient_collectives(const Workload& in, int64_t data, const std::set<std::string>& sharded) {
  Workload w = in;
  for (std::size_t i = 0; i < w.ops.size(); ++i) {
    const Op& op = w.ops[i];
    if (data > 1 && ends_with(op.name, "__dw")) {
      insert_after(w, i, comm_op(op, OpKind::kAllReduce, "__ar", 0, data), false);
      ++i;
    } else if (ends_with(op.name, "__dx") && sharded.count(op.name.substr(0, op.name.size() - 4))) {
      insert_after(w, i, comm_op(op, OpKind::kAllReduce, "__ar", 1, 1), false);
      ++i;
    }
  }
  infer_shapes(w);
  return w;
}

}  // namespace tpu::compiler
