// SGEMM: C_b = alpha * op(A_b) @ op(B_b) + beta * C_b, row-major, float32.
//
// Design (BLIS / GotoBLAS style):
//   for jc in N by NC:                         one column panel at a time
//     for kb in K by (several KC blocks):      as many KC blocks as fit the packed-panel budget
//       one ParallelFor: first pack op(B)[kb.., jc..] into KC x NR slivers (shared; lives in L3), then
//       over (M block, column chunk), each task waiting for the B packing after packing its first A block:
//         for pc in the kb blocks:             in K order, never split across threads
//           pack A block [MC x KC] into MR-tall row slivers (per thread; lives in L2)
//           for jr in the chunk by NR:         one B sliver [KC x NR] stays in L1
//             for ir in MC by MR:              micro-kernel: MR x NR register tile, KC rank-1 updates
// Packing reads op(A) / op(B) through the transpose flags, so one micro-kernel serves all four cases.
// Packed slivers are zero-padded to MR / NR, so the micro-kernel always runs full width; a partial tile
// at the matrix edge is written through a scratch tile with the same arithmetic.
// Micro-kernels: AVX2+FMA 6x16 (12 ymm accumulators), AVX-512 12x32 (24 zmm), portable 4x16.
//
// Determinism: the value of each C element depends only on the shape, the ISA and KC: it is the sum of
// the per-KC-block partial products, added to C in K order, each partial product accumulated in one
// register lane in p order. Which thread computed a tile, or how tiles were grouped into tasks (MC, NC,
// chunks adapt to the thread count), never changes any reduction order, so 1 and N threads give
// bit-identical results.
//
// Small problems and GEMV-like shapes (m <= 4 or n <= 4, as in token-by-token decoding or a scalar
// value head) take a direct path without packing: packing costs O(MK + KN) memory traffic that such
// shapes cannot amortise.
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <new>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ALIGNKIT_X86 1
#endif

#include "common.h"

namespace alignkit {
namespace {

// ------------------------------------------------------------------------------------------- buffers
// A growable 64-byte aligned scratch buffer. One per thread and role (packed A, packed B): a worker
// packs A while the calling thread's packed B panel is read by everyone, and a GEMM running serially
// inside another kernel's ParallelFor task uses that worker's own buffers.
class AlignedBuffer {
 public:
  ~AlignedBuffer() { std::free(p_); }
  float* get(size_t n) {
    if (n > cap_) {
      std::free(p_);
      // Large packing buffers ask for transparent huge pages: a packed panel is walked sliver by sliver
      // and 4 KiB pages would cost a TLB miss every few kernel calls.
      const size_t align = n * sizeof(float) >= (1u << 20) ? (2u << 20) : 64;
      size_t bytes = ((n * sizeof(float) + align - 1) / align) * align;
      p_ = static_cast<float*>(std::aligned_alloc(align, bytes));
#ifdef MADV_HUGEPAGE
      if (p_ && align > 64) madvise(p_, bytes, MADV_HUGEPAGE);
#endif
      if (!p_) {
        cap_ = 0;
        throw std::bad_alloc();
      }
      cap_ = n;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};
thread_local AlignedBuffer tPackA, tPackB, tScratch;

// ParallelFor, except that an exception in a task (in practice: a scratch buffer allocation failing) is
// carried back and rethrown on the calling thread; escaping a pool worker it would end the process.
template <class F>
void ParallelForChecked(int64_t numTasks, const F& fn) {
  std::mutex mu;
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  ParallelFor(numTasks, [&](int64_t task, int thread) {
    if (failed.load(std::memory_order_relaxed)) return;
    try {
      fn(task, thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  });
  if (error) std::rethrow_exception(error);
}

// Element (i, p) of op(A) and (p, j) of op(B).
inline const float* APtr(const float* a, int64_t lda, bool transA, int64_t i, int64_t p) {
  return transA ? a + p * lda + i : a + i * lda + p;
}
inline const float* BPtr(const float* b, int64_t ldb, bool transB, int64_t p, int64_t j) {
  return transB ? b + j * ldb + p : b + p * ldb + j;
}

// C = beta * C over an m x n tile (beta == 0 writes zeros, ignoring NaNs already in C).
void ScaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

// ------------------------------------------------------------------------------------------- packing
// Packed A: for each MR-row sliver, kc columns of MR contiguous values: dst[p*MR + r] = op(A)(i0+r, p0+p).
template <int MR>
void PackA(const float* a, int64_t lda, bool transA, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t s = 0; s < mc; s += MR) {
    const int mr = static_cast<int>(std::min<int64_t>(MR, mc - s));
    float* d = dst + s * kc;
    if (transA) {
      // op(A) rows are contiguous along i in storage: each p copies MR adjacent values.
      const float* src = APtr(a, lda, true, i0 + s, p0);
      if (mr == MR) {
        for (int64_t p = 0; p < kc; ++p) {
          const float* sp = src + p * lda;
#pragma omp simd
          for (int r = 0; r < MR; ++r) d[p * MR + r] = sp[r];
        }
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          const float* sp = src + p * lda;
          for (int r = 0; r < MR; ++r) d[p * MR + r] = r < mr ? sp[r] : 0.0f;
        }
      }
    } else {
      // Rows of A are contiguous along p: read MR streams, interleave them.
      const float* rows[MR];
      for (int r = 0; r < MR; ++r) rows[r] = APtr(a, lda, false, i0 + s + std::min(r, mr - 1), p0);
      if (mr == MR) {
        for (int64_t p = 0; p < kc; ++p)
          for (int r = 0; r < MR; ++r) d[p * MR + r] = rows[r][p];
      } else {
        for (int64_t p = 0; p < kc; ++p)
          for (int r = 0; r < MR; ++r) d[p * MR + r] = r < mr ? rows[r][p] : 0.0f;
      }
    }
  }
}

// Packed B: for each NR-column sliver, kc rows of NR contiguous values: dst[p*NR + j] = op(B)(p0+p, j0+j).
// Packs slivers [s0, s1) of the panel that starts at column j0 and has nc columns.
template <int NR>
void PackB(const float* b, int64_t ldb, bool transB, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t s0,
           int64_t s1, float* dst) {
  if (!transB) {
    // Rows of B are contiguous: copy up to 8 slivers' worth of each row at a time (a 512-byte run for
    // NR = 16) rather than walking down the rows one 64-byte piece at a time.
    const int64_t sFull = std::min(s1, nc / NR);
    for (int64_t g = s0; g < sFull; g += 8) {
      const int64_t gEnd = std::min(sFull, g + 8);
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = BPtr(b, ldb, false, p0 + p, j0 + g * NR);
        for (int64_t s = g; s < gEnd; ++s) std::memcpy(dst + s * NR * kc + p * NR, src + (s - g) * NR, sizeof(float) * NR);
      }
    }
    for (int64_t s = std::max(s0, sFull); s < s1; ++s) {  // the partial last sliver, zero-padded
      const int64_t js = s * NR;
      const int nr = static_cast<int>(nc - js);
      const float* src = BPtr(b, ldb, false, p0, j0 + js);
      float* d = dst + js * kc;
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) d[p * NR + j] = j < nr ? src[p * ldb + j] : 0.0f;
    }
    return;
  }
  // B is stored [N, K]: column j of op(B) is a contiguous row. Read NR streams, interleave them.
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t js = s * NR;
    const int nr = static_cast<int>(std::min<int64_t>(NR, nc - js));
    float* d = dst + js * kc;
    const float* cols[NR];
    for (int j = 0; j < NR; ++j) cols[j] = BPtr(b, ldb, true, p0, j0 + js + std::min(j, nr - 1));
    if (nr == NR) {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) d[p * NR + j] = cols[j][p];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) d[p * NR + j] = j < nr ? cols[j][p] : 0.0f;
    }
  }
}

// Writes an accumulator tile held in `t` (MR x NR, row stride NR) to the mr x nr corner of C.
// Same arithmetic as the vector stores: c = alpha*acc (beta == 0) or fma(alpha, acc, beta*c).
template <int NR>
void StoreEdgeFma(const float* t, int mr, int nr, float* c, int64_t ldc, float alpha, float beta) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float acc = t[i * NR + j];
      c[i * ldc + j] = beta == 0.0f ? alpha * acc : std::fma(alpha, acc, beta * c[i * ldc + j]);
    }
}

// ------------------------------------------------------------------------------------------- micro-kernels
// Every micro-kernel: acc[MR][NR] = sum over p < kc of a[p*MR + i] * b[p*NR + j], in p order, one
// accumulator per element; then C = alpha*acc + beta*C on the mr x nr valid corner.
// `pf` / `pfLines`: cache lines of the next B sliver to pull into L2 meanwhile (see GemmPacked).
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                             float beta, int mr, int nr, const float* pf, int64_t pfLines);

// Portable: plain C++ the compiler vectorises (SSE2 on baseline x86-64). No FMA: baseline targets lack
// it and a software fma would be far slower; the edge store uses the same expression.
constexpr int kPortMR = 4, kPortNR = 16;
void KernelPortable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                    int mr, int nr, const float*, int64_t) {
  alignas(64) float acc[kPortMR][kPortNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* bp = b + p * kPortNR;
    const float* ap = a + p * kPortMR;
    for (int i = 0; i < kPortMR; ++i) {
      const float ai = ap[i];
#pragma omp simd
      for (int j = 0; j < kPortNR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < nr; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

#if ALIGNKIT_X86
// The SIMD micro-kernels name every accumulator explicitly (through the row macros below): with an array
// of vectors GCC keeps the accumulators in memory and the kernel runs at a fraction of the FMA peak.
// Row i of the tile lives in c<i>0 (columns 0..W-1) and c<i>1 (columns W..2W-1), W = vector width.
#define AK_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define AK_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

// AVX2 + FMA: 6 x 16 tile in 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
// Each k step: 2 aligned loads of B, 6 broadcasts of A, 12 FMAs.
constexpr int kAvx2MR = 6, kAvx2NR = 16;
__attribute__((target("avx2,fma"))) void KernelAvx2(int64_t kc, const float* __restrict a, const float* __restrict b,
                                                    float* c, int64_t ldc, float alpha, float beta, int mr, int nr,
                                                    const float* pf, int64_t pfLines) {
#define AK_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define AK_PREFETCH(i)                                                                 \
  _mm_prefetch(reinterpret_cast<const char*>(c + (i) * ldc), _MM_HINT_T0);             \
  _mm_prefetch(reinterpret_cast<const char*>(c + (i) * ldc + 15), _MM_HINT_T0);
#define AK_FMA(i)                                        \
  {                                                      \
    const __m256 ai = _mm256_broadcast_ss(a + (i));      \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);          \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);          \
  }
#define AK_STORE0(i)                                          \
  _mm256_storeu_ps(c + (i) * ldc, _mm256_mul_ps(va, c##i##0)); \
  _mm256_storeu_ps(c + (i) * ldc + 8, _mm256_mul_ps(va, c##i##1));
#define AK_STORE(i)                                                                                             \
  _mm256_storeu_ps(c + (i) * ldc, _mm256_fmadd_ps(va, c##i##0, _mm256_mul_ps(vb, _mm256_loadu_ps(c + (i) * ldc)))); \
  _mm256_storeu_ps(c + (i) * ldc + 8,                                                                           \
                   _mm256_fmadd_ps(va, c##i##1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + (i) * ldc + 8))));
#define AK_SPILL(i)                              \
  _mm256_store_ps(t + (i) * 16, c##i##0);        \
  _mm256_store_ps(t + (i) * 16 + 8, c##i##1);
  AK_ROWS6(AK_DECL)
  AK_ROWS6(AK_PREFETCH)  // the C tile is needed after the loop: start fetching it now
  for (int64_t l = 0; l < pfLines; ++l) _mm_prefetch(reinterpret_cast<const char*>(pf + l * 16), _MM_HINT_T1);
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    AK_ROWS6(AK_FMA)
    a += 6;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (mr == 6 && nr == 16) {
    if (beta == 0.0f) {
      AK_ROWS6(AK_STORE0)
    } else {
      AK_ROWS6(AK_STORE)
    }
  } else {
    alignas(64) float t[6 * 16];
    AK_ROWS6(AK_SPILL)
    StoreEdgeFma<16>(t, mr, nr, c, ldc, alpha, beta);
  }
#undef AK_DECL
#undef AK_PREFETCH
#undef AK_FMA
#undef AK_STORE0
#undef AK_STORE
#undef AK_SPILL
}

// AVX2 packing. The two gather cases (A not transposed: interleave 6 rows; B transposed: interleave 16
// rows) use 8 x 8 register transposes instead of one scalar per element; A transposed copies 6-float
// runs with 8-wide stores; B not transposed is a plain copy (generic code).
__attribute__((target("avx2,fma"), always_inline)) inline void Transpose8x8(__m256& r0, __m256& r1, __m256& r2,
                                                                             __m256& r3, __m256& r4, __m256& r5,
                                                                             __m256& r6, __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
  r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
  r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
  r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
  r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Needs 8 floats of slack after the packed block: each 6-value row is written with an 8-wide store
// whose last 2 lanes the next store (or the next sliver, packed later) overwrites.
__attribute__((target("avx2,fma"))) void PackAAvx2(const float* a, int64_t lda, bool transA, int64_t i0, int64_t mc,
                                                   int64_t p0, int64_t kc, float* dst) {
  const int64_t full = mc / kAvx2MR * kAvx2MR;
  if (transA) {
    // op(A) rows are storage columns. Walk the storage rows p in order (each a contiguous run of mc
    // values, prefetched a few rows ahead: the rows are far apart) and deal each run out to the slivers,
    // 6 values apiece (a 4-wide and a 2-wide load, so nothing past the run is read).
    const int64_t segLines = (mc * static_cast<int64_t>(sizeof(float)) + 63) / 64 + 1;
    for (int64_t p = 0; p < kc; ++p) {
      const float* sp = a + (p0 + p) * lda + i0;
      if (p + 8 < kc)
        for (int64_t l = 0; l < segLines; ++l)
          _mm_prefetch(reinterpret_cast<const char*>(sp + 8 * lda + l * 16), _MM_HINT_T0);
      for (int64_t s = 0; s < full; s += kAvx2MR) {
        const __m128 lo = _mm_loadu_ps(sp + s);
        const __m128 hi = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(sp + s + 4)));
        float* d = dst + s * kc + p * kAvx2MR;
        if (p + 1 < kc) {  // 8 wide: the 2 extra lanes land where row p+1 of this sliver goes next
          _mm256_storeu_ps(d, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
        } else {  // the last row: exactly 6, the next sliver is already packed
          _mm_storeu_ps(d, lo);
          _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), hi);
        }
      }
    }
    if (full < mc) PackA<kAvx2MR>(a, lda, transA, i0 + full, mc - full, p0, kc, dst + full * kc);
    return;
  }
  for (int64_t s = 0; s < full; s += kAvx2MR) {
    const float* r = a + (i0 + s) * lda + p0;
    float* d = dst + s * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 x0 = _mm256_loadu_ps(r + p), x1 = _mm256_loadu_ps(r + lda + p), x2 = _mm256_loadu_ps(r + 2 * lda + p);
      __m256 x3 = _mm256_loadu_ps(r + 3 * lda + p), x4 = _mm256_loadu_ps(r + 4 * lda + p);
      __m256 x5 = _mm256_loadu_ps(r + 5 * lda + p), x6 = _mm256_setzero_ps(), x7 = _mm256_setzero_ps();
      Transpose8x8(x0, x1, x2, x3, x4, x5, x6, x7);
      float* dp = d + p * kAvx2MR;
      _mm256_storeu_ps(dp, x0);
      _mm256_storeu_ps(dp + 6, x1);
      _mm256_storeu_ps(dp + 12, x2);
      _mm256_storeu_ps(dp + 18, x3);
      _mm256_storeu_ps(dp + 24, x4);
      _mm256_storeu_ps(dp + 30, x5);
      _mm256_storeu_ps(dp + 36, x6);
      _mm256_storeu_ps(dp + 42, x7);
    }
    for (; p < kc; ++p)
      for (int i = 0; i < kAvx2MR; ++i) d[p * kAvx2MR + i] = r[i * lda + p];
  }
  if (full < mc) PackA<kAvx2MR>(a, lda, transA, i0 + full, mc - full, p0, kc, dst + full * kc);
}

__attribute__((target("avx2,fma"))) void PackBAvx2(const float* b, int64_t ldb, bool transB, int64_t j0, int64_t nc,
                                                   int64_t p0, int64_t kc, int64_t s0, int64_t s1, float* dst) {
  if (!transB) return PackB<kAvx2NR>(b, ldb, transB, j0, nc, p0, kc, s0, s1, dst);
  const int64_t fullEnd = std::min(s1, nc / kAvx2NR);  // slivers with all 16 columns present
  for (int64_t s = s0; s < fullEnd; ++s) {
    const float* r = b + (j0 + s * kAvx2NR) * ldb + p0;  // row j of storage = column j of op(B)
    float* d = dst + s * kAvx2NR * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      for (int h = 0; h < 2; ++h) {  // columns 0..7, then 8..15
        const float* rh = r + h * 8 * ldb + p;
        __m256 x0 = _mm256_loadu_ps(rh), x1 = _mm256_loadu_ps(rh + ldb), x2 = _mm256_loadu_ps(rh + 2 * ldb);
        __m256 x3 = _mm256_loadu_ps(rh + 3 * ldb), x4 = _mm256_loadu_ps(rh + 4 * ldb);
        __m256 x5 = _mm256_loadu_ps(rh + 5 * ldb), x6 = _mm256_loadu_ps(rh + 6 * ldb);
        __m256 x7 = _mm256_loadu_ps(rh + 7 * ldb);
        Transpose8x8(x0, x1, x2, x3, x4, x5, x6, x7);
        float* dp = d + p * kAvx2NR + h * 8;
        _mm256_store_ps(dp, x0);
        _mm256_store_ps(dp + 16, x1);
        _mm256_store_ps(dp + 32, x2);
        _mm256_store_ps(dp + 48, x3);
        _mm256_store_ps(dp + 64, x4);
        _mm256_store_ps(dp + 80, x5);
        _mm256_store_ps(dp + 96, x6);
        _mm256_store_ps(dp + 112, x7);
      }
    }
    for (; p < kc; ++p)
      for (int j = 0; j < kAvx2NR; ++j) d[p * kAvx2NR + j] = r[j * ldb + p];
  }
  const int64_t rest = std::max(s0, fullEnd);
  if (rest < s1) PackB<kAvx2NR>(b, ldb, transB, j0, nc, p0, kc, rest, s1, dst);
}

// AVX-512: the AVX2 kernel line for line with zmm registers, and twice the rows because there are 32 of
// them: 12 x 32 tile in 24 accumulators + 2 B vectors + 1 broadcast = 27 of 32 registers.
constexpr int kAvx512MR = 12, kAvx512NR = 32;
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void KernelAvx512(int64_t kc, const float* __restrict a,
                                                                           const float* __restrict b, float* c,
                                                                           int64_t ldc, float alpha, float beta,
                                                                           int mr, int nr, const float* pf,
                                                                           int64_t pfLines) {
#define AK_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define AK_PREFETCH(i)                                                                 \
  _mm_prefetch(reinterpret_cast<const char*>(c + (i) * ldc), _MM_HINT_T0);             \
  _mm_prefetch(reinterpret_cast<const char*>(c + (i) * ldc + 31), _MM_HINT_T0);
#define AK_FMA(i)                                        \
  {                                                      \
    const __m512 ai = _mm512_set1_ps(a[i]);              \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);          \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);          \
  }
#define AK_STORE0(i)                                           \
  _mm512_storeu_ps(c + (i) * ldc, _mm512_mul_ps(va, c##i##0)); \
  _mm512_storeu_ps(c + (i) * ldc + 16, _mm512_mul_ps(va, c##i##1));
#define AK_STORE(i)                                                                                             \
  _mm512_storeu_ps(c + (i) * ldc, _mm512_fmadd_ps(va, c##i##0, _mm512_mul_ps(vb, _mm512_loadu_ps(c + (i) * ldc)))); \
  _mm512_storeu_ps(c + (i) * ldc + 16,                                                                          \
                   _mm512_fmadd_ps(va, c##i##1, _mm512_mul_ps(vb, _mm512_loadu_ps(c + (i) * ldc + 16))));
#define AK_SPILL(i)                              \
  _mm512_store_ps(t + (i) * 32, c##i##0);        \
  _mm512_store_ps(t + (i) * 32 + 16, c##i##1);
  AK_ROWS12(AK_DECL)
  AK_ROWS12(AK_PREFETCH)
  for (int64_t l = 0; l < pfLines; ++l) _mm_prefetch(reinterpret_cast<const char*>(pf + l * 16), _MM_HINT_T1);
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    AK_ROWS12(AK_FMA)
    a += 12;
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  if (mr == 12 && nr == 32) {
    if (beta == 0.0f) {
      AK_ROWS12(AK_STORE0)
    } else {
      AK_ROWS12(AK_STORE)
    }
  } else {
    alignas(64) float t[12 * 32];
    AK_ROWS12(AK_SPILL)
    StoreEdgeFma<32>(t, mr, nr, c, ldc, alpha, beta);
  }
#undef AK_DECL
#undef AK_PREFETCH
#undef AK_FMA
#undef AK_STORE0
#undef AK_STORE
#undef AK_SPILL
}
#undef AK_ROWS6
#undef AK_ROWS12
#endif

// ------------------------------------------------------------------------------------------- driver
struct Config {
  int mr, nr;
  int64_t mc, kc, nc;  // mc and nc are targets: the driver evens them out over the matrix
  MicroKernel kernel;
  void (*packA)(const float*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, float*);
  void (*packB)(const float*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float*);
};

// Blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 MiB shared L3): a KC x NR B sliver (16 KiB at
// KC=256, NR=16) stays in L1 while the MC x KC packed A block (~150 KiB) streams from L2; the packed B
// panel (up to kPanelBytes) lives in L3.
Config ConfigFor(Isa isa) {
#if ALIGNKIT_X86
  if (isa == Isa::Avx512)
    // KC = 192: the 32-wide B sliver is then 24 KiB, still leaving L1 room for the streaming A sliver.
    return {kAvx512MR, kAvx512NR, 144, 192, 4096, KernelAvx512, PackA<kAvx512MR>, PackB<kAvx512NR>};
  if (isa == Isa::Avx2) return {kAvx2MR, kAvx2NR, 144, 256, 4096, KernelAvx2, PackAAvx2, PackBAvx2};
#endif
  (void)isa;
  return {kPortMR, kPortNR, 128, 256, 4096, KernelPortable, PackA<kPortMR>, PackB<kPortNR>};
}

// The packed B panel covers as many KC blocks as fit in this many bytes, so one pair of parallel
// regions (pack, compute) handles several K blocks: fewer thread hand-offs, and each task keeps its
// C block in cache across those K blocks.
constexpr int64_t kPanelBytes = 8 << 20;

struct Problem {
  bool transA, transB;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Spins until `done` reaches `target` (pausing, then yielding the core if the wait runs long).
void WaitFor(const std::atomic<int64_t>& done, int64_t target) {
  for (int spins = 0; done.load(std::memory_order_acquire) < target; ++spins) {
#if ALIGNKIT_X86
    if (spins < 4096) {
      _mm_pause();
      continue;
    }
#endif
    std::this_thread::yield();
  }
}

void GemmPacked(const Config& cf, const Problem& q) {
  const int64_t MR = cf.mr, NR = cf.nr;
  // K blocks of equal depth (576 = 3 x 192 rather than 256 + 256 + 64): a shallow last block pays the C tile
  // loads and stores of a full one for a fraction of the multiply-adds.
  const int64_t KC = CeilDiv(q.k, CeilDiv(q.k, cf.kc));
  const int threads = NumThreads();

  // M blocks: whole MR slivers; the count is rounded up to a multiple of the thread count so the tasks
  // divide evenly.
  const int64_t mSlivers = CeilDiv(q.m, MR);
  int64_t mBlocks = std::max<int64_t>(1, CeilDiv(mSlivers * MR, cf.mc));
  if (threads > 1 && mBlocks > 1) mBlocks = CeilDiv(mBlocks, threads) * threads;
  mBlocks = std::min(mBlocks, mSlivers);
  const int64_t slivPerBlock = CeilDiv(mSlivers, mBlocks);
  mBlocks = CeilDiv(mSlivers, slivPerBlock);
  const int64_t mcMax = slivPerBlock * MR;

  // N blocks of whole NR slivers, as even as possible, at most cf.nc wide.
  const int64_t nBlocks = CeilDiv(q.n, cf.nc);
  const int64_t ncMax = CeilDiv(CeilDiv(q.n, nBlocks), NR) * NR;
  // K super-blocks: as many KC blocks as the panel budget allows for an ncMax-wide panel.
  const int64_t kcPerPanel = std::max<int64_t>(1, kPanelBytes / (KC * ncMax * static_cast<int64_t>(sizeof(float))));
  const int64_t kbMax = kcPerPanel * KC;

  for (int64_t jc = 0; jc < q.n; jc += ncMax) {
    const int64_t nc = std::min(ncMax, q.n - jc);
    const int64_t nSlivers = CeilDiv(nc, NR);
    // Too few M blocks to feed every thread: also split the columns (in whole slivers).
    int64_t nChunks = 1;
    if (threads > 1 && mBlocks < 2 * threads) nChunks = std::min(nSlivers, CeilDiv(2 * threads, mBlocks));
    const int64_t slivPerChunk = CeilDiv(nSlivers, nChunks);
    nChunks = CeilDiv(nSlivers, slivPerChunk);

    for (int64_t kb = 0; kb < q.k; kb += kbMax) {
      const int64_t kbLen = std::min(kbMax, q.k - kb);
      const int64_t kBlocks = CeilDiv(kbLen, KC);
      // Packed panel: K block t (rows kb + t*KC ...) starts at t * KC * nSlivers * NR; within it, sliver s
      // starts at s * NR * kc.
      float* panel = tPackB.get(static_cast<size_t>(kbLen * nSlivers * NR));
      auto blockOf = [&](int64_t t) { return panel + t * KC * nSlivers * NR; };

      const int64_t groups = std::min<int64_t>(nSlivers, std::max<int64_t>(1, CeilDiv(4 * threads, kBlocks)));
      const int64_t perGroup = CeilDiv(nSlivers, groups);
      const int64_t packTasks = kBlocks * groups;
      std::atomic<int64_t> packsDone{0};
      auto packTask = [&](int64_t task) {
        const int64_t t = task / groups, g = task % groups;
        const int64_t pc = kb + t * KC, kc = std::min(KC, q.k - pc);
        const int64_t s0 = g * perGroup, s1 = std::min(nSlivers, s0 + perGroup);
        if (s0 < s1) cf.packB(q.b, q.ldb, q.transB, jc, nc, pc, kc, s0, s1, blockOf(t));
        packsDone.fetch_add(1, std::memory_order_release);
      };

      auto computeTask = [&](int64_t task) {
        const int64_t ib = task / nChunks, chunk = task % nChunks;
        const int64_t i0 = ib * mcMax, mc = std::min(mcMax, q.m - i0);
        if (mc <= 0) return;
        const int64_t s0 = chunk * slivPerChunk, s1 = std::min(nSlivers, s0 + slivPerChunk);
        const int64_t calls = CeilDiv(mc, MR);
        float* pa = tPackA.get(static_cast<size_t>(calls * MR * KC + 16));  // + slack, see PackAAvx2
        for (int64_t t = 0; t < kBlocks; ++t) {
          const int64_t pc = kb + t * KC, kc = std::min(KC, q.k - pc);
          const float beta = pc == 0 ? q.beta : 1.0f;  // later K blocks accumulate onto the first
          cf.packA(q.a, q.lda, q.transA, i0, mc, pc, kc, pa);
          if (t == 0) WaitFor(packsDone, packTasks);
          const float* pb = blockOf(t);
          // While sliver s is in use, the kernel calls spread over them prefetch sliver s+1 into L2;
          // otherwise every new sliver starts with a burst of misses to L3.
          const int64_t sliverLines = kc * NR * static_cast<int64_t>(sizeof(float)) / 64;
          const int64_t linesPerCall = CeilDiv(sliverLines, calls);
          for (int64_t s = s0; s < s1; ++s) {
            const int64_t j = s * NR;
            const int nr = static_cast<int>(std::min<int64_t>(NR, nc - j));
            const float* bs = pb + j * kc;
            const int64_t nextLines = s + 1 < s1 ? sliverLines : 0;
            for (int64_t ir = 0, call = 0; ir < mc; ir += MR, ++call) {
              const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
              const int64_t l0 = std::min(nextLines, call * linesPerCall);
              const int64_t l1 = std::min(nextLines, l0 + linesPerCall);
              cf.kernel(kc, pa + ir * kc, bs, q.c + (i0 + ir) * q.ldc + jc + j, q.ldc, q.alpha, beta, mr, nr,
                        l1 > l0 ? bs + NR * kc + l0 * 16 : bs, l1 - l0);
            }
          }
        }
      };
      // One parallel region: the B packing tasks come first in task order, so every one of them has been
      // claimed by a running thread before any compute task starts, and a compute task may wait for them
      // (after packing its A block). Pack tasks never throw and always run, so the wait always ends.
      std::mutex mu;
      std::exception_ptr error;
      std::atomic<bool> failed{false};
      ParallelFor(packTasks + mBlocks * nChunks, [&](int64_t task, int) {
        if (task < packTasks) return packTask(task);
        if (failed.load(std::memory_order_relaxed)) return;
        try {
          computeTask(task - packTasks);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          failed.store(true);
        }
      });
      if (error) std::rethrow_exception(error);
    }
  }
}

// Direct path, no packing, for small problems and for GEMV-like shapes (m <= 4 or n <= 4), where packing
// would cost as much memory traffic as the product itself. C is cut into tiles of up to 4 rows x 256
// columns; each element's arithmetic is fixed by the shape alone (never by the tiling into tasks):
//   axpy form (B not transposed, n > 4): acc[r][j] += A(i+r, p) * B(p, j) in p order, vectorised over j
//     (rows of B stream contiguously);
//   dot form (B transposed, or n <= 4): each element is a dot product of a row of op(A) and a column of
//     op(B), both made contiguous, with 32 lane partial sums folded pairwise in a fixed order;
//   transposed axpy form (A transposed and n <= 4): the axpy form applied to C^T = op(B)^T op(A)^T, whose
//     "B" is A's storage, read row by row.
constexpr int64_t kDirectRows = 4, kDirectCols = 256;
thread_local AlignedBuffer tGatherB;  // op(B) columns gathered by the calling thread (dot form, n <= 4)

// The tile bodies are written once, inlined into a baseline and an AVX2+FMA entry (the compiler
// vectorises each for its target; the AVX2 one fuses the multiply-adds).
__attribute__((always_inline)) inline void DirectAxpyTileBody(const Problem& q, int64_t i0, int64_t rows, int64_t j0,
                                                              int64_t cols) {
  alignas(64) float acc[kDirectRows][kDirectCols];
  for (int64_t r = 0; r < rows; ++r) std::fill(acc[r], acc[r] + cols, 0.0f);
  for (int64_t p = 0; p < q.k; ++p) {
    const float* bp = BPtr(q.b, q.ldb, false, p, j0);
    for (int64_t r = 0; r < rows; ++r) {
      const float av = *APtr(q.a, q.lda, q.transA, i0 + r, p);
      float* ar = acc[r];
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) ar[j] += av * bp[j];
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = q.c + (i0 + r) * q.ldc + j0;
    if (q.beta == 0.0f) {
      for (int64_t j = 0; j < cols; ++j) cr[j] = q.alpha * acc[r][j];
    } else {
      for (int64_t j = 0; j < cols; ++j) cr[j] = q.alpha * acc[r][j] + q.beta * cr[j];
    }
  }
}

// bcols: column j of op(B) is bcols + j * ldbc, contiguous over p.
__attribute__((always_inline)) inline void DirectDotTileBody(const Problem& q, const float* bcols, int64_t ldbc,
                                                             int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  // Rows of op(A): contiguous already unless A is transposed (then gather them).
  const float* arow[kDirectRows];
  float* gathered = q.transA ? tScratch.get(static_cast<size_t>(kDirectRows * q.k)) : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    if (q.transA) {
      float* g = gathered + r * q.k;
      for (int64_t p = 0; p < q.k; ++p) g[p] = q.a[p * q.lda + i0 + r];
      arow[r] = g;
    } else {
      arow[r] = q.a + (i0 + r) * q.lda;
    }
  }
  constexpr int L = 32;  // independent lane sums: several vector registers, so the adds pipeline
  const int64_t kMain = q.k / L * L;
  for (int64_t j = j0; j < j0 + cols; ++j) {
    const float* bj = bcols + j * ldbc;
    for (int64_t r = 0; r < rows; ++r) {
      const float* ar = arow[r];
      alignas(64) float lane[L] = {};
      for (int64_t p = 0; p < kMain; p += L) {
#pragma omp simd
        for (int l = 0; l < L; ++l) lane[l] += ar[p + l] * bj[p + l];
      }
      for (int64_t p = kMain; p < q.k; ++p) lane[p - kMain] += ar[p] * bj[p];
      for (int w = L / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
      const float s = lane[0];
      float* cij = q.c + (i0 + r) * q.ldc + j;
      *cij = q.beta == 0.0f ? q.alpha * s : q.alpha * s + q.beta * *cij;
    }
  }
}

// n <= 4 with A transposed: A is stored [k, m], so op(A) columns run along storage rows. Accumulate
// C^T instead: acc[j][i] += B(p, j) * A_store[p, i] in p order, vectorised over a chunk of rows i.
__attribute__((always_inline)) inline void DirectAxpyTTileBody(const Problem& q, int64_t i0, int64_t rows) {
  alignas(64) float acc[kDirectRows][kDirectCols];
  for (int64_t j = 0; j < q.n; ++j) std::fill(acc[j], acc[j] + rows, 0.0f);
  for (int64_t p = 0; p < q.k; ++p) {
    const float* ap = q.a + p * q.lda + i0;
    for (int64_t j = 0; j < q.n; ++j) {
      const float bv = *BPtr(q.b, q.ldb, q.transB, p, j);
      float* aj = acc[j];
#pragma omp simd
      for (int64_t i = 0; i < rows; ++i) aj[i] += bv * ap[i];
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* ci = q.c + (i0 + i) * q.ldc;
    for (int64_t j = 0; j < q.n; ++j) ci[j] = q.beta == 0.0f ? q.alpha * acc[j][i] : q.alpha * acc[j][i] + q.beta * ci[j];
  }
}

void DirectAxpyTilePortable(const Problem& q, int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  DirectAxpyTileBody(q, i0, rows, j0, cols);
}
void DirectDotTilePortable(const Problem& q, const float* bcols, int64_t ldbc, int64_t i0, int64_t rows, int64_t j0,
                           int64_t cols) {
  DirectDotTileBody(q, bcols, ldbc, i0, rows, j0, cols);
}
void DirectAxpyTTilePortable(const Problem& q, int64_t i0, int64_t rows) { DirectAxpyTTileBody(q, i0, rows); }
#if ALIGNKIT_X86
__attribute__((target("avx2,fma"))) void DirectAxpyTileAvx2(const Problem& q, int64_t i0, int64_t rows, int64_t j0,
                                                            int64_t cols) {
  DirectAxpyTileBody(q, i0, rows, j0, cols);
}
__attribute__((target("avx2,fma"))) void DirectDotTileAvx2(const Problem& q, const float* bcols, int64_t ldbc,
                                                           int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  DirectDotTileBody(q, bcols, ldbc, i0, rows, j0, cols);
}
__attribute__((target("avx2,fma"))) void DirectAxpyTTileAvx2(const Problem& q, int64_t i0, int64_t rows) {
  DirectAxpyTTileBody(q, i0, rows);
}
#endif

void GemmDirect(const Problem& q, bool parallel) {
  auto axpyTile = DirectAxpyTilePortable;
  auto dotTile = DirectDotTilePortable;
  auto axpyTTile = DirectAxpyTTilePortable;
#if ALIGNKIT_X86
  if (ActiveIsa() != Isa::Portable) {  // AVX-512 machines run the AVX2 build of these memory-bound loops
    axpyTile = DirectAxpyTileAvx2;
    dotTile = DirectDotTileAvx2;
    axpyTTile = DirectAxpyTTileAvx2;
  }
#endif
  if (q.transA && q.n <= kDirectRows) {  // tasks over chunks of kDirectCols rows
    const int64_t chunks = CeilDiv(q.m, kDirectCols);
    auto task = [&](int64_t t, int) { axpyTTile(q, t * kDirectCols, std::min(kDirectCols, q.m - t * kDirectCols)); };
    if (parallel) {
      ParallelForChecked(chunks, task);
    } else {
      for (int64_t t = 0; t < chunks; ++t) task(t, 0);
    }
    return;
  }
  const bool dot = q.transB || q.n <= kDirectRows;
  const float* bcols = q.b;
  int64_t ldbc = q.ldb;
  if (dot && !q.transB) {  // n <= 4 columns of a row-major B: gather them once, shared by all tasks
    float* g = tGatherB.get(static_cast<size_t>(q.n * q.k));
    for (int64_t p = 0; p < q.k; ++p)
      for (int64_t j = 0; j < q.n; ++j) g[j * q.k + p] = q.b[p * q.ldb + j];
    bcols = g;
    ldbc = q.k;
  }
  const int64_t rowGroups = CeilDiv(q.m, kDirectRows);
  const int64_t colChunks = CeilDiv(q.n, kDirectCols);
  // Several row groups per task when the tiles are tiny (n <= 4), so a task is worth handing out.
  const int64_t tileWork = std::max<int64_t>(1, kDirectRows * std::min(q.n, kDirectCols) * q.k);
  const int64_t groupsPerTask = std::max<int64_t>(1, std::min(rowGroups, (int64_t{1} << 16) / tileWork));
  const int64_t rowTasks = CeilDiv(rowGroups, groupsPerTask);
  auto task = [&](int64_t t, int) {
    const int64_t rt = t / colChunks, cc = t % colChunks;
    const int64_t j0 = cc * kDirectCols, cols = std::min(kDirectCols, q.n - j0);
    for (int64_t rg = rt * groupsPerTask; rg < std::min(rowGroups, (rt + 1) * groupsPerTask); ++rg) {
      const int64_t i0 = rg * kDirectRows, rows = std::min(kDirectRows, q.m - i0);
      if (dot) {
        dotTile(q, bcols, ldbc, i0, rows, j0, cols);
      } else {
        axpyTile(q, i0, rows, j0, cols);
      }
    }
  };
  if (parallel) {
    ParallelForChecked(rowTasks * colChunks, task);
  } else {
    for (int64_t t = 0; t < rowTasks * colChunks; ++t) task(t, 0);
  }
}

// ------------------------------------------------------------------------------------------- few rows x B^T
// Decoding shapes: m <= kFewRows rows of op(A) against a B stored [n, k] (transB: a weight in the nn.Linear
// layout), e.g. one new token per sequence through a projection or the LM head. Such a product is bound by
// streaming the weights, so nothing is packed: each weight row is read once per call, straight from where it
// lives. The columns of C are cut into chunks of kFewCols (the parallel tasks: balanced, and every thread busy
// even for n = 192). In a chunk, a tile of NJ weight rows (4; 8 for a single row of A) is read from memory
// once, by the first group of up to 3 rows of A, and from L1 by the other groups (MI x NJ accumulators).
// Arithmetic of each element, fixed by k alone (never by the row grouping, the chunk or the thread): 8 lane
// sums over p in steps of 8 (the last step masked when k % 8 != 0), multiply-adds in p order, the lanes folded
// in a fixed order, then c = alpha*s (beta == 0) or alpha*s + beta*c. Up to 16 rows this beats packing B
// (measured on Zen 4: 2x at 8 rows, ~1.2x at 16); beyond, the packed kernel's register tile wins.
constexpr int64_t kFewRows = 16, kFewCols = 48;
thread_local AlignedBuffer tFewRowsA;  // rows of op(A) gathered when A is transposed

// The row groups of an m-row block: threes, and twos instead of a 3 + 1 split.
inline int FewRowsGroup(int64_t rest) { return rest >= 3 && rest != 4 ? 3 : rest >= 2 ? 2 : 1; }

inline float FewRowsOut(float s, float alpha, float beta, const float* c) {
  return beta == 0.0f ? alpha * s : alpha * s + beta * *c;
}

void FewRowsPortable(const float* const* arow, int64_t m, const float* b, int64_t ldb, int64_t k, int64_t j0,
                     int64_t j1, float alpha, float beta, float* c, int64_t ldc) {
  const int64_t k8 = k / 8 * 8;
  for (int64_t j = j0; j < j1; ++j) {
    const float* bj = b + j * ldb;
    for (int64_t i = 0; i < m; ++i) {
      const float* ai = arow[i];
      float lane[8] = {};
      for (int64_t p = 0; p < k8; p += 8)
        for (int l = 0; l < 8; ++l) lane[l] += ai[p + l] * bj[p + l];
      for (int64_t p = k8; p < k; ++p) lane[p - k8] += ai[p] * bj[p];
      for (int w = 4; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
      float* cij = c + i * ldc + j;
      *cij = FewRowsOut(lane[0], alpha, beta, cij);
    }
  }
}

#if ALIGNKIT_X86
__attribute__((target("avx2,fma"), always_inline)) inline float HsumAvx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// MI rows of A x NJ weight rows starting at b; sums into s[i * NJ + j]. `pf`: the next tile's weight rows,
// pulled toward L1 meanwhile (NJ * 32 bytes per step: the rows are usually contiguous, so the next tile is one
// run of memory; the hardware prefetcher alone ramps up too slowly on runs this short).
template <int MI, int NJ>
__attribute__((target("avx2,fma"), always_inline)) inline void FewRowsTileAvx2(const float* const* arow, const float* b,
                                                                               int64_t ldb, int64_t k, int64_t k8,
                                                                               __m256i tail, const float* pf, float* s) {
  __m256 acc[MI][NJ];
#pragma GCC unroll 16
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k8; p += 8) {
#pragma GCC unroll 8
    for (int l = 0; l < (NJ + 1) / 2; ++l) _mm_prefetch(reinterpret_cast<const char*>(pf + p * NJ + 16 * l), _MM_HINT_T0);
    __m256 av[MI];
#pragma GCC unroll 16
    for (int i = 0; i < MI; ++i) av[i] = _mm256_loadu_ps(arow[i] + p);
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) {
      const __m256 bv = _mm256_loadu_ps(b + j * ldb + p);
#pragma GCC unroll 16
      for (int i = 0; i < MI; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (k8 < k) {  // masked lanes load as 0 and add exactly 0
    __m256 av[MI];
#pragma GCC unroll 16
    for (int i = 0; i < MI; ++i) av[i] = _mm256_maskload_ps(arow[i] + k8, tail);
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) {
      const __m256 bv = _mm256_maskload_ps(b + j * ldb + k8, tail);
#pragma GCC unroll 16
      for (int i = 0; i < MI; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MI; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) s[i * NJ + j] = HsumAvx2(acc[i][j]);
}

// Columns [j0, j1) for all m rows: NJ weight rows at a time (each tile of weight rows is read from memory by
// the first row group and from L1 by the others), the remaining columns one by one.
template <int NJ>
__attribute__((target("avx2,fma"))) void FewRowsColumnsAvx2(const float* const* arow, int64_t m, const float* b, int64_t ldb,
                                                            int64_t k, int64_t j0, int64_t j1, float alpha, float beta,
                                                            float* c, int64_t ldc) {
  const int64_t k8 = k / 8 * 8;
  alignas(32) int32_t maskBits[8];
  for (int l = 0; l < 8; ++l) maskBits[l] = l < k - k8 ? -1 : 0;
  const __m256i tail = _mm256_load_si256(reinterpret_cast<const __m256i*>(maskBits));
  float s[3 * NJ];
  auto store = [&](int64_t i0, int mi, int64_t j, int nj) {
    for (int i = 0; i < mi; ++i)
      for (int jj = 0; jj < nj; ++jj) {
        float* cij = c + (i0 + i) * ldc + j + jj;
        *cij = FewRowsOut(s[i * nj + jj], alpha, beta, cij);
      }
  };
  int64_t j = j0;
  for (; j + NJ <= j1; j += NJ) {
    const float* bj = b + j * ldb;
    const float* pf = bj + NJ * ldb;
    for (int64_t i0 = 0; i0 < m;) {
      const int mi = FewRowsGroup(m - i0);
      if (mi == 3) FewRowsTileAvx2<3, NJ>(arow + i0, bj, ldb, k, k8, tail, pf, s);
      else if (mi == 2) FewRowsTileAvx2<2, NJ>(arow + i0, bj, ldb, k, k8, tail, pf, s);
      else FewRowsTileAvx2<1, NJ>(arow + i0, bj, ldb, k, k8, tail, pf, s);
      store(i0, mi, j, NJ);
      i0 += mi;
    }
  }
  for (; j < j1; ++j) {
    const float* bj = b + j * ldb;
    for (int64_t i0 = 0; i0 < m;) {
      const int mi = FewRowsGroup(m - i0);
      if (mi == 3) FewRowsTileAvx2<3, 1>(arow + i0, bj, ldb, k, k8, tail, bj + ldb, s);
      else if (mi == 2) FewRowsTileAvx2<2, 1>(arow + i0, bj, ldb, k, k8, tail, bj + ldb, s);
      else FewRowsTileAvx2<1, 1>(arow + i0, bj, ldb, k, k8, tail, bj + ldb, s);
      store(i0, mi, j, 1);
      i0 += mi;
    }
  }
}

// One row: 8 weight rows at a time (8 independent accumulators); more rows: 4 (up to 3 x 4 accumulators).
void FewRowsAvx2(const float* const* arow, int64_t m, const float* b, int64_t ldb, int64_t k, int64_t j0, int64_t j1,
                 float alpha, float beta, float* c, int64_t ldc) {
  if (m == 1) FewRowsColumnsAvx2<8>(arow, m, b, ldb, k, j0, j1, alpha, beta, c, ldc);
  else FewRowsColumnsAvx2<4>(arow, m, b, ldb, k, j0, j1, alpha, beta, c, ldc);
}
#endif

bool UseFewRows(const Problem& q) { return q.transB && q.m <= kFewRows; }

void GemmFewRows(const Problem& q, bool parallel) {
  auto columns = FewRowsPortable;
#if ALIGNKIT_X86
  if (ActiveIsa() != Isa::Portable) columns = FewRowsAvx2;  // memory-bound: AVX-512 machines run the AVX2 loop
#endif
  const float* arow[kFewRows];
  if (q.transA) {  // A is [k, m]: gather the m rows of op(A) once (m*k values)
    float* g = tFewRowsA.get(static_cast<size_t>(q.m * q.k));
    for (int64_t p = 0; p < q.k; ++p)
      for (int64_t i = 0; i < q.m; ++i) g[i * q.k + p] = q.a[p * q.lda + i];
    for (int64_t i = 0; i < q.m; ++i) arow[i] = g + i * q.k;
  } else {
    for (int64_t i = 0; i < q.m; ++i) arow[i] = q.a + i * q.lda;
  }
  const int64_t chunks = CeilDiv(q.n, kFewCols);
  auto task = [&](int64_t t, int) {
    const int64_t j0 = t * kFewCols, j1 = std::min(q.n, j0 + kFewCols);
    columns(arow, q.m, q.b, q.ldb, q.k, j0, j1, q.alpha, q.beta, q.c, q.ldc);
  };
  if (parallel && chunks > 1) {
    ParallelForChecked(chunks, task);
  } else {
    for (int64_t t = 0; t < chunks; ++t) task(t, 0);
  }
}

constexpr double kSmallWork = 32768.0;  // m*n*k up to this: the direct path, single-threaded

bool UseDirect(const Problem& q) {
  const double work = static_cast<double>(q.m) * static_cast<double>(q.n) * static_cast<double>(q.k);
  return work <= kSmallWork || q.m <= kDirectRows || q.n <= kDirectRows;
}

void GemmOne(const Problem& q) {
  if (q.m <= 0 || q.n <= 0) return;
  if (q.k <= 0 || q.alpha == 0.0f) {
    ScaleC(q.m, q.n, q.beta, q.c, q.ldc);
    return;
  }
  if (UseFewRows(q)) {
    GemmFewRows(q, static_cast<double>(q.m) * static_cast<double>(q.n) * static_cast<double>(q.k) > kSmallWork);
    return;
  }
  if (UseDirect(q)) {
    const double work = static_cast<double>(q.m) * static_cast<double>(q.n) * static_cast<double>(q.k);
    GemmDirect(q, work > 4.0 * kSmallWork);
    return;
  }
  GemmPacked(ConfigFor(ActiveIsa()), q);
}

// The extent an operand's batch spans: one past the last element touched, or 0 if none is.
size_t SpanOf(const Params& p, int64_t batch, int64_t stride, int64_t rows, int64_t cols, int64_t ld) {
  if (batch == 0 || rows == 0 || cols == 0) return 0;
  unsigned __int128 last = static_cast<unsigned __int128>(batch - 1) * static_cast<uint64_t>(stride) +
                           static_cast<unsigned __int128>(rows - 1) * static_cast<uint64_t>(ld) +
                           static_cast<uint64_t>(cols);
  if (last > (static_cast<unsigned __int128>(1) << 48)) p.fail("shape too large");
  return static_cast<size_t>(last);
}

Napi::Value SgemmJs(const Napi::CallbackInfo& info) {
  Params p(info, "sgemm");
  const bool transA = p.boolean("transA"), transB = p.boolean("transB");
  const int64_t m = p.integer("m"), n = p.integer("n"), k = p.integer("k");
  const int64_t lda = p.integer("lda"), ldb = p.integer("ldb"), ldc = p.integer("ldc");
  const int64_t strideA = p.integer("strideA"), strideB = p.integer("strideB"), strideC = p.integer("strideC");
  const int64_t batch = p.integer("batch");
  const double alphaD = p.number("alpha"), betaD = p.number("beta");
  // Storage shapes: A is [m, k] or [k, m] (transA), B is [k, n] or [n, k] (transB), C is [m, n].
  const int64_t aRows = transA ? k : m, aCols = transA ? m : k;
  const int64_t bRows = transB ? n : k, bCols = transB ? k : n;
  if (lda < aCols) p.fail("lda (" + std::to_string(lda) + ") must be >= " + std::to_string(aCols));
  if (ldb < bCols) p.fail("ldb (" + std::to_string(ldb) + ") must be >= " + std::to_string(bCols));
  if (ldc < n) p.fail("ldc (" + std::to_string(ldc) + ") must be >= n (" + std::to_string(n) + ")");
  // Distinct batch entries must not write the same C elements (the result would depend on the order).
  if (batch > 1 && m > 0 && n > 0 && strideC < (m - 1) * ldc + n)
    p.fail("strideC (" + std::to_string(strideC) + ") makes the batch's C matrices overlap; need >= " +
           std::to_string((m - 1) * ldc + n));
  const F32Arg a = p.f32("a", SpanOf(p, batch, strideA, aRows, aCols, lda));
  const F32Arg b = p.f32("b", SpanOf(p, batch, strideB, bRows, bCols, ldb));
  const F32Arg c = p.f32("c", SpanOf(p, batch, strideC, m, n, ldc));
  if (batch == 0 || m == 0 || n == 0) return info.Env().Undefined();

  Problem q{transA, transB, m, n, k, static_cast<float>(alphaD), a.data, lda, b.data, ldb,
            static_cast<float>(betaD), c.data, ldc};
  auto entry = [&](int64_t e) {
    Problem qe = q;
    qe.a = q.a ? q.a + e * strideA : nullptr;
    qe.b = q.b ? q.b + e * strideB : nullptr;
    qe.c = q.c + e * strideC;
    GemmOne(qe);
  };
  // Many small matrices: one per task (each runs serially, with exactly the arithmetic it would use
  // alone). Large ones: one after another, each threaded internally.
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  try {
    if (batch > 1 && NumThreads() > 1 && work < 4.0e6) {
      ParallelForChecked(batch, [&](int64_t e, int) { entry(e); });
    } else {
      for (int64_t e = 0; e < batch; ++e) entry(e);
    }
  } catch (const std::bad_alloc&) {
    p.fail("out of memory allocating packing buffers");
  }
  return info.Env().Undefined();
}

}  // namespace

void Sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  GemmOne(Problem{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc});
}

void RegisterGemm(Napi::Env env, Napi::Object exports) { exports.Set("sgemm", Napi::Function::New(env, SgemmJs)); }

}  // namespace alignkit
