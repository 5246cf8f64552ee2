// Inputs copied to a GPU on a stream of their own, so that the next batch crosses PCIe
// while a step computes (Tensor.to('cuda') → Backend::upload_input). One copier per GPU,
// shared by every CudaBackend of it (one per option set, each with its own compute
// stream): each backend's begin_call orders its stream after the copies queued so far, so
// a call sees every input staged before it began, whichever backend allocated it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>

namespace rn::cuda {

class InputCopier {
 public:
  // GPU `ordinal`'s copier, created on first use and kept until exit. Makes no CUDA call:
  // the stream and buffers are created by the first upload.
  static InputCopier& for_device(int ordinal);

  InputCopier(const InputCopier&) = delete;
  InputCopier& operator=(const InputCopier&) = delete;

  // host → device on the copy stream, through pinned staging buffers filled on the calling
  // thread (any thread; it needs no BackendCall). The source may be reused on return; the
  // last chunk's transfer may still be running then.
  void upload(void* dst, const void* host_src, int64_t bytes);
  // Makes `compute` wait, on the GPU, for every copy queued so far (the host does not wait).
  cudaError_t order_after_copies(cudaStream_t compute);
  // The host waits for every copy queued so far. Never throws (called when memory is released).
  void wait_for_copies();

 private:
  explicit InputCopier(int ordinal) : ordinal_(ordinal) {}
  void start();  // the first upload creates the stream, the events and the staging buffers

  // A pinned buffer and the event recorded after the copy that last read it: it is
  // refilled only once that copy has finished.
  struct Staging {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };

  const int ordinal_;
  std::mutex upload_mutex_;  // one upload at a time: it owns the stream and the staging buffers
  std::mutex event_mutex_;   // latest_, read by begin_call on other threads; held only briefly
  cudaStream_t stream_ = nullptr;
  Staging staging_[2];
  int next_ = 0;                  // the staging buffer the next chunk goes through
  cudaEvent_t latest_ = nullptr;  // recorded after the last queued copy; null before the first
};

}  // namespace rn::cuda
