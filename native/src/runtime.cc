// Addon runtime: CPU detection, the thread pool, parameter parsing, aligned buffers, registration.
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sys/mman.h>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace alignkit {

// ------------------------------------------------------------------------------------------ CPU dispatch
static Isa Detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Portable;
}

static Isa ParseIsa(const char* s, Isa fallback) {
  if (!s) return fallback;
  std::string v(s);
  if (v == "portable") return Isa::Portable;
  if (v == "avx2") return Isa::Avx2;
  if (v == "avx512") return Isa::Avx512;
  return fallback;
}

static const Isa kDetected = Detect();
static std::atomic<int> gActive{static_cast<int>(
    std::min(static_cast<int>(kDetected), static_cast<int>(ParseIsa(std::getenv("ALIGNKIT_ISA"), kDetected))))};

Isa DetectedIsa() { return kDetected; }
Isa ActiveIsa() { return static_cast<Isa>(gActive.load(std::memory_order_relaxed)); }
void SetActiveIsa(Isa isa) {
  gActive.store(std::min(static_cast<int>(isa), static_cast<int>(kDetected)), std::memory_order_relaxed);
}
const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

// ------------------------------------------------------------------------------------------ thread pool
namespace {
thread_local bool tInsidePool = false;

class ThreadPool {
 public:
  ~ThreadPool() { Stop(); }

  int size() const { return size_; }

  void Resize(int n) {
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    std::lock_guard<std::mutex> run(runMutex_);
    Stop();
    size_ = n;
    stop_ = false;
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
  }

  void Run(int64_t numTasks, const std::function<void(int64_t, int)>& fn) {
    if (numTasks <= 0) return;
    if (size_ == 1 || numTasks == 1 || tInsidePool) {
      for (int64_t i = 0; i < numTasks; ++i) fn(i, 0);
      return;
    }
    std::lock_guard<std::mutex> run(runMutex_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      numTasks_ = numTasks;
      next_.store(0);
      pending_ = size_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    tInsidePool = true;
    Drain(0);
    tInsidePool = false;
    std::unique_lock<std::mutex> lock(mutex_);
    doneCv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
  void Drain(int thread) {
    for (;;) {
      int64_t task = next_.fetch_add(1);
      if (task >= numTasks_) break;
      (*fn_)(task, thread);
    }
  }

  void WorkerLoop(int thread) {
    tInsidePool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      Drain(thread);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) doneCv_.notify_one();
      }
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  bool stop_ = false;
  std::vector<std::thread> workers_;
  std::mutex runMutex_;
  std::mutex mutex_;
  std::condition_variable cv_, doneCv_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t numTasks_ = 0;
  std::atomic<int64_t> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
};

int DefaultThreads() {
  if (const char* env = std::getenv("ALIGNKIT_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

ThreadPool& Pool() {
  static ThreadPool* pool = [] {
    auto* p = new ThreadPool();  // intentionally leaked: workers must outlive static destruction order
    p->Resize(DefaultThreads());
    return p;
  }();
  return *pool;
}
}  // namespace

int NumThreads() { return Pool().size(); }
void SetNumThreads(int n) { Pool().Resize(n); }
void ParallelFor(int64_t numTasks, const std::function<void(int64_t, int)>& fn) { Pool().Run(numTasks, fn); }
void ParallelRange(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t maxTasks = (n + grain - 1) / grain;
  int64_t tasks = std::min<int64_t>(maxTasks, static_cast<int64_t>(NumThreads()) * 4);
  if (tasks < 1) tasks = 1;
  int64_t per = (n + tasks - 1) / tasks;
  ParallelFor(tasks, [&](int64_t t, int) {
    int64_t b = t * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

// ------------------------------------------------------------------------------------------ params
Params::Params(const Napi::CallbackInfo& info, const char* kernel) : env_(info.Env()), kernel_(kernel) {
  if (info.Length() < 1 || !info[0].IsObject()) {
    fail("expects one parameter object");
  }
  obj_ = info[0].As<Napi::Object>();
}

void Params::fail(const std::string& message) const {
  throw Napi::RangeError::New(env_, std::string("alignkit native ") + kernel_ + ": " + message);
}

Napi::Value Params::get(const char* field) const { return obj_.Get(field); }

bool Params::has(const char* field) const {
  Napi::Value v = get(field);
  return !(v.IsUndefined() || v.IsNull());
}

static std::string Need(const char* field, size_t have, size_t need) {
  return std::string("field '") + field + "' has " + std::to_string(have) + " elements but the shape needs " +
         std::to_string(need);
}

F32Arg Params::f32(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return {};
    fail(std::string("missing Float32Array field '") + field + "'");
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(std::string("field '") + field + "' must be a Float32Array");
  auto arr = v.As<Napi::Float32Array>();
  size_t len = arr.ElementLength();
  if (len < need) fail(Need(field, len, need));
  if (len == 0) return {nullptr, 0};
  return {arr.Data(), len};
}

const int32_t* Params::i32(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    fail(std::string("missing Int32Array field '") + field + "'");
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    fail(std::string("field '") + field + "' must be an Int32Array");
  auto arr = v.As<Napi::Int32Array>();
  if (arr.ElementLength() < need) fail(Need(field, arr.ElementLength(), need));
  return arr.Data();
}

uint8_t* Params::u8Mut(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    fail(std::string("missing Uint8Array field '") + field + "'");
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    fail(std::string("field '") + field + "' must be a Uint8Array");
  auto arr = v.As<Napi::Uint8Array>();
  if (arr.ElementLength() < need) fail(Need(field, arr.ElementLength(), need));
  return arr.Data();
}

const uint8_t* Params::u8(const char* field, size_t need, bool optional) const { return u8Mut(field, need, optional); }

int64_t Params::integer(const char* field, int64_t min) const {
  Napi::Value v = get(field);
  if (!v.IsNumber()) fail(std::string("field '") + field + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) fail(std::string("field '") + field + "' must be an integer");
  if (d < static_cast<double>(min))
    fail(std::string("field '") + field + "' must be >= " + std::to_string(min) + ", got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int64_t Params::integerOr(const char* field, int64_t fallback, int64_t min) const {
  return has(field) ? integer(field, min) : fallback;
}

double Params::number(const char* field) const {
  Napi::Value v = get(field);
  if (!v.IsNumber()) fail(std::string("field '") + field + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Params::boolean(const char* field) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsBoolean()) fail(std::string("field '") + field + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Params::string(const char* field) const {
  Napi::Value v = get(field);
  if (!v.IsString()) fail(std::string("field '") + field + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

size_t Extent(const Params& p, std::initializer_list<int64_t> dims) {
  unsigned __int128 total = 1;
  for (int64_t d : dims) {
    if (d < 0) p.fail("negative dimension");
    total *= static_cast<unsigned __int128>(d);
    if (total > (static_cast<unsigned __int128>(1) << 48)) p.fail("shape too large");
  }
  return static_cast<size_t>(total);
}

// ------------------------------------------------------------------------------------------ buffers
namespace {
std::atomic<int64_t> gLiveBytes{0}, gPeakBytes{0}, gLiveBuffers{0};

void NoteAlloc(int64_t bytes) {
  int64_t now = gLiveBytes.fetch_add(bytes) + bytes;
  gLiveBuffers.fetch_add(1);
  int64_t peak = gPeakBytes.load();
  while (now > peak && !gPeakBytes.compare_exchange_weak(peak, now)) {
  }
}

// Each buffer has a record shared by free() and the GC finalizer: free() releases the memory at once
// (after detaching, so no JS view can reach it); the finalizer, which V8 runs whenever it collects the
// ArrayBuffer, only frees what free() has not.
struct BufferRecord {
  void* data;
  int64_t bytes;
  bool freed;
};
std::mutex gRecordsMutex;
std::unordered_map<void*, BufferRecord*> gRecords;

// Buffers of kMapBytes or more are mapped straight from the OS and unmapped when freed. Through malloc they
// would land in glibc's heap once its dynamic mmap threshold has risen (it follows the largest block freed, up
// to 32 MiB): the many same-sized activation and gradient blocks of a training step then fragment that heap,
// which is trimmed only at its top, and the process's RSS grew to ~1.3x the live bytes (SmolLM2-135M LoRA
// step: 3.5-4.2 GB RSS for 2.7 GB live, growing step by step; 8.8 GB with the pool off; 3.0 GB this way, at the
// same CPU time per step). Fresh mappings are zero-filled by the kernel, so they need no memset either.
constexpr size_t kMapBytes = size_t{1} << 20;

// Returns nullptr when out of memory; *zeroed tells whether the memory is known to be zero.
void* RawAlloc(size_t bytes, bool* zeroed) {
  if (bytes >= kMapBytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *zeroed = p != MAP_FAILED;
    return p == MAP_FAILED ? nullptr : p;
  }
  *zeroed = false;
  return std::aligned_alloc(64, bytes);
}

void RawFree(void* p, size_t bytes) {
  if (bytes >= kMapBytes) munmap(p, bytes);
  else std::free(p);
}

// A pool of freed buffers by exact (64-byte rounded) size. Training and decoding loops allocate the same
// shapes every step; reusing their memory avoids returning large blocks to the OS and faulting fresh pages
// in again (which cost more than the kernels on small models). Capped by ALIGNKIT_POOL_MB (default 1024).
std::mutex gPoolMutex;
std::unordered_map<size_t, std::vector<void*>> gPool;
int64_t gPooledBytes = 0;

int64_t PoolCapBytes() {
  static const int64_t cap = [] {
    const char* env = std::getenv("ALIGNKIT_POOL_MB");
    long long mb = env ? std::atoll(env) : 1024;
    return static_cast<int64_t>(mb < 0 ? 0 : mb) << 20;
  }();
  return cap;
}

void* PoolTake(size_t bytes) {
  std::lock_guard<std::mutex> lock(gPoolMutex);
  auto it = gPool.find(bytes);
  if (it == gPool.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  gPooledBytes -= static_cast<int64_t>(bytes);
  return p;
}

void PoolGive(void* p, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(gPoolMutex);
    if (gPooledBytes + static_cast<int64_t>(bytes) <= PoolCapBytes()) {
      gPool[bytes].push_back(p);
      gPooledBytes += static_cast<int64_t>(bytes);
      return;
    }
  }
  RawFree(p, bytes);
}

void ReleaseRecordMemory(BufferRecord* r) {  // caller holds gRecordsMutex
  if (r->freed) return;
  r->freed = true;
  PoolGive(r->data, static_cast<size_t>(r->bytes));
  gLiveBytes.fetch_sub(r->bytes);
  gLiveBuffers.fetch_sub(1);
}

void FinalizeBuffer(napi_env, void* data, void* hint) {
  auto* r = static_cast<BufferRecord*>(hint);
  std::lock_guard<std::mutex> lock(gRecordsMutex);
  ReleaseRecordMemory(r);
  auto it = gRecords.find(data);
  if (it != gRecords.end() && it->second == r) gRecords.erase(it);
  delete r;
}

// alloc(bytes[, uninitialized]) -> ArrayBuffer: 64-byte aligned, owned natively (freed by free() or GC);
// zero-filled unless the second argument is true (for outputs a kernel overwrites completely).
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "alignkit native alloc: expects a byte count");
  double req = info[0].As<Napi::Number>().DoubleValue();
  if (!(req >= 0) || req > 1e14) throw Napi::RangeError::New(env, "alignkit native alloc: invalid byte count");
  size_t bytes = static_cast<size_t>(req);
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;
  bool zeroed = false;
  void* data = PoolTake(rounded);
  if (!data) data = RawAlloc(rounded, &zeroed);
  if (!data)
    throw Napi::Error::New(env, "alignkit native alloc: out of memory allocating " + std::to_string(rounded) + " bytes");
  const bool uninitialized = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  // ALIGNKIT_POISON_UNINIT=1 fills "uninitialized" buffers with NaN bit patterns, so a test run can prove that
  // no kernel reads memory it was supposed to overwrite.
  static const bool poison = std::getenv("ALIGNKIT_POISON_UNINIT") != nullptr;
  if (!uninitialized) {
    if (!zeroed) std::memset(data, 0, rounded);
  } else if (poison) std::memset(data, 0xff, rounded);
  NoteAlloc(static_cast<int64_t>(rounded));
  auto* record = new BufferRecord{data, static_cast<int64_t>(rounded), false};
  {
    std::lock_guard<std::mutex> lock(gRecordsMutex);
    gRecords[data] = record;
  }
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, data, bytes, FinalizeBuffer, record, &ab);
  if (st != napi_ok) {
    FinalizeBuffer(env, data, record);
    throw Napi::Error::New(env, "alignkit native alloc: cannot create an external ArrayBuffer");
  }
  return Napi::Value(env, ab);
}

// free(ArrayBuffer): detaches the buffer (every view over it becomes length 0) and releases the memory now.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "alignkit native free: expects an ArrayBuffer");
  napi_value ab = info[0];
  bool detached = false;
  napi_is_detached_arraybuffer(env, ab, &detached);
  if (detached) return env.Undefined();
  void* data = nullptr;
  size_t length = 0;
  napi_get_arraybuffer_info(env, ab, &data, &length);
  BufferRecord* record = nullptr;
  {
    std::lock_guard<std::mutex> lock(gRecordsMutex);
    auto it = gRecords.find(data);
    if (it != gRecords.end()) record = it->second;
  }
  if (!record) throw Napi::TypeError::New(env, "alignkit native free: this ArrayBuffer was not allocated by alignkit");
  if (napi_detach_arraybuffer(env, ab) != napi_ok) throw Napi::Error::New(env, "alignkit native free: buffer is not detachable");
  std::lock_guard<std::mutex> lock(gRecordsMutex);
  ReleaseRecordMemory(record);
  gRecords.erase(data);
  return env.Undefined();
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(gLiveBytes.load())));
  o.Set("peakBytes", Napi::Number::New(env, static_cast<double>(gPeakBytes.load())));
  o.Set("liveBuffers", Napi::Number::New(env, static_cast<double>(gLiveBuffers.load())));
  {
    std::lock_guard<std::mutex> lock(gPoolMutex);
    o.Set("pooledBytes", Napi::Number::New(env, static_cast<double>(gPooledBytes)));
  }
  return o;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  gPeakBytes.store(gLiveBytes.load());
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", Napi::String::New(env, IsaName(ActiveIsa())));
  o.Set("detectedIsa", Napi::String::New(env, IsaName(DetectedIsa())));
  o.Set("threads", Napi::Number::New(env, NumThreads()));
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "alignkit native setThreads: expects a number");
  SetNumThreads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "alignkit native setIsa: expects a string");
  std::string s = info[0].As<Napi::String>().Utf8Value();
  if (s != "portable" && s != "avx2" && s != "avx512")
    throw Napi::RangeError::New(env, "alignkit native setIsa: unknown ISA '" + s + "' (portable, avx2, avx512)");
  SetActiveIsa(ParseIsa(s.c_str(), Isa::Portable));
  return Napi::String::New(env, IsaName(ActiveIsa()));
}
}  // namespace

}  // namespace alignkit

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace alignkit;
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats));
  exports.Set("resetPeak", Napi::Function::New(env, ResetPeak));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  RegisterGemm(env, exports);
  RegisterAttention(env, exports);
  RegisterNorms(env, exports);
  RegisterLinearLogprob(env, exports);
  RegisterElementwise(env, exports);
  RegisterLayout(env, exports);
  return exports;
}

NODE_API_MODULE(alignkit_native, Init)
