// Fused causal scaled-dot-product attention with grouped-query heads (forward and backward), flash-attention
// style on the CPU.
//
//   q    [B, Hq,  T, D]     k, v [B, Hkv, S, D]     out [B, Hq, T, D]     lse [B, Hq, T]
//   query head h reads kv head h / (Hq / Hkv); query row i sits at absolute position i + (S - T).
//
// Forward: one task per (batch, q head, block of kBr query rows). The task walks the key blocks of kBc keys
// with an online softmax (running row max m, running sum l, output accumulator O rescaled when m grows), so
// only one [kBr, kBc] score tile per thread exists at a time. Under causal masking the key walk stops at the
// last key the block's last row can see (the fully masked tiles are skipped: about half the work).
//
// Backward (FlashAttention-2 recurrences), per tile (q block, key block):
//   S  = scale * Q K^T              (recomputed)
//   P  = exp(S - lse)               (the saved lse: no second softmax pass)
//   dP = dO V^T
//   dS = P * (dP - Di) * scale      with Di = rowsum(dO * O)
//   dV += P^T dO      dK += dS^T Q      dQ += dS K
// Every output element is accumulated in one fixed order: dQ rows over key blocks in increasing order, dK/dV
// rows over (q head of the group, q block) in increasing order. Two schedules produce exactly that order:
//   one-pass: a task per (batch, kv head) visits every tile of its group once and owns dK/dV of that kv head and
//             dQ of its q heads (5 tile matmuls per tile; best when there are enough groups for the threads);
//   two-pass: tasks per (batch, q head, q block) for dQ and tasks per (batch, kv head, key block) for dK/dV,
//             each recomputing its tiles (7 matmuls per tile, but many small tasks: good balance).
// Both use the same tile code, so they give bit-identical results; the choice may therefore depend on the
// thread count without making results thread-dependent.
//
// Keys (times scale) and values are transposed into per-tile [D, kBc] panels once per call (KeysValues), so no
// tile re-copies them and the scores come out already scaled. The tile matmuls are small row-major GEMMs
// C (+)= op(A) B with B and C padded to 16 columns; register-blocked AVX2/FMA (6x16) and AVX-512 (8x16)
// micro-kernels with a portable fallback. exp() is vectorised (range reduction + degree-7 polynomial) on the SIMD
// paths. Scratch: per thread a few [64, 64] / [64, Dp] tiles; per call the rearranged K/V (about the size of k and
// v) and, in the backward, Di [B, Hq, T].
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ALIGNKIT_X86 1
#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#endif

#include "common.h"

namespace alignkit {
namespace {

constexpr int kBr = 64;  // query rows per tile
constexpr int kBc = 64;  // keys per tile
constexpr int kPad = 16; // B and C operands of the tile GEMMs are padded to a multiple of 16 columns
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int RoundUp(int x, int m) { return (x + m - 1) / m * m; }

// ============================================================================================ ISA kernels
// Gemm: C[M, N] (+)= A'[M, K] * B[K, N] with A'(m, k) = transA ? A[k*lda + m] : A[m*lda + k].
//   N is a multiple of 16. Each C element is C (or 0) followed by its K products added in increasing k.
// RowMax: max of x[0..n).
// ExpSub: x[c] = exp(x[c] - sub) for c < n (exactly 0 where x[c] == -inf); returns the sum.
// ScoresNT: S[r][c] = scale * (Q[r] . K[c]) over D, for r < R, c < C: scores straight from key rows (the
//   small-T forward, where transposing all keys first would cost as much as the attention itself).
struct Kernels {
  void (*gemm)(bool transA, bool accumulate, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
               float* C, int ldc);
  float (*rowMax)(const float* x, int n);
  float (*expSub)(float* x, int n, float sub);
  void (*scoresNT)(int R, int C, int D, const float* Q, int ldq, const float* K, int ldk, float scale, float* S, int lds);
  // out[d][c] = scale * x[c][d] for c < C, d < D (x rows of length D; out rows of length ldo).
  void (*transposeScaled)(const float* x, int C, int D, float scale, float* out, int ldo);
};

// ------------------------------------------------------------------------------------------- portable
void GemmPortable(bool transA, bool accumulate, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
                  float* C, int ldc) {
  for (int n0 = 0; n0 < N; n0 += kPad) {
    for (int m = 0; m < M; ++m) {
      float acc[kPad];
      float* c = C + static_cast<int64_t>(m) * ldc + n0;
      for (int x = 0; x < kPad; ++x) acc[x] = accumulate ? c[x] : 0.f;
      for (int k = 0; k < K; ++k) {
        const float a = transA ? A[static_cast<int64_t>(k) * lda + m] : A[static_cast<int64_t>(m) * lda + k];
        const float* b = B + static_cast<int64_t>(k) * ldb + n0;
        for (int x = 0; x < kPad; ++x) acc[x] += a * b[x];
      }
      for (int x = 0; x < kPad; ++x) c[x] = acc[x];
    }
  }
}

float RowMaxPortable(const float* x, int n) {
  float m = kNegInf;
  for (int c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

float ExpSubPortable(float* x, int n, float sub) {
  float sum = 0.f;
  for (int c = 0; c < n; ++c) {
    const float e = x[c] == kNegInf ? 0.f : std::exp(x[c] - sub);
    x[c] = e;
    sum += e;
  }
  return sum;
}

void ScoresNTPortable(int R, int C, int D, const float* Q, int ldq, const float* K, int ldk, float scale, float* S, int lds) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const float* q = Q + static_cast<int64_t>(r) * ldq;
      const float* k = K + static_cast<int64_t>(c) * ldk;
      float acc = 0.f;
      for (int d = 0; d < D; ++d) acc += q[d] * k[d];
      S[static_cast<int64_t>(r) * lds + c] = acc * scale;
    }
}

void TransposeScaledPortable(const float* x, int C, int D, float scale, float* out, int ldo) {
  for (int c0 = 0; c0 < C; c0 += 16)  // 16-key strips keep the strided reads in cache
    for (int d = 0; d < D; ++d)
      for (int c = c0; c < std::min(C, c0 + 16); ++c) out[static_cast<int64_t>(d) * ldo + c] = scale * x[static_cast<int64_t>(c) * D + d];
}

const Kernels kPortable = {GemmPortable, RowMaxPortable, ExpSubPortable, ScoresNTPortable, TransposeScaledPortable};

#ifdef ALIGNKIT_X86
// exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2] (ln2 split in two so n*ln2 is exact
// enough), exp(r) by its Taylor polynomial to degree 7 (truncation < 1e-8 relative). Inputs below ln(FLT_MIN)
// give 0 (that includes -inf, the masked scores); the clamp keeps 2^n a normal float.
constexpr float kExpHi = 88.0f;  // keeps n <= 127 so 2^n stays finite
constexpr float kExpLo = -87.3365447505531f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.42860682030941723e-6f;
constexpr float kC2 = 1.f / 2, kC3 = 1.f / 6, kC4 = 1.f / 24, kC5 = 1.f / 120, kC6 = 1.f / 720, kC7 = 1.f / 5040;

// ------------------------------------------------------------------------------------------- AVX2 + FMA
template <int MR, bool TA, bool ACC>
AVX2_TARGET inline void MicroAvx2(int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = ACC ? _mm256_loadu_ps(C + i * ldc) : _mm256_setzero_ps();
    c1[i] = ACC ? _mm256_loadu_ps(C + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(B + static_cast<int64_t>(k) * ldb);
    const __m256 b1 = _mm256_loadu_ps(B + static_cast<int64_t>(k) * ldb + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(TA ? A + static_cast<int64_t>(k) * lda + i : A + static_cast<int64_t>(i) * lda + k);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(C + i * ldc, c0[i]);
    _mm256_storeu_ps(C + i * ldc + 8, c1[i]);
  }
}

template <bool TA, bool ACC>
AVX2_TARGET void GemmAvx2T(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  constexpr int MR = 6;  // 6 rows x 16 columns = 12 accumulators
  for (int n0 = 0; n0 < N; n0 += kPad) {
    int m = 0;
    auto a = [&](int row) { return TA ? A + row : A + static_cast<int64_t>(row) * lda; };
    for (; m + MR <= M; m += MR) MicroAvx2<MR, TA, ACC>(K, a(m), lda, B + n0, ldb, C + static_cast<int64_t>(m) * ldc + n0, ldc);
    float* c = C + static_cast<int64_t>(m) * ldc + n0;
    switch (M - m) {
      case 5: MicroAvx2<5, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 4: MicroAvx2<4, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 3: MicroAvx2<3, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 2: MicroAvx2<2, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 1: MicroAvx2<1, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      default: break;
    }
  }
}

AVX2_TARGET void GemmAvx2(bool transA, bool accumulate, int M, int N, int K, const float* A, int lda, const float* B,
                          int ldb, float* C, int ldc) {
  if (transA) {
    if (accumulate) GemmAvx2T<true, true>(M, N, K, A, lda, B, ldb, C, ldc);
    else GemmAvx2T<true, false>(M, N, K, A, lda, B, ldb, C, ldc);
  } else {
    if (accumulate) GemmAvx2T<false, true>(M, N, K, A, lda, B, ldb, C, ldc);
    else GemmAvx2T<false, false>(M, N, K, A, lda, B, ldb, C, ldc);
  }
}

AVX2_TARGET inline __m256 ExpAvx2(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC7);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

AVX2_TARGET inline float HsumAvx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AVX2_TARGET float RowMaxAvx2(const float* x, int n) {
  __m256 m = _mm256_set1_ps(kNegInf);
  int c = 0;
  for (; c + 8 <= n; c += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + c));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; c < n; ++c) r = x[c] > r ? x[c] : r;
  return r;
}

AVX2_TARGET float ExpSubAvx2(float* x, int n, float sub) {
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 acc = _mm256_setzero_ps();
  int c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 e = ExpAvx2(_mm256_sub_ps(_mm256_loadu_ps(x + c), vs));
    _mm256_storeu_ps(x + c, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (c < n) {  // tail through a -inf padded copy (exp gives 0 there)
    alignas(32) float t[8];
    for (int i = 0; i < 8; ++i) t[i] = c + i < n ? x[c + i] : kNegInf;
    const __m256 e = ExpAvx2(_mm256_sub_ps(_mm256_load_ps(t), vs));
    _mm256_store_ps(t, e);
    acc = _mm256_add_ps(acc, e);
    for (int i = 0; c + i < n; ++i) x[c + i] = t[i];
  }
  return HsumAvx2(acc);
}

// Four keys at a time per query row (four independent FMA chains), 8 features per step, scalar feature tail.
AVX2_TARGET void ScoresNTAvx2(int R, int C, int D, const float* Q, int ldq, const float* K, int ldk, float scale, float* S,
                              int lds) {
  const int D8 = D & ~7;
  for (int r = 0; r < R; ++r) {
    const float* q = Q + static_cast<int64_t>(r) * ldq;
    float* srow = S + static_cast<int64_t>(r) * lds;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      const float* k0 = K + static_cast<int64_t>(c) * ldk;
      const float *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int d = 0; d < D8; d += 8) {
        const __m256 qv = _mm256_loadu_ps(q + d);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
      }
      float s0 = HsumAvx2(a0), s1 = HsumAvx2(a1), s2 = HsumAvx2(a2), s3 = HsumAvx2(a3);
      for (int d = D8; d < D; ++d) {
        s0 += q[d] * k0[d];
        s1 += q[d] * k1[d];
        s2 += q[d] * k2[d];
        s3 += q[d] * k3[d];
      }
      srow[c] = s0 * scale;
      srow[c + 1] = s1 * scale;
      srow[c + 2] = s2 * scale;
      srow[c + 3] = s3 * scale;
    }
    for (; c < C; ++c) {
      const float* k0 = K + static_cast<int64_t>(c) * ldk;
      __m256 a0 = _mm256_setzero_ps();
      for (int d = 0; d < D8; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k0 + d), a0);
      float s0 = HsumAvx2(a0);
      for (int d = D8; d < D; ++d) s0 += q[d] * k0[d];
      srow[c] = s0 * scale;
    }
  }
}

// 8x8 blocks transposed in registers (unpack pairs, then quads, then 128-bit halves); scalar edges.
AVX2_TARGET void TransposeScaledAvx2(const float* x, int C, int D, float scale, float* out, int ldo) {
  const __m256 vs = _mm256_set1_ps(scale);
  const int C8 = C & ~7, D8 = D & ~7;
  for (int c0 = 0; c0 < C8; c0 += 8) {
    for (int d0 = 0; d0 < D8; d0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(x + static_cast<int64_t>(c0 + i) * D + d0);
      __m256 t[8], u[8];
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int j = 0; j < 4; ++j) {
        _mm256_storeu_ps(out + static_cast<int64_t>(d0 + j) * ldo + c0, _mm256_mul_ps(vs, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20)));
        _mm256_storeu_ps(out + static_cast<int64_t>(d0 + 4 + j) * ldo + c0, _mm256_mul_ps(vs, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31)));
      }
    }
    for (int d = D8; d < D; ++d)
      for (int c = c0; c < c0 + 8; ++c) out[static_cast<int64_t>(d) * ldo + c] = scale * x[static_cast<int64_t>(c) * D + d];
  }
  for (int d = 0; d < D; ++d)
    for (int c = C8; c < C; ++c) out[static_cast<int64_t>(d) * ldo + c] = scale * x[static_cast<int64_t>(c) * D + d];
}

const Kernels kAvx2 = {GemmAvx2, RowMaxAvx2, ExpSubAvx2, ScoresNTAvx2, TransposeScaledAvx2};

// ------------------------------------------------------------------------------------------- AVX-512
// Mirrors the AVX2 code with 16-wide vectors: 8 rows x 16 columns = 8 accumulators.
template <int MR, bool TA, bool ACC>
AVX512_TARGET inline void MicroAvx512(int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  __m512 c0[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) c0[i] = ACC ? _mm512_loadu_ps(C + i * ldc) : _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(B + static_cast<int64_t>(k) * ldb);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(TA ? A[static_cast<int64_t>(k) * lda + i] : A[static_cast<int64_t>(i) * lda + k]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) _mm512_storeu_ps(C + i * ldc, c0[i]);
}

template <bool TA, bool ACC>
AVX512_TARGET void GemmAvx512T(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  constexpr int MR = 8;
  for (int n0 = 0; n0 < N; n0 += kPad) {
    int m = 0;
    auto a = [&](int row) { return TA ? A + row : A + static_cast<int64_t>(row) * lda; };
    for (; m + MR <= M; m += MR) MicroAvx512<MR, TA, ACC>(K, a(m), lda, B + n0, ldb, C + static_cast<int64_t>(m) * ldc + n0, ldc);
    float* c = C + static_cast<int64_t>(m) * ldc + n0;
    switch (M - m) {
      case 7: MicroAvx512<7, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 6: MicroAvx512<6, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 5: MicroAvx512<5, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 4: MicroAvx512<4, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 3: MicroAvx512<3, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 2: MicroAvx512<2, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      case 1: MicroAvx512<1, TA, ACC>(K, a(m), lda, B + n0, ldb, c, ldc); break;
      default: break;
    }
  }
}

AVX512_TARGET void GemmAvx512(bool transA, bool accumulate, int M, int N, int K, const float* A, int lda,
                              const float* B, int ldb, float* C, int ldc) {
  if (transA) {
    if (accumulate) GemmAvx512T<true, true>(M, N, K, A, lda, B, ldb, C, ldc);
    else GemmAvx512T<true, false>(M, N, K, A, lda, B, ldb, C, ldc);
  } else {
    if (accumulate) GemmAvx512T<false, true>(M, N, K, A, lda, B, ldb, C, ldc);
    else GemmAvx512T<false, false>(M, N, K, A, lda, B, ldb, C, ldc);
  }
}

// (The all-lanes mask forms below avoid GCC 12's false "uninitialized" warnings from the unmasked intrinsics.)
constexpr __mmask16 kAll = 0xFFFF;

AVX512_TARGET inline __m512 ExpAvx512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLo), _CMP_GE_OQ);
  x = _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, x, _mm512_set1_ps(kExpLo)), _mm512_set1_ps(kExpHi));
  const __m512 n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kC7);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC5));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  const __m512i e = _mm512_maskz_slli_epi32(kAll, _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAll, n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
}

// Horizontal reductions in a fixed lane order, through memory.
AVX512_TARGET inline float HmaxAvx512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float m = t[0];
  for (int i = 1; i < 16; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

AVX512_TARGET inline float HsumAvx512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}

AVX512_TARGET float RowMaxAvx512(const float* x, int n) {
  __m512 m = _mm512_set1_ps(kNegInf);
  int c = 0;
  for (; c + 16 <= n; c += 16) m = _mm512_maskz_max_ps(kAll, m, _mm512_loadu_ps(x + c));
  if (c < n)
    m = _mm512_maskz_max_ps(kAll, m, _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), static_cast<__mmask16>((1u << (n - c)) - 1), x + c));
  return HmaxAvx512(m);
}

AVX512_TARGET float ExpSubAvx512(float* x, int n, float sub) {
  const __m512 vs = _mm512_set1_ps(sub);
  __m512 acc = _mm512_setzero_ps();
  int c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m512 e = ExpAvx512(_mm512_sub_ps(_mm512_loadu_ps(x + c), vs));
    _mm512_storeu_ps(x + c, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (c < n) {
    const __mmask16 mk = static_cast<__mmask16>((1u << (n - c)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(mk, ExpAvx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + c), vs)));
    _mm512_mask_storeu_ps(x + c, mk, e);
    acc = _mm512_add_ps(acc, e);
  }
  return HsumAvx512(acc);
}

// (the small-T score kernel and the transpose are memory-bound: the AVX2 ones serve AVX-512 machines too)
const Kernels kAvx512 = {GemmAvx512, RowMaxAvx512, ExpSubAvx512, ScoresNTAvx2, TransposeScaledAvx2};
#endif  // ALIGNKIT_X86

const Kernels& ActiveKernels() {
#ifdef ALIGNKIT_X86
  switch (ActiveIsa()) {
    case Isa::Avx512: return kAvx512;
    case Isa::Avx2: return kAvx2;
    default: break;
  }
#endif
  return kPortable;
}

// ============================================================================================ shared tile code
struct Shape {
  int64_t B, Hq, Hkv, T, S;
  int D, Dp;       // head dim and its padding to 16
  int64_t tiles;   // key tiles: ceil(S / kBc)
  int64_t group;   // q heads per kv head
  int64_t offset;  // S - T: absolute position of query row 0
  float scale;
  bool causal;
  const uint8_t* keyMask;  // [B, S] or null
  const int32_t* docIds;   // [B, S] or null
};

// Whether a tile of query rows [i0, i0+R) x keys from j0 has some visible pair under the causal rule alone
// (tiles that fail this are skipped entirely).
inline bool TileReachable(const Shape& sh, int64_t i0, int R, int64_t j0) {
  return !sh.causal || j0 <= i0 + R - 1 + sh.offset;
}

// Sets s[r][c] = -inf for the pairs that are not visible. s has leading dimension kBc.
void ApplyMask(const Shape& sh, int64_t b, int64_t i0, int R, int64_t j0, int C, float* s) {
  const bool causalFull = !sh.causal || j0 + C - 1 <= i0 + sh.offset;
  if (causalFull && !sh.keyMask && !sh.docIds) return;  // the common interior tile
  const uint8_t* km = sh.keyMask ? sh.keyMask + b * sh.S + j0 : nullptr;
  const int32_t* doc = sh.docIds ? sh.docIds + b * sh.S : nullptr;
  for (int r = 0; r < R; ++r) {
    float* row = s + static_cast<int64_t>(r) * kBc;
    const int64_t pos = i0 + r + sh.offset;
    const int lim = sh.causal ? static_cast<int>(std::clamp<int64_t>(pos - j0 + 1, 0, C)) : C;  // keys c < lim pass
    for (int c = lim; c < C; ++c) row[c] = kNegInf;
    if (km)
      for (int c = 0; c < lim; ++c) row[c] = km[c] ? row[c] : kNegInf;
    if (doc) {
      const int32_t d = doc[pos];
      for (int c = 0; c < lim; ++c) row[c] = doc[j0 + c] == d ? row[c] : kNegInf;
    }
  }
}

// Returns rows of x [n, D] as a [n, Dp] operand: x itself when D == Dp, else a zero-padded copy in buf.
const float* PadRows(const float* x, int64_t n, int D, int Dp, float* buf) {
  if (D == Dp) return x;
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(buf + r * Dp, x + r * D, sizeof(float) * D);
    std::memset(buf + r * Dp + D, 0, sizeof(float) * (Dp - D));
  }
  return buf;
}

// Keys and values rearranged once per call, so that no tile re-copies them (every q block visits every key
// tile):
//   kt [B*Hkv, tiles, D, kBc] = scale * K^T per key tile (zero columns past S): the B operand of
//                               S = Q (scale K)^T, already scaled. Tile-major so a tile is one contiguous
//                               [D, kBc] panel (a [D, S] layout would put its rows a power of two apart).
//   vt [B*Hkv, tiles, D, kBc] = V^T per key tile        (backward: dP = dO V^T)
//   kp, vp [B*Hkv, S, Dp]: K, V with zero-padded rows    (only when D is not a multiple of 16)
struct KeysValues {
  std::unique_ptr<float[]> kt, vt, kpBuf, vpBuf;  // uninitialised: every element read is written below
  const float *kp = nullptr, *vp = nullptr;
  int ldp = 0;  // leading dimension of kp / vp rows

  KeysValues(const Kernels& kr, const Shape& sh, const float* k, const float* v, bool wantVt, bool wantKp, bool wantVp) {
    const int64_t heads = sh.B * sh.Hkv;
    const int D = sh.D, Dp = sh.Dp;
    const int64_t S = sh.S, tiles = sh.tiles;
    const size_t panels = static_cast<size_t>(heads * tiles * D * kBc);
    kt.reset(new float[panels]);
    if (wantVt) vt.reset(new float[panels]);
    const bool pad = D != Dp;
    if (pad && wantKp) kpBuf.reset(new float[static_cast<size_t>(heads * S * Dp)]);
    if (pad && wantVp) vpBuf.reset(new float[static_cast<size_t>(heads * S * Dp)]);
    kp = pad ? kpBuf.get() : k;
    vp = pad ? vpBuf.get() : v;
    ldp = pad ? Dp : D;
    // tasks: (head, key tile)
    ParallelFor(heads * tiles, [&](int64_t task, int) {
      const int64_t g = task / tiles, s0 = task % tiles * kBc;
      const int C = static_cast<int>(std::min<int64_t>(kBc, S - s0));
      const float* K = k + (g * S + s0) * D;
      const float* V = v + (g * S + s0) * D;
      float* ktp = kt.get() + task * D * kBc;
      kr.transposeScaled(K, C, D, sh.scale, ktp, kBc);
      for (int d = 0; d < D && C < kBc; ++d) std::fill(ktp + d * kBc + C, ktp + (d + 1) * kBc, 0.f);  // last tile
      if (wantVt) {
        float* vtp = vt.get() + task * D * kBc;
        kr.transposeScaled(V, C, D, 1.f, vtp, kBc);
        for (int d = 0; d < D && C < kBc; ++d) std::fill(vtp + d * kBc + C, vtp + (d + 1) * kBc, 0.f);
      }
      if (pad && wantKp) PadRows(K, C, D, Dp, kpBuf.get() + (g * S + s0) * Dp);
      if (pad && wantVp) PadRows(V, C, D, Dp, vpBuf.get() + (g * S + s0) * Dp);
    });
  }
  // The [D, kBc] panel of key tile j0 (a multiple of kBc) of kv head g.
  const float* KtTile(const Shape& sh, int64_t g, int64_t j0) const { return kt.get() + (g * sh.tiles + j0 / kBc) * sh.D * kBc; }
  const float* VtTile(const Shape& sh, int64_t g, int64_t j0) const { return vt.get() + (g * sh.tiles + j0 / kBc) * sh.D * kBc; }
};

// ============================================================================================ forward
// Queries per call up to which the forward reads key rows directly (ScoresNT) instead of building KeysValues.
constexpr int64_t kDirectMaxT = 4;

// Per-thread tiles of the forward, kept between calls (a decoding step calls the forward once per layer with
// a few microseconds of work, and allocating and zeroing these ~50 KB each time cost a good part of that).
// ForwardBlock writes every element before reading it (new elements start as NaN, so a test would notice).
struct FwdScratch {
  std::vector<float> s, o, m, l, vp;
  static void Fit(std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n, std::numeric_limits<float>::quiet_NaN());
  }
  static FwdScratch& ForThread(const Shape& sh) {
    thread_local FwdScratch w;
    Fit(w.s, static_cast<size_t>(kBr) * kBc);
    Fit(w.o, static_cast<size_t>(kBr) * sh.Dp);
    Fit(w.m, kBr);
    Fit(w.l, kBr);
    Fit(w.vp, static_cast<size_t>(kBc) * sh.Dp);
    return w;
  }
};

// kv == nullptr: the direct (small-T) form, reading k and v as given.
void ForwardBlock(const Kernels& kr, const Shape& sh, const float* q, const float* k, const float* v,
                  const KeysValues* kv, float* out, float* lse, int64_t b, int64_t h, int64_t i0, FwdScratch& w) {
  const int D = sh.D, Dp = sh.Dp;
  const int R = static_cast<int>(std::min<int64_t>(kBr, sh.T - i0));
  const int64_t g = b * sh.Hkv + h / sh.group;  // kv head
  const float* Q = q + ((b * sh.Hq + h) * sh.T + i0) * D;  // [R, D]
  // one past the last key any row of the block can see
  const int64_t jEnd = sh.causal ? std::min<int64_t>(sh.S, i0 + R + sh.offset) : sh.S;
  float* O = w.o.data();  // [R, Dp] unnormalised output
  float* S = w.s.data();  // [R, kBc] scores, then probabilities
  std::fill(O, O + static_cast<int64_t>(R) * Dp, 0.f);
  std::fill(w.m.begin(), w.m.end(), kNegInf);
  std::fill(w.l.begin(), w.l.end(), 0.f);

  for (int64_t j0 = 0; j0 < jEnd; j0 += kBc) {
    const int C = static_cast<int>(std::min<int64_t>(kBc, jEnd - j0));
    const float* Vt;  // [C, ldv]: value rows, padded to Dp
    int ldv;
    if (kv) {
      kr.gemm(false, false, R, RoundUp(C, kPad), D, Q, D, kv->KtTile(sh, g, j0), kBc, S, kBc);  // S = Q (scale K)^T
      Vt = kv->vp + (g * sh.S + j0) * kv->ldp;
      ldv = kv->ldp;
    } else {
      kr.scoresNT(R, C, D, Q, D, k + (g * sh.S + j0) * D, D, sh.scale, S, kBc);  // S = scale Q K^T
      Vt = PadRows(v + (g * sh.S + j0) * D, C, D, Dp, w.vp.data());
      ldv = D == Dp ? D : Dp;
    }
    ApplyMask(sh, b, i0, R, j0, C, S);
    for (int r = 0; r < R; ++r) {
      float* row = S + r * kBc;
      const float mNew = std::max(w.m[r], kr.rowMax(row, C));
      if (mNew == kNegInf) {  // nothing visible to this row yet
        std::fill(row, row + C, 0.f);
        continue;
      }
      // online softmax: rescale what was accumulated under the old max
      const float alpha = w.m[r] == kNegInf ? 0.f : std::exp(w.m[r] - mNew);
      const float sum = kr.expSub(row, C, mNew);
      w.l[r] = w.l[r] * alpha + sum;
      if (alpha != 1.f) {
        float* o = O + static_cast<int64_t>(r) * Dp;
        for (int d = 0; d < Dp; ++d) o[d] *= alpha;
      }
      w.m[r] = mNew;
    }
    kr.gemm(false, true, R, Dp, C, S, kBc, Vt, ldv, O, Dp);  // O += P V
  }

  for (int r = 0; r < R; ++r) {
    const int64_t row = (b * sh.Hq + h) * sh.T + i0 + r;
    float* dst = out + row * D;
    if (w.l[r] == 0.f) {  // no visible key
      std::fill(dst, dst + D, 0.f);
      lse[row] = kNegInf;
      continue;
    }
    const float inv = 1.f / w.l[r];
    const float* o = O + static_cast<int64_t>(r) * Dp;
    for (int d = 0; d < D; ++d) dst[d] = o[d] * inv;
    lse[row] = w.m[r] + std::log(w.l[r]);
  }
}

// ============================================================================================ backward
struct BwdScratch {
  std::vector<float> s, dp, qp, dop, dkAcc, dvAcc, dqAcc;
  explicit BwdScratch(const Shape& sh)
      : s(kBr * kBc), dp(kBr * kBc), qp(static_cast<size_t>(kBr) * sh.Dp), dop(static_cast<size_t>(kBr) * sh.Dp),
        dkAcc(static_cast<size_t>(kBc) * sh.Dp), dvAcc(static_cast<size_t>(kBc) * sh.Dp), dqAcc(static_cast<size_t>(kBr) * sh.Dp) {}
};

struct BwdArgs {
  const float *q, *lse, *dout;
  const float* rowD;  // [B, Hq, T]: Di = rowsum(dout * out)
  const KeysValues* kv;
  float *dq, *dk, *dv;
};

// One (q block of head h, key tile [j0, j0+C)) step. Accumulates into dqAcc ([R, lddq], may be null), dkAcc and
// dvAcc ([C, Dp], may be null). C is always min(kBc, S - j0), whichever schedule calls this.
void BackwardTile(const Kernels& kr, const Shape& sh, const BwdArgs& a, int64_t b, int64_t h, int64_t i0, int64_t j0,
                  float* dqAcc, int lddq, float* dkAcc, float* dvAcc, BwdScratch& w) {
  const int D = sh.D, Dp = sh.Dp;
  const int R = static_cast<int>(std::min<int64_t>(kBr, sh.T - i0));
  const int C = static_cast<int>(std::min<int64_t>(kBc, sh.S - j0));
  const int Cp = RoundUp(C, kPad);
  const int64_t g = b * sh.Hkv + h / sh.group;
  const int64_t row0 = (b * sh.Hq + h) * sh.T + i0;
  const float* Q = a.q + row0 * D;
  const float* dO = a.dout + row0 * D;
  float* P = w.s.data();
  float* dS = w.dp.data();
  kr.gemm(false, false, R, Cp, D, Q, D, a.kv->KtTile(sh, g, j0), kBc, P, kBc);   // S  = Q (scale K)^T
  kr.gemm(false, false, R, Cp, D, dO, D, a.kv->VtTile(sh, g, j0), kBc, dS, kBc);  // dP = dO V^T
  ApplyMask(sh, b, i0, R, j0, C, P);
  for (int r = 0; r < R; ++r) {
    float* p = P + r * kBc;
    float* ds = dS + r * kBc;
    const float l = a.lse[row0 + r];
    if (l == kNegInf) {  // the row saw no key in the forward: no gradient flows through it
      std::fill(p, p + C, 0.f);
      std::fill(ds, ds + C, 0.f);
      continue;
    }
    kr.expSub(p, C, l);  // P = exp(S - lse) (S is already scaled)
    const float di = a.rowD[row0 + r];
    for (int c = 0; c < C; ++c) ds[c] = p[c] * (ds[c] - di) * sh.scale;  // dS = P (dP - Di) scale
  }
  const int ld = D == Dp ? D : Dp;
  if (dvAcc) kr.gemm(true, true, C, Dp, R, P, kBc, PadRows(dO, R, D, Dp, w.dop.data()), ld, dvAcc, Dp);  // dV += P^T dO
  if (dkAcc) kr.gemm(true, true, C, Dp, R, dS, kBc, PadRows(Q, R, D, Dp, w.qp.data()), ld, dkAcc, Dp);  // dK += dS^T Q
  if (dqAcc) kr.gemm(false, true, R, Dp, C, dS, kBc, a.kv->kp + (g * sh.S + j0) * a.kv->ldp, a.kv->ldp, dqAcc, lddq);  // dQ += dS K
}

// Copies rows of a [n, Dp] accumulator into x [n, D].
void StoreRows(const float* acc, int64_t n, int D, int Dp, float* x) {
  for (int64_t r = 0; r < n; ++r) std::memcpy(x + r * D, acc + r * Dp, sizeof(float) * D);
}

// dK, dV of one key tile: every q head of the kv group, every reachable q block, in increasing order. With
// dqBase (the group's dQ accumulators, [group, T, lddq]) it also accumulates dQ (the one-pass schedule).
void KeyTileGradients(const Kernels& kr, const Shape& sh, const BwdArgs& a, int64_t b, int64_t kvh, int64_t j0,
                      float* dqBase, int lddq, BwdScratch& w) {
  std::fill(w.dkAcc.begin(), w.dkAcc.end(), 0.f);
  std::fill(w.dvAcc.begin(), w.dvAcc.end(), 0.f);
  for (int64_t gi = 0; gi < sh.group; ++gi) {
    const int64_t h = kvh * sh.group + gi;
    for (int64_t i0 = 0; i0 < sh.T; i0 += kBr) {
      const int R = static_cast<int>(std::min<int64_t>(kBr, sh.T - i0));
      if (!TileReachable(sh, i0, R, j0)) continue;
      float* dq = dqBase ? dqBase + (gi * sh.T + i0) * lddq : nullptr;
      BackwardTile(kr, sh, a, b, h, i0, j0, dq, lddq, w.dkAcc.data(), w.dvAcc.data(), w);
    }
  }
  const int64_t C = std::min<int64_t>(kBc, sh.S - j0);
  const int64_t base = ((b * sh.Hkv + kvh) * sh.S + j0) * sh.D;
  StoreRows(w.dkAcc.data(), C, sh.D, sh.Dp, a.dk + base);
  StoreRows(w.dvAcc.data(), C, sh.D, sh.Dp, a.dv + base);
}

// ============================================================================================ N-API
Shape ParseShape(const Params& p) {
  Shape sh{};
  sh.B = p.integer("batch", 0);
  sh.Hq = p.integer("headsQ", 1);
  sh.Hkv = p.integer("headsKV", 1);
  sh.T = p.integer("seqQ", 0);
  sh.S = p.integer("seqK", 0);
  const int64_t D = p.integer("headDim", 1);
  if (D > 16384) p.fail("headDim " + std::to_string(D) + " is larger than the supported maximum 16384");
  if (sh.Hq % sh.Hkv != 0)
    p.fail("headsQ (" + std::to_string(sh.Hq) + ") must be a multiple of headsKV (" + std::to_string(sh.Hkv) + ")");
  const double scale = p.number("scale");
  if (!std::isfinite(scale)) p.fail("field 'scale' must be a finite number");
  sh.causal = p.boolean("causal");
  if (sh.causal && sh.S < sh.T)
    p.fail("causal attention needs seqK >= seqQ (got seqK " + std::to_string(sh.S) + " < seqQ " + std::to_string(sh.T) + ")");
  sh.D = static_cast<int>(D);
  sh.Dp = RoundUp(sh.D, kPad);
  sh.tiles = (sh.S + kBc - 1) / kBc;
  sh.group = sh.Hq / sh.Hkv;
  sh.offset = sh.S - sh.T;
  sh.scale = static_cast<float>(scale);
  sh.keyMask = p.u8("keyMask", Extent(p, {sh.B, sh.S}), true);
  sh.docIds = p.i32("docIds", Extent(p, {sh.B, sh.S}), true);
  if (sh.docIds && sh.S < sh.T) p.fail("docIds needs seqK >= seqQ (queries are the last seqQ of the seqK positions)");
  return sh;
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Params p(info, "attentionForward");
  const Shape sh = ParseShape(p);
  const float* q = p.f32("q", Extent(p, {sh.B, sh.Hq, sh.T, sh.D})).data;
  const float* k = p.f32("k", Extent(p, {sh.B, sh.Hkv, sh.S, sh.D})).data;
  const float* v = p.f32("v", Extent(p, {sh.B, sh.Hkv, sh.S, sh.D})).data;
  float* out = p.f32("out", Extent(p, {sh.B, sh.Hq, sh.T, sh.D})).data;
  float* lse = p.f32("lse", Extent(p, {sh.B, sh.Hq, sh.T})).data;
  if (sh.B == 0 || sh.T == 0) return p.env().Undefined();

  const Kernels& kr = ActiveKernels();
  // few queries (decoding with a KV cache): read the keys directly; else rearrange them once for the GEMM tiles
  std::unique_ptr<KeysValues> kv;
  if (sh.T > kDirectMaxT) kv = std::make_unique<KeysValues>(kr, sh, k, v, /*wantVt=*/false, /*wantKp=*/false, /*wantVp=*/true);
  const int64_t blocks = (sh.T + kBr - 1) / kBr;
  // task -> (b, h, q block); the last (most expensive under causal masking) blocks are handed out first
  ParallelFor(sh.B * sh.Hq * blocks, [&](int64_t task, int) {
    const int64_t bh = task / blocks;
    const int64_t blk = blocks - 1 - task % blocks;
    ForwardBlock(kr, sh, q, k, v, kv.get(), out, lse, bh / sh.Hq, bh % sh.Hq, blk * kBr, FwdScratch::ForThread(sh));
  });
  return p.env().Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Params p(info, "attentionBackward");
  const Shape sh = ParseShape(p);
  const size_t qExt = Extent(p, {sh.B, sh.Hq, sh.T, sh.D});
  const size_t kvExt = Extent(p, {sh.B, sh.Hkv, sh.S, sh.D});
  BwdArgs a{};
  a.q = p.f32("q", qExt).data;
  const float* k = p.f32("k", kvExt).data;
  const float* v = p.f32("v", kvExt).data;
  const float* out = p.f32("out", qExt).data;
  a.lse = p.f32("lse", Extent(p, {sh.B, sh.Hq, sh.T})).data;
  a.dout = p.f32("dout", qExt).data;
  a.dq = p.f32("dq", qExt).data;
  a.dk = p.f32("dk", kvExt).data;
  a.dv = p.f32("dv", kvExt).data;
  if (kvExt > 0 && sh.T == 0) {  // no queries: the key gradients are zero
    std::fill(a.dk, a.dk + kvExt, 0.f);
    std::fill(a.dv, a.dv + kvExt, 0.f);
  }
  if (sh.B == 0 || sh.T == 0) return p.env().Undefined();
  const int D = sh.D, Dp = sh.Dp;

  // Di = rowsum(dout * out), once per query row (float64 sum, fixed order).
  const int64_t rows = sh.B * sh.Hq * sh.T;
  std::vector<float> rowD(rows);
  ParallelRange(rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double acc = 0;
      for (int d = 0; d < D; ++d) acc += static_cast<double>(a.dout[r * D + d]) * out[r * D + d];
      rowD[r] = static_cast<float>(acc);
    }
  });
  a.rowD = rowD.data();
  const Kernels& kr = ActiveKernels();
  const KeysValues kv(kr, sh, k, v, /*wantVt=*/true, /*wantKp=*/true, /*wantVp=*/false);
  a.kv = &kv;

  const int threads = NumThreads();
  std::vector<BwdScratch> scratch;
  scratch.reserve(threads);
  for (int t = 0; t < threads; ++t) scratch.emplace_back(sh);
  const int64_t groups = sh.B * sh.Hkv;
  const int64_t qBlocks = (sh.T + kBr - 1) / kBr;
  const int64_t kBlocks = (sh.S + kBc - 1) / kBc;
  // Schedule (results are identical either way, see the top of the file): one-pass does 5 tile matmuls per
  // tile in groups-many tasks, two-pass 7 in many small tasks. Pick the one with the shorter estimated time.
  const bool onePass = threads == 1 || ((groups + threads - 1) / threads) * 5 * threads <= 7 * groups;

  if (onePass) {
    ParallelFor(groups, [&](int64_t task, int thread) {
      BwdScratch& w = scratch[thread];
      const int64_t b = task / sh.Hkv, kvh = task % sh.Hkv;
      float* dqHeads = a.dq + (b * sh.Hq + kvh * sh.group) * sh.T * D;  // the group's q heads are contiguous
      const int64_t groupRows = sh.group * sh.T;
      // dQ accumulates over all key tiles: in place when rows need no padding, else in a padded buffer
      std::vector<float> padded;
      float* dqAcc = dqHeads;
      if (D != Dp) {
        padded.assign(static_cast<size_t>(groupRows) * Dp, 0.f);
        dqAcc = padded.data();
      } else {
        std::fill(dqHeads, dqHeads + groupRows * D, 0.f);
      }
      for (int64_t kb = 0; kb < kBlocks; ++kb) KeyTileGradients(kr, sh, a, b, kvh, kb * kBc, dqAcc, D == Dp ? D : Dp, w);
      if (D != Dp) StoreRows(dqAcc, groupRows, D, Dp, dqHeads);
    });
    return p.env().Undefined();
  }

  // two-pass: tasks [0, groups*kBlocks) own key tiles (dK, dV); the rest own q blocks (dQ). Heavy tasks first:
  // early key tiles and late q blocks see the most tiles under causal masking.
  const int64_t keyTasks = groups * kBlocks;
  const int64_t qTasks = sh.B * sh.Hq * qBlocks;
  ParallelFor(keyTasks + qTasks, [&](int64_t task, int thread) {
    BwdScratch& w = scratch[thread];
    if (task < keyTasks) {
      const int64_t g = task / kBlocks, kb = task % kBlocks;
      KeyTileGradients(kr, sh, a, g / sh.Hkv, g % sh.Hkv, kb * kBc, nullptr, 0, w);
      return;
    }
    task -= keyTasks;
    const int64_t bh = task / qBlocks;
    const int64_t i0 = (qBlocks - 1 - task % qBlocks) * kBr;
    const int64_t b = bh / sh.Hq, h = bh % sh.Hq;
    const int R = static_cast<int>(std::min<int64_t>(kBr, sh.T - i0));
    float* dqDst = a.dq + (bh * sh.T + i0) * D;
    float* dqAcc = D == Dp ? dqDst : w.dqAcc.data();
    std::fill(dqAcc, dqAcc + static_cast<int64_t>(R) * (D == Dp ? D : Dp), 0.f);
    for (int64_t kb = 0; kb < kBlocks && TileReachable(sh, i0, R, kb * kBc); ++kb)
      BackwardTile(kr, sh, a, b, h, i0, kb * kBc, dqAcc, D == Dp ? D : Dp, nullptr, nullptr, w);
    if (D != Dp) StoreRows(dqAcc, R, D, Dp, dqDst);
  });
  return p.env().Undefined();
}

}  // namespace

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
}

}  // namespace alignkit
