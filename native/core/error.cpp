#include "error.hpp"

namespace rn {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidShape:
      return "E_SHAPE";
    case ErrorCode::InvalidArgument:
      return "E_ARG";
    case ErrorCode::InvalidDtype:
      return "E_DTYPE";
    case ErrorCode::Disposed:
      return "E_DISPOSED";
    case ErrorCode::Alloc:
      return "E_ALLOC";
    case ErrorCode::IO:
      return "E_IO";
    case ErrorCode::Format:
      return "E_FORMAT";
    case ErrorCode::Device:
      return "E_DEVICE";
    case ErrorCode::NaN:
      return "E_NAN";
    case ErrorCode::Busy:
      return "E_BUSY";
    case ErrorCode::Internal:
      return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

}  // namespace rn
