// C++ errors -> JavaScript ResNetError (the class lib/errors.ts registers at load time),
// so every failure reaching JS has a `code` and a message naming what was wrong.
#pragma once

#include "napi_config.hpp"

#include <string>

#include "../core/error.hpp"

namespace rn::addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

// A failure as a ResNetError's code and message.
struct Failure {
  std::string code;
  std::string message;
};

// The exception being handled (call from a catch block): an rn::Error keeps its code,
// std::bad_alloc is E_ALLOC, anything else E_INTERNAL.
Failure current_failure();

// Runs `body` and converts any C++ exception into a thrown ResNetError (a Napi::Error is
// thrown as it is).
template <typename Body>
Napi::Value guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    const Failure f = current_failure();
    throw make_error(env, f.code, f.message);
  }
}

}  // namespace rn::addon
