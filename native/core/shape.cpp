#include "shape.hpp"

#include "error.hpp"

namespace rn {

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product) || product > kMaxElements) {
    fail(ErrorCode::InvalidShape, what + ": size " + std::to_string(a) + " x " + std::to_string(b) +
                                      " is too large (limit " + std::to_string(kMaxElements) + " elements)");
  }
  return product;
}

int64_t checked_numel(const Shape& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 1) {
      fail(ErrorCode::InvalidShape, what + ": shape " + shape_to_string(shape) + " has a dimension < 1");
    }
    int64_t product = 0;
    if (__builtin_mul_overflow(n, d, &product) || product > kMaxElements) {
      checked_mul(n, d, what + " with shape " + shape_to_string(shape));  // fails, naming the shape
    }
    n = product;  // (the message is built only on failure: this runs for every value of every plan)
  }
  return n;
}

}  // namespace rn
