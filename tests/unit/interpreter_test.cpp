// The golden interpreter against independent loop nests: tiled int8 matmul with TFLite
// requantization, bf16 convolution through window addressing, pooling and elementwise ops;
// plus the run-time diagnostics for bad programs.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cstring>

#include "arch/arch_config.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "isa/kernels.h"
#include "test_util.h"

namespace tpu::isa {
namespace {

using test::expect_input_error;

arch::ArchConfig small_arch(const std::vector<std::string>& sets = {}) {
  return arch::load_arch_string(R"(name: small
clock_mhz: 1000
mxu:
  count: 2
  rows: 8
  cols: 8
  dtypes: [int8, bf16]
  weight_fifo_depth: 2
unified_buffer:
  bytes: 1MiB
  port_bytes_per_cycle: 32
accumulators:
  entries: 512
vector_unit:
  lanes: 8
memory:
  bytes: 16MiB
  bandwidth_gbps: 10
host_link:
  bandwidth_gbps: 1
)",
                                "small.yaml", sets);
}

template <class T>
std::vector<T> as(const NpyArray& a) {
  std::vector<T> out(a.data.size() / sizeof(T));
  std::memcpy(out.data(), a.data.data(), a.data.size());
  return out;
}

template <class T>
NpyArray npy(ElemType t, std::vector<uint64_t> shape, const std::vector<T>& v) {
  NpyArray a;
  a.dtype = t;
  a.shape = std::move(shape);
  a.data.resize(v.size() * sizeof(T));
  std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

// int8 C[M,N] = requant(A[M,K] x W[K,N]) with K and N larger than the 8x8 array: the
// program tiles K into accumulate passes and N into column blocks, on two MXUs.
TEST(Interpreter, TiledInt8MatmulEqualsIndependentComputation) {
  const int M = 13, K = 20, N = 12;  // K tiles: 8, 8, 4; N tiles: 8, 4
  std::string prog = fmt::format(R"(
.region a addr=0 dtype=int8 shape={M}x{K} role=input init=random seed=11
.region w addr=0x1000 dtype=int8 shape={K}x{N} role=data init=random seed=12
.region q addr=0x2000 dtype=int32 shape={N}x3 role=input
.region c addr=0x3000 dtype=int8 shape={M}x{N} role=output
.equ UA 0
.equ UQ 0x4000
.equ UC 0x8000
    dma_load src=a ub=UA rows={M} row_bytes={K}
    dma_load src=q ub=UQ row_bytes=q_bytes
)",
                                 fmt::arg("M", M), fmt::arg("K", K), fmt::arg("N", N));
  int nblocks[] = {8, 4};
  int kblocks[] = {8, 8, 4};
  for (int nb = 0, n0 = 0; nb < 2; n0 += nblocks[nb], ++nb) {
    int mxu = nb;  // one column block per MXU
    for (int kb = 0, k0 = 0; kb < 3; k0 += kblocks[kb], ++kb) {
      prog += fmt::format(
          "    load_weights src=w+{} k={} n={} stride={} dtype=int8 mxu={}\n"
          "    matmul mxu={} dtype=int8 ub=UA+{} ub_stride={} acc=0 rows={} k={} n={} "
          "accumulate={} pop=1\n",
          k0 * N + n0, kblocks[kb], nblocks[nb], N, mxu, mxu, k0, K, M, kblocks[kb], nblocks[nb],
          kb > 0 ? 1 : 0);
    }
    prog += fmt::format(
        "    activate mxu={} acc=0 rows={} n={} ub=UC+{} ub_stride={} mode=int8 params=UQ+{} "
        "out_zp=-3 act_min=-100 act_max=110\n",
        mxu, M, nblocks[nb], n0, N, 12 * n0);
  }
  prog += fmt::format("    dma_store dst=c ub=UC rows={} row_bytes={}\n    halt\n", M, N);

  std::vector<int32_t> q;
  std::vector<RequantParams> rq;
  for (int n = 0; n < N; ++n) {
    RequantParams p;
    p.bias = 1000 * (n - 6);
    int shift = 0;
    quantize_multiplier(0.0005 * (n + 1), &p.multiplier, &shift);
    p.shift = shift;
    rq.push_back(p);
    q.insert(q.end(), {p.bias, p.multiplier, p.shift});
  }
  arch::ArchConfig arch = small_arch();
  Interpreter it(arch, assemble(prog, "tiled.tasm"), "tiled.tasm");
  it.set_input("q", npy(ElemType::kInt32, {static_cast<uint64_t>(N), 3}, q));
  it.run();

  const Program& p = it.program();
  auto a = as<int8_t>(Interpreter::random_fill(p.regions[0], {}));
  auto w = as<int8_t>(Interpreter::random_fill(p.regions[1], {}));
  auto c = as<int8_t>(it.read_region("c"));
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      int64_t sum = 0;
      for (int k = 0; k < K; ++k) sum += int64_t{a[m * K + k]} * w[k * N + n];
      int8_t want = requantize(static_cast<int32_t>(sum), rq[n], -3, -100, 110);
      ASSERT_EQ(c[m * N + n], want) << m << "," << n;
    }
  }
  EXPECT_EQ(it.stats().macs, static_cast<uint64_t>(M) * K * N);
}

// bf16 3x3 convolution, stride 2, padding 1, as nine window-addressed matmuls accumulating
// tap by tap; compared bit for bit with a direct convolution in the same pinned order.
TEST(Interpreter, Bf16ConvolutionThroughWindowAddressingIsBitExact) {
  const int H = 7, W = 6, C = 8, F = 5, R = 3, S = 3, stride = 2, pad = 1;
  const int OH = (H + 2 * pad - R) / stride + 1, OW = (W + 2 * pad - S) / stride + 1;
  std::string prog = fmt::format(R"(
.region x addr=0 dtype=bf16 shape={H}x{W}x{C} role=input init=random seed=21
.region w addr=0x1000 dtype=bf16 shape={R}x{S}x{C}x{F} role=data init=random seed=22
.region b addr=0x2000 dtype=fp32 shape={F} role=data init=random seed=23
.region y addr=0x3000 dtype=bf16 shape={OH}x{OW}x{F} role=output
    dma_load src=x ub=0 row_bytes=x_bytes
    dma_load src=b ub=0x4000 row_bytes=b_bytes
)",
                                 fmt::arg("H", H), fmt::arg("W", W), fmt::arg("C", C),
                                 fmt::arg("F", F), fmt::arg("R", R), fmt::arg("S", S),
                                 fmt::arg("OH", OH), fmt::arg("OW", OW));
  for (int r = 0; r < R; ++r) {
    for (int s = 0; s < S; ++s) {
      int tap = r * S + s;
      prog += fmt::format(
          "    load_weights src=w+{} k={} n={} dtype=bf16\n"
          "    matmul dtype=bf16 ub=0 ub_stride={} acc=0 rows={} k={} n={} accumulate={} pop=1 "
          "out_w={} in_h={} in_w={} stride_h={} stride_w={} off_h={} off_w={}\n",
          tap * C * F * 2, C, F, C * 2, OH * OW, C, F, tap > 0 ? 1 : 0, OW, H, W, stride, stride,
          r - pad, s - pad);
    }
  }
  prog += fmt::format(
      "    activate acc=0 rows={} n={} ub=0x5000 mode=bf16 func=gelu params=0x4000 bias=1\n"
      "    dma_store dst=y ub=0x5000 row_bytes=y_bytes\n",
      OH * OW, F);
  arch::ArchConfig arch = small_arch();
  Interpreter it(arch, assemble(prog, "conv.tasm"), "conv.tasm");
  it.run();

  const Program& p = it.program();
  auto x = as<uint16_t>(Interpreter::random_fill(p.regions[0], {}));
  auto w = as<uint16_t>(Interpreter::random_fill(p.regions[1], {}));
  auto b = as<float>(Interpreter::random_fill(p.regions[2], {}));
  auto y = as<uint16_t>(it.read_region("y"));
  for (int oh = 0; oh < OH; ++oh) {
    for (int ow = 0; ow < OW; ++ow) {
      for (int f = 0; f < F; ++f) {
        float acc = 0.0f;
        for (int r = 0; r < R; ++r) {
          for (int s = 0; s < S; ++s) {
            int ih = oh * stride + r - pad, iw = ow * stride + s - pad;
            bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            float sum = 0.0f;  // partial sum entering the top of the column
            for (int c = 0; c < C; ++c) {
              float xv = inside ? bf16_to_fp32(x[(ih * W + iw) * C + c]) : 0.0f;
              float wv = bf16_to_fp32(w[((r * S + s) * C + c) * F + f]);
              float prod = xv * wv;
              sum = sum + prod;
            }
            acc = (r == 0 && s == 0) ? sum : acc + sum;
          }
        }
        uint16_t want = fp32_to_bf16(apply_activation(acc + b[f], Activation::kGelu));
        ASSERT_EQ(y[(oh * OW + ow) * F + f], want) << oh << "," << ow << "," << f;
      }
    }
  }
}

TEST(Interpreter, PoolAndVectorOpsUseTheReferenceKernels) {
  std::string prog = R"(
.region x addr=0 dtype=int8 shape=4x4x3 role=input init=random seed=5
.region y addr=0x100 dtype=int8 shape=2x2x3 role=output
.region z addr=0x200 dtype=int8 shape=48 role=output
    dma_load src=x ub=0 row_bytes=x_bytes
    pool dtype=int8 kind=avg src=0 dst=0x100 in_h=4 in_w=4 channels=3 win_h=3 win_w=3 stride_h=2 stride_w=2 pad_top=1 pad_left=1 out_h=2 out_w=2
    vector op=add dtype=int8 a=0 b=0 dst=0x200 count=48
    dma_store dst=y ub=0x100 row_bytes=y_bytes
    dma_store dst=z ub=0x200 row_bytes=z_bytes
)";
  arch::ArchConfig arch = small_arch();
  Interpreter it(arch, assemble(prog, "pool.tasm"), "pool.tasm");
  it.run();
  auto x = as<int8_t>(Interpreter::random_fill(it.program().regions[0], {}));
  PoolShape s{4, 4, 3, 3, 3, 2, 2, 1, 1, 2, 2};
  std::vector<int8_t> want(12), want_z(48);
  pool_int8(x.data(), want.data(), s, PoolKind::kAvg);
  EXPECT_EQ(as<int8_t>(it.read_region("y")), want);
  elementwise_int8(VectorOp::kAdd, x.data(), x.data(), want_z.data(), 48);
  EXPECT_EQ(as<int8_t>(it.read_region("z")), want_z);
  // Independent check of the saturating add itself.
  for (int i = 0; i < 48; ++i) {
    int sum = 2 * x[i];
    EXPECT_EQ(want_z[i], sum > 127 ? 127 : (sum < -128 ? -128 : sum));
  }
}

TEST(Interpreter, RunsAreDeterministic) {
  std::string prog = R"(
.region a addr=0 dtype=bf16 shape=8x8 role=input init=random seed=1
.region o addr=0x100 dtype=bf16 shape=8x8 role=output
    dma_load src=a ub=0 row_bytes=a_bytes
    load_weights space=ub src=0 k=8 n=8 dtype=bf16
    matmul dtype=bf16 ub=0 acc=0 rows=8 k=8 n=8 pop=1
    activate acc=0 rows=8 n=8 ub=0x400 mode=bf16 func=tanh
    dma_store dst=o ub=0x400 row_bytes=o_bytes
)";
  arch::ArchConfig arch = small_arch();
  Interpreter a(arch, assemble(prog, "d.tasm"), "d.tasm");
  Interpreter b(arch, assemble(prog, "d.tasm"), "d.tasm");
  a.run();
  b.run();
  EXPECT_EQ(a.read_region("o").data, b.read_region("o").data);
  Region r = a.program().regions[0];
  NpyArray f1 = Interpreter::random_fill(r, {});
  r.seed = 2;
  EXPECT_NE(Interpreter::random_fill(r, {}).data, f1.data);
}

struct BadRun {
  const char* what;
  const char* body;
  const char* key;  // substring of the error key
  const char* found;
};

TEST(Interpreter, BadProgramsAreRejectedWithTheInstructionAndReason) {
  const char* head = R"(
.region a addr=0 dtype=int8 shape=8x8 role=input init=random seed=1
.region o addr=0x100 dtype=int8 shape=8x8 role=output
)";
  const BadRun cases[] = {
      {"unwritten UB read", "matmul dtype=int8 ub=0 acc=0 rows=8 k=8 n=8 pop=1\n",
       "instruction 0 (matmul) pop", "empty FIFO"},
      {"read before write",
       "load_weights src=a k=8 n=8 dtype=int8\nmatmul dtype=int8 ub=0x40 acc=0 rows=8 k=8 n=8 pop=1\n",
       "instruction 1 (matmul) ub", "never written"},
      {"tile larger than the array", "load_weights src=a k=9 n=8 dtype=int8\n",
       "instruction 0 (load_weights) k", "9"},
      {"fifo overflow",
       "load_weights src=a k=8 n=8 dtype=int8\nload_weights src=a k=8 n=8 dtype=int8\n"
       "load_weights src=a k=8 n=8 dtype=int8\n",
       "instruction 2 (load_weights) mxu", "3 tiles"},
      {"shape mismatch",
       "load_weights src=a k=8 n=8 dtype=int8\nmatmul dtype=int8 ub=0 acc=0 rows=8 k=4 n=8 pop=1\n",
       "instruction 1 (matmul) k", "k=4"},
      {"accumulate onto nothing",
       "dma_load src=a ub=0 row_bytes=64\nload_weights src=a k=8 n=8 dtype=int8\n"
       "matmul dtype=int8 ub=0 acc=0 rows=8 k=8 n=8 pop=1 accumulate=1\n",
       "instruction 2 (matmul) accumulate", "never written"},
      {"accumulator out of range",
       "load_weights src=a k=8 n=8 dtype=int8\nmatmul dtype=int8 ub=0 acc=510 rows=8 k=8 n=8 pop=1\n",
       "instruction 1 (matmul) acc", "510"},
      {"UB out of range", "dma_load src=a ub=0xFFFF0 rows=1 row_bytes=65536\n",
       "instruction 0 (dma_load) ub", "ending at byte"},
      {"mxu out of range", "load_weights src=a k=8 n=8 dtype=int8 mxu=2\n",
       "instruction 0 (load_weights) mxu", "2"},
      {"output never written", "nop\n", "region o", "never written"},
      {"int8 activation function", "activate acc=0 rows=1 n=8 ub=0 mode=int8 func=relu\n",
       "instruction 0 (activate) func", "relu"},
  };
  arch::ArchConfig arch = small_arch();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    InputError e = expect_input_error([&] {
      Interpreter it(arch, assemble(std::string(head) + c.body, "bad.tasm"), "bad.tasm");
      it.run();
      it.read_region("o");
    });
    EXPECT_NE(e.key().find(c.key), std::string::npos) << e.what();
    EXPECT_NE(e.found().find(c.found), std::string::npos) << e.what();
  }
  // Functional runs refuse configs and programs that would need unbounded host memory.
  InputError big = expect_input_error([&] {
    Interpreter(small_arch({"accumulators.entries=1048576", "mxu.cols=4096"}),
                assemble("halt\n", "t.tasm"), "t.tasm");
  });
  EXPECT_EQ(big.key(), "accumulators.entries");
  arch::ArchConfig v4 = arch::load_arch(test::source_path("configs/arch/tpu_v4.yaml"));
  big = expect_input_error([&] {
    Interpreter(v4, assemble(".region big addr=0 dtype=fp32 shape=1024x1024x1024 role=data "
                               "init=random\n", "t.tasm"), "t.tasm");
  });
  EXPECT_EQ(big.key(), "regions") << big.what();
  // bf16 on an int8-only architecture, and a program bound to another architecture.
  arch::ArchConfig int8_only = small_arch({"mxu.dtypes=[int8]"});
  InputError e = expect_input_error([&] {
    Interpreter(int8_only, assemble("load_weights src=0 k=1 n=1 dtype=bf16\n", "t.tasm"), "t.tasm");
  });
  EXPECT_NE(e.key().find("dtype"), std::string::npos) << e.what();
  e = expect_input_error([&] {
    Interpreter(arch, assemble(".arch 0123456789abcdef\nhalt\n", "t.tasm"), "t.tasm");
  });
  EXPECT_EQ(e.key(), ".arch");
}

}  // namespace
}  // namespace tpu::isa
