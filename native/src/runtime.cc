// Addon runtime: CPU detection, the thread pool, parameter parsing, aligned buffers, registration.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
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

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker keeps polling for the next parallel region before it sleeps on the condition
// variable (and how long the caller polls for the last running tasks to finish). A transformer step issues
// parallel regions microseconds apart (decoding: ~20 kernels per layer); waking a sleeping thread through the
// kernel costs tens of microseconds, more than many of those kernels. Polling briefly keeps the workers on
// their cores between regions (OpenMP runtimes do the same, for far longer). A poller yields its core every
// few microseconds, so on an oversubscribed machine it does not keep a runnable thread off the CPU.
// ALIGNKIT_SPIN_US overrides (0: always sleep).
int64_t SpinNanos() {
  static const int64_t ns = [] {
    const char* env = std::getenv("ALIGNKIT_SPIN_US");
    long long us = env ? std::atoll(env) : 1000;
    return static_cast<int64_t>(us < 0 ? 0 : us) * 1000;
  }();
  return ns;
}

// Polls `done()` for up to SpinNanos(); true if it became true meanwhile.
template <class F>
bool SpinUntil(const F& done) {
  const int64_t budget = SpinNanos();
  if (budget == 0) return done();
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 128; ++i) {
      if (done()) return true;
      CpuRelax();
    }
    if (std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count() > budget)
      return done();
    std::this_thread::yield();
  }
}

// Work hand-out. One 64-bit word holds the region's generation (high 24 bits) and the next unclaimed task
// (low 40 bits); a thread claims a task with a compare-and-swap, which fails if the region changed since it
// read the word, so a worker that wakes late can never claim (or run) a task of a region it did not read.
// The caller waits for the claimed tasks to finish (a count of finished tasks), never for a worker to
// check in: a worker that is not scheduled in time simply takes no part, instead of stalling the caller
// for a scheduler slice on a busy machine.
constexpr int kTaskBits = 40;
constexpr uint64_t kTaskMask = (uint64_t{1} << kTaskBits) - 1;

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
    stop_.store(false);
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
  }

  void Run(int64_t numTasks, const std::function<void(int64_t, int)>& fn) {
    if (numTasks <= 0) return;
    if (size_ == 1 || numTasks == 1 || tInsidePool || numTasks > static_cast<int64_t>(kTaskMask)) {
      for (int64_t i = 0; i < numTasks; ++i) fn(i, 0);
      return;
    }
    std::lock_guard<std::mutex> run(runMutex_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);  // for workers asleep on cv_
      const uint64_t last = work_.load(std::memory_order_relaxed);
      // Close the finished region's word before numTasks_ changes. Without this, a worker that read the old
      // word (every task claimed) and then the NEW, larger task count would see an unclaimed task in the old
      // word and its compare-and-swap would still succeed (the word has not changed yet): a phantom task run
      // with whatever fn_ holds, counted into the new region's finished_ so that it never equals numTasks_
      // (a hang), and possibly run twice. Workers read numTasks_ with acquire, so one that sees the new count
      // also sees this store, and its CAS on the old word fails.
      work_.store((last & ~kTaskMask) | kTaskMask, std::memory_order_relaxed);
      fn_.store(&fn, std::memory_order_relaxed);
      finished_.store(0, std::memory_order_relaxed);
      numTasks_.store(numTasks, std::memory_order_release);
      const uint64_t gen = (last >> kTaskBits) + 1;
      work_.store(gen << kTaskBits, std::memory_order_release);  // publishes the stores above
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    tInsidePool = true;
    Drain(0);
    tInsidePool = false;
    auto allDone = [&] { return finished_.load(std::memory_order_acquire) == numTasks; };
    if (!SpinUntil(allDone)) {
      std::unique_lock<std::mutex> lock(mutex_);
      doneCv_.wait(lock, allDone);
    }
    if (error_) {  // the region is over: no task can still be using fn
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  // Claims and runs tasks of the current region until none is left; returns that region's generation.
  uint64_t Drain(int thread) {
    uint64_t w = work_.load(std::memory_order_acquire);
    int64_t ran = 0, total = 0;
    const std::function<void(int64_t, int)>* fn = nullptr;
    for (;;) {
      const int64_t n = numTasks_.load(std::memory_order_acquire);  // see Run: pairs with its release store
      const int64_t task = static_cast<int64_t>(w & kTaskMask);
      if (task >= n) break;
      // On success the region of `w` is current and cannot finish before this task does, so fn_ and
      // numTasks_ (read after the acquire) are that region's.
      if (!work_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      if (!fn) {
        fn = fn_.load(std::memory_order_relaxed);
        total = n;
      }
      // A task that throws still counts as finished; the first exception is rethrown by Run on the calling
      // thread once every task is done (escaping a worker it would end the process; escaping the caller's
      // share early it would leave the workers running tasks of a region whose fn is gone).
      try {
        (*fn)(task, thread);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      ++ran;
      // (The region cannot end while this thread holds finished tasks it has not counted yet, so the
      // generation stays the same through this loop once a task was claimed.)
      w = work_.load(std::memory_order_acquire);
    }
    if (ran > 0 && finished_.fetch_add(ran, std::memory_order_acq_rel) + ran == total) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller checks finished_ under the mutex before it sleeps
      doneCv_.notify_one();
    }
    return w >> kTaskBits;
  }

  void WorkerLoop(int thread) {
    tInsidePool = true;
    uint64_t seen = 0;  // generations start at 1
    for (;;) {
      auto ready = [&] {
        return stop_.load(std::memory_order_acquire) || (work_.load(std::memory_order_acquire) >> kTaskBits) != seen;
      };
      if (!SpinUntil(ready)) {
        std::unique_lock<std::mutex> lock(mutex_);
        // Counted under the mutex before the predicate check: a Run that publishes after this point sees
        // sleepers_ > 0 and notifies; one that published before is seen by the check.
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        cv_.wait(lock, ready);
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = Drain(thread);
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
  std::mutex runMutex_;
  std::mutex mutex_;
  std::condition_variable cv_, doneCv_;
  std::atomic<const std::function<void(int64_t, int)>*> fn_{nullptr};
  std::atomic<int64_t> numTasks_{0};
  std::atomic<uint64_t> work_{0};       // generation << kTaskBits | next task
  std::atomic<int64_t> finished_{0};    // tasks of the current region that have finished
  std::atomic<int> sleepers_{0};
  std::exception_ptr error_;  // guarded by mutex_ while a region runs
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

// One typed-array field: type, length and data from a single napi_get_typedarray_info (node-addon-api's
// TypedArray wrappers query the same information three times per field; a decoding step reads a few
// thousand array fields). Returns nullptr data for an empty array.
static void* TypedField(const Params& p, napi_value v, const char* field, napi_typedarray_type want, const char* typeName,
                        size_t need, size_t* lengthOut) {
  napi_env env = p.env();
  bool isTyped = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != want)
    p.fail(std::string("field '") + field + "' must be a" + (typeName[0] == 'I' ? "n " : " ") + typeName);
  if (length < need) p.fail(Need(field, length, need));
  if (lengthOut) *lengthOut = length;
  return length == 0 ? nullptr : data;
}

F32Arg Params::f32(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return {};
    fail(std::string("missing Float32Array field '") + field + "'");
  }
  size_t len = 0;
  float* data = static_cast<float*>(TypedField(*this, v, field, napi_float32_array, "Float32Array", need, &len));
  return {data, data ? len : 0};
}

const int32_t* Params::i32(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    fail(std::string("missing Int32Array field '") + field + "'");
  }
  return static_cast<const int32_t*>(TypedField(*this, v, field, napi_int32_array, "Int32Array", need, nullptr));
}

uint8_t* Params::u8Mut(const char* field, size_t need, bool optional) const {
  Napi::Value v = get(field);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    fail(std::string("missing Uint8Array field '") + field + "'");
  }
  return static_cast<uint8_t*>(TypedField(*this, v, field, napi_uint8_array, "Uint8Array", need, nullptr));
}

const uint8_t* Params::u8(const char* field, size_t need, bool optional) const { return u8Mut(field, need, optional); }

// (Numbers and booleans are read with one N-API call each, which also reports a wrong type.)
int64_t Params::integer(const char* field, int64_t min) const {
  double d = 0;
  if (napi_get_value_double(env_, get(field), &d) != napi_ok) fail(std::string("field '") + field + "' must be a number");
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) fail(std::string("field '") + field + "' must be an integer");
  if (d < static_cast<double>(min))
    fail(std::string("field '") + field + "' must be >= " + std::to_string(min) + ", got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int64_t Params::integerOr(const char* field, int64_t fallback, int64_t min) const {
  return has(field) ? integer(field, min) : fallback;
}

double Params::number(const char* field) const {
  double d = 0;
  if (napi_get_value_double(env_, get(field), &d) != napi_ok) fail(std::string("field '") + field + "' must be a number");
  return d;
}

bool Params::boolean(const char* field) const {
  Napi::Value v = get(field);
  bool b = false;
  if (napi_get_value_bool(env_, v, &b) == napi_ok) return b;
  if (v.IsUndefined() || v.IsNull()) return false;
  fail(std::string("field '") + field + "' must be a boolean");
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
