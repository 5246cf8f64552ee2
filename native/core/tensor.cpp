#include "tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "backend.hpp"
#include "error.hpp"
#include "memory.hpp"

namespace rn {

void Tensor::AlignedFree::operator()(float* p) const {
  if (backend != nullptr) {
    backend->release(p);
  } else {
    free_floats(p);
  }
}

Tensor::Tensor(Shape shape, int64_t numel, Backend* backend)
    : shape_(std::move(shape)), numel_(numel), data_(nullptr, AlignedFree{backend}) {
  const std::string what = "a tensor of shape " + shape_to_string(shape_);
  data_.reset(backend != nullptr ? backend->allocate(numel_, what) : allocate_floats(numel_, what));
}

TensorPtr Tensor::on_backend(Backend& backend, const Shape& shape, const std::string& what) {
  if (!backend.is_device()) return empty(shape, what);
  const int64_t n = checked_numel(shape, what);
  return TensorPtr(new Tensor(shape, n, &backend));
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
