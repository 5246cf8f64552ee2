// Every large native buffer (tensor storage, plan arenas, parameters, optimizer state)
// comes from here, 64-byte aligned, and is counted: tests read the counter to prove a
// training step allocates nothing after its first run.
#pragma once

#include <cstdint>
#include <string>

namespace rn {

// E_ALLOC (naming `what`) when memory runs out. Zero bytes gives a valid, unique pointer.
float* allocate_floats(int64_t count, const std::string& what);
void free_floats(float* p);

struct AllocationStats {
  int64_t allocations;  // allocate_floats calls since the process started
  int64_t live_bytes;   // bytes currently held
};
AllocationStats allocation_stats();

// An owned, aligned float buffer (move-only).
class FloatBuffer {
 public:
  FloatBuffer() = default;
  FloatBuffer(int64_t count, const std::string& what) : data_(allocate_floats(count, what)), size_(count) {}
  FloatBuffer(FloatBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  FloatBuffer& operator=(FloatBuffer&& o) noexcept;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer() { free_floats(data_); }

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace rn
