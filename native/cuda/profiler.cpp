#include "profiler.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rn::cuda {
namespace {

constexpr size_t kMarks = 8192;  // per network call; more are not timed
const char* kNames[] = {"conv forward", "conv backward-data", "conv backward-filter", "weight layout",  "bn statistics",
                        "bn forward",   "bn backward",        "element-wise",         "pools",          "dense",
                        "loss",         "optimizer",          "host-to-device",       "device-to-host", "other"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Work::Count));

}  // namespace

Profiler::Profiler() {
  const char* v = std::getenv("RESNET_CUDA_PROFILE");
  enabled_ = v != nullptr && std::strcmp(v, "0") != 0;
  if (!enabled_) return;
  marks_.resize(kMarks);
  for (Mark& m : marks_) {
    cudaEventCreate(&m.start);
    cudaEventCreate(&m.stop);
  }
}

Profiler::~Profiler() {
  if (!enabled_) return;
  for (Mark& m : marks_) {
    cudaEventDestroy(m.start);
    cudaEventDestroy(m.stop);
  }
}

void Profiler::begin(cudaStream_t s, Work w) {
  if (depth_++ > 0 || used_ >= marks_.size()) return;  // nested calls count in the outer one
  open_ = static_cast<int>(used_++);
  marks_[static_cast<size_t>(open_)].work = w;
  cudaEventRecord(marks_[static_cast<size_t>(open_)].start, s);
}

void Profiler::end(cudaStream_t s) {
  if (--depth_ > 0 || open_ < 0) return;
  cudaEventRecord(marks_[static_cast<size_t>(open_)].stop, s);
  open_ = -1;
}

void Profiler::collect() {
  if (!enabled_) return;
  for (size_t i = 0; i < used_; ++i) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, marks_[i].start, marks_[i].stop) == cudaSuccess) {
      ms_[static_cast<size_t>(marks_[i].work)] += ms;
      calls_[static_cast<size_t>(marks_[i].work)] += 1;
    }
  }
  used_ = 0;
  open_ = -1;
  depth_ = 0;
  ++steps_;
}

void Profiler::print() const {
  double total = 0;
  for (double v : ms_) total += v;
  std::fprintf(stderr, "resnet-native CUDA profile over %lld calls: %.1f ms of GPU work\n",
               static_cast<long long>(steps_), total);
  for (size_t i = 0; i < ms_.size(); ++i) {
    if (calls_[i] == 0) continue;
    std::fprintf(stderr, "  %-22s %10.1f ms %5.1f %%  (%lld calls)\n", kNames[i], ms_[i],
                 total > 0 ? 100.0 * ms_[i] / total : 0.0, static_cast<long long>(calls_[i]));
  }
}

}  // namespace rn::cuda
