#include "compiler/parallel.h"

#include <fmt/format.h>

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

namespace {

// The ops of one bucket, inserted after its last gradient: flatten, concatenate, all-reduce,
// slice each gradient back out and restore its shape; later readers of a gradient read the
// restored one.
void insert_bucket(Workload& w, std::size_t after, const std::vector<std::size_t>& members, int index) {
  std::vector<Op> ops;
  std::string bucket = fmt::format("grad__bucket{}", index);
  Op cat;
  cat.name = bucket;
  cat.kind = OpKind::kConcat;
  std::vector<std::pair<std::string, std::string>> renames;
  std::vector<Op> tails;
  int64_t offset = 0;
  for (std::size_t m : members) {
    const Op& g = w.ops[m];
    Op flat;
    flat.name = g.name + "__flat";
    flat.kind = OpKind::kReshape;
    flat.inputs = {g.name};
    flat.reshape = {g.out.elements()};
    flat.where = g.where;
    ops.push_back(flat);
    cat.inputs.push_back(flat.name);
    cat.where = g.where;
    Op slice;
    slice.name = g.name + "__bucketed";
    slice.kind = OpKind::kSlice;
    slice.inputs = {bucket + "__ar"};
    slice.slice_begin = offset;
    slice.filters = g.out.elements();
    slice.where = g.where;
    Op back;
    back.name = g.name + "__reduced";
    back.kind = OpKind::kReshape;
    back.inputs = {slice.name};
    back.reshape = g.out.dims;
    back.where = g.where;
    tails.push_back(slice);
    tails.push_back(back);
    renames.emplace_back(g.name, back.name);
    offset += g.out.elements();
  }
  Op ar;
  ar.name = bucket + "__ar";
  ar.kind = OpKind::kAllReduce;
  ar.inputs = {bucket};
  ar.where = cat.where;
  ops.push_back(cat);
  ops.push_back(ar);
  ops.insert(ops.end(), tails.begin(), tails.end());
  for (std::size_t i = after + 1; i < w.ops.size(); ++i) {
    for (auto& in : w.ops[i].inputs) {
      for (const auto& [from, to] : renames) {
        if (in == from) in = to;
      }
    }
  }
  w.ops.insert(w.ops.begin() + static_cast<std::ptrdiff_t>(after + 1), ops.begin(), ops.end());
}

}  // namespace

Workload insert_gradient_collectives(const Workload& in, int64_t data, const std::set<std::string>& sharded,
                                     int64_t bucket_bytes) {
  Workload w = in;
  if (bucket_bytes > 0 && data > 1) {
    // Buckets in backward order: a bucket closes at the gradient that fills it (or the last).
    std::vector<std::vector<std::size_t>> buckets(1);
    int64_t bytes = 0;
    for (std::size_t i = 0; i < w.ops.size(); ++i) {
      if (!ends_with(w.ops[i].name, "__dw")) continue;
      buckets.back().push_back(i);
      bytes += w.ops[i].out.elements() * w.batch * 2;
      if (bytes >= bucket_bytes || buckets.back().size() == 64) {
        buckets.emplace_back();
        bytes = 0;
      }
    }
    if (buckets.back().empty()) buckets.pop_back();
    // Inserted from the last bucket back, so that earlier indices stay valid.
    for (std::size_t b = buckets.size(); b-- > 0;) {
      const auto& members = buckets[b];
      if (members.size() == 1) {
        insert_after(w, members[0], comm_op(w.ops[members[0]], OpKind::kAllReduce, "__ar", 0, data), false);
      } else {
        insert_bucket(w, members.back(), members, static_cast<int>(b));
      }
    }
    data = 1;  // the weight gradients are reduced
  }
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
