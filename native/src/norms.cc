// RMSNorm, LayerNorm and (log-)softmax over the last dimension, forward and backward (float32).
//
// Layout: x, y, dy, dx are [rows, dim] row-major; weight, bias, dweight, dbias are [dim]; rstd, mean are [rows].
//
// Threading: rows are independent, so forward passes and dx are split over row ranges freely. The only
// cross-row reductions are dweight / dbias. Those use a FIXED partition of the rows into at most
// kRowBlocks contiguous blocks (it depends on `rows` only, never on the thread count); each block sums
// into its own partial buffer, and the partials are added in block order. So the results are
// bit-identical for any number of threads.
//
// Precision: everything is float32 with a fixed summation order per row (what PyTorch's float32 CPU
// kernels do too); the JS reference accumulates in float64 and the tests compare within tolerance.
//
// SIMD: RMSNorm / LayerNorm are plain `#pragma omp simd` loops in always-inline bodies that are
// instantiated twice, once in an avx2+fma function and once portable, and picked by ActiveIsa() at run
// time. Softmax needs a vector exp(), so it has explicit AVX2 intrinsics plus a scalar portable path.
// (An AVX-512 CPU runs the AVX2 code: these kernels are memory-bound, wider vectors buy little.)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "simd_avx2.h"

namespace alignkit {
namespace {

using namespace simd;  // Exp8, TailMask, HSum, HMax

#define AK_INLINE inline __attribute__((always_inline))
#define AK_AVX2 __attribute__((target("avx2,fma")))

bool UseAvx2() { return ActiveIsa() >= Isa::Avx2; }

// Rows per task for row-independent work: about 16K elements per task amortises the hand-off to the pool.
int64_t RowGrain(int64_t dim) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)); }

// The fixed row partition for cross-row reductions (see the file comment).
constexpr int64_t kRowBlocks = 64;
struct RowBlocks {
  int64_t rows, count;
  explicit RowBlocks(int64_t r) : rows(r), count(std::min(r, kRowBlocks)) {}
  int64_t begin(int64_t b) const { return b * rows / count; }
  int64_t end(int64_t b) const { return (b + 1) * rows / count; }
};

// out[j] += sum over b = 0, 1, ... of partial[b * dim + j]  (block order fixed; parallel over columns).
void AddPartials(const float* partial, int64_t blocks, int64_t dim, float* out) {
  ParallelRange(dim, 4096, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float s = 0.f;
      for (int64_t b = 0; b < blocks; ++b) s += partial[b * dim + j];
      out[j] += s;
    }
  });
}

std::vector<float> ZeroPartials(const Params& p, int64_t blocks, int64_t dim) {
  try {
    return std::vector<float>(static_cast<size_t>(blocks * dim), 0.f);
  } catch (const std::bad_alloc&) {
    p.fail("out of memory for the per-block gradient partials");
  }
}

// ============================================================================================ RMSNorm
// forward:  rstd = 1 / sqrt(mean(x^2) + eps);  y = x * rstd * w
// backward: dx = rstd * dy * w - rstd^3 / dim * x * sum(dy * w * x);  dweight += dy * x * rstd

struct RmsFwdArgs {
  const float* x;
  const float* w;
  float* y;
  float* rstd;
  int64_t dim;
  float eps;
};

AK_INLINE void RmsFwdRows(const RmsFwdArgs& a, int64_t r0, int64_t r1) {
  const int64_t D = a.dim;
  const float* w = a.w;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * D;
    float* y = a.y + r * D;  // may alias x: every element is read before it is written
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < D; ++j) ss += x[j] * x[j];
    const float s = 1.f / std::sqrt(ss / static_cast<float>(D) + a.eps);
    a.rstd[r] = s;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) y[j] = x[j] * s * w[j];
  }
}
AK_AVX2 void RmsFwdAvx2(const RmsFwdArgs& a, int64_t r0, int64_t r1) { RmsFwdRows(a, r0, r1); }
void RmsFwdPortable(const RmsFwdArgs& a, int64_t r0, int64_t r1) { RmsFwdRows(a, r0, r1); }

struct RmsBwdArgs {
  const float* x;
  const float* w;
  const float* rstd;
  const float* dy;
  float* dx;
  float* dwPartial;  // [blocks, dim]
  int64_t dim;
};

// Rows [r0, r1) of one block; their dweight contributions go to that block's partial row `pw`.
AK_INLINE void RmsBwdRows(const RmsBwdArgs& a, int64_t r0, int64_t r1, float* pw) {
  const int64_t D = a.dim;
  const float* w = a.w;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * D;
    const float* dy = a.dy + r * D;
    float* dx = a.dx + r * D;
    const float s = a.rstd[r];
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < D; ++j) dot += dy[j] * w[j] * x[j];
    const float c = s * s * s * dot / static_cast<float>(D);
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      const float g = dy[j];  // dx may alias dy
      pw[j] += g * x[j] * s;
      dx[j] = s * g * w[j] - c * x[j];
    }
  }
}
AK_AVX2 void RmsBwdAvx2(const RmsBwdArgs& a, int64_t r0, int64_t r1, float* pw) { RmsBwdRows(a, r0, r1, pw); }
void RmsBwdPortable(const RmsBwdArgs& a, int64_t r0, int64_t r1, float* pw) { RmsBwdRows(a, r0, r1, pw); }

Napi::Value RmsNormForward(const Napi::CallbackInfo& info) {
  Params p(info, "rmsnormForward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  RmsFwdArgs a;
  a.x = p.f32("x", rd).data;
  a.w = p.f32("weight", Extent(p, {dim})).data;
  a.y = p.f32("y", rd).data;
  a.rstd = p.f32("rstd", Extent(p, {rows})).data;
  a.dim = dim;
  a.eps = static_cast<float>(p.number("eps"));
  if (rows == 0) return p.env().Undefined();
  auto fn = UseAvx2() ? RmsFwdAvx2 : RmsFwdPortable;
  ParallelRange(rows, RowGrain(dim), [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return p.env().Undefined();
}

Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  Params p(info, "rmsnormBackward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  RmsBwdArgs a;
  a.x = p.f32("x", rd).data;
  a.w = p.f32("weight", Extent(p, {dim})).data;
  a.rstd = p.f32("rstd", Extent(p, {rows})).data;
  a.dy = p.f32("dy", rd).data;
  a.dx = p.f32("dx", rd).data;
  float* dweight = p.f32("dweight", Extent(p, {dim})).data;
  a.dim = dim;
  if (rows == 0) return p.env().Undefined();
  const RowBlocks blocks(rows);
  std::vector<float> partial = ZeroPartials(p, blocks.count, dim);
  a.dwPartial = partial.data();
  auto fn = UseAvx2() ? RmsBwdAvx2 : RmsBwdPortable;
  ParallelFor(blocks.count, [&](int64_t b, int) { fn(a, blocks.begin(b), blocks.end(b), partial.data() + b * dim); });
  AddPartials(partial.data(), blocks.count, dim, dweight);
  return p.env().Undefined();
}

// ============================================================================================ LayerNorm
// forward:  mean, rstd = 1 / sqrt(biased var + eps) (two-pass);  y = (x - mean) * rstd * w + b
// backward: xhat = (x - mean) * rstd, g = dy * w:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
//           dweight += dy * xhat;  dbias += dy

struct LnFwdArgs {
  const float* x;
  const float* w;
  const float* b;  // may be null
  float* y;
  float* mean;
  float* rstd;
  int64_t dim;
  float eps;
};

AK_INLINE void LnFwdRows(const LnFwdArgs& a, int64_t r0, int64_t r1) {
  const int64_t D = a.dim;
  const float* w = a.w;
  const float* bias = a.b;
  const float invD = 1.f / static_cast<float>(D);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * D;
    float* y = a.y + r * D;  // may alias x
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < D; ++j) sum += x[j];
    const float m = sum / static_cast<float>(D);
    float var = 0.f;  // second pass around the mean: no catastrophic cancellation
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < D; ++j) var += (x[j] - m) * (x[j] - m);
    const float s = 1.f / std::sqrt(var * invD + a.eps);
    a.mean[r] = m;
    a.rstd[r] = s;
    if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) y[j] = (x[j] - m) * s * w[j] + bias[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) y[j] = (x[j] - m) * s * w[j];
    }
  }
}
AK_AVX2 void LnFwdAvx2(const LnFwdArgs& a, int64_t r0, int64_t r1) { LnFwdRows(a, r0, r1); }
void LnFwdPortable(const LnFwdArgs& a, int64_t r0, int64_t r1) { LnFwdRows(a, r0, r1); }

struct LnBwdArgs {
  const float* x;
  const float* w;
  const float* mean;
  const float* rstd;
  const float* dy;
  float* dx;
  int64_t dim;
};

AK_INLINE void LnBwdRows(const LnBwdArgs& a, int64_t r0, int64_t r1, float* pw, float* pb) {
  const int64_t D = a.dim;
  const float* w = a.w;
  const float invD = 1.f / static_cast<float>(D);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * D;
    const float* dy = a.dy + r * D;
    float* dx = a.dx + r * D;
    const float m = a.mean[r], s = a.rstd[r];
    float gsum = 0.f, gxsum = 0.f;
#pragma omp simd reduction(+ : gsum, gxsum)
    for (int64_t j = 0; j < D; ++j) {
      const float g = dy[j] * w[j];
      gsum += g;
      gxsum += g * ((x[j] - m) * s);
    }
    const float ga = gsum * invD, gb = gxsum * invD;
    if (pb) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) pb[j] += dy[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      const float xhat = (x[j] - m) * s;
      const float d = dy[j];  // dx may alias dy
      pw[j] += d * xhat;
      dx[j] = s * (d * w[j] - ga - xhat * gb);
    }
  }
}
AK_AVX2 void LnBwdAvx2(const LnBwdArgs& a, int64_t r0, int64_t r1, float* pw, float* pb) { LnBwdRows(a, r0, r1, pw, pb); }
void LnBwdPortable(const LnBwdArgs& a, int64_t r0, int64_t r1, float* pw, float* pb) { LnBwdRows(a, r0, r1, pw, pb); }

Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  Params p(info, "layernormForward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  LnFwdArgs a;
  a.x = p.f32("x", rd).data;
  a.w = p.f32("weight", Extent(p, {dim})).data;
  a.b = p.f32("bias", Extent(p, {dim}), /*optional=*/true).data;
  a.y = p.f32("y", rd).data;
  a.mean = p.f32("mean", Extent(p, {rows})).data;
  a.rstd = p.f32("rstd", Extent(p, {rows})).data;
  a.dim = dim;
  a.eps = static_cast<float>(p.number("eps"));
  if (rows == 0) return p.env().Undefined();
  auto fn = UseAvx2() ? LnFwdAvx2 : LnFwdPortable;
  ParallelRange(rows, RowGrain(dim), [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
  return p.env().Undefined();
}

Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Params p(info, "layernormBackward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  LnBwdArgs a;
  a.x = p.f32("x", rd).data;
  a.w = p.f32("weight", Extent(p, {dim})).data;
  a.mean = p.f32("mean", Extent(p, {rows})).data;
  a.rstd = p.f32("rstd", Extent(p, {rows})).data;
  a.dy = p.f32("dy", rd).data;
  a.dx = p.f32("dx", rd).data;
  float* dweight = p.f32("dweight", Extent(p, {dim})).data;
  float* dbias = p.f32("dbias", Extent(p, {dim}), /*optional=*/true).data;
  a.dim = dim;
  if (rows == 0) return p.env().Undefined();
  const RowBlocks blocks(rows);
  std::vector<float> pw = ZeroPartials(p, blocks.count, dim);
  std::vector<float> pb = dbias ? ZeroPartials(p, blocks.count, dim) : std::vector<float>();
  auto fn = UseAvx2() ? LnBwdAvx2 : LnBwdPortable;
  ParallelFor(blocks.count, [&](int64_t b, int) {
    fn(a, blocks.begin(b), blocks.end(b), pw.data() + b * dim, dbias ? pb.data() + b * dim : nullptr);
  });
  AddPartials(pw.data(), blocks.count, dim, dweight);
  if (dbias) AddPartials(pb.data(), blocks.count, dim, dbias);
  return p.env().Undefined();
}

// ============================================================================================ softmax
// forward:  m = max(x);  softmax: y = exp(x - m) / sum(exp(x - m));  log: y = (x - m) - log(sum(exp(x - m)))
// backward: softmax: dx = y * (dy - sum(dy * y));  log: dx = dy - exp(y) * sum(dy)

// AVX2 helpers (Exp8, TailMask, HSum, HMax) come from simd_avx2.h.

// Masked load whose inactive lanes read as `fill`.
AK_AVX2 AK_INLINE __m256 LoadTail(const float* p, __m256i mask, __m256 fill) {
  return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask));
}

AK_AVX2 float RowMaxAvx2(const float* x, int64_t D) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m = ninf;
  int64_t j = 0;
  for (; j + 8 <= D; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
  if (j < D) m = _mm256_max_ps(m, LoadTail(x + j, TailMask(D - j), ninf));
  return HMax(m);
}

AK_AVX2 void SoftmaxFwdRowAvx2(const float* x, float* y, int64_t D, bool log) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const float m = RowMaxAvx2(x, D);
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= D; j += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
    if (!log) _mm256_storeu_ps(y + j, e);  // y may alias x: this element of x is no longer needed
    acc = _mm256_add_ps(acc, e);
  }
  const __m256i tm = j < D ? TailMask(D - j) : _mm256_setzero_si256();
  if (j < D) {
    const __m256 e = Exp8(_mm256_sub_ps(LoadTail(x + j, tm, ninf), vm));  // padding lanes: exp(-inf) = 0
    if (!log) _mm256_maskstore_ps(y + j, tm, e);
    acc = _mm256_add_ps(acc, e);
  }
  const float sum = HSum(acc);
  if (log) {
    // (x - m) - log(sum), not x - (m + log(sum)): x - m is exact near the max, so large logits keep precision
    const __m256 l = _mm256_set1_ps(std::log(sum));
    for (j = 0; j + 8 <= D; j += 8) _mm256_storeu_ps(y + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm), l));
    if (j < D) _mm256_maskstore_ps(y + j, tm, _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, tm), vm), l));
  } else {
    const __m256 vs = _mm256_set1_ps(sum);
    for (j = 0; j + 8 <= D; j += 8) _mm256_storeu_ps(y + j, _mm256_div_ps(_mm256_loadu_ps(y + j), vs));
    if (j < D) _mm256_maskstore_ps(y + j, tm, _mm256_div_ps(_mm256_maskload_ps(y + j, tm), vs));
  }
}

AK_AVX2 void SoftmaxBwdRowAvx2(const float* y, const float* dy, float* dx, int64_t D, bool log) {
  const __m256i tm = (D & 7) ? TailMask(D & 7) : _mm256_setzero_si256();
  const int64_t full = D & ~int64_t{7};
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  if (log) {  // dx = dy - exp(y) * sum(dy)
    for (; j < full; j += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(dy + j));
    if (j < D) acc = _mm256_add_ps(acc, _mm256_maskload_ps(dy + j, tm));
    const __m256 s = _mm256_set1_ps(HSum(acc));
    for (j = 0; j < full; j += 8)
      _mm256_storeu_ps(dx + j, _mm256_fnmadd_ps(Exp8(_mm256_loadu_ps(y + j)), s, _mm256_loadu_ps(dy + j)));
    if (j < D)
      _mm256_maskstore_ps(dx + j, tm, _mm256_fnmadd_ps(Exp8(_mm256_maskload_ps(y + j, tm)), s, _mm256_maskload_ps(dy + j, tm)));
  } else {  // dx = y * (dy - sum(dy * y))
    for (; j < full; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(y + j), acc);
    if (j < D) acc = _mm256_fmadd_ps(_mm256_maskload_ps(dy + j, tm), _mm256_maskload_ps(y + j, tm), acc);
    const __m256 s = _mm256_set1_ps(HSum(acc));
    for (j = 0; j < full; j += 8)
      _mm256_storeu_ps(dx + j, _mm256_mul_ps(_mm256_loadu_ps(y + j), _mm256_sub_ps(_mm256_loadu_ps(dy + j), s)));
    if (j < D)
      _mm256_maskstore_ps(dx + j, tm, _mm256_mul_ps(_mm256_maskload_ps(y + j, tm), _mm256_sub_ps(_mm256_maskload_ps(dy + j, tm), s)));
  }
}

// ---- portable paths: scalar, same formulas.
void SoftmaxFwdRowPortable(const float* x, float* y, int64_t D, bool log) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < D; ++j) m = std::max(m, x[j]);
  float sum = 0.f;
  if (log) {
    for (int64_t j = 0; j < D; ++j) sum += std::exp(x[j] - m);
    const float l = std::log(sum);
    for (int64_t j = 0; j < D; ++j) y[j] = (x[j] - m) - l;
  } else {
    for (int64_t j = 0; j < D; ++j) {
      const float e = std::exp(x[j] - m);
      y[j] = e;  // y may alias x
      sum += e;
    }
    for (int64_t j = 0; j < D; ++j) y[j] /= sum;
  }
}

void SoftmaxBwdRowPortable(const float* y, const float* dy, float* dx, int64_t D, bool log) {
  float s = 0.f;
  if (log) {
    for (int64_t j = 0; j < D; ++j) s += dy[j];
    for (int64_t j = 0; j < D; ++j) dx[j] = dy[j] - std::exp(y[j]) * s;
  } else {
    for (int64_t j = 0; j < D; ++j) s += dy[j] * y[j];
    for (int64_t j = 0; j < D; ++j) dx[j] = y[j] * (dy[j] - s);
  }
}

Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  Params p(info, "softmaxForward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  const float* x = p.f32("x", rd).data;
  float* y = p.f32("y", rd).data;
  const bool log = p.boolean("log");
  if (rows == 0) return p.env().Undefined();
  auto fn = UseAvx2() ? SoftmaxFwdRowAvx2 : SoftmaxFwdRowPortable;
  ParallelRange(rows, RowGrain(dim), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(x + r * dim, y + r * dim, dim, log);
  });
  return p.env().Undefined();
}

Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Params p(info, "softmaxBackward");
  const int64_t rows = p.integer("rows", 0), dim = p.integer("dim", 1);
  const size_t rd = Extent(p, {rows, dim});
  const float* y = p.f32("y", rd).data;
  const float* dy = p.f32("dy", rd).data;
  float* dx = p.f32("dx", rd).data;
  const bool log = p.boolean("log");
  if (rows == 0) return p.env().Undefined();
  auto fn = UseAvx2() ? SoftmaxBwdRowAvx2 : SoftmaxBwdRowPortable;
  ParallelRange(rows, RowGrain(dim), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(y + r * dim, dy + r * dim, dx + r * dim, dim, log);
  });
  return p.env().Undefined();
}

}  // namespace

void RegisterNorms(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnormForward", Napi::Function::New(env, RmsNormForward));
  exports.Set("rmsnormBackward", Napi::Function::New(env, RmsNormBackward));
  exports.Set("layernormForward", Napi::Function::New(env, LayerNormForward));
  exports.Set("layernormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("softmaxForward", Napi::Function::New(env, SoftmaxForward));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward));
}

}  // namespace alignkit
