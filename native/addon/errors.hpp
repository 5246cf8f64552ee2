// C++ errors -> JavaScript ResNetError (the class lib/errors.ts registers at load time),
// so every failure reaching JS has a `code` and a message naming what was wrong.
#pragma once

#include <napi.h>

#include <string>

#include "../core/error.hpp"

namespace rn::addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

// Runs `body` and converts any C++ exception into a thrown ResNetError.
template <typename Body>
Napi::Value guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const rn::Error& e) {
    throw make_error(env, error_code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "E_ALLOC", "out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, "E_INTERNAL", std::string("internal error: ") + e.what());
  }
}

}  // namespace rn::addon
