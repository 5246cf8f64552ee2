#include "device_allocator.hpp"

#include <string>

#include "cuda_check.hpp"

namespace rn::cuda {

size_t DeviceAllocator::round(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  if (bytes == 0) bytes = 1;
  const size_t unit = bytes < (size_t(1) << 20) ? kSmall : kLarge;
  return (bytes + unit - 1) / unit * unit;
}

DeviceAllocator::~DeviceAllocator() { empty_cache(); }

void* DeviceAllocator::allocate(size_t bytes, const char* what) {
  const size_t size = round(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= static_cast<int64_t>(size);
    live_bytes_ += static_cast<int64_t>(size);
    sizes_[p] = size;
    return p;
  }
  // Tensor.to('cuda') allocates outside any network call, from Node's main thread, so the
  // block's device is made current here. All of this holds mutex_, and cudaMalloc is
  // thread-safe: a miss while another thread runs a call is fine (at worst it waits for
  // the device, once: the block then stays in the cache).
  RN_CUDA(cudaSetDevice(ordinal_));
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear it, give the cache back, try once more
    for (auto& [s, blocks] : free_) {
      for (void* b : blocks) cudaFree(b);
      blocks.clear();
    }
    cached_bytes_ = 0;
    e = cudaMalloc(&p, size);
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    fail(ErrorCode::Alloc, std::string("GPU ") + std::to_string(ordinal_) + " is out of memory allocating " +
                               std::to_string(size >> 20) + " MiB for " + what + " (" + cudaGetErrorString(e) + "; " +
                               std::to_string(live_bytes_ >> 20) + " MiB held by resnet-native)");
  }
  live_bytes_ += static_cast<int64_t>(size);
  sizes_[p] = size;
  return p;
}

void DeviceAllocator::release(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sizes_.find(p);
  if (it == sizes_.end()) return;
  free_[it->second].push_back(p);
  live_bytes_ -= static_cast<int64_t>(it->second);
  cached_bytes_ += static_cast<int64_t>(it->second);
  sizes_.erase(it);
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_) {
    for (void* b : blocks) cudaFree(b);
    blocks.clear();
  }
  cached_bytes_ = 0;
}

}  // namespace rn::cuda
