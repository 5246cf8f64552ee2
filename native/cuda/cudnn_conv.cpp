#include "cudnn_conv.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda_check.hpp"

namespace rn::cuda {
namespace {

// Algorithms that want more workspace than this are passed over.
constexpr size_t kWorkspaceLimit = size_t(2) << 30;

int to_int(int64_t v) { return static_cast<int>(v); }

// With TF32 off, fp32 convolutions may only use plain FMA math. (Half types use tensor cores
// whatever the math type says; their accumulation is fp32 either way.)
bool math_allowed(cudnnMathType_t m, bool allow_tf32, cudnnDataType_t data_type) {
  return data_type != CUDNN_DATA_FLOAT || allow_tf32 || m == CUDNN_DEFAULT_MATH || m == CUDNN_FMA_MATH;
}

}  // namespace

ConvEngine::ConvEngine(cudnnHandle_t handle, bool allow_tf32, cudnnDataType_t data_type)
    : handle_(handle), allow_tf32_(allow_tf32), data_type_(data_type) {
  const char* search = std::getenv("RESNET_CUDNN_SEARCH");
  timed_search_ = !(search && std::strcmp(search, "heuristic") == 0);
}

ConvEngine::~ConvEngine() {
  for (auto& [key, e] : cache_) {
    cudnnDestroyTensorDescriptor(e.x);
    cudnnDestroyTensorDescriptor(e.y);
    cudnnDestroyFilterDescriptor(e.w);
    cudnnDestroyConvolutionDescriptor(e.fwd);
    cudnnDestroyConvolutionDescriptor(e.bwd_data);
    cudnnDestroyConvolutionDescriptor(e.bwd_filter);
  }
}

ConvEngine::Key ConvEngine::key_of(const Conv2dGeometry& g) {
  return {g.n,        g.h,        g.w,          g.c_in,       g.kh,      g.kw,       g.c_out, g.groups,
          g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, g.out_h, g.out_w};
}

ConvEngine::Entry& ConvEngine::entry(const Conv2dGeometry& g) {
  const Key key = key_of(g);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  if (g.pad_top != g.pad_bottom || g.pad_left != g.pad_right) {
    fail(ErrorCode::Internal, "ConvEngine: asymmetric padding must be applied before cuDNN");
  }
  Entry e;
  RN_CUDNN(cudnnCreateTensorDescriptor(&e.x));
  RN_CUDNN(cudnnCreateTensorDescriptor(&e.y));
  RN_CUDNN(cudnnCreateFilterDescriptor(&e.w));
  RN_CUDNN(cudnnSetTensor4dDescriptor(e.x, CUDNN_TENSOR_NHWC, data_type_, to_int(g.n), to_int(g.c_in), to_int(g.h),
                                      to_int(g.w)));
  RN_CUDNN(cudnnSetTensor4dDescriptor(e.y, CUDNN_TENSOR_NHWC, data_type_, to_int(g.n), to_int(g.c_out), to_int(g.out_h),
                                      to_int(g.out_w)));
  RN_CUDNN(cudnnSetFilter4dDescriptor(e.w, data_type_, CUDNN_TENSOR_NHWC, to_int(g.c_out), to_int(g.c_in / g.groups),
                                      to_int(g.kh), to_int(g.kw)));
  // One descriptor per pass: each carries the math type of its own chosen algorithm.
  for (cudnnConvolutionDescriptor_t* d : {&e.fwd, &e.bwd_data, &e.bwd_filter}) {
    RN_CUDNN(cudnnCreateConvolutionDescriptor(d));
    RN_CUDNN(cudnnSetConvolution2dDescriptor(*d, to_int(g.pad_top), to_int(g.pad_left), to_int(g.stride_h),
                                             to_int(g.stride_w), to_int(g.dilation_h), to_int(g.dilation_w),
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));  // fp32 accumulation
    RN_CUDNN(cudnnSetConvolutionGroupCount(*d, to_int(g.groups)));
    const cudnnMathType_t math = data_type_ != CUDNN_DATA_FLOAT ? CUDNN_TENSOR_OP_MATH
                                 : allow_tf32_                  ? CUDNN_DEFAULT_MATH
                                                                : CUDNN_FMA_MATH;
    RN_CUDNN(cudnnSetConvolutionMathType(*d, math));
  }
  choose_algorithms(e);
  return cache_.emplace(key, e).first->second;
}

void ConvEngine::choose_algorithms(Entry& e) {
  constexpr int kMax = 16;
  int found = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perf[kMax];
    if (timed_search_) {
      RN_CUDNN(cudnnFindConvolutionForwardAlgorithm(handle_, e.x, e.w, e.fwd, e.y, kMax, &found, perf));
    } else {
      RN_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(handle_, e.x, e.w, e.fwd, e.y, kMax, &found, perf));
    }
    int pick = -1;
    for (int i = 0; i < found && pick < 0; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit &&
          math_allowed(perf[i].mathType, allow_tf32_, data_type_))
        pick = i;
    }
    if (pick < 0) fail(ErrorCode::Device, "cuDNN offers no forward convolution algorithm for this shape");
    e.fwd_algo = perf[pick].algo;
    RN_CUDNN(cudnnSetConvolutionMathType(e.fwd, perf[pick].mathType));
    RN_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(handle_, e.x, e.w, e.fwd, e.y, e.fwd_algo, &e.workspace));
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    if (timed_search_) {
      RN_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(handle_, e.w, e.y, e.bwd_data, e.x, kMax, &found, perf));
    } else {
      RN_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, e.w, e.y, e.bwd_data, e.x, kMax, &found, perf));
    }
    int pick = -1;
    for (int i = 0; i < found && pick < 0; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit &&
          math_allowed(perf[i].mathType, allow_tf32_, data_type_))
        pick = i;
    }
    if (pick < 0) fail(ErrorCode::Device, "cuDNN offers no backward-data convolution algorithm for this shape");
    e.data_algo = perf[pick].algo;
    RN_CUDNN(cudnnSetConvolutionMathType(e.bwd_data, perf[pick].mathType));
    size_t bytes = 0;
    RN_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, e.w, e.y, e.bwd_data, e.x, e.data_algo, &bytes));
    e.workspace = std::max(e.workspace, bytes);
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
    if (timed_search_) {
      RN_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, e.x, e.y, e.bwd_filter, e.w, kMax, &found, perf));
    } else {
      RN_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, e.x, e.y, e.bwd_filter, e.w, kMax, &found, perf));
    }
    int pick = -1;
    for (int i = 0; i < found && pick < 0; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit &&
          math_allowed(perf[i].mathType, allow_tf32_, data_type_))
        pick = i;
    }
    if (pick < 0) fail(ErrorCode::Device, "cuDNN offers no backward-filter convolution algorithm for this shape");
    e.filter_algo = perf[pick].algo;
    RN_CUDNN(cudnnSetConvolutionMathType(e.bwd_filter, perf[pick].mathType));
    size_t bytes = 0;
    RN_CUDNN(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, e.x, e.y, e.bwd_filter, e.w, e.filter_algo, &bytes));
    e.workspace = std::max(e.workspace, bytes);
  }
}

size_t ConvEngine::workspace_bytes(const Conv2dGeometry& g) { return entry(g).workspace; }

void ConvEngine::forward(const Conv2dGeometry& g, const void* x, const void* w_ohwi, void* y, void* workspace) {
  Entry& e = entry(g);
  const float one = 1.0f, zero = 0.0f;
  RN_CUDNN(cudnnConvolutionForward(handle_, &one, e.x, x, e.w, w_ohwi, e.fwd, e.fwd_algo, workspace, e.workspace, &zero,
                                   e.y, y));
}

void ConvEngine::backward_data(const Conv2dGeometry& g, const void* dy, const void* w_ohwi, void* dx, void* workspace) {
  Entry& e = entry(g);
  const float one = 1.0f, zero = 0.0f;
  RN_CUDNN(cudnnConvolutionBackwardData(handle_, &one, e.w, w_ohwi, e.y, dy, e.bwd_data, e.data_algo, workspace,
                                        e.workspace, &zero, e.x, dx));
}

void ConvEngine::backward_filter(const Conv2dGeometry& g, const void* x, const void* dy, void* dw_ohwi,
                                 void* workspace) {
  Entry& e = entry(g);
  const float one = 1.0f, zero = 0.0f;
  RN_CUDNN(cudnnConvolutionBackwardFilter(handle_, &one, e.x, x, e.y, dy, e.bwd_filter, e.filter_algo, workspace,
                                          e.workspace, &zero, e.w, dw_ohwi));
}

}  // namespace rn::cuda
