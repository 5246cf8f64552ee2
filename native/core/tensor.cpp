#include "tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "error.hpp"

namespace rn {

void Tensor::AlignedFree::operator()(float* p) const { std::free(p); }

Tensor::Tensor(Shape shape, int64_t numel) : shape_(std::move(shape)), numel_(numel) {
  // Round up to the alignment so aligned_alloc's contract holds.
  size_t bytes = static_cast<size_t>(numel_) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) {
    fail(ErrorCode::Alloc, "out of memory allocating a tensor of shape " + shape_to_string(shape_));
  }
  data_.reset(static_cast<float*>(p));
}

TensorPtr Tensor::empty(const Shape& shape, const std::string& what) {
  int64_t n = checked_numel(shape, what);
  return TensorPtr(new Tensor(shape, n));
}

TensorPtr Tensor::zeros(const Shape& shape, const std::string& what) {
  TensorPtr t = empty(shape, what);
  std::memset(t->data(), 0, static_cast<size_t>(t->bytes()));
  return t;
}

}  // namespace rn
