// A dense fp32 tensor in host memory, owned by whoever holds the shared_ptr: the JS
// wrapper, an in-flight async op, or a plan. Layout conventions (NHWC, HWIO) are the
// ops' business; a Tensor is just a shape and 64-byte aligned storage.
#pragma once

#include <cstdint>
#include <memory>

#include "shape.hpp"

namespace rn {

class Backend;
class Tensor;
using TensorPtr = std::shared_ptr<Tensor>;

class Tensor {
 public:
  // Uninitialised storage (E_SHAPE for a bad shape, E_ALLOC when memory runs out).
  static TensorPtr empty(const Shape& shape, const std::string& what = "tensor");
  static TensorPtr zeros(const Shape& shape, const std::string& what = "tensor");
  // Storage in a device backend's memory (Tensor.to('cuda')): data() is then a device
  // pointer, which only that backend may touch.
  static TensorPtr on_backend(Backend& backend, const Shape& shape, const std::string& what = "tensor");

  // The device backend holding the data; null for host memory.
  Backend* device() const { return data_.get_deleter().backend; }

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t numel() const { return numel_; }
  int64_t bytes() const { return numel_ * static_cast<int64_t>(sizeof(float)); }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

 private:
  struct AlignedFree {
    Backend* backend = nullptr;
    void operator()(float* p) const;
  };
  Tensor(Shape shape, int64_t numel, Backend* backend = nullptr);

  Shape shape_;
  int64_t numel_;
  std::unique_ptr<float, AlignedFree> data_;
};

}  // namespace rn
