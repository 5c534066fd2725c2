// Elementwise kernels: rotary position embeddings, unary activations (forward/backward), the AdamW and
// SGD optimizer steps, sumSquares / scaleInPlace (gradient clipping), counter-based random fills
// (Philox4x32-10) and inverted dropout.
//
// Numerics policy (why the code looks the way it does):
//   - This file is compiled with floating-point contraction OFF (no silent a*b+c -> fma). That is what
//     makes the portable, AVX2 and AVX-512 variants produce identical bits, and what lets the
//     TypeScript reference reproduce rope, the optimizers, sumSquares, scaleInPlace, the random fills and
//     dropout bit for bit (it rounds to float32 after every operation exactly where this code does).
//   - SIMD comes from the compiler: each hot loop is written once as plain C++ with `#pragma omp simd`
//     and instantiated under three `target` attributes (see Dispatch). Elementwise math has no
//     reduction order to worry about, so every ISA computes the same IEEE operations. Float selects
//     are bit blends (Select) and loop-invariant flags are template arguments, because otherwise GCC
//     leaves these loops scalar. The one hand-written kernel is the AVX2 Philox (integer math only).
//   - Threads split the index range into independent pieces; every output element is a function of its
//     index only (and, for the RNG, of the counter offset + index), so results never depend on the
//     thread count. sumSquares reduces in fixed chunks, then sums the chunks serially in order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__) || defined(__i386__)
#define AK_X86 1
#define AK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define AK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#else
#define AK_X86 0
#endif
#define AK_INLINE inline __attribute__((always_inline))
#define AK_LAMBDA __attribute__((always_inline))

namespace alignkit {
namespace {

// ---------------------------------------------------------------------------------------------------
// ISA dispatch. `f` is an always-inline lambda holding a loop; inlined into a function compiled for a
// wider target, the vectoriser emits that ISA's instructions for it. Contraction is off everywhere, so
// all variants compute the same IEEE operations (bit-identical results).
template <class F>
void RunPortable(const F& f) {
  f();
}
#if AK_X86
template <class F>
AK_TARGET_AVX2 void RunAvx2(const F& f) {
  f();
}
template <class F>
AK_TARGET_AVX512 void RunAvx512(const F& f) {
  f();
}
#endif
template <class F>
void Dispatch(const F& f) {
#if AK_X86
  switch (ActiveIsa()) {
    case Isa::Avx512: RunAvx512(f); return;
    case Isa::Avx2: RunAvx2(f); return;
    default: break;
  }
#endif
  RunPortable(f);
}

// Parallel grain for cheap elementwise loops: below this a range is not worth a thread hand-off.
constexpr int64_t kGrain = 16384;

AK_INLINE uint32_t BitsOf(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
AK_INLINE float FloatOf(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
// c ? a : b as a bit blend. Written this way because GCC (with the default -ftrapping-math) turns a
// float `?:` into a branch that it then refuses to if-convert, which stops the loop from vectorising.
AK_INLINE float Select(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return FloatOf((BitsOf(a) & m) | (BitsOf(b) & ~m));
}

AK_INLINE uint64_t Bits64(double x) {
  uint64_t u;
  std::memcpy(&u, &x, 8);
  return u;
}
AK_INLINE double Double64(uint64_t u) {
  double x;
  std::memcpy(&x, &u, 8);
  return x;
}
AK_INLINE double Select64(bool c, double a, double b) {
  const uint64_t m = 0ull - static_cast<uint64_t>(c);
  return Double64((Bits64(a) & m) | (Bits64(b) & ~m));
}

// Validates positional (x: Float32Array, n) arguments for sumSquares / scaleInPlace, which do not take a
// parameter object.
float* PositionalF32(const Napi::CallbackInfo& info, const char* kernel, int64_t* nOut) {
  Napi::Env env = info.Env();
  auto fail = [&](const std::string& m) {
    throw Napi::RangeError::New(env, std::string("alignkit native ") + kernel + ": " + m);
  };
  if (info.Length() < 2) fail("expects (x: Float32Array, n: number, ...)");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail("argument 'x' must be a Float32Array");
  if (!info[1].IsNumber()) fail("argument 'n' must be a number");
  double d = info[1].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 281474976710656.0) fail("argument 'n' must be a non-negative integer");
  auto arr = info[0].As<Napi::Float32Array>();
  int64_t n = static_cast<int64_t>(d);
  if (static_cast<size_t>(n) > arr.ElementLength())
    fail("argument 'x' has " + std::to_string(arr.ElementLength()) + " elements but n is " + std::to_string(n));
  *nOut = n;
  return n == 0 ? nullptr : arr.Data();
}

// ===================================================================================================
// RoPE
//   x, out [B, H, T, D]; cos, sin [maxPos, rotaryDim/2]; positions [B, T].
// A pair (a, b) rotates to (a*c - b*s, a*s + b*c); inverse uses s -> -s (the transpose, i.e. backward).
// The products are formed in double: two float32 products are exact in double, so each output is a
// single double rounding followed by one float rounding — exactly what the JS reference computes.
// ===================================================================================================
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Params p(info, "rope");
  const int64_t B = p.integer("batch"), H = p.integer("heads"), T = p.integer("seq"), D = p.integer("headDim");
  const int64_t R = p.integer("rotaryDim"), maxPos = p.integer("maxPos");
  if (R % 2 != 0) p.fail("rotaryDim must be even, got " + std::to_string(R));
  if (R > D) p.fail("rotaryDim (" + std::to_string(R) + ") must be <= headDim (" + std::to_string(D) + ")");
  const bool interleaved = p.boolean("interleaved"), inverse = p.boolean("inverse");
  const size_t total = Extent(p, {B, H, T, D});
  const float* x = p.f32("x", total).data;
  float* out = p.f32("out", total).data;
  const int64_t half = R / 2;
  const float* cosT = p.f32("cos", Extent(p, {maxPos, half})).data;
  const float* sinT = p.f32("sin", Extent(p, {maxPos, half})).data;
  const int32_t* pos = p.i32("positions", Extent(p, {B, T}));
  // Bounds-check every position up front (serially) so a bad index is a clean error, never a read
  // outside the tables from a worker thread.
  for (int64_t i = 0; i < B * T; ++i) {
    if (pos[i] < 0 || pos[i] >= maxPos)
      p.fail("positions[" + std::to_string(i) + "] = " + std::to_string(pos[i]) + " is outside [0, maxPos=" +
             std::to_string(maxPos) + ")");
  }
  if (total == 0) return info.Env().Undefined();
  const int64_t rows = B * H * T;
  const double sign = inverse ? -1.0 : 1.0;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1));
  ParallelRange(rows, grain, [&](int64_t r0, int64_t r1) {
    Dispatch([&]() AK_LAMBDA {
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t b = row / (H * T), t = row % T;
        const int64_t ps = pos[b * T + t];
        const float* c = cosT + ps * half;
        const float* s = sinT + ps * half;
        const float* xr = x + row * D;
        float* o = out + row * D;
        if (!interleaved) {
          // pair p = (x[p], x[p + half])  (GPT-NeoX / HF rotate_half)
#pragma omp simd
          for (int64_t q = 0; q < half; ++q) {
            const double a = xr[q], bb = xr[q + half], cc = c[q], ss = sign * s[q];
            o[q] = static_cast<float>(a * cc - bb * ss);
            o[q + half] = static_cast<float>(a * ss + bb * cc);
          }
        } else {
          // pair p = (x[2p], x[2p+1])  (GPT-J / Meta)
#pragma omp simd
          for (int64_t q = 0; q < half; ++q) {
            const double a = xr[2 * q], bb = xr[2 * q + 1], cc = c[q], ss = sign * s[q];
            o[2 * q] = static_cast<float>(a * cc - bb * ss);
            o[2 * q + 1] = static_cast<float>(a * ss + bb * cc);
          }
        }
        if (o != xr) {
          for (int64_t j = R; j < D; ++j) o[j] = xr[j];  // the non-rotary tail passes through
        }
      }
    });
  });
  return info.Env().Undefined();
}

// ===================================================================================================
// Unary ops. Float32 math with this file's own exp/log/tanh/erfc (pure arithmetic, so they vectorise
// and give the same bits on every ISA). Accuracy is a few float ulps; tests compare against the float64
// JS reference.
// ===================================================================================================
enum class Op { Exp, Log, Tanh, Sigmoid, Silu, GeluTanh, GeluErf, Relu, Sqrt, Rsqrt, Neg, Abs };

Op ParseOp(const Params& p) {
  const std::string s = p.string("op");
  static const struct {
    const char* name;
    Op op;
  } kOps[] = {{"exp", Op::Exp},         {"log", Op::Log},   {"tanh", Op::Tanh},    {"sigmoid", Op::Sigmoid},
              {"silu", Op::Silu},       {"gelu_tanh", Op::GeluTanh}, {"gelu_erf", Op::GeluErf},
              {"relu", Op::Relu},       {"sqrt", Op::Sqrt}, {"rsqrt", Op::Rsqrt},  {"neg", Op::Neg},
              {"abs", Op::Abs}};
  for (const auto& o : kOps)
    if (s == o.name) return o.op;
  p.fail("unknown op '" + s + "' (exp, log, tanh, sigmoid, silu, gelu_tanh, gelu_erf, relu, sqrt, rsqrt, neg, abs)");
}

// e^x. Cody–Waite reduction x = n*ln2 + r (|r| <= ln2/2), degree-7 Taylor for e^r (truncation < 6e-9
// relative), then scaling by 2^n in two steps so that subnormal results and n = 128 come out right.
// Inputs outside [-104, 88.8] compute garbage that the final selects replace with 0 / inf (no clamping
// up front: that keeps the loop branch-free); NaN fails both tests and propagates through the polynomial.
AK_INLINE float ExpF(float x) {
  const float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the mantissa
  const float t = x * 1.44269504088896341f + kShift;
  const float nf = t - kShift;
  const int32_t n = static_cast<int32_t>(BitsOf(t) - BitsOf(kShift));
  // ln2 split: the high part has 16 significant bits, so nf * hi is exact for |n| < 256.
  float r = x - nf * 0.693145751953125f;
  r = r - nf * 1.4286068e-06f;
  float e = 1.0f / 5040.0f;
  e = e * r + 1.0f / 720.0f;
  e = e * r + 1.0f / 120.0f;
  e = e * r + 1.0f / 24.0f;
  e = e * r + 1.0f / 6.0f;
  e = e * r + 0.5f;
  e = e * r + 1.0f;
  e = e * r + 1.0f;
  const int32_t n1 = n >> 1, n2 = n - n1;  // both within [-126, 127] for n in [-151, 129]
  const float s1 = FloatOf(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = FloatOf(static_cast<uint32_t>(n2 + 127) << 23);
  float res = (e * s1) * s2;
  res = Select(x < -104.0f, 0.0f, res);
  res = Select(x > 88.8f, std::numeric_limits<float>::infinity(), res);
  return res;
}

// ln x. x = 2^e * m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172,
// odd series through s^11 (truncation < 1e-10 relative).
AK_INLINE float LogF(float x) {
  const bool sub = x < 1.17549435e-38f;
  const float xs = Select(sub, x * 8388608.0f, x);  // lift subnormals into the normal range
  const uint32_t u = BitsOf(xs);
  int32_t e = static_cast<int32_t>(u >> 23) - 127 - (sub ? 23 : 0);
  float m = FloatOf((u & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = Select(big, m * 0.5f, m);
  e = big ? e + 1 : e;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float z = s * s;
  float q = 2.0f / 11.0f;
  q = q * z + 2.0f / 9.0f;
  q = q * z + 2.0f / 7.0f;
  q = q * z + 2.0f / 5.0f;
  q = q * z + 2.0f / 3.0f;
  const float lnm = 2.0f * s + (s * z) * q;
  const float fe = static_cast<float>(e);
  float r = fe * 0.693145751953125f + (fe * 1.4286068e-06f + lnm);
  const float inf = std::numeric_limits<float>::infinity();
  r = Select(x == inf, inf, r);
  r = Select(x == 0.0f, -inf, r);
  r = Select((x < 0.0f) | (x != x), std::numeric_limits<float>::quiet_NaN(), r);
  return r;
}

// tanh: odd polynomial on |x| < 0.625 (least-squares fit of (tanh x - x)/x^3 in x^2, < 0.8 ulp),
// else 1 - 2/(e^{2|x|} + 1); evaluated on |x| and the sign copied back (so tanh(-0) = -0).
AK_INLINE float TanhF(float x) {
  const float ax = std::fabs(x);
  const float z = ax * ax;
  float q = 0.0022958412f;
  q = q * z + -0.0083469804f;
  q = q * z + 0.021769961f;
  q = q * z + -0.053959407f;
  q = q * z + 0.13333304f;
  q = q * z + -0.33333334f;
  const float small = ax + (ax * z) * q;
  const float e = ExpF(2.0f * ax);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  return std::copysign(Select(ax < 0.625f, small, big), x);
}

// Stable logistic: with e = exp(-|x|) in (0, 1], sigma = 1/(1+e) for x >= 0 and e/(1+e) otherwise.
AK_INLINE float SigmoidF(float x) {
  const float e = ExpF(-std::fabs(x));
  const float s = 1.0f / (1.0f + e);
  return Select(x >= 0.0f, s, e * s);
}

constexpr float kGeluBeta = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluKappa = 0.044715f;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// gelu_tanh = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). Since 1 + tanh(u) = 2 sigmoid(2u),
// it is evaluated as x * sigmoid(2u), which has no cancellation for negative x.
AK_INLINE float GeluTanhArg(float x) { return kGeluBeta * (x + kGeluKappa * (x * x * x)); }

// e^a for a double argument to ~1 float ulp: the float exp of the float-rounded argument, times
// (1 + the rounding remainder). Arguments below -200 give 0 (and -inf gives 0, not NaN).
AK_INLINE float ExpOfDouble(double a) {
  a = Select64(a < -200.0, -200.0, a);
  const float hi = static_cast<float>(a);
  const float lo = static_cast<float>(a - static_cast<double>(hi));
  const float e = ExpF(hi);
  return e + e * lo;
}

// erfc(|x| / sqrt2) = t exp(P(t) - z^2), z = |x|/sqrt2, t = 2/(2+z): P is a degree-11 least-squares fit
// of ln(erfc(z)/t) + z^2 on z in [0, 11] (|error| < 3.2e-9; erfc(11) underflows float anyway).
// z, t, P and the exponent are double, so z^2 costs no float rounding in the exponent (that rounding
// would cost ~z^2 ulps of relative error in the tail); the result is ~2 float ulps. Used for
// gelu_erf = x Phi(x), with Phi(x) = 1 - erfc/2 for x >= 0 and erfc/2 below (no cancellation).
AK_INLINE float ErfcAbsOverSqrt2(float x, double* zOut) {
  const double z = std::fabs(static_cast<double>(x)) * kInvSqrt2;
  const double t = 2.0 / (2.0 + z);
  double q = -0.08573286052713612;
  q = q * t + 0.4076443142713857;
  q = q * t + -0.5879782252808163;
  q = q * t + -0.20529728855082965;
  q = q * t + 1.4747927434430526;
  q = q * t + -1.5517684539352008;
  q = q * t + 0.670676680097501;
  q = q * t + -0.3709088485943195;
  q = q * t + 0.14736648888683423;
  q = q * t + 0.3660301575724747;
  q = q * t + 1.0007117858122814;
  q = q * t + -1.265536495998358;
  *zOut = z;
  return static_cast<float>(t * static_cast<double>(ExpOfDouble(q - z * z)));
}

AK_INLINE float NormalCdfF(float x, double* zOut) {
  const float half = 0.5f * ErfcAbsOverSqrt2(x, zOut);
  return Select(x >= 0.0f, 1.0f - half, half);
}

template <Op OP>
AK_INLINE float UnaryF(float x) {
  if constexpr (OP == Op::Exp) return ExpF(x);
  if constexpr (OP == Op::Log) return LogF(x);
  if constexpr (OP == Op::Tanh) return TanhF(x);
  if constexpr (OP == Op::Sigmoid) return SigmoidF(x);
  if constexpr (OP == Op::Silu) return x * SigmoidF(x);
  if constexpr (OP == Op::GeluTanh) return x * SigmoidF(2.0f * GeluTanhArg(x));
  if constexpr (OP == Op::GeluErf) {
    double z;  // 0.5 x (1 + erf(x/sqrt2)) == x Phi(x)
    return x * NormalCdfF(x, &z);
  }
  if constexpr (OP == Op::Relu) return Select((x > 0.0f) | (x != x), x, 0.0f);
  if constexpr (OP == Op::Sqrt) return std::sqrt(x);
  if constexpr (OP == Op::Rsqrt) return 1.0f / std::sqrt(x);
  if constexpr (OP == Op::Neg) return -x;
  if constexpr (OP == Op::Abs) return std::fabs(x);
  return x;
}

// dx = dy * op'(x); y = op(x) is used where that is cheaper (exp, tanh, sigmoid, sqrt, rsqrt), as torch does.
template <Op OP>
AK_INLINE float UnaryBackF(float x, float y, float dy) {
  if constexpr (OP == Op::Exp) return dy * y;
  if constexpr (OP == Op::Log) return dy / x;
  if constexpr (OP == Op::Tanh) return dy * (1.0f - y * y);
  if constexpr (OP == Op::Sigmoid) return (dy * (1.0f - y)) * y;
  if constexpr (OP == Op::Silu) {
    const float s = SigmoidF(x);
    return dy * s * (1.0f + x * (1.0f - s));
  }
  if constexpr (OP == Op::GeluTanh) {
    // d/dx [x sigma(2u)] = sigma(2u) + 2 x sigma(2u) sigma(-2u) u'(x); sigma(-2u) is computed directly
    // (not as 1 - sigma) so it stays accurate where sigma(2u) rounds to 1.
    const float u2 = 2.0f * GeluTanhArg(x);
    const float s = SigmoidF(u2), sm = SigmoidF(-u2);
    const float du = kGeluBeta * (1.0f + 3.0f * kGeluKappa * (x * x));
    // s * sm == 0 far out in the tails, where x^3 may have overflowed (inf * 0 would give NaN)
    const float ssm = s * sm;
    return dy * (s + Select(ssm == 0.0f, 0.0f, 2.0f * x * ssm * du));
  }
  if constexpr (OP == Op::GeluErf) {
    // d/dx [x Phi(x)] = Phi(x) + x phi(x), phi(x) = e^{-z^2} / sqrt(2 pi) with z^2 = x^2/2 (in double)
    double z;
    const float cdf = NormalCdfF(x, &z);
    const float pdf = static_cast<float>(kInvSqrt2Pi * static_cast<double>(ExpOfDouble(-(z * z))));
    const float xpdf = Select(std::fabs(x) < 40.0f, x * pdf, 0.0f);  // 0 far out (no inf * 0)
    return dy * (cdf + xpdf);
  }
  if constexpr (OP == Op::Relu) return Select(x > 0.0f, dy, 0.0f);
  if constexpr (OP == Op::Sqrt) return dy / (2.0f * y);
  if constexpr (OP == Op::Rsqrt) return (-0.5f * dy) * (y * y * y);
  if constexpr (OP == Op::Neg) return -dy;
  if constexpr (OP == Op::Abs) return Select(x > 0.0f, dy, Select(x < 0.0f, -dy, 0.0f));
  return dy;
}

template <Op OP>
void UnaryRun(const float* x, float* y, int64_t n) {
  ParallelRange(n, kGrain, [&](int64_t b, int64_t e) {
    Dispatch([&]() AK_LAMBDA {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) y[i] = UnaryF<OP>(x[i]);
    });
  });
}

template <Op OP>
void UnaryBackRun(const float* x, const float* y, const float* dy, float* dx, int64_t n) {
  ParallelRange(n, kGrain, [&](int64_t b, int64_t e) {
    Dispatch([&]() AK_LAMBDA {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) dx[i] = UnaryBackF<OP>(x[i], y[i], dy[i]);
    });
  });
}

template <class F>
void WithOp(Op op, const F& f) {
  switch (op) {
    case Op::Exp: f(std::integral_constant<Op, Op::Exp>()); break;
    case Op::Log: f(std::integral_constant<Op, Op::Log>()); break;
    case Op::Tanh: f(std::integral_constant<Op, Op::Tanh>()); break;
    case Op::Sigmoid: f(std::integral_constant<Op, Op::Sigmoid>()); break;
    case Op::Silu: f(std::integral_constant<Op, Op::Silu>()); break;
    case Op::GeluTanh: f(std::integral_constant<Op, Op::GeluTanh>()); break;
    case Op::GeluErf: f(std::integral_constant<Op, Op::GeluErf>()); break;
    case Op::Relu: f(std::integral_constant<Op, Op::Relu>()); break;
    case Op::Sqrt: f(std::integral_constant<Op, Op::Sqrt>()); break;
    case Op::Rsqrt: f(std::integral_constant<Op, Op::Rsqrt>()); break;
    case Op::Neg: f(std::integral_constant<Op, Op::Neg>()); break;
    case Op::Abs: f(std::integral_constant<Op, Op::Abs>()); break;
  }
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  Params p(info, "unary");
  const Op op = ParseOp(p);
  const int64_t n = p.integer("n");
  const size_t need = Extent(p, {n});
  const float* x = p.f32("x", need).data;
  float* y = p.f32("y", need).data;
  if (n > 0) WithOp(op, [&](auto tag) { UnaryRun<decltype(tag)::value>(x, y, n); });
  return info.Env().Undefined();
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Params p(info, "unaryBackward");
  const Op op = ParseOp(p);
  const int64_t n = p.integer("n");
  const size_t need = Extent(p, {n});
  const float* x = p.f32("x", need).data;
  const float* y = p.f32("y", need).data;
  const float* dy = p.f32("dy", need).data;
  float* dx = p.f32("dx", need).data;
  if (n > 0) WithOp(op, [&](auto tag) { UnaryBackRun<decltype(tag)::value>(x, y, dy, dx, n); });
  return info.Env().Undefined();
}

// ===================================================================================================
// Optimizers: the float32 operation sequence of torch.optim's single-tensor (CPU default) path, with
// Python-float hyper-parameters rounded to float32 where torch passes them to a float kernel.
// ===================================================================================================
// Calls f(std::true_type) or f(std::false_type): turns a loop-invariant flag into a template argument,
// because GCC does not vectorise these loops for AVX2 when it has to unswitch the branch itself.
template <class F>
AK_INLINE void WithBool(bool b, const F& f) {
  if (b)
    f(std::true_type());
  else
    f(std::false_type());
}

struct AdamWScalars {
  float decay, w, omw, b2, omb2, negStep, bc2s, eps;
};

template <bool SMALL_W>
AK_INLINE void AdamWSpan(float* param, const float* grad, float* m, float* v, int64_t b, int64_t e, AdamWScalars k) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const float g = grad[i];
    const float pd = param[i] * k.decay;
    const float mi = m[i];
    const float mn = SMALL_W ? mi + k.w * (g - mi) : g - (g - mi) * k.omw;
    const float vn = v[i] * k.b2 + (k.omb2 * g) * g;
    const float denom = std::sqrt(vn) / k.bc2s + k.eps;
    m[i] = mn;
    v[i] = vn;
    param[i] = pd + (k.negStep * mn) / denom;
  }
}

Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Params p(info, "adamw");
  const int64_t n = p.integer("n");
  const size_t need = Extent(p, {n});
  float* param = p.f32("param", need).data;
  const float* grad = p.f32("grad", need).data;
  float* m = p.f32("expAvg", need).data;
  float* v = p.f32("expAvgSq", need).data;
  const double lr = p.number("lr"), beta1 = p.number("beta1"), beta2 = p.number("beta2");
  const double eps = p.number("eps"), wd = p.number("weightDecay");
  const int64_t step = p.integer("step", 1);
  if (!(beta1 >= 0.0 && beta1 < 1.0)) p.fail("beta1 must be in [0, 1), got " + std::to_string(beta1));
  if (!(beta2 >= 0.0 && beta2 < 1.0)) p.fail("beta2 must be in [0, 1), got " + std::to_string(beta2));
  // torch (adamw, single-tensor path):
  //   param.mul_(1 - lr*wd); exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
  //   bc1 = 1 - beta1**step; bc2 = 1 - beta2**step   (Python floats: double)
  //   denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-lr/bc1)
  // Scalars reach the float kernels rounded to float; lerp picks its formula by |weight| < 0.5.
  AdamWScalars k;
  k.decay = static_cast<float>(1.0 - lr * wd);
  k.w = static_cast<float>(1.0 - beta1);
  k.omw = 1.0f - k.w;
  k.b2 = static_cast<float>(beta2);
  k.omb2 = static_cast<float>(1.0 - beta2);
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  k.negStep = static_cast<float>(-(lr / bc1));
  k.bc2s = static_cast<float>(std::sqrt(bc2));
  k.eps = static_cast<float>(eps);
  const bool smallW = std::fabs(k.w) < 0.5f;
  ParallelRange(n, kGrain, [&](int64_t b, int64_t e) {
    Dispatch([&]() AK_LAMBDA {
      WithBool(smallW, [&](auto sw) AK_LAMBDA { AdamWSpan<decltype(sw)::value>(param, grad, m, v, b, e, k); });
    });
  });
  return info.Env().Undefined();
}

struct SgdScalars {
  float wd, mom, omd, negLr;
};

template <bool WD, bool MOM, bool FIRST, bool NESTEROV>
AK_INLINE void SgdSpan(float* param, const float* grad, float* buf, int64_t b, int64_t e, SgdScalars k) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const float pi = param[i];
    float g = grad[i];
    if (WD) g = g + k.wd * pi;
    if (MOM) {
      const float bn = FIRST ? g : buf[i] * k.mom + k.omd * g;
      buf[i] = bn;
      g = NESTEROV ? g + k.mom * bn : bn;
    }
    param[i] = pi + k.negLr * g;
  }
}

Napi::Value Sgd(const Napi::CallbackInfo& info) {
  Params p(info, "sgd");
  const int64_t n = p.integer("n");
  const size_t need = Extent(p, {n});
  float* param = p.f32("param", need).data;
  const float* grad = p.f32("grad", need).data;
  const double lr = p.number("lr"), momentum = p.number("momentum"), dampening = p.number("dampening");
  const double wd = p.number("weightDecay");
  const bool nesterov = p.boolean("nesterov"), firstStep = p.boolean("firstStep");
  if (nesterov && (momentum <= 0.0 || dampening != 0.0))
    p.fail("nesterov requires momentum > 0 and dampening == 0 (as torch.optim.SGD)");
  const bool useMomentum = momentum != 0.0;
  float* buf = p.f32("momentumBuffer", need, /*optional=*/!useMomentum).data;
  if (useMomentum && n > 0 && buf == nullptr) p.fail("momentumBuffer is required when momentum != 0");
  // torch (sgd): g = grad.add(param, alpha=wd) if wd != 0; buf = clone(g) on the first step, else
  //   buf.mul_(momentum).add_(g, alpha=1-dampening); g = g.add(buf, alpha=momentum) if nesterov else buf;
  //   param.add_(g, alpha=-lr)
  SgdScalars k;
  k.wd = static_cast<float>(wd);
  k.mom = static_cast<float>(momentum);
  k.omd = static_cast<float>(1.0 - dampening);
  k.negLr = static_cast<float>(-lr);
  ParallelRange(n, kGrain, [&](int64_t b, int64_t e) {
    Dispatch([&]() AK_LAMBDA {
      WithBool(wd != 0.0, [&](auto useWd) AK_LAMBDA {
        WithBool(useMomentum, [&](auto mom) AK_LAMBDA {
          WithBool(firstStep, [&](auto first) AK_LAMBDA {
            WithBool(nesterov, [&](auto nest) AK_LAMBDA {
              SgdSpan<decltype(useWd)::value, decltype(mom)::value, decltype(first)::value, decltype(nest)::value>(
                  param, grad, buf, b, e, k);
            });
          });
        });
      });
    });
  });
  return info.Env().Undefined();
}

// ===================================================================================================
// sumSquares: float64 sum of x^2. Fixed order independent of threads: chunks of kSumChunk elements;
// inside a chunk, element k goes to lane k % 8 (8 float64 accumulators, added in index order); a chunk's
// sum is ((((acc0 + acc1) + acc2) + ...) + acc7); the chunk sums are added serially in chunk order.
// The JS reference follows the same order, so the two agree exactly.
// ===================================================================================================
constexpr int64_t kSumChunk = 8192;

AK_INLINE double ChunkSumSquares(const float* x, int64_t len) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
#pragma omp simd
    for (int j = 0; j < 8; ++j) acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
  }
  for (int j = 0; i + j < len; ++j) acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
  double s = acc[0];
  for (int j = 1; j < 8; ++j) s += acc[j];
  return s;
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  const float* x = PositionalF32(info, "sumSquares", &n);
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  ParallelFor(chunks, [&](int64_t c, int) {
    Dispatch([&]() AK_LAMBDA {
      const int64_t b = c * kSumChunk, e = std::min(n, b + kSumChunk);
      partial[static_cast<size_t>(c)] = ChunkSumSquares(x + b, e - b);
    });
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return Napi::Number::New(info.Env(), total);
}

// x[i] = float(double(x[i]) * s): the product is rounded in double, then to float (as JS does).
Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  float* x = PositionalF32(info, "scaleInPlace", &n);
  if (info.Length() < 3 || !info[2].IsNumber())
    throw Napi::RangeError::New(info.Env(), "alignkit native scaleInPlace: argument 's' must be a number");
  const double s = info[2].As<Napi::Number>().DoubleValue();
  ParallelRange(n, kGrain * 4, [&](int64_t b, int64_t e) {
    Dispatch([&]() AK_LAMBDA {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) x[i] = static_cast<float>(static_cast<double>(x[i]) * s);
    });
  });
  return info.Env().Undefined();
}

// ===================================================================================================
// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
// Element i of a fill uses ONE block: counter = [lo32(offset+i), hi32(offset+i), 0, 0], key = [seed, seedHi].
//   uniform: u = (w0 >> 8) * 2^-24 in [0, 1); out = float(a + (b - a) * u), computed in double
//            (rounding to float may give exactly b when b - a is large relative to the float spacing).
//   normal:  Box–Muller with u1 = (w0 + 1) * 2^-32 in (0, 1] (so log never sees 0) and
//            theta = 2 pi w1 2^-32: z = sqrt(-2 ln u1) cos(theta); out = float(a + b z) in double.
//            ln and cos are this file's own double routines (below) built from + - * / and sqrt only,
//            so the JS reference reproduces them bit for bit regardless of the C library.
//   dropout: keep iff u >= p (u as for uniform, from w0).
// ===================================================================================================
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Words 0 and 1 of philox4x32_10([c0, c1, 0, 0], [k0, k1]) (the two words the fills use).
AK_INLINE void Philox2Words(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t* w0, uint32_t* w1) {
  uint32_t c2 = 0, c3 = 0;
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kPhiloxW0;  // the bump after the last round is unused
    k1 += kPhiloxW1;
  }
  *w0 = c0;
  *w1 = c1;
}

// Fills w0/w1 for counters start .. start+count-1 (compiler-vectorised; the portable and AVX-512 path).
AK_INLINE void PhiloxTileGeneric(uint64_t start, int count, uint32_t k0, uint32_t k1, uint32_t* w0, uint32_t* w1) {
#pragma omp simd
  for (int i = 0; i < count; ++i) {
    const uint64_t c = start + static_cast<uint64_t>(i);
    Philox2Words(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), k0, k1, &w0[i], &w1[i]);
  }
}

#if AK_X86
// 8 lanes of 32x32 -> 64-bit products: _mm256_mul_epu32 multiplies the even 32-bit lanes, so the odd
// lanes are shifted down, multiplied separately, and the halves blended back into place.
AK_TARGET_AVX2 AK_INLINE void MulHiLo8(__m256i m, __m256i a, __m256i* hi, __m256i* lo) {
  const __m256i pe = _mm256_mul_epu32(a, m);
  const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

// Hand-written AVX2 Philox (GCC's auto-vectorisation of the 64-bit products is shuffle-bound, ~5x
// slower). Same words as Philox2Words, 8 counters at a time.
AK_TARGET_AVX2 void PhiloxTileAvx2(uint64_t start, int count, uint32_t k0, uint32_t k1, uint32_t* w0, uint32_t* w1) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  const __m256i bump0 = _mm256_set1_epi32(static_cast<int>(kPhiloxW0));
  const __m256i bump1 = _mm256_set1_epi32(static_cast<int>(kPhiloxW1));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    const uint64_t c = start + static_cast<uint64_t>(i);
    const uint32_t lo = static_cast<uint32_t>(c), hi = static_cast<uint32_t>(c >> 32);
    if (lo > 0xFFFFFFF8u) {  // the low word wraps inside these 8 counters: do them one by one
      for (int j = 0; j < 8; ++j) {
        const uint64_t cj = c + static_cast<uint64_t>(j);
        Philox2Words(static_cast<uint32_t>(cj), static_cast<uint32_t>(cj >> 32), k0, k1, &w0[i + j], &w1[i + j]);
      }
      continue;
    }
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(lo)), lane);
    __m256i c1 = _mm256_set1_epi32(static_cast<int>(hi));
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    __m256i kk0 = _mm256_set1_epi32(static_cast<int>(k0)), kk1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int r = 0; r < 10; ++r) {
      __m256i hi0, lo0, hi1, lo1;
      MulHiLo8(m0, c0, &hi0, &lo0);
      MulHiLo8(m1, c2, &hi1, &lo1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), kk0);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), kk1);
      c1 = lo1;
      c3 = lo0;
      c0 = n0;
      c2 = n2;
      kk0 = _mm256_add_epi32(kk0, bump0);
      kk1 = _mm256_add_epi32(kk1, bump1);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w0 + i), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w1 + i), c1);
  }
  for (; i < count; ++i) {
    const uint64_t c = start + static_cast<uint64_t>(i);
    Philox2Words(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), k0, k1, &w0[i], &w1[i]);
  }
}
#endif

AK_INLINE void PhiloxTile(uint64_t start, int count, uint32_t k0, uint32_t k1, uint32_t* w0, uint32_t* w1) {
#if AK_X86
  if (ActiveIsa() == Isa::Avx2) {
    PhiloxTileAvx2(start, count, k0, k1, w0, w1);
    return;
  }
#endif
  PhiloxTileGeneric(start, count, k0, k1, w0, w1);
}

constexpr double kTwoPow24Inv = 1.0 / 16777216.0;
constexpr double kLn2 = 0.69314718055994530942;     // == Math.LN2
constexpr double kSqrt2 = 1.41421356237309504880;   // == Math.SQRT2
constexpr double kPiOver2p31 = 3.14159265358979323846 / 2147483648.0;  // == Math.PI / 2^31 (exact scaling)


// ln((w + 1) / 2^32) in (-22.19, 0]. k = w + 1 = 2^e * m, m in [sqrt(1/2), sqrt(2)];
// ln m = 2 atanh(s), s = (m-1)/(m+1), series through s^23 (|s| < 0.172: truncation < 1e-18).
// Branch-free so the fill loop vectorises: k (<= 2^32) is converted exactly through the 2^52 trick and
// e, m are read from its bits. For w = 2^32 - 1, e = 32 and m = 1 give exactly 0.
AK_INLINE double LnUnit(uint32_t w) {
  const uint64_t k = static_cast<uint64_t>(w) + 1u;
  const double kd = Double64(0x4330000000000000ull | k) - 4503599627370496.0;  // exact: k < 2^52
  const uint64_t kb = Bits64(kd);
  int64_t e = static_cast<int64_t>(kb >> 52) - 1023;
  double m = Double64((kb & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // k / 2^e in [1, 2), exact
  const bool big = m > kSqrt2;
  m = Select64(big, m * 0.5, m);
  e = big ? e + 1 : e;
  const double s = (m - 1.0) / (m + 1.0);
  const double z = s * s;
  double q = 1.0 / 23.0;
  q = q * z + 1.0 / 21.0;
  q = q * z + 1.0 / 19.0;
  q = q * z + 1.0 / 17.0;
  q = q * z + 1.0 / 15.0;
  q = q * z + 1.0 / 13.0;
  q = q * z + 1.0 / 11.0;
  q = q * z + 1.0 / 9.0;
  q = q * z + 1.0 / 7.0;
  q = q * z + 1.0 / 5.0;
  q = q * z + 1.0 / 3.0;
  const double t = 2.0 * s;
  const double lnm = t + t * (z * q);
  const double ed = static_cast<double>(static_cast<int32_t>(e - 32));
  return ed * kLn2 + lnm;
}

// cos(2 pi w / 2^32). The top two bits pick the quadrant; the remaining 30 bits give the angle inside
// it, folded to [0, pi/4] (using sin of the complement above pi/4); Taylor series through x^18 / x^17.
AK_INLINE double Cos2Pi(uint32_t w) {
  const uint64_t w64 = w;  // 64-bit integer work keeps every mask as wide as the doubles (it vectorises)
  const uint64_t q = w64 >> 30, r = w64 & 0x3FFFFFFFu;
  const bool comp = r > 0x20000000u;
  const uint64_t rr = comp ? 0x40000000u - r : r;
  const double x = (Double64(0x4330000000000000ull | rr) - 4503599627370496.0) * kPiOver2p31;  // [0, pi/4], exact int
  const double z = x * x;
  double c = -1.0 / 6402373705728000.0;  // -1/18!
  c = c * z + 1.0 / 20922789888000.0;     // 1/16!
  c = c * z - 1.0 / 87178291200.0;        // 1/14!
  c = c * z + 1.0 / 479001600.0;          // 1/12!
  c = c * z - 1.0 / 3628800.0;            // 1/10!
  c = c * z + 1.0 / 40320.0;              // 1/8!
  c = c * z - 1.0 / 720.0;
  c = c * z + 1.0 / 24.0;
  c = c * z - 0.5;
  c = c * z + 1.0;
  double s = 1.0 / 355687428096000.0;     // 1/17!
  s = s * z - 1.0 / 1307674368000.0;      // 1/15!
  s = s * z + 1.0 / 6227020800.0;         // 1/13!
  s = s * z - 1.0 / 39916800.0;           // 1/11!
  s = s * z + 1.0 / 362880.0;             // 1/9!
  s = s * z - 1.0 / 5040.0;
  s = s * z + 1.0 / 120.0;
  s = s * z - 1.0 / 6.0;
  s = s * z + 1.0;
  s = x * s;
  const double cphi = Select64(comp, s, c);  // cos of the angle inside the quadrant
  const double sphi = Select64(comp, c, s);  // sin of it
  // quadrant q: cos(q pi/2 + phi) = cphi, -sphi, -cphi, sphi
  const double mag = Select64((q & 1u) != 0, sphi, cphi);
  return Select64((q == 1u) | (q == 2u), -mag, mag);
}

struct RngArgs {
  uint32_t k0, k1;
  uint64_t offset;
};

RngArgs ParseRng(const Params& p, int64_t n) {
  const int64_t seed = p.integer("seed"), seedHi = p.integer("seedHi"), offset = p.integer("offset");
  if (seed > 0xFFFFFFFFll) p.fail("seed must be a uint32 (< 2^32)");
  if (seedHi > 0xFFFFFFFFll) p.fail("seedHi must be a uint32 (< 2^32)");
  if (offset > (int64_t(1) << 53) || offset + n > (int64_t(1) << 53)) p.fail("offset + n must be <= 2^53");
  return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seedHi), static_cast<uint64_t>(offset)};
}

constexpr int kTile = 512;

AK_INLINE void UniformSpan(const uint32_t* w0, float* o, int cnt, double a, double width) {
#pragma omp simd
  for (int i = 0; i < cnt; ++i) {
    const double u = static_cast<double>(static_cast<int32_t>(w0[i] >> 8)) * kTwoPow24Inv;
    o[i] = static_cast<float>(a + width * u);
  }
}

AK_INLINE void NormalSpan(const uint32_t* w0, const uint32_t* w1, float* o, int cnt, double mean, double std) {
#pragma omp simd
  for (int i = 0; i < cnt; ++i) {
    const double z = std::sqrt(-2.0 * LnUnit(w0[i])) * Cos2Pi(w1[i]);
    o[i] = static_cast<float>(mean + std * z);
  }
}

Napi::Value RandomFill(const Napi::CallbackInfo& info) {
  Params p(info, "randomFill");
  const int64_t n = p.integer("n");
  float* out = p.f32("out", Extent(p, {n})).data;
  const RngArgs rng = ParseRng(p, n);
  const std::string kind = p.string("kind");
  const double a = p.number("a"), b = p.number("b");
  const bool normal = kind == "normal";
  if (!normal && kind != "uniform") p.fail("kind must be 'uniform' or 'normal', got '" + kind + "'");
  const double width = b - a;
  ParallelRange(n, kGrain, [&](int64_t r0, int64_t r1) {
    Dispatch([&]() AK_LAMBDA {
      alignas(64) uint32_t w0[kTile], w1[kTile];
      for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
        const int cnt = static_cast<int>(std::min<int64_t>(kTile, r1 - t0));
        PhiloxTile(rng.offset + static_cast<uint64_t>(t0), cnt, rng.k0, rng.k1, w0, w1);
        if (normal)
          NormalSpan(w0, w1, out + t0, cnt, a, b);
        else
          UniformSpan(w0, out + t0, cnt, a, width);
      }
    });
  });
  return info.Env().Undefined();
}

AK_INLINE void DropoutSpan(const uint32_t* w0, const float* x, float* out, uint8_t* mask, int cnt, uint32_t thresh,
                           float scale) {
#pragma omp simd
  for (int i = 0; i < cnt; ++i) {
    const bool keep = (w0[i] >> 8) >= thresh;
    out[i] = Select(keep, x[i] * scale, 0.0f);
    mask[i] = static_cast<uint8_t>(keep);
  }
}

// out = keep ? x * float(1/(1-p)) : 0 (torch multiplies by the float scale too); mask = keep.
// keep iff u >= p with u = (w0 >> 8) 2^-24, i.e. iff (w0 >> 8) >= ceil(p 2^24) (exact: p 2^24 is exact).
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Params p(info, "dropout");
  const int64_t n = p.integer("n");
  const size_t need = Extent(p, {n});
  const float* x = p.f32("x", need).data;
  float* out = p.f32("out", need).data;
  uint8_t* mask = p.u8Mut("mask", need);
  const double prob = p.number("p");
  if (!(prob >= 0.0 && prob <= 1.0)) p.fail("p must be in [0, 1], got " + std::to_string(prob));
  const RngArgs rng = ParseRng(p, n);
  const uint32_t thresh = static_cast<uint32_t>(std::ceil(prob * 16777216.0));
  const float scale = prob < 1.0 ? static_cast<float>(1.0 / (1.0 - prob)) : 0.0f;
  ParallelRange(n, kGrain, [&](int64_t r0, int64_t r1) {
    Dispatch([&]() AK_LAMBDA {
      alignas(64) uint32_t w0[kTile], w1[kTile];
      for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
        const int cnt = static_cast<int>(std::min<int64_t>(kTile, r1 - t0));
        PhiloxTile(rng.offset + static_cast<uint64_t>(t0), cnt, rng.k0, rng.k1, w0, w1);
        DropoutSpan(w0, x + t0, out + t0, mask + t0, cnt, thresh, scale);
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace

void RegisterElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("sgd", Napi::Function::New(env, Sgd));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace));
  exports.Set("randomFill", Napi::Function::New(env, RandomFill));
  exports.Set("dropout", Napi::Function::New(env, Dropout));
}

}  // namespace alignkit
