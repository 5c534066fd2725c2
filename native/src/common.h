// Shared helpers for the alignkit native addon: parameter parsing with bounds checks, the thread pool,
// and CPU feature dispatch. Every kernel reads its parameters through these helpers so that a bad call
// from JavaScript raises a clear exception instead of reading or writing out of bounds.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace alignkit {

// ---------------------------------------------------------------------------------------------------
// CPU dispatch
enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };
Isa DetectedIsa();          // the best the CPU supports
Isa ActiveIsa();            // what kernels use now (<= detected; lowered by ALIGNKIT_ISA or setIsa)
void SetActiveIsa(Isa isa); // clamps to detected
const char* IsaName(Isa isa);

// ---------------------------------------------------------------------------------------------------
// Thread pool: persistent workers, sized to the cores (ALIGNKIT_THREADS overrides).
int NumThreads();
void SetNumThreads(int n);
// Runs fn(task, thread) for task in [0, numTasks). Tasks are handed out dynamically; a kernel must make
// each task's output independent of which thread runs it (that is what keeps results thread-count
// independent). Nested calls run serially on the calling thread. If tasks throw, the region still runs to
// the end and the first exception is rethrown on the calling thread.
void ParallelFor(int64_t numTasks, const std::function<void(int64_t task, int thread)>& fn);
// Splits [0, n) into contiguous ranges of at least `grain` items and runs fn(begin, end) on them.
void ParallelRange(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

// ---------------------------------------------------------------------------------------------------
// Parameter parsing. `kernel` names the calling kernel in error messages.
struct F32Arg {
  float* data = nullptr;
  size_t length = 0;
};

class Params {
 public:
  Params(const Napi::CallbackInfo& info, const char* kernel);
  Napi::Env env() const { return env_; }
  const char* kernel() const { return kernel_; }

  // Float32Array field with at least `need` elements. optional: null/undefined allowed (returns data=nullptr).
  F32Arg f32(const char* field, size_t need, bool optional = false) const;
  const int32_t* i32(const char* field, size_t need, bool optional = false) const;
  const uint8_t* u8(const char* field, size_t need, bool optional = false) const;
  uint8_t* u8Mut(const char* field, size_t need, bool optional = false) const;
  int64_t integer(const char* field, int64_t min = 0) const;  // must be an integer >= min
  int64_t integerOr(const char* field, int64_t fallback, int64_t min = 0) const;
  double number(const char* field) const;
  bool boolean(const char* field) const;
  std::string string(const char* field) const;
  bool has(const char* field) const;  // present and not null/undefined

  [[noreturn]] void fail(const std::string& message) const;

 private:
  Napi::Value get(const char* field) const;
  Napi::Env env_;
  Napi::Object obj_;
  const char* kernel_;
};

// Checked size product (throws through `p` on overflow or negative).
size_t Extent(const Params& p, std::initializer_list<int64_t> dims);

// Module registration: each kernel family lives in its own file and adds its functions here.
void RegisterGemm(Napi::Env env, Napi::Object exports);
void RegisterAttention(Napi::Env env, Napi::Object exports);
void RegisterNorms(Napi::Env env, Napi::Object exports);        // rmsnorm, layernorm, softmax
void RegisterLinearLogprob(Napi::Env env, Napi::Object exports);
void RegisterElementwise(Napi::Env env, Napi::Object exports);  // rope, unary, optimizers, rng, dropout
void RegisterLayout(Napi::Env env, Napi::Object exports);       // same-shape binary ops, head permutation

// The SGEMM entry for other native kernels (row-major, same semantics as the JS `sgemm`, single matrix).
// Threads internally; do not call it from inside a ParallelFor task unless you want it serial.
void Sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace alignkit
