// RESNET_CUDA_PROFILE=1: GPU time per kind of work (convolution passes, batch-norm, copies,
// the rest), measured with CUDA events around each backend call and printed to stderr when
// the process exits. Off, it costs one branch per call.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <vector>

namespace rn::cuda {

enum class Work {
  ConvForward,
  ConvBackwardData,
  ConvBackwardFilter,
  WeightLayout,
  BatchNormStats,
  BatchNormForward,
  BatchNormBackward,
  Elementwise,
  Pool,
  Dense,
  Loss,
  Optimizer,
  Upload,
  Download,
  Other,
  Count
};

class Profiler {
 public:
  Profiler();
  ~Profiler();
  bool enabled() const { return enabled_; }
  void begin(cudaStream_t s, Work w);
  void end(cudaStream_t s);
  // After the stream has been synchronised: adds the recorded intervals to the totals.
  void collect();
  void print() const;

 private:
  struct Mark {
    cudaEvent_t start, stop;
    Work work;
  };
  bool enabled_ = false;
  std::vector<Mark> marks_;
  size_t used_ = 0;
  int open_ = -1;
  int depth_ = 0;
  std::array<double, static_cast<size_t>(Work::Count)> ms_{};
  std::array<int64_t, static_cast<size_t>(Work::Count)> calls_{};
  int64_t steps_ = 0;
};

// Brackets one backend call.
class ProfileScope {
 public:
  ProfileScope(Profiler& p, cudaStream_t s, Work w) : p_(p), s_(s) {
    if (p_.enabled()) p_.begin(s_, w);
  }
  ~ProfileScope() {
    if (p_.enabled()) p_.end(s_);
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  Profiler& p_;
  cudaStream_t s_;
};

}  // namespace rn::cuda
