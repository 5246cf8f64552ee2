#include "memory.hpp"

#include <atomic>
#include <cstdlib>

#include "error.hpp"

namespace rn {
namespace {

std::atomic<int64_t> g_allocations{0};
std::atomic<int64_t> g_live_bytes{0};

// The byte count sits in the 64 bytes before the returned pointer, so free needs no size.
constexpr size_t kHeader = 64;

}  // namespace

float* allocate_floats(int64_t count, const std::string& what) {
  if (count < 0) fail(ErrorCode::Internal, "allocate_floats: negative size for " + what);
  size_t bytes = static_cast<size_t>(count) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64 + kHeader;
  auto* base = static_cast<unsigned char*>(std::aligned_alloc(64, bytes));
  if (base == nullptr) {
    fail(ErrorCode::Alloc, "out of memory allocating " + std::to_string(bytes) + " bytes for " + what);
  }
  *reinterpret_cast<size_t*>(base) = bytes;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_live_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  return reinterpret_cast<float*>(base + kHeader);
}

void free_floats(float* p) {
  if (p == nullptr) return;
  unsigned char* base = reinterpret_cast<unsigned char*>(p) - kHeader;
  g_live_bytes.fetch_sub(static_cast<int64_t>(*reinterpret_cast<size_t*>(base)), std::memory_order_relaxed);
  std::free(base);
}

AllocationStats allocation_stats() {
  return {g_allocations.load(std::memory_order_relaxed), g_live_bytes.load(std::memory_order_relaxed)};
}

FloatBuffer& FloatBuffer::operator=(FloatBuffer&& o) noexcept {
  if (this != &o) {
    free_floats(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace rn
