// TODO(owner of this file): implement. Stub so the addon builds.
#include "common.h"
namespace alignkit {
void RegisterElementwise(Napi::Env, Napi::Object) {}
}  // namespace alignkit
