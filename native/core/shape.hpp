// Shapes and checked size arithmetic. Sizes come from users, so every product is
// checked for overflow before anything is allocated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rn {

using Shape = std::vector<int64_t>;

// Largest tensor we agree to allocate: 2^36 floats (256 GiB). Anything larger is a
// mistake in the caller's arithmetic, reported as E_SHAPE rather than a failed malloc.
constexpr int64_t kMaxElements = int64_t{1} << 36;

std::string shape_to_string(const Shape& shape);

// Number of elements; throws E_SHAPE naming `what` for a dimension < 1 or a product
// that exceeds kMaxElements.
int64_t checked_numel(const Shape& shape, const std::string& what);

// a * b with the same overflow rule.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);

}  // namespace rn
