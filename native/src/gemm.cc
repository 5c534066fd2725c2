// TODO(owner of this file): implement. Stub so the addon builds.
#include "common.h"
namespace alignkit {
void RegisterGemm(Napi::Env, Napi::Object) {}
}  // namespace alignkit
namespace alignkit {
void Sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t) {}
}
