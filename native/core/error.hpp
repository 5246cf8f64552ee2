// Errors raised by the native core. Every failure the core detects is an rn::Error with
// a stable code; the addon turns it into a JavaScript ResNetError with the same code.
#pragma once

#include <stdexcept>
#include <string>

namespace rn {

enum class ErrorCode {
  InvalidShape,     // E_SHAPE: wrong rank, size or channel count; sizes that overflow
  InvalidArgument,  // E_ARG: a bad argument value (option out of range, label out of range, ...)
  InvalidDtype,     // E_DTYPE: wrong element type
  Disposed,         // E_DISPOSED: a tensor used after dispose()
  Alloc,            // E_ALLOC: memory could not be allocated
  IO,               // E_IO
  Format,           // E_FORMAT
  Device,           // E_DEVICE
  NaN,              // E_NAN
  Busy,             // E_BUSY
  Internal,         // E_INTERNAL: a bug in resnet-native
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace rn
