#include "tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "error.hpp"
#include "memory.hpp"

namespace rn {

void Tensor::AlignedFree::operator()(float* p) const { free_floats(p); }

Tensor::Tensor(Shape shape, int64_t numel) : shape_(std::move(shape)), numel_(numel) {
  data_.reset(allocate_floats(numel_, "a tensor of shape " + shape_to_string(shape_)));
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
