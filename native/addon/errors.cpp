#include "errors.hpp"

#include <new>

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

Failure current_failure() {
  try {
    throw;
  } catch (const rn::Error& e) {
    return {error_code_name(e.code()), e.what()};
  } catch (const std::bad_alloc&) {
    return {"E_ALLOC", "out of memory"};
  } catch (const std::exception& e) {
    return {"E_INTERNAL", std::string("internal error: ") + e.what()};
  } catch (...) {
    return {"E_INTERNAL", "internal error: unknown exception"};
  }
}

}  // namespace rn::addon
