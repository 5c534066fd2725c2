// Same-shape binary ops (residual adds, gated activations) and the head-layout permutation between the
// projection layout [B, T, G, H, D] and the attention layout [G, B, H, T, D]. Memory-bound: vectorised
// simple loops, split over threads in fixed contiguous ranges (each output element is written by one task).
#include <cstring>
#include <string>

#include "common.h"

namespace alignkit {
namespace {

constexpr int64_t kGrain = 1 << 15;

template <int Op>
void BinaryRange(const float* a, const float* b, float* out, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    if (Op == 0) out[i] = a[i] + b[i];
    else if (Op == 1) out[i] = a[i] - b[i];
    else out[i] = a[i] * b[i];
  }
}

template <int Op>
__attribute__((target("avx2,fma"))) void BinaryRangeAvx2(const float* a, const float* b, float* out, int64_t begin, int64_t end) {
  BinaryRange<Op>(a, b, out, begin, end);
}

// binary({op, a, b, out, n}): out = a (op) b
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Params p(info, "binary");
  const int64_t n = p.integer("n");
  const std::string op = p.string("op");
  const int code = op == "add" ? 0 : op == "sub" ? 1 : op == "mul" ? 2 : -1;
  if (code < 0) p.fail("unknown op '" + op + "' (add, sub, mul)");
  const float* a = p.f32("a", n).data;
  const float* b = p.f32("b", n).data;
  float* out = p.f32("out", n).data;
  if (n == 0) return p.env().Undefined();
  const bool avx2 = ActiveIsa() != Isa::Portable;
  ParallelRange(n, kGrain, [&](int64_t begin, int64_t end) {
    if (avx2) {
      if (code == 0) BinaryRangeAvx2<0>(a, b, out, begin, end);
      else if (code == 1) BinaryRangeAvx2<1>(a, b, out, begin, end);
      else BinaryRangeAvx2<2>(a, b, out, begin, end);
    } else {
      if (code == 0) BinaryRange<0>(a, b, out, begin, end);
      else if (code == 1) BinaryRange<1>(a, b, out, begin, end);
      else BinaryRange<2>(a, b, out, begin, end);
    }
  });
  return p.env().Undefined();
}

// permuteHeads({src, dst, batch, seq, groups, heads, headDim, toHeadsFirst})
Napi::Value PermuteHeads(const Napi::CallbackInfo& info) {
  Params p(info, "permuteHeads");
  const int64_t B = p.integer("batch"), T = p.integer("seq"), G = p.integer("groups"), H = p.integer("heads"), D = p.integer("headDim");
  const bool toHeadsFirst = p.boolean("toHeadsFirst");
  const size_t n = Extent(p, {B, T, G, H, D});
  const float* src = p.f32("src", n).data;
  float* dst = p.f32("dst", n).data;
  if (n == 0) return p.env().Undefined();
  if (src < dst + n && dst < src + n) p.fail("src and dst overlap");
  const size_t rowBytes = static_cast<size_t>(D) * sizeof(float);
  // One task per (b, t) token: it moves that token's G*H rows.
  ParallelRange(B * T, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, G * H * D)), [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / T, t = bt % T;
      for (int64_t g = 0; g < G; ++g)
        for (int64_t h = 0; h < H; ++h) {
          const int64_t tokensFirst = (((b * T + t) * G + g) * H + h) * D;
          const int64_t headsFirst = (((g * B + b) * H + h) * T + t) * D;
          if (toHeadsFirst) std::memcpy(dst + headsFirst, src + tokensFirst, rowBytes);
          else std::memcpy(dst + tokensFirst, src + headsFirst, rowBytes);
        }
    }
  });
  return p.env().Undefined();
}

}  // namespace

void RegisterLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("permuteHeads", Napi::Function::New(env, PermuteHeads));
}

}  // namespace alignkit
