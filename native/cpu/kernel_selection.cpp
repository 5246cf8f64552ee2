#include "kernel_selection.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "../core/error.hpp"

namespace rn {
namespace {

// nullptr when RESNET_KERNELS holds a value we do not know (reported on use, with the value).
const char* kernels_from_environment() {
  const char* value = std::getenv("RESNET_KERNELS");
  if (value == nullptr || value[0] == '\0' || std::strcmp(value, "optimized") == 0) return "optimized";
  if (std::strcmp(value, "reference") == 0) return "reference";
  return nullptr;
}

}  // namespace

const char* selected_kernels() {
  static const char* const selected = kernels_from_environment();
  if (selected == nullptr) {
    fail(ErrorCode::InvalidArgument,
         std::string("RESNET_KERNELS must be 'optimized' or 'reference', got '") + std::getenv("RESNET_KERNELS") + "'");
  }
  return selected;
}

Backend& cpu_backend() {
  return std::strcmp(selected_kernels(), "reference") == 0 ? reference_backend() : optimized_backend();
}

}  // namespace rn
