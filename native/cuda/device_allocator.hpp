// A caching device allocator: freed blocks go to per-size free lists and are handed out
// again, so plans, workspaces and buffers that come and go never pay cudaMalloc (which
// synchronises the device) twice for the same size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rn::cuda {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int ordinal) : ordinal_(ordinal) {}
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // E_ALLOC naming `what` when the GPU is out of memory even after the cache is emptied.
  void* allocate(size_t bytes, const char* what);
  void release(void* p);
  void empty_cache();

  int64_t live_bytes() const { return live_bytes_; }
  int64_t cached_bytes() const { return cached_bytes_; }

 private:
  static size_t round(size_t bytes);

  int ordinal_;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size → blocks
  std::unordered_map<void*, size_t> sizes_;    // live block → rounded size
  int64_t live_bytes_ = 0, cached_bytes_ = 0;
};

}  // namespace rn::cuda
