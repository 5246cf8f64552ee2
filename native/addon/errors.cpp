#include "errors.hpp"

#include "instance_data.hpp"

namespace rn::addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  InstanceData& data = instance(env);
  if (!data.error_class.IsEmpty()) {
    Napi::Object err = data.error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace rn::addon
