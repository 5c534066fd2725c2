// Fused, chunked "linear + log-softmax + gather" (per-token log-probabilities / cross-entropy), float32.
//
//   hidden [N, H], weight [V, H], bias [V] | null, targets [N] (negative = ignored)
//   z[n, v]   = (hidden[n] . weight[v] + bias[v]) / temperature
//   lse[n]    = logsumexp_v z[n, v]
//   logprob[n] = z[n, target[n]] - lse[n]   (0 for ignored targets; lse is still written)
//   entropy[n] = -sum_v p log p,  p = softmax(z[n])
//
// The [N, V] logits are never materialised: rows are processed `chunk` at a time, and one [chunk, V]
// buffer holds the chunk's logits (then, in the backward, its dlogits in place). Per chunk:
//   forward:  logits = hidden_c @ weight^T (Sgemm), then a per-row pass (parallel over rows):
//             scale, max, sum exp, gather.
//   backward: recompute logits the same way, dlogits = dlogprob * (onehot - exp(z - lse)) / temperature
//             in place, then dhidden_c = dlogits @ weight and dweight += dlogits^T @ hidden_c (Sgemm,
//             beta = 1), dbias += column sums of dlogits.
//   fused:    forward and backward in one pass, for losses whose dlogprob is known up front (cross-
//             entropy): logits once, the forward row pass, dlogits from the lse just computed, the two
//             gradient GEMMs. 3 [chunk, H] x [H, V]-sized GEMMs per chunk instead of 4.
// Sgemm threads internally, so it is called from this (the main) thread; only the row passes use
// ParallelFor. Chunks run in a fixed order and every row pass is a fixed-order loop over one row, so
// results do not depend on the thread count (given an Sgemm that does not either).
//
// The backward packs only the rows that have a gradient (target >= 0 and dlogprob != 0) into its chunks:
// prompt / padding tokens in SFT batches cost nothing there. Their dhidden rows are written as 0. (A chunk
// whose rows are adjacent in the batch is used in place: no packing copy, dhidden written directly.)
// The fused kernel chunks those rows exactly as the backward does (so dweight / dbias sum the same
// partial products in the same order), then runs the forward alone over the other rows. Sgemm gives each
// logit a value that depends only on the GEMM shape (not on the row's position), so the fused results
// are bit-identical to forward-then-backward whenever the two chunkings give each row's logits the same
// GEMM path — always when every row has a gradient (then all three chunk identically). Otherwise the one
// difference is that a row's lse may come from a differently-shaped GEMM (Sgemm's small-shape path rounds
// differently): its gradient then matches the backward fed the fused lse bit for bit, and
// forward-then-backward to rounding.
//
// Extra memory: forward chunk*V floats; backward and fused chunk*V + 2*chunk*H floats. Never [N, V].
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "common.h"
#include "simd_avx2.h"

namespace alignkit {
namespace {

using namespace simd;  // Exp8, TailMask, HSum, HMax

#define AK_INLINE inline __attribute__((always_inline))
#define AK_AVX2 __attribute__((target("avx2,fma")))

// Default rows per chunk. Two pulls: every chunk streams the whole [V, H] weight through the GEMMs (and,
// in the backward, reads and writes all of dweight), so more rows amortise that traffic; but the chunk's
// [chunk, V] logits should stay cache-resident between the GEMM that writes them and the row pass that
// reads them. With a realistic vocabulary one row is already 100-600 KB, so "fits in L2" is impossible;
// the budget is a share of L3 instead. Measured (2-core Zen 4, N=2048, H=576, V=49152, CPU time per
// token of forward+backward): 32 rows 1.6x and 64 rows 1.35x the cost of 96..256 rows, which were flat.
int64_t DefaultChunk(int64_t vocab) {
  const int64_t budget = int64_t{32} << 20;  // bytes of logits
  const int64_t rows = std::max<int64_t>(64, std::min<int64_t>(256, budget / (vocab * 4)));
  return rows & ~int64_t{15};
}

// 64-byte aligned float scratch, freed on scope exit.
class Scratch {
 public:
  Scratch(const Params& p, size_t n, const char* what) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (!data_) p.fail(std::string("out of memory allocating the ") + what + " (" + std::to_string(bytes) + " bytes)");
  }
  ~Scratch() { std::free(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return data_; }

 private:
  float* data_ = nullptr;
};

// ============================================================================================ row passes
// Forward: z = (logits + bias) / T in place, then lse, entropy. Backward: z the same way, then
// z <- -c * exp(z - lse) and z[t] += c (c = dlogprob / T): dlogits in place.
struct RowStats {
  float max;
  float logS;  // lse = max + logS
  float entropy;
};

// ---- AVX2 (also used on AVX-512 CPUs: the row passes are a small part of the cost next to the GEMMs).

// z = (z + bias) / T in place (skipped when it is the identity); returns max(z) when wantMax.
AK_AVX2 float ScaleRowAvx2(float* z, const float* bias, float T, int64_t V, bool wantMax) {
  const int64_t full = V & ~int64_t{7};
  const __m256i tm = (V & 7) ? TailMask(V & 7) : _mm256_setzero_si256();
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 vt = _mm256_set1_ps(T);
  const bool scale = bias != nullptr || T != 1.f;
  __m256 m = ninf;
  int64_t j = 0;
  for (; j < full; j += 8) {
    __m256 v = _mm256_loadu_ps(z + j);
    if (scale) {
      if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
      v = _mm256_div_ps(v, vt);
      _mm256_storeu_ps(z + j, v);
    }
    m = _mm256_max_ps(m, v);
  }
  if (j < V) {
    __m256 v = _mm256_maskload_ps(z + j, tm);
    if (scale) {
      if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, tm));
      v = _mm256_div_ps(v, vt);
      _mm256_maskstore_ps(z + j, tm, v);
    }
    m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tm)));
  }
  return wantMax ? HMax(m) : 0.f;
}

// With d = z - m, e = exp(d), S = sum e:  lse = m + log S,  entropy = log S - sum(e d) / S.
// (Terms with e == 0 are dropped from sum(e d) so a -inf logit adds 0, not 0 * -inf.)
AK_AVX2 RowStats ForwardRowAvx2(float* z, const float* bias, float T, int64_t V, bool wantEntropy) {
  const float m = ScaleRowAvx2(z, bias, T, V, true);
  const int64_t full = V & ~int64_t{7};
  const __m256 vm = _mm256_set1_ps(m), zero = _mm256_setzero_ps();
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 s0 = zero, s1 = zero, ed0 = zero, ed1 = zero;  // two accumulators hide the add latency
  int64_t j = 0;
  for (; j + 16 <= full; j += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(z + j), vm);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(z + j + 8), vm);
    const __m256 e0 = Exp8(d0), e1 = Exp8(d1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
    if (wantEntropy) {
      ed0 = _mm256_add_ps(ed0, _mm256_and_ps(_mm256_cmp_ps(e0, zero, _CMP_GT_OQ), _mm256_mul_ps(e0, d0)));
      ed1 = _mm256_add_ps(ed1, _mm256_and_ps(_mm256_cmp_ps(e1, zero, _CMP_GT_OQ), _mm256_mul_ps(e1, d1)));
    }
  }
  for (; j < V; j += 8) {  // at most one full vector and one partial one
    __m256 zv;
    if (j + 8 <= V) {
      zv = _mm256_loadu_ps(z + j);
    } else {
      const __m256i tm = TailMask(V - j);
      zv = _mm256_blendv_ps(ninf, _mm256_maskload_ps(z + j, tm), _mm256_castsi256_ps(tm));  // pad: exp -> 0
    }
    const __m256 d = _mm256_sub_ps(zv, vm);
    const __m256 e = Exp8(d);
    s0 = _mm256_add_ps(s0, e);
    if (wantEntropy) ed0 = _mm256_add_ps(ed0, _mm256_and_ps(_mm256_cmp_ps(e, zero, _CMP_GT_OQ), _mm256_mul_ps(e, d)));
  }
  const float S = HSum(_mm256_add_ps(s0, s1));
  const float logS = std::log(S);
  RowStats st;
  st.max = m;
  st.logS = logS;
  st.entropy = wantEntropy ? logS - HSum(_mm256_add_ps(ed0, ed1)) / S : 0.f;
  return st;
}

// dlogits = -c * exp(z - lse) everywhere, from scaled logits z (the caller adds c at the target).
AK_AVX2 void DlogitsRowAvx2(float* z, int64_t V, float lse, float c) {
  const __m256 vl = _mm256_set1_ps(lse), nc = _mm256_set1_ps(-c);
  int64_t j = 0;
  for (; j + 8 <= V; j += 8) _mm256_storeu_ps(z + j, _mm256_mul_ps(nc, Exp8(_mm256_sub_ps(_mm256_loadu_ps(z + j), vl))));
  if (j < V) {
    const __m256i tm = TailMask(V - j);
    _mm256_maskstore_ps(z + j, tm, _mm256_mul_ps(nc, Exp8(_mm256_sub_ps(_mm256_maskload_ps(z + j, tm), vl))));
  }
}

// ---- portable: the same formulas, scalar.
float ScaleRowPortable(float* z, const float* bias, float T, int64_t V) {
  float m = -std::numeric_limits<float>::infinity();
  const bool scale = bias != nullptr || T != 1.f;
  for (int64_t j = 0; j < V; ++j) {
    float v = z[j];
    if (scale) {
      if (bias) v += bias[j];
      v /= T;
      z[j] = v;
    }
    m = std::max(m, v);
  }
  return m;
}

RowStats ForwardRowPortable(float* z, const float* bias, float T, int64_t V, bool wantEntropy) {
  const float m = ScaleRowPortable(z, bias, T, V);
  float S = 0.f, ed = 0.f;
  for (int64_t j = 0; j < V; ++j) {
    const float d = z[j] - m;
    const float e = std::exp(d);
    S += e;
    if (wantEntropy && e > 0.f) ed += e * d;
  }
  const float logS = std::log(S);
  return {m, logS, wantEntropy ? logS - ed / S : 0.f};
}

void DlogitsRowPortable(float* z, int64_t V, float lse, float c) {
  for (int64_t j = 0; j < V; ++j) z[j] = -c * std::exp(z[j] - lse);
}

// ============================================================================================ parameters
struct Problem {
  const float* hidden;
  const float* weight;
  const float* bias;
  const int32_t* targets;
  int64_t n, H, V, chunk;
  float T;
};

Problem ParseCommon(const Params& p) {
  Problem pr;
  pr.n = p.integer("n", 0);
  pr.H = p.integer("hiddenDim", 1);
  pr.V = p.integer("vocab", 1);
  const int64_t chunk = p.integer("chunk", 0);
  const double T = p.number("temperature");
  if (!(std::isfinite(T) && T > 0)) p.fail("temperature must be a finite number > 0, got " + std::to_string(T));
  pr.T = static_cast<float>(T);
  if (!(pr.T > 0.f && std::isfinite(pr.T))) p.fail("temperature " + std::to_string(T) + " is not representable in float32");
  pr.hidden = p.f32("hidden", Extent(p, {pr.n, pr.H})).data;
  pr.weight = p.f32("weight", Extent(p, {pr.V, pr.H})).data;
  pr.bias = p.f32("bias", Extent(p, {pr.V}), /*optional=*/true).data;
  pr.targets = p.i32("targets", Extent(p, {pr.n}));
  for (int64_t i = 0; i < pr.n; ++i) {
    if (pr.targets[i] >= pr.V)
      p.fail("targets[" + std::to_string(i) + "] = " + std::to_string(pr.targets[i]) + " is out of range for vocab " +
             std::to_string(pr.V));
  }
  pr.chunk = chunk == 0 ? DefaultChunk(pr.V) : chunk;
  pr.chunk = std::max<int64_t>(1, std::min<int64_t>(pr.chunk, std::max<int64_t>(pr.n, 1)));
  return pr;
}

// Forward outputs: logprob [N], lse [N], entropy [N] | null.
struct ForwardOut {
  float* logprob;
  float* lse;
  float* entropy;
};

ForwardOut ParseForwardOut(const Params& p, int64_t N) {
  ForwardOut o;
  o.logprob = p.f32("logprob", Extent(p, {N})).data;
  o.lse = p.f32("lse", Extent(p, {N})).data;
  o.entropy = p.f32("entropy", Extent(p, {N}), /*optional=*/true).data;
  return o;
}

// Gradient inputs and outputs: dlogprob [N], dhidden [N, H] (overwritten), dweight [V, H] | null and
// dbias [V] | null (accumulated).
struct GradOut {
  const float* dlogprob;
  float* dhidden;
  float* dweight;
  float* dbias;
};

GradOut ParseGradOut(const Params& p, const Problem& pr) {
  GradOut g;
  g.dlogprob = p.f32("dlogprob", Extent(p, {pr.n})).data;
  g.dhidden = p.f32("dhidden", Extent(p, {pr.n, pr.H})).data;
  g.dweight = p.f32("dweight", Extent(p, {pr.V, pr.H}), /*optional=*/true).data;
  g.dbias = p.f32("dbias", Extent(p, {pr.V}), /*optional=*/true).data;
  return g;
}

// ============================================================================================ row steps
// Shared by the kernels: forward and fused call ForwardRowOut, backward and fused GradRowOut, so the
// three do the same arithmetic on a row's logits.

// Row i's forward outputs from its raw logits z, which are left scaled ((z + bias) / T) in place.
void ForwardRowOut(const Problem& pr, const ForwardOut& o, bool avx2, float* z, int64_t i) {
  const RowStats st = avx2 ? ForwardRowAvx2(z, pr.bias, pr.T, pr.V, o.entropy != nullptr)
                           : ForwardRowPortable(z, pr.bias, pr.T, pr.V, o.entropy != nullptr);
  o.lse[i] = st.max + st.logS;
  const int32_t t = pr.targets[i];
  // (z_t - max) - logS rather than z_t - lse: exact subtraction near the max keeps precision for large logits
  o.logprob[i] = t >= 0 ? (z[t] - st.max) - st.logS : 0.f;
  if (o.entropy) o.entropy[i] = st.entropy;
}

// Row i's scaled logits z -> its dlogits, in place, given its lse (row i has a target).
void GradRowOut(const Problem& pr, const GradOut& g, bool avx2, float* z, int64_t i, float lse) {
  const float c = g.dlogprob[i] / pr.T;
  if (avx2) DlogitsRowAvx2(z, pr.V, lse, c);
  else DlogitsRowPortable(z, pr.V, lse, c);
  z[pr.targets[i]] += c;  // the one-hot term
}

void ScaleRow(const Problem& pr, bool avx2, float* z) {
  if (avx2) ScaleRowAvx2(z, pr.bias, pr.T, pr.V, false);
  else ScaleRowPortable(z, pr.bias, pr.T, pr.V);
}

// ============================================================================================ chunk steps
int64_t CopyGrain(int64_t H) { return std::max<int64_t>(1, 16384 / H); }

// One chunk of rows, as the row pass and the gradient step see it.
struct Chunk {
  int64_t rows;         // rows in the chunk
  const int64_t* idx;   // their batch rows (nullptr: first, first + 1, ...)
  int64_t first;        // batch row of the first one
  bool contiguous;      // the batch rows are first .. first + rows - 1
  const float* hidden;  // [rows, H]: the batch's own rows when contiguous, else a packed copy
  float* logits;        // [rows, V]
  int64_t row(int64_t r) const { return idx ? idx[r] : first + r; }
};

// Processes the rows list[0 .. count) (list == nullptr: rows 0 .. count-1), `chunk` at a time in order:
// one Sgemm computes the chunk's logits [rows, V] = hidden_rows @ weight^T, rowFn(z, i) runs on each
// row's logits (parallel over rows), then chunkFn(chunk) runs on this thread. Chunk boundaries depend only
// on the list and `chunk`, so two passes over the same list see the same chunks. hbuf ([chunk, H]) is
// needed only for lists with gaps.
template <class RowFn, class ChunkFn>
void ForEachChunk(const Problem& pr, const int64_t* list, int64_t count, int64_t chunk, float* logits, float* hbuf,
                  const RowFn& rowFn, const ChunkFn& chunkFn) {
  const int64_t H = pr.H, V = pr.V;
  for (int64_t k0 = 0; k0 < count; k0 += chunk) {
    Chunk ck;
    ck.rows = std::min(chunk, count - k0);
    ck.idx = list ? list + k0 : nullptr;
    ck.first = list ? list[k0] : k0;
    ck.contiguous = ck.row(ck.rows - 1) - ck.first == ck.rows - 1;  // lists are strictly increasing
    ck.logits = logits;
    if (ck.contiguous) {
      ck.hidden = pr.hidden + ck.first * H;
    } else {
      ParallelRange(ck.rows, CopyGrain(H), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) std::copy(pr.hidden + ck.idx[r] * H, pr.hidden + (ck.idx[r] + 1) * H, hbuf + r * H);
      });
      ck.hidden = hbuf;
    }
    // logits[rows, V] = hidden_c @ weight^T   (the values do not depend on where the rows came from)
    Sgemm(false, true, ck.rows, V, H, 1.f, ck.hidden, H, pr.weight, H, 0.f, logits, V);
    ParallelFor(ck.rows, [&](int64_t r, int) { rowFn(logits + r * V, ck.row(r)); });
    chunkFn(ck);
  }
}

// Rows with a gradient (target >= 0 and dlogprob != 0; a NaN dlogprob counts, so it propagates), in
// order; the others go to `rest` (when given) and get dhidden = 0 here (overwritten, like every row).
std::vector<int64_t> SplitRows(const Problem& pr, const GradOut& g, std::vector<int64_t>* rest) {
  const int64_t N = pr.n, H = pr.H;
  auto hasGrad = [&](int64_t i) { return pr.targets[i] >= 0 && g.dlogprob[i] != 0.f; };
  std::vector<int64_t> active;
  active.reserve(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    if (hasGrad(i)) active.push_back(i);
    else if (rest) rest->push_back(i);
  }
  ParallelRange(N, CopyGrain(H), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      if (!hasGrad(i)) std::fill(g.dhidden + i * H, g.dhidden + (i + 1) * H, 0.f);
  });
  return active;
}

// The chunk's logits hold its dlogits now: dhidden rows = dlogits @ weight, dweight += dlogits^T @
// hidden_c, dbias += column sums of dlogits. dhbuf ([chunk, H]) is needed only for chunks with gaps.
void ChunkGradients(const Problem& pr, const GradOut& g, const Chunk& ck, float* dhbuf) {
  const int64_t H = pr.H, V = pr.V, rows = ck.rows;
  const float* dl = ck.logits;
  // dhidden rows = dlogits @ weight   [rows, V] @ [V, H]; straight into dhidden when the rows are adjacent
  float* dh = ck.contiguous ? g.dhidden + ck.first * H : dhbuf;
  Sgemm(false, false, rows, H, V, 1.f, dl, V, pr.weight, H, 0.f, dh, H);
  if (!ck.contiguous) {
    ParallelRange(rows, CopyGrain(H), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) std::copy(dhbuf + r * H, dhbuf + (r + 1) * H, g.dhidden + ck.idx[r] * H);
    });
  }
  // dweight += dlogits^T @ hidden_c   [V, rows] @ [rows, H]
  if (g.dweight) Sgemm(true, false, V, H, rows, 1.f, dl, V, ck.hidden, H, 1.f, g.dweight, H);
  // dbias += column sums of dlogits, rows in fixed order.
  if (g.dbias) {
    ParallelRange(V, 4096, [&](int64_t b, int64_t e) {
      float acc[256];
      for (int64_t v0 = b; v0 < e; v0 += 256) {
        const int64_t w = std::min<int64_t>(256, e - v0);
        std::fill(acc, acc + w, 0.f);
        for (int64_t r = 0; r < rows; ++r) {
          const float* row = dl + r * V + v0;
#pragma omp simd
          for (int64_t v = 0; v < w; ++v) acc[v] += row[v];
        }
        for (int64_t v = 0; v < w; ++v) g.dbias[v0 + v] += acc[v];
      }
    });
  }
}

void NoChunkStep(const Chunk&) {}

// ============================================================================================ forward
Napi::Value LinearLogprobForward(const Napi::CallbackInfo& info) {
  Params p(info, "linearLogprobForward");
  const Problem pr = ParseCommon(p);
  const ForwardOut o = ParseForwardOut(p, pr.n);
  if (pr.n == 0) return p.env().Undefined();

  Scratch logits(p, Extent(p, {pr.chunk, pr.V}), "[chunk, vocab] logits buffer");
  const bool avx2 = ActiveIsa() >= Isa::Avx2;
  // Every row, in order (contiguous chunks: no packing).
  ForEachChunk(pr, nullptr, pr.n, pr.chunk, logits.get(), nullptr,
               [&](float* z, int64_t i) { ForwardRowOut(pr, o, avx2, z, i); }, NoChunkStep);
  return p.env().Undefined();
}

// ============================================================================================ backward
Napi::Value LinearLogprobBackward(const Napi::CallbackInfo& info) {
  Params p(info, "linearLogprobBackward");
  const Problem pr = ParseCommon(p);
  const float* lse = p.f32("lse", Extent(p, {pr.n})).data;
  const GradOut g = ParseGradOut(p, pr);
  if (pr.n == 0) return p.env().Undefined();

  const std::vector<int64_t> active = SplitRows(pr, g, nullptr);
  const int64_t A = static_cast<int64_t>(active.size());
  if (A == 0) return p.env().Undefined();

  const int64_t C = std::min(pr.chunk, A);
  Scratch dlogits(p, Extent(p, {C, pr.V}), "[chunk, vocab] logits buffer");
  Scratch hbuf(p, Extent(p, {C, pr.H}), "packed hidden rows");
  Scratch dhbuf(p, Extent(p, {C, pr.H}), "packed dhidden rows");
  const bool avx2 = ActiveIsa() >= Isa::Avx2;
  // Recompute each chunk's logits, turn them into dlogits in place, then the gradient GEMMs.
  ForEachChunk(
      pr, active.data(), A, C, dlogits.get(), hbuf.get(),
      [&](float* z, int64_t i) {
        ScaleRow(pr, avx2, z);
        GradRowOut(pr, g, avx2, z, i, lse[i]);
      },
      [&](const Chunk& ck) { ChunkGradients(pr, g, ck, dhbuf.get()); });
  return p.env().Undefined();
}

// ============================================================================================ fused
Napi::Value LinearLogprobFused(const Napi::CallbackInfo& info) {
  Params p(info, "linearLogprobFused");
  const Problem pr = ParseCommon(p);
  const ForwardOut o = ParseForwardOut(p, pr.n);
  const GradOut g = ParseGradOut(p, pr);
  if (pr.n == 0) return p.env().Undefined();

  std::vector<int64_t> rest;
  const std::vector<int64_t> active = SplitRows(pr, g, &rest);
  const int64_t A = static_cast<int64_t>(active.size()), R = static_cast<int64_t>(rest.size());
  const int64_t C = pr.chunk;  // (<= N) the active rows chunk as in the backward: min(C, A) would too
  Scratch logits(p, Extent(p, {C, pr.V}), "[chunk, vocab] logits buffer");
  Scratch hbuf(p, Extent(p, {C, pr.H}), "packed hidden rows");
  Scratch dhbuf(p, Extent(p, {std::min(C, A), pr.H}), "packed dhidden rows");
  const bool avx2 = ActiveIsa() >= Isa::Avx2;
  // Rows with a gradient: the forward row pass leaves the scaled logits and writes lse, from which the
  // same row pass as the backward's makes dlogits; then the gradient GEMMs.
  ForEachChunk(
      pr, active.data(), A, C, logits.get(), hbuf.get(),
      [&](float* z, int64_t i) {
        ForwardRowOut(pr, o, avx2, z, i);
        GradRowOut(pr, g, avx2, z, i, o.lse[i]);
      },
      [&](const Chunk& ck) { ChunkGradients(pr, g, ck, dhbuf.get()); });
  // The other rows (ignored targets, zero dlogprob) need the forward outputs only.
  ForEachChunk(pr, rest.data(), R, C, logits.get(), hbuf.get(),
               [&](float* z, int64_t i) { ForwardRowOut(pr, o, avx2, z, i); }, NoChunkStep);
  return p.env().Undefined();
}

}  // namespace

void RegisterLinearLogprob(Napi::Env env, Napi::Object exports) {
  exports.Set("linearLogprobForward", Napi::Function::New(env, LinearLogprobForward));
  exports.Set("linearLogprobBackward", Napi::Function::New(env, LinearLogprobBackward));
  exports.Set("linearLogprobFused", Napi::Function::New(env, LinearLogprobFused));
}

}  // namespace alignkit
