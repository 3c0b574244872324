// Parallelism as workload transformations (compiler/parallel.cpp): the ops inserted for
// tensor parallelism and for the gradient all-reduces, gradient buckets, and their lowering
// bit-exact on one chip (a pod of one: collectives leave buffers as they are).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "arch/arch_config.h"
#include "compiler/parallel.h"
#include "compiler/training.h"
#include "golden_util.h"
#include "test_util.h"

namespace tpu::compiler {
namespace {

Workload mlp() {
  return parse_workload_yaml(
      "name: mlp\nbatch: 2\ndtype: bf16\ninputs: [{name: x, shape: [8, 64]}]\nops:\n"
      "  - {name: fc1, op: fully_connected, units: 96, activation: relu}\n"
      "  - {name: fc2, op: fully_connected, units: 48}\n"
      "  - {name: fc3, op: fully_connected, units: 40}\n",
      "mlp.yaml");
}

std::map<OpKind, int> kinds(const Workload& w) {
  std::map<OpKind, int> n;
  for (const auto& op : w.ops) n[op.kind]++;
  return n;
}

TEST(Parallel, TensorShardingDividesChannelsAndGathersThem) {
  std::set<std::string> sharded;
  Workload w = shard_tensor(mlp(), 4, &sharded);
  // fc3's 40 channels divide by 4 too; every layer is sharded and gathered.
  EXPECT_EQ(sharded, (std::set<std::string>{"fc1", "fc2", "fc3"}));
  EXPECT_EQ(kinds(w)[OpKind::kAllGather], 3);
  int64_t macs = 0;
  for (const auto& op : w.ops) macs += op.macs;
  EXPECT_EQ(macs * 4, mlp().macs_per_sample());
  // The gathered tensors have the layers' full width; the next layer reads them.
  for (const auto& op : w.ops) {
    if (op.kind == OpKind::kAllGather) {
      EXPECT_EQ(op.out.c, op.in[0].c * 4);
    }
  }
  EXPECT_EQ(w.outputs, std::vector<std::string>{"fc3__ag"});
  std::set<std::string> none;
  Workload odd = shard_tensor(mlp(), 7, &none);  // no layer's channels divide by 7
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(kinds(odd)[OpKind::kAllGather], 0);
}

TEST(Parallel, GradientsAreReducedOncePerLayerOrPerBucket) {
  Workload t = training_step(mlp(), 2, TrainOptions{});
  int64_t grad_bytes = 0;
  std::vector<std::string> grads;
  for (const auto& op : t.ops) {
    if (op.name.size() > 4 && op.name.compare(op.name.size() - 4, 4, "__dw") == 0) {
      grads.push_back(op.name);
      grad_bytes += op.out.elements() * t.batch * 2;
    }
  }
  ASSERT_EQ(grads.size(), 3u);
  Workload per_layer = insert_gradient_collectives(t, 8, {});
  EXPECT_EQ(kinds(per_layer)[OpKind::kAllReduce], 3);
  // One bucket holding everything: one all-reduce over the concatenation of all gradients,
  // and every gradient's optimizer reads its slice of the reduced bucket.
  Workload one = insert_gradient_collectives(t, 8, {}, grad_bytes);
  EXPECT_EQ(kinds(one)[OpKind::kAllReduce], 1);
  EXPECT_EQ(kinds(one)[OpKind::kSlice], 3);
  for (const auto& op : one.ops) {
    if (op.kind == OpKind::kAllReduce) {
      EXPECT_EQ(op.out.elements() * one.batch * 2, grad_bytes);
    }
    for (const auto& g : grads) {
      bool reads_raw = std::find(op.inputs.begin(), op.inputs.end(), g) != op.inputs.end();
      // Only the flattening for the bucket reads a raw gradient.
      if (reads_raw) {
        EXPECT_EQ(op.name, g + "__flat");
      }
    }
  }
  // Buckets of about two gradients: two all-reduces, one of them a single gradient's.
  int64_t first_two = 0;
  for (std::size_t k = 0; k < 2; ++k) {
    for (const auto& op : t.ops) {
      if (op.name == grads[k]) first_two += op.out.elements() * t.batch * 2;
    }
  }
  Workload two = insert_gradient_collectives(t, 8, {}, first_two);
  EXPECT_EQ(kinds(two)[OpKind::kAllReduce], 2);
  EXPECT_EQ(kinds(two)[OpKind::kSlice], 2);
  // Data parallelism of one chip: nothing to reduce.
  EXPECT_EQ(kinds(insert_gradient_collectives(t, 1, {}, grad_bytes))[OpKind::kAllReduce], 0);
}

TEST(Parallel, InsertedOpsLowerBitExactlyOnOneChip) {
  // On a chip alone an all-reduce leaves its buffer as it is, so the reference evaluator
  // (all-reduce: identity; slice: the range) checks the lowering of the flatten /
  // concatenate / all-reduce / slice / reshape chain of gradient buckets, bit for bit.
  // (An all-gather's other shards are only written by the other chips: tensor-parallel
  // steps are timed, not checked; docs/pod.md.)
  arch::ArchConfig a = arch::load_arch(test::source_path("configs/arch/tpu_v4.yaml"));
  Workload t = training_step(mlp(), 2, TrainOptions{});
  test::expect_golden(a, insert_gradient_collectives(t, 4, {}));
  Compiled c = test::expect_golden(a, insert_gradient_collectives(t, 4, {}, 1 << 20));
  int collectives = 0;
  for (const auto& in : c.program().code) collectives += in.op == isa::Opcode::kCollective;
  EXPECT_EQ(collectives, 1);  // one bucket holds the three gradients
  std::set<std::string> sharded;
  Compiled tp = compile(a, insert_gradient_collectives(training_step(shard_tensor(mlp(), 2, &sharded), 2, TrainOptions{}),
                                                       4, sharded, 1 << 20),
                        {});
  collectives = 0;
  for (const auto& in : tp.program().code) collectives += in.op == isa::Opcode::kCollective;
  // Three all-gathers (forward), two input-gradient all-reduces (fc2, fc3), one bucket.
  EXPECT_EQ(collectives, 3 + 2 + 1);
}

TEST(Parallel, WorkloadFilesMayNotNameTheInsertedOps) {
  for (const char* op : {"all_reduce", "all_gather", "slice"}) {
    try {
      parse_workload_yaml(std::string("name: w\ninputs: [{name: x, shape: [8]}]\nops:\n  - {name: a, op: ") + op + "}\n",
                          "w.yaml");
      ADD_FAILURE() << op;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("inserted by tpusim run --pod"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tpu::compiler
