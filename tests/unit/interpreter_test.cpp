// The golden interpreter against independent loop nests: tiled int8 matmul with TFLite
// requantization, bf16 convolution through window addressing, pooling and elementwise ops;
// row ops (softmax, layer_norm, lut) and transposed weight loads; plus the run-time
// diagnostics for bad programs.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cstring>
#include <random>

#include "arch/arch_config.h"
#include "isa/assembler.h"
#include "isa/interpreter.h"
#include "isa/kernels.h"
#include "isa/verifier.h"
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

// An interpreter given a pointer to the program uses that program (no copy) and computes the
// same bytes as one given its own copy.
TEST(Interpreter, ABorrowedProgramIsNotCopiedAndRunsAsAnOwnedOne) {
  const std::string prog = R"(
.region x addr=0 dtype=int8 shape=4x4x3 role=input init=random seed=5
.region z addr=0x200 dtype=int8 shape=48 role=output
    dma_load src=x ub=0 row_bytes=x_bytes
    vector op=add dtype=int8 a=0 b=0 dst=0x200 count=48
    dma_store dst=z ub=0x200 row_bytes=z_bytes
)";
  arch::ArchConfig arch = small_arch();
  const Program p = assemble(prog, "borrow.tasm");
  Interpreter owned(arch, p, "borrow.tasm");
  Interpreter borrowed(arch, &p, "borrow.tasm");
  EXPECT_NE(&owned.program(), &p);
  EXPECT_EQ(&borrowed.program(), &p);
  owned.run();
  borrowed.run();
  EXPECT_EQ(borrowed.read_region("z").data, owned.read_region("z").data);
}

// Q @ K^T with K stored [seq, d] row-major: load_weights transpose=1 reads K as the tile
// w[d][seq] = K[seq][d], from off-chip memory (contiguous) and from the UB (padded rows).
TEST(Interpreter, TransposedWeightLoadMultipliesByTheTranspose) {
  std::string prog = R"(
.region q addr=0 dtype=bf16 shape=5x8 role=input init=random seed=21
.region k addr=0x100 dtype=bf16 shape=6x8 role=input init=random seed=22
.region s1 addr=0x200 dtype=fp32 shape=5x6 role=output
.region s2 addr=0x300 dtype=fp32 shape=5x6 role=output
    dma_load src=q ub=0 row_bytes=q_bytes
    dma_load src=k ub=0x400 rows=6 row_bytes=16 ub_stride=40
    load_weights src=k k=8 n=6 dtype=bf16 transpose=1
    matmul dtype=bf16 ub=0 acc=0 rows=5 k=8 n=6 pop=1
    activate acc=0 rows=5 n=6 ub=0x800 mode=bf16 out_fp32=1
    load_weights space=ub src=0x400 k=8 n=6 stride=40 dtype=bf16 transpose=1 mxu=1
    matmul mxu=1 dtype=bf16 ub=0 acc=0 rows=5 k=8 n=6 pop=1
    activate mxu=1 acc=0 rows=5 n=6 ub=0x900 mode=bf16 out_fp32=1
    dma_store dst=s1 ub=0x800 row_bytes=s1_bytes
    dma_store dst=s2 ub=0x900 row_bytes=s2_bytes
)";
  arch::ArchConfig arch = small_arch();
  Interpreter it(arch, assemble(prog, "qk.tasm"), "qk.tasm");
  it.run();
  auto q = as<uint16_t>(Interpreter::random_fill(it.program().regions[0], {}));
  auto k = as<uint16_t>(Interpreter::random_fill(it.program().regions[1], {}));
  std::vector<float> want(30);
  for (int m = 0; m < 5; ++m) {
    for (int n = 0; n < 6; ++n) {
      float s = 0.0f;  // the pinned pass order, k ascending
      for (int d = 0; d < 8; ++d) s = s + bf16_to_fp32(q[m * 8 + d]) * bf16_to_fp32(k[n * 8 + d]);
      want[m * 6 + n] = s;
    }
  }
  EXPECT_EQ(as<float>(it.read_region("s1")), want);
  EXPECT_EQ(as<float>(it.read_region("s2")), want);
  // The source extent is n rows of k values: n x stride must fit, not k x stride.
  arch::ArchConfig a = small_arch();
  std::string fits = "load_weights space=ub src=0xFFFF0 k=2 n=8 dtype=int8 stride=4\n";
  EXPECT_NO_THROW(verify_program(assemble(fits, "t.tasm"), a, "t.tasm"));
  InputError e = expect_input_error([&] {
    verify_program(assemble("load_weights space=ub src=0xFFFF0 k=2 n=8 dtype=int8 stride=4 "
                            "transpose=1\n",
                            "t.tasm"),
                   a, "t.tasm");
  });
  EXPECT_EQ(e.key(), "instruction 0 (load_weights) src");
  EXPECT_NE(e.found().find("1048590"), std::string::npos) << e.what();
}

std::string fp32_values(const std::string& region, const std::vector<float>& v) {
  std::string out = ".values " + region;
  for (float x : v) out += fmt::format(" {}", x);
  return out + "\n";
}

TEST(Interpreter, RowOpsUseTheReferenceKernels) {
  const int rows = 3, cols = 5;
  std::vector<float> ln = {1e-5f};  // eps, gamma, beta
  for (int i = 0; i < cols; ++i) ln.push_back(0.5f + 0.25f * i);
  for (int i = 0; i < cols; ++i) ln.push_back(-1.0f + 0.5f * i);
  std::vector<float> qsm = {0.05f, 3.0f, 1.0f / 256.0f, -128.0f};
  std::vector<float> qln = {0.1f, -2.0f, 0.02f, 5.0f};
  qln.insert(qln.end(), ln.begin(), ln.end());
  std::string table = ".values t";
  for (int i = 0; i < 256; ++i) table += fmt::format(" {}", (i * 37) % 256 - 128);
  std::string prog = R"(
.region x addr=0 dtype=bf16 shape=3x5 role=input init=random seed=31
.region xi addr=0x40 dtype=int8 shape=3x5 role=input init=random seed=32
.region pln addr=0x100 dtype=fp32 shape=11 role=data init=values
.region psm addr=0x200 dtype=fp32 shape=4 role=data init=values
.region pqln addr=0x300 dtype=fp32 shape=15 role=data init=values
.region t addr=0x400 dtype=int8 shape=256 role=data init=values
.region ys addr=0x1000 dtype=bf16 shape=3x5 role=output
.region yl addr=0x1100 dtype=bf16 shape=3x5 role=output
.region yqs addr=0x1200 dtype=int8 shape=3x5 role=output
.region yql addr=0x1300 dtype=int8 shape=3x5 role=output
.region yt addr=0x1400 dtype=int8 shape=3x5 role=output
)" + fp32_values("pln", ln) +
                     fp32_values("psm", qsm) + fp32_values("pqln", qln) + table + R"(
    dma_load src=x ub=0 row_bytes=x_bytes
    dma_load src=xi ub=0x40 row_bytes=xi_bytes
    dma_load src=pln ub=0x100 row_bytes=pln_bytes
    dma_load src=psm ub=0x200 row_bytes=psm_bytes
    dma_load src=pqln ub=0x300 row_bytes=pqln_bytes
    dma_load src=t ub=0x400 row_bytes=t_bytes
    rowop kind=softmax dtype=bf16 src=0 dst=0x1000 rows=3 cols=5
    rowop kind=layer_norm dtype=bf16 src=0 dst=0x1100 rows=3 cols=5 params=0x100
    rowop kind=softmax dtype=int8 src=0x40 dst=0x1200 rows=3 cols=5 params=0x200
    rowop kind=layer_norm dtype=int8 src=0x40 dst=0x1300 rows=3 cols=5 params=0x300
    dma_load src=xi ub=0x1400 row_bytes=xi_bytes
    rowop kind=lut dtype=int8 src=0x1400 dst=0x1400 rows=3 cols=5 params=0x400
    dma_store dst=ys ub=0x1000 row_bytes=ys_bytes
    dma_store dst=yl ub=0x1100 row_bytes=yl_bytes
    dma_store dst=yqs ub=0x1200 row_bytes=yqs_bytes
    dma_store dst=yql ub=0x1300 row_bytes=yql_bytes
    dma_store dst=yt ub=0x1400 row_bytes=yt_bytes
)";
  arch::ArchConfig arch = small_arch();
  Interpreter it(arch, assemble(prog, "rowop.tasm"), "rowop.tasm");
  it.run();
  EXPECT_EQ(it.stats().executed[static_cast<int>(Opcode::kRowOp)], 5u);
  auto x = as<uint16_t>(Interpreter::random_fill(it.program().regions[0], {}));
  auto xi = as<int8_t>(Interpreter::random_fill(it.program().regions[1], {}));
  std::vector<uint16_t> ys(15), yl(15);
  softmax_bf16(x.data(), ys.data(), rows, cols);
  layer_norm_bf16(x.data(), yl.data(), rows, cols, ln[0], &ln[1], &ln[1 + cols]);
  EXPECT_EQ(as<uint16_t>(it.read_region("ys")), ys);
  EXPECT_EQ(as<uint16_t>(it.read_region("yl")), yl);
  // Independent sanity: every softmax row sums to about 1.
  for (int r = 0; r < rows; ++r) {
    float sum = 0;
    for (int i = 0; i < cols; ++i) sum += bf16_to_fp32(ys[r * cols + i]);
    EXPECT_NEAR(sum, 1.0f, 0.02f);
  }
  std::vector<int8_t> yqs(15), yql(15), yt(15);
  RowQuant q{qsm[0], qsm[1], qsm[2], qsm[3]};
  softmax_int8(xi.data(), yqs.data(), rows, cols, q);
  RowQuant q2{qln[0], qln[1], qln[2], qln[3]};
  layer_norm_int8(xi.data(), yql.data(), rows, cols, q2, qln[4], &qln[5], &qln[5 + cols]);
  EXPECT_EQ(as<int8_t>(it.read_region("yqs")), yqs);
  EXPECT_EQ(as<int8_t>(it.read_region("yql")), yql);
  for (int i = 0; i < 15; ++i) yt[i] = static_cast<int8_t>(((xi[i] + 128) * 37) % 256 - 128);
  EXPECT_EQ(as<int8_t>(it.read_region("yt")), yt);
}

TEST(Interpreter, RowOpInt8ParametersAreCheckedWhenRun) {
  std::string prog = R"(
.region x addr=0 dtype=int8 shape=4 role=input init=random seed=1
.region p addr=0x10 dtype=fp32 shape=4 role=data init=values
.values p 0.5 1.5 0.25 0
    dma_load src=x ub=0 row_bytes=4
    dma_load src=p ub=0x10 row_bytes=16
    rowop kind=softmax dtype=int8 src=0 dst=0x40 rows=1 cols=4 params=0x10
)";
  InputError e = expect_input_error([&] {
    Interpreter it(small_arch(), assemble(prog, "p.tasm"), "p.tasm");
    it.run();
  });
  EXPECT_EQ(e.key(), "instruction 2 (rowop) params");
  EXPECT_NE(e.found().find("in_zp 1.5"), std::string::npos) << e.what();
}

// space=ub: a strided copy within the UB (activations kept on chip between layers), in
// both directions, moves exactly the bytes a load from and a store to memory would.
TEST(Interpreter, CopiesWithinTheUnifiedBufferMoveTheSameBytes) {
  const char* prog = R"(
.region a addr=0 dtype=int8 shape=8x16 role=input init=random seed=5
.region o addr=0x100 dtype=int8 shape=8x16 role=output
.region p addr=0x200 dtype=int8 shape=4x16 role=output
    dma_load src=a ub=0 row_bytes=a_bytes
    dma_load space=ub src=0 ub=0x1000 rows=8 row_bytes=16 ub_stride=64
    dma_store space=ub dst=0x2000 ub=0x1000 rows=4 row_bytes=16 dst_stride=16 ub_stride=128
    dma_store dst=o ub=0x1000 rows=8 row_bytes=16 ub_stride=64
    dma_store dst=p ub=0x2000 row_bytes=p_bytes
)";
  Interpreter it(small_arch(), assemble(prog, "ubcopy.tasm"), "ubcopy.tasm");
  it.run();
  auto a = Interpreter::random_fill(it.program().regions[0], {}).data;
  EXPECT_EQ(it.read_region("o").data, a);
  auto p = it.read_region("p").data;
  ASSERT_EQ(p.size(), 64u);
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 16; ++c) EXPECT_EQ(p[r * 16 + c], a[(2 * r) * 16 + c]) << r << " " << c;
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
      {"UB copy source out of range", "dma_load space=ub src=0xFFFF0 ub=0 rows=1 row_bytes=64\n",
       "instruction 0 (dma_load) src", "ending at byte"},
      {"mxu out of range", "load_weights src=a k=8 n=8 dtype=int8 mxu=2\n",
       "instruction 0 (load_weights) mxu", "2"},
      {"output never written", "nop\n", "region o", "never written"},
      {"int8 activation function", "activate acc=0 rows=1 n=8 ub=0 mode=int8 func=relu\n",
       "instruction 0 (activate) func", "relu"},
      {"lut on bf16", "rowop kind=lut dtype=bf16 src=0 dst=0x40 rows=1 cols=8 params=0x80\n",
       "instruction 0 (rowop) dtype", "bf16"},
      {"row op too large", "rowop kind=lut dtype=int8 src=0 dst=0 rows=16384 cols=32768\n",
       "instruction 0 (rowop) rows", "536870912"},
      {"row op outside the UB",
       "rowop kind=softmax dtype=bf16 src=0xFFF00 dst=0 rows=2 cols=128\n",
       "instruction 0 (rowop) src", "ending at byte 1048832"},
      {"row op params outside the UB",
       "rowop kind=layer_norm dtype=bf16 src=0 dst=0x100 rows=2 cols=8 params=0xFFFF0\n",
       "instruction 0 (rowop) params", "ending at byte 1048628"},
      {"row op partial overlap", "rowop kind=softmax dtype=int8 src=0 dst=4 rows=1 cols=8 params=0x80\n",
       "instruction 0 (rowop) dst", "partial overlap"},
      {"row op without rows", "rowop kind=softmax dtype=bf16 src=0 dst=0x100 rows=0 cols=8\n",
       "instruction 0 (rowop) rows", "0"},
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
                               "init=zero\n", "t.tasm"), "t.tasm");
  });
  EXPECT_EQ(big.key(), "regions") << big.what();
  EXPECT_EQ(big.expected(), "at most 2147483648 bytes of region data other than init=random (generated when "
                            "read) for a functional run; use --no-functional");
  // The same 4 GiB generated from a seed costs nothing until written.
  EXPECT_NO_THROW(Interpreter(v4, assemble(".region big addr=0 dtype=fp32 shape=1024x1024x1024 role=data "
                                             "init=random\n", "t.tasm"), "t.tasm"));
  // bf16 on an int8-only architecture, and a program bound to another architecture.
  arch::ArchConfig int8_only = small_arch({"mxu.dtypes=[int8]"});
  InputError e = expect_input_error([&] {
    Interpreter(int8_only, assemble("load_weights src=0 k=1 n=1 dtype=bf16\n", "t.tasm"), "t.tasm");
  });
  EXPECT_NE(e.key().find("dtype"), std::string::npos) << e.what();
  e = expect_input_error([&] {
    Interpreter(arch, assemble("; bound elsewhere\n.arch 0123456789abcdef\nhalt\n", "t.tasm"), "t.tasm");
  });
  EXPECT_EQ(e.key(), ".arch");
  EXPECT_EQ(e.where().line, 2) << e.what();
  // Region errors name the line of their .region directive.
  e = expect_input_error([&] {
    verify_program(assemble(std::string(head) + ".region p addr=0x20 dtype=int8 shape=8 role=output\nhalt\n",
                            "t.tasm"),
                   arch, "t.tasm");
  });
  EXPECT_EQ(e.key(), "region p addr");
  EXPECT_EQ(e.found(), "an overlap with region a");
  EXPECT_EQ(e.where().line, 4) << e.what();
}

// The overlap check (a sort and sweep) against the pairwise definition, on seeded random
// region sets: it reports an overlap exactly when two regions of one space share a byte, and
// the pair it names does overlap, the named region declared after its partner.
// Random regions are generated when read: more than kMaxRegionDataBytes of them run and cost
// only what the program writes; stores past a chip's budget of written memory stop the run
// with the instruction named (the test shrinks the budget; the message names the real one).
TEST(Interpreter, RandomRegionsCostOnlyWhatIsWrittenAndWritesAreBudgeted) {
  arch::ArchConfig arch = small_arch({"memory.bytes=8GiB"});
  std::string prog = R"(
.region big addr=0 dtype=int8 shape=3x1073741824 role=data init=random seed=5
.region out addr=0xC0000000 dtype=int8 shape=2x4096 role=output
    dma_load src=0x80000000 ub=0 rows=2 row_bytes=4096
    dma_store dst=out ub=0 rows=2 row_bytes=4096
    halt
)";
  auto offchip = std::make_shared<OffChipMemory>(arch);
  Interpreter it(arch, assemble(prog, "big.tasm"), "big.tasm", offchip);
  it.run();
  Region r = it.program().regions[0];
  std::vector<uint8_t> want(8192);
  Interpreter::random_bytes(r.dtype, r.seed, r.scale, {}, 0x80000000, want.data(), want.size());
  EXPECT_EQ(it.read_region("out").data, want);
  EXPECT_EQ(offchip->mem.resident_bytes(), 8192u);  // the output's two pages, not 3 GiB
  // The same program with one page of budget left: the store needs two.
  auto small = std::make_shared<OffChipMemory>(arch);
  *small->pages_left = 3;  // the UB's two pages for the load, one of the store's two
  Interpreter capped(arch, assemble(prog, "big.tasm"), "big.tasm", small);
  InputError e = expect_input_error([&] { capped.run(); });
  EXPECT_EQ(std::string(e.what()),
            fmt::format("big.tasm:5: instruction 1 (dma_store) write: expected at most {} bytes of off-chip, "
                        "host and unified-buffer memory written by a functional run (use --no-functional), "
                        "found a write past it",
                        kMaxStoredBytes));
  EXPECT_EQ(small->mem.resident_bytes(), 4096u);  // the first row's page: the budget held
  EXPECT_EQ(*small->pages_left, 0u);
  // The unified buffer draws on the same budget: with one page left, the load (two UB pages) fails.
  auto tiny = std::make_shared<OffChipMemory>(arch);
  *tiny->pages_left = 1;
  Interpreter ub_capped(arch, assemble(prog, "big.tasm"), "big.tasm", tiny);
  e = expect_input_error([&] { ub_capped.run(); });
  EXPECT_EQ(e.key(), "instruction 0 (dma_load) write") << e.what();
}

TEST(Verifier, RegionOverlapsMatchThePairwiseDefinition) {
  // Detection and the pair named are those of a loop over every pair: the first region that
  // overlaps an earlier one, with the first such earlier one. Empty regions included.
  arch::ArchConfig arch = small_arch();
  std::mt19937_64 rng(20261129);
  int with_overlap = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    Program p = assemble("halt\n", "t.tasm");
    int n = 1 + static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      Region r;
      r.name = fmt::format("r{}", i);
      r.space = rng() % 2 ? Space::kMem : Space::kHost;
      r.addr = rng() % 512;
      r.shape = {rng() % 8 == 0 ? 0 : 1 + rng() % 64};
      r.role = RegionRole::kOutput;
      p.regions.push_back(r);
    }
    auto overlap = [](const Region& a, const Region& b) {
      return a.space == b.space && a.addr < b.addr + b.bytes() && b.addr < a.addr + a.bytes();
    };
    int named = -1, partner = -1;
    for (int i = 0; i < n && named < 0; ++i) {
      for (int j = 0; j < i && named < 0; ++j) {
        if (overlap(p.regions[i], p.regions[j])) named = i, partner = j;
      }
    }
    if (named < 0) {
      EXPECT_NO_THROW(verify_program(p, arch, "t.tasm")) << "trial " << trial;
      continue;
    }
    ++with_overlap;
    InputError e = expect_input_error([&] { verify_program(p, arch, "t.tasm"); });
    EXPECT_EQ(e.key(), fmt::format("region r{} addr", named)) << "trial " << trial;
    EXPECT_EQ(e.found(), fmt::format("an overlap with region r{}", partner)) << "trial " << trial;
  }
  // Both outcomes were exercised.
  EXPECT_GT(with_overlap, 400);
  EXPECT_LT(with_overlap, 3600);
}

// The most regions a program may hold, none overlapping, verify; one more byte shared is found.
TEST(Verifier, TheLargestRegionTableIsChecked) {
  arch::ArchConfig arch = small_arch();
  Program p = assemble("halt\n", "t.tasm");
  for (std::size_t i = 0; i < kMaxRegions; ++i) {
    Region r;
    r.name = fmt::format("r{}", i);
    r.addr = (kMaxRegions - 1 - i) * 16;  // declared in descending address order
    r.shape = {16};
    r.role = RegionRole::kOutput;
    p.regions.push_back(r);
  }
  EXPECT_NO_THROW(verify_program(p, arch, "t.tasm"));
  // One byte longer, region N/2 reaches the first byte of region N/2 - 1 (declared earlier).
  p.regions[kMaxRegions / 2].shape = {17};
  InputError e = expect_input_error([&] { verify_program(p, arch, "t.tasm"); });
  EXPECT_EQ(e.key(), fmt::format("region r{} addr", kMaxRegions / 2)) << e.what();
  EXPECT_EQ(e.found(), fmt::format("an overlap with region r{}", kMaxRegions / 2 - 1)) << e.what();
}

}  // namespace
}  // namespace tpu::isa
