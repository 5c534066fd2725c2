// AVX2 helpers shared by the row kernels (softmax, log-softmax, the fused LM head): a vectorised exp and
// fixed-order horizontal reductions. Include inside namespace alignkit after defining nothing: the
// functions carry their own target attributes, so the including file needs no -mavx2.
#pragma once
#include <immintrin.h>

#include <cstdint>

#ifndef AK_INLINE
#define AK_INLINE inline __attribute__((always_inline))
#endif
#ifndef AK_AVX2
#define AK_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace alignkit {
namespace simd {

// Cephes-style exp (range reduction by ln 2, degree-6 polynomial, ~2 ulp). Inputs below -87.3 give
// exactly 0, so a -inf logit (a masked vocabulary entry) contributes exactly 0; NaN propagates.
// Only arguments <= 0 are used here (z - max, z - lse).
AK_AVX2 AK_INLINE __m256 Exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654475f), hi = _mm256_set1_ps(88.0f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));  // operand order keeps NaN
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 q = _mm256_set1_ps(1.9875691500e-4f);
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.3981999507e-3f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(8.3334519073e-3f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.1665795894e-2f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.6666665459e-1f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(5.0000001201e-1f));
  q = _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(q, _mm256_castsi256_ps(e)));
}

// Lanes [0, n) set (0 < n < 8), for the last partial vector of a row.
AK_AVX2 AK_INLINE __m256i TailMask(int64_t n) {
  alignas(32) static const int32_t k[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + 8 - n));
}

AK_AVX2 AK_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
AK_AVX2 AK_INLINE float HMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace simd
}  // namespace alignkit
