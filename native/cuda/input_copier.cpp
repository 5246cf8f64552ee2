#include "input_copier.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "cuda_check.hpp"

namespace rn::cuda {
namespace {

// Inputs cross in chunks of this size, through two pinned buffers of this size: while one
// chunk is copied into pinned memory on the host, the one before it crosses PCIe. Fixed
// rather than grown, so no buffer is ever freed (cudaFreeHost waits for the whole device).
constexpr int64_t kChunkBytes = int64_t(4) << 20;

}  // namespace

InputCopier& InputCopier::for_device(int ordinal) {
  // Never destroyed: the backends using them live until exit, and CUDA objects freed by
  // static destructors could outlive the runtime.
  static std::mutex mutex;
  static std::map<int, InputCopier*> copiers;
  std::lock_guard<std::mutex> lock(mutex);
  InputCopier*& copier = copiers[ordinal];
  if (copier == nullptr) copier = new InputCopier(ordinal);
  return *copier;
}

void InputCopier::start() {
  // Piece by piece, so that a failed start is resumed by the next upload.
  if (stream_ == nullptr) RN_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (Staging& s : staging_) {
    if (s.done == nullptr) RN_CUDA(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    if (s.host == nullptr) RN_CUDA(cudaHostAlloc(&s.host, static_cast<size_t>(kChunkBytes), cudaHostAllocDefault));
  }
}

void InputCopier::upload(void* dst, const void* host_src, int64_t bytes) {
  if (bytes <= 0) return;
  std::lock_guard<std::mutex> lock(upload_mutex_);
  RN_CUDA(cudaSetDevice(ordinal_));  // the caller may be any thread, Node's main thread included
  start();
  auto* out = static_cast<char*>(dst);
  const auto* in = static_cast<const char*>(host_src);
  for (int64_t offset = 0; offset < bytes; offset += kChunkBytes) {
    const size_t n = static_cast<size_t>(std::min(kChunkBytes, bytes - offset));
    Staging& s = staging_[next_];
    next_ ^= 1;
    RN_CUDA(cudaEventSynchronize(s.done));  // the copy that last read this buffer has finished
    std::memcpy(s.host, in + offset, n);
    RN_CUDA(cudaMemcpyAsync(out + offset, s.host, n, cudaMemcpyHostToDevice, stream_));
    std::lock_guard<std::mutex> events(event_mutex_);
    RN_CUDA(cudaEventRecord(s.done, stream_));
    latest_ = s.done;  // copies complete in order, so the last one's event covers them all
  }
}

cudaError_t InputCopier::order_after_copies(cudaStream_t compute) {
  std::lock_guard<std::mutex> lock(event_mutex_);
  return latest_ == nullptr ? cudaSuccess : cudaStreamWaitEvent(compute, latest_, 0);
}

void InputCopier::wait_for_copies() {
  std::lock_guard<std::mutex> lock(event_mutex_);
  // Errors are dropped (releases run in destructors); a failed copy is reported by later calls.
  if (latest_ != nullptr) (void)cudaEventSynchronize(latest_);
}

}  // namespace rn::cuda
