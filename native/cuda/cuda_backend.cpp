#include "cuda_backend.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "profiler.hpp"

namespace rn::cuda {
namespace {

constexpr int64_t kAlign = 64;  // floats: 256-byte aligned pieces of the scratch
int64_t aligned(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

static_assert(sizeof(rn::ParamSlice) == sizeof(rn::cuda::ParamSlice), "optimizer table layouts must match");

// An activation buffer (float* in the Backend interface) as its real element type.
template <typename T>
T* as(float* p) {
  return reinterpret_cast<T*>(p);
}
template <typename T>
const T* as(const float* p) {
  return reinterpret_cast<const T*>(p);
}

cudnnDataType_t cudnn_type(cuda_abi::Precision p) {
  return p == cuda_abi::Precision::Fp16   ? CUDNN_DATA_HALF
         : p == cuda_abi::Precision::Bf16 ? CUDNN_DATA_BFLOAT16
                                          : CUDNN_DATA_FLOAT;
}

}  // namespace

CudaBackend::CudaBackend(int ordinal, bool allow_tf32, cuda_abi::Precision precision)
    : ordinal_(ordinal), precision_(precision) {
  RN_CUDA(cudaSetDevice(ordinal_));
  RN_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  RN_CUDNN(cudnnCreate(&cudnn_));
  RN_CUDNN(cudnnSetStream(cudnn_, stream_));
  allocator_ = std::make_unique<DeviceAllocator>(ordinal_);
  conv_ = std::make_unique<ConvEngine>(cudnn_, allow_tf32, cudnn_type(precision_));
  results_ = static_cast<double*>(allocator_->allocate(16 * sizeof(double), "loss results"));
  control_ = static_cast<StepControl*>(allocator_->allocate(sizeof(StepControl), "step control"));
  RN_CUDA(cudaMemsetAsync(control_, 0, sizeof(StepControl), stream_));
  profiler_ = std::make_unique<Profiler>();
  const char* graphs = std::getenv("RESNET_CUDA_GRAPHS");
  graphs_enabled_ = !(graphs && std::strcmp(graphs, "0") == 0) && !profiler_->enabled();
  if (profiler_->enabled()) {
    // Backends live until the process exits; the totals are printed then.
    static std::vector<Profiler*> profilers;
    if (profilers.empty())
      std::atexit([] {
        for (Profiler* p : profilers) p->print();
      });
    profilers.push_back(profiler_.get());
  }
}

CudaBackend::~CudaBackend() {
  // Backends live until the process exits; tidy up anyway for tools that destroy them.
  cudaSetDevice(ordinal_);
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& [key, c] : captured_) cudaGraphExecDestroy(c.exec);
  conv_.reset();
  allocator_.reset();
  if (cudnn_) cudnnDestroy(cudnn_);
  if (stream_) cudaStreamDestroy(stream_);
}

float* CudaBackend::allocate(int64_t count, const std::string& what) {
  return static_cast<float*>(allocator_->allocate(static_cast<size_t>(count) * sizeof(float), what.c_str()));
}

// A block goes back to the cache only once no input copy can still be writing it (a tensor
// disposed before its copy landed); the wait is nearly always on a finished event.
void CudaBackend::release(float* p) {
  if (p == nullptr) return;
  copier_.wait_for_copies();
  allocator_->release(p);
}

void CudaBackend::upload(void* dst, const void* host_src, int64_t bytes) {
  ProfileScope profile(*profiler_, stream_, Work::Upload);
  if (bytes <= 0) return;
  // From pageable memory the call returns once the source has been staged, so the caller
  // may reuse its buffer at once; the copy itself stays ordered on the stream.
  RN_CUDA(cudaMemcpyAsync(dst, host_src, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, stream_));
}

// On the GPU's copy stream, outside any call; begin_call orders every later call after it.
void CudaBackend::upload_input(void* dst, const void* host_src, int64_t bytes) { copier_.upload(dst, host_src, bytes); }

void CudaBackend::download(void* host_dst, const void* src, int64_t bytes) {
  ProfileScope profile(*profiler_, stream_, Work::Download);
  if (bytes <= 0) return;
  RN_CUDA(cudaMemcpyAsync(host_dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, stream_));
  RN_CUDA(cudaStreamSynchronize(stream_));
}

void CudaBackend::fill_zero(float* p, int64_t count) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  if (count > 0) RN_CUDA(cudaMemsetAsync(p, 0, static_cast<size_t>(count) * sizeof(float), stream_));
}

const char* CudaBackend::precision() const {
  return precision_ == cuda_abi::Precision::Fp16 ? "fp16" : precision_ == cuda_abi::Precision::Bf16 ? "bf16" : "fp32";
}

void CudaBackend::to_activation(int64_t count, const float* src, float* dst) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) { convert<float, decltype(t)>(stream_, count, src, as<decltype(t)>(dst)); });
}

void CudaBackend::activation_to_float(int64_t count, const float* src, float* dst) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) { convert<decltype(t), float>(stream_, count, as<decltype(t)>(src), dst); });
}

// Networks on one GPU share this backend (stream, cuDNN handle, algorithm cache): their
// calls, from different worker threads, take turns.
void CudaBackend::begin_call() {
  call_mutex_.lock();
  const cudaError_t e = cudaSetDevice(ordinal_);
  if (e != cudaSuccess) {
    call_mutex_.unlock();
    cuda_fail("cudaSetDevice", e);
  }
  // Inputs staged by upload_input (from any backend of this GPU) land before this call reads them.
  const cudaError_t ordered = copier_.order_after_copies(stream_);
  if (ordered != cudaSuccess) {
    call_mutex_.unlock();
    cuda_fail("cudaStreamWaitEvent", ordered);
  }
}

void CudaBackend::end_call() {
  const cudaError_t synced = cudaStreamSynchronize(stream_);
  if (synced == cudaSuccess) profiler_->collect();
  const cudaError_t launched = cudaGetLastError();  // a failed launch surfaces here at the latest
  call_mutex_.unlock();
  if (synced != cudaSuccess) cuda_fail("cudaStreamSynchronize", synced);
  if (launched != cudaSuccess) cuda_fail("a kernel launch", launched);
}

// --- convolutions -------------------------------------------------------------------

CudaBackend::ConvScratch CudaBackend::conv_scratch(const Conv2dGeometry& g) const {
  ConvScratch s;
  s.sym = g;
  const int64_t ph = std::min(g.pad_top, g.pad_bottom), pw = std::min(g.pad_left, g.pad_right);
  s.extra = {g.pad_top - ph, g.pad_bottom - ph, g.pad_left - pw, g.pad_right - pw};
  s.prepad = s.extra[0] || s.extra[1] || s.extra[2] || s.extra[3];
  if (s.prepad) {
    s.sym.h = g.h + s.extra[0] + s.extra[1];
    s.sym.w = g.w + s.extra[2] + s.extra[3];
    s.sym.pad_top = s.sym.pad_bottom = ph;
    s.sym.pad_left = s.sym.pad_right = pw;
  }
  const int64_t workspace = static_cast<int64_t>((conv_->workspace_bytes(s.sym) + sizeof(float) - 1) / sizeof(float));
  s.workspace = 0;
  // The OHWI weights (and weight gradient) are in the activation type, as cuDNN wants them.
  s.weights = aligned(workspace);
  s.padded = s.weights + aligned(activation_floats(g.kh * g.kw * (g.c_in / g.groups) * g.c_out));
  s.channel = s.padded + (s.prepad ? aligned(activation_floats(s.sym.n * s.sym.h * s.sym.w * s.sym.c_in)) : 0);
  s.total = s.channel + aligned(std::max(rn::cuda::channel_scratch_floats(g.c_out), int64_t(1)));
  return s;
}

int64_t CudaBackend::conv2d_scratch_floats(const Conv2dGeometry& g) const { return conv_scratch(g).total; }

// In mixed precision the fp32 master weights are converted to the activation type while they
// are transposed, on every call: a pass over the weights is small beside one over the
// activations, and it keeps one copy of the weights (the optimizer's).
void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                                 float* mean, float* var, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvForward);
  const ConvScratch s = conv_scratch(g);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    T* w_ohwi = as<T>(scratch + s.weights);
    hwio_to_ohwi<T>(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, w, w_ohwi);
    const T* input = as<T>(x);
    if (s.prepad) {
      rn::cuda::zero_pad_forward<T>(stream_, g.input_shape(), s.extra.data(), input, as<T>(scratch + s.padded));
      input = as<T>(scratch + s.padded);
    }
    conv_->forward(s.sym, input, w_ohwi, y, scratch + s.workspace);
    const int64_t rows = g.n * g.out_h * g.out_w;
    if (bias) add_channel_bias<T>(stream_, rows, g.c_out, bias, as<T>(y));
    if (mean && var)
      rn::cuda::batch_norm_statistics<T>(stream_, rows, g.c_out, as<T>(y), mean, var, scratch + s.channel);
  });
}

void CudaBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                        float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvBackwardData);
  const ConvScratch s = conv_scratch(g);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    T* w_ohwi = as<T>(scratch + s.weights);
    hwio_to_ohwi<T>(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, w, w_ohwi);
    if (s.prepad) {
      // The gradient of the padded input, cropped back to the real one.
      conv_->backward_data(s.sym, dy, w_ohwi, scratch + s.padded, scratch + s.workspace);
      rn::cuda::zero_pad_backward<T>(stream_, g.input_shape(), s.extra.data(), as<T>(scratch + s.padded), as<T>(dx));
    } else {
      conv_->backward_data(s.sym, dy, w_ohwi, dx, scratch + s.workspace);
    }
  });
}

void CudaBackend::conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                                         float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvBackwardFilter);
  const ConvScratch s = conv_scratch(g);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    const T* input = as<T>(x);
    if (s.prepad) {
      rn::cuda::zero_pad_forward<T>(stream_, g.input_shape(), s.extra.data(), input, as<T>(scratch + s.padded));
      input = as<T>(scratch + s.padded);
    }
    // cuDNN writes the weight gradient in the data type (accumulated in fp32); it is widened
    // into the fp32 gradient buffer while transposed back to HWIO.
    T* dw_ohwi = as<T>(scratch + s.weights);
    conv_->backward_filter(s.sym, input, dy, dw_ohwi, scratch + s.workspace);
    ohwi_to_hwio<T>(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, dw_ohwi, dw);
    if (db) channel_sums<T>(stream_, g.n * g.out_h * g.out_w, g.c_out, as<T>(dy), db, scratch + s.channel);
  });
}

// --- batch-norm ----------------------------------------------------------------------

int64_t CudaBackend::channel_scratch_floats(int64_t channels) const {
  return rn::cuda::channel_scratch_floats(channels);
}

void CudaBackend::batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                                        float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormStats);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::batch_norm_statistics<T>(stream_, rows, channels, as<T>(x), mean, var, scratch);
  });
}

void CudaBackend::batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var,
                                            float momentum, float* running_mean, float* running_var) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormStats);
  rn::cuda::batch_norm_update_running(stream_, rows, channels, mean, var, momentum, running_mean, running_var,
                                      recording_ ? &control_->running_ok : nullptr);
}

void CudaBackend::batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                                     float*) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormForward);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::batch_norm_forward<T>(stream_, a, as<T>(x), as<T>(skip), relu, as<T>(y));
  });
}

void CudaBackend::batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                                      const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                                      float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormBackward);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::batch_norm_backward<T>(stream_, a, training, as<T>(x), as<T>(y), relu, as<T>(dy), as<T>(dx), as<T>(dskip),
                                     dgamma, dbeta, scratch);
  });
}

// --- element-wise, pools, dense, padding, SE -------------------------------------------
// Counts are activation elements; every buffer below but the weights is an activation.

void CudaBackend::relu_forward(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::relu_forward<T>(stream_, count, as<T>(x), as<T>(y));
  });
}

void CudaBackend::relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::relu_backward_from_output<T>(stream_, count, as<T>(y), as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::add_forward<T>(stream_, count, as<T>(a), as<T>(b), relu, as<T>(y));
  });
}

void CudaBackend::accumulate(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::accumulate<T>(stream_, count, as<T>(x), as<T>(y));
  });
}

void CudaBackend::copy(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  if (count > 0 && x != y) {
    RN_CUDA(cudaMemcpyAsync(y, x, static_cast<size_t>(count) * activation_bytes(), cudaMemcpyDeviceToDevice, stream_));
  }
}

void CudaBackend::max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::max_pool_forward<T>(stream_, g, as<T>(x), as<T>(y));
  });
}

void CudaBackend::max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::max_pool_backward<T>(stream_, g, as<T>(x), as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::avg_pool_forward<T>(stream_, g, as<T>(x), as<T>(y));
  });
}

void CudaBackend::avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::avg_pool_backward<T>(stream_, g, as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::global_avg_pool_forward<T>(stream_, n, hw, c, as<T>(x), as<T>(y));
  });
}

void CudaBackend::global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::global_avg_pool_backward<T>(stream_, n, hw, c, as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                                float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Dense);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::dense_forward<T>(stream_, n, k, m, as<T>(x), w, b, as<T>(y));
  });
}

void CudaBackend::dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                                 float* dx, float* dw, float* db) {
  ProfileScope profile(*profiler_, stream_, Work::Dense);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::dense_backward<T>(stream_, n, k, m, as<T>(x), w, as<T>(dy), as<T>(dx), dw, db);
  });
}

void CudaBackend::zero_pad_forward(const Shape& x_shape, const int64_t* pads, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::zero_pad_forward<T>(stream_, x_shape, pads, as<T>(x), as<T>(y));
  });
}

void CudaBackend::zero_pad_backward(const Shape& x_shape, const int64_t* pads, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::zero_pad_backward<T>(stream_, x_shape, pads, as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::zero_pad_shortcut_forward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                            const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::zero_pad_shortcut_forward<T>(stream_, x_shape, y_shape, sh, sw, as<T>(x), as<T>(y));
  });
}

void CudaBackend::zero_pad_shortcut_backward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                             const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::zero_pad_shortcut_backward<T>(stream_, x_shape, y_shape, sh, sw, as<T>(dy), as<T>(dx));
  });
}

void CudaBackend::squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::squeeze_excite_forward<T>(stream_, a, as<T>(x), as<T>(y));
  });
}

void CudaBackend::squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx,
                                          float* dw1, float* db1, float* dw2, float* db2, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::squeeze_excite_backward<T>(stream_, a, as<T>(x), as<T>(dy), as<T>(dx), dw1, db1, dw2, db2, scratch);
  });
}

// --- loss ----------------------------------------------------------------------------

double CudaBackend::softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                          float smoothing, int64_t* correct, int64_t* correct5) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::softmax_cross_entropy<T>(stream_, n, classes, as<T>(logits), labels, smoothing,
                                       recording_ ? control_->results : results_);
  });
  if (recording_) return std::nan("");  // step_outcome reads it
  double host[3] = {0, 0, 0};
  download(host, results_, sizeof(host));
  if (correct) *correct = static_cast<int64_t>(host[1]);
  if (correct5) *correct5 = static_cast<int64_t>(host[2]);
  return host[0];
}

void CudaBackend::softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                                 float smoothing, float dloss, float* dlogits) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::softmax_cross_entropy_backward<T>(stream_, n, classes, as<T>(logits), labels, smoothing, dloss,
                                                as<T>(dlogits));
  });
}

void CudaBackend::softmax(int64_t n, int64_t classes, const float* logits, float* probs) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  with_activation_type([&](auto t) {
    using T = decltype(t);
    rn::cuda::softmax<T>(stream_, n, classes, as<T>(logits), probs);
  });
}

// --- optimizers ----------------------------------------------------------------------

double CudaBackend::sum_of_squares(int64_t count, const float* x) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  if (recording_) {
    rn::cuda::sum_of_squares(stream_, count, x, control_->results + 3);
    return std::nan("");
  }
  rn::cuda::sum_of_squares(stream_, count, x, results_ + 4);
  double host = 0;
  download(&host, results_ + 4, sizeof(host));
  return host;
}

template <typename T>
bool CudaBackend::finite(int64_t count, const T* x) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  int* flag = reinterpret_cast<int*>(results_ + 6);
  rn::cuda::all_finite<T>(stream_, count, x, flag);
  int host = 0;
  download(&host, flag, sizeof(host));
  return host != 0;
}

bool CudaBackend::all_finite(int64_t count, const float* x) { return finite(count, x); }

bool CudaBackend::activations_finite(int64_t count, const float* x) {
  bool ok = true;
  with_activation_type([&](auto t) {
    using T = decltype(t);
    ok = finite(count, as<T>(x));
  });
  return ok;
}

void CudaBackend::scale(int64_t count, float factor, float* x) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  rn::cuda::scale(stream_, count, factor, x);
}

// One tensor, unchecked (the Backend contract: the check is *_update_finite); nothing on this
// backend calls these, its *_update_all do the work in one launch each.
void CudaBackend::sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices({{0, count, a.lr, a.weight_decay}}));
  rn::cuda::sgd_update_all(stream_, table, 1, count, a, param, grad, momentum_buf);
}

void CudaBackend::adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices({{0, count, a.lr, a.weight_decay}}));
  rn::cuda::adamw_update_all(stream_, table, 1, count, a, param, grad, m, v);
}

const rn::ParamSlice* CudaBackend::upload_slices(const std::vector<rn::ParamSlice>& slices) {
  const size_t bytes = slices.size() * sizeof(rn::ParamSlice);
  const bool same = slices_host_.size() == slices.size() &&
                    (bytes == 0 || std::memcmp(slices_host_.data(), slices.data(), bytes) == 0);
  if (same) return slices_;
  if (slices.size() > slices_capacity_) {
    allocator_->release(slices_);
    slices_capacity_ = std::max<size_t>(slices.size(), 64);
    slices_ = static_cast<rn::ParamSlice*>(
        allocator_->allocate(slices_capacity_ * sizeof(rn::ParamSlice), "optimizer table"));
    ++slices_generation_;
  }
  slices_host_ = slices;
  upload(slices_, slices_host_.data(), static_cast<int64_t>(bytes));
  return slices_;
}

template <typename Check>
int64_t CudaBackend::refused_tensor(Check&& check) {
  unsigned* first_bad = reinterpret_cast<unsigned*>(results_ + 7);
  RN_CUDA(cudaMemsetAsync(first_bad, 0xFF, sizeof(unsigned), stream_));  // kNoBadTensor
  check(first_bad);
  unsigned host = kNoBadTensor;
  download(&host, first_bad, sizeof(host));
  return host == kNoBadTensor ? kUpdateApplied : static_cast<int64_t>(host);
}

template <typename Check, typename Update>
int64_t CudaBackend::checked_update(Check&& check, Update&& update) {
  if (recording_) {
    check(&control_->bad_tensor, control_);
    veto_nonfinite_update(stream_, control_);
    update(control_);
    return kUpdateApplied;
  }
  const int64_t refused = refused_tensor([&](unsigned* first_bad) { check(first_bad, nullptr); });
  if (refused == kUpdateApplied) update(nullptr);
  return refused;
}

bool CudaBackend::sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                                    const float* momentum_buf) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices({{0, count, a.lr, a.weight_decay}}));
  return refused_tensor([&](unsigned* first_bad) {
           rn::cuda::sgd_update_check_all(stream_, table, 1, count, a, param, grad, momentum_buf, first_bad);
         }) == kUpdateApplied;
}

bool CudaBackend::adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad,
                                      const float* m, const float* v) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices({{0, count, a.lr, a.weight_decay}}));
  return refused_tensor([&](unsigned* first_bad) {
           rn::cuda::adamw_update_check_all(stream_, table, 1, count, a, param, grad, m, v, first_bad);
         }) == kUpdateApplied;
}

int64_t CudaBackend::sgd_update_all(const std::vector<rn::ParamSlice>& slices, SgdArgs a, float* params,
                                    const float* grads, float* momentum) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  if (slices.empty()) return kUpdateApplied;
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices(slices));
  const int tensors = static_cast<int>(slices.size());
  const int64_t total = slices.back().offset + slices.back().numel;
  return checked_update(
      [&](unsigned* first_bad, const StepControl* control) {
        rn::cuda::sgd_update_check_all(stream_, table, tensors, total, a, params, grads, momentum, first_bad, control);
      },
      [&](const StepControl* control) {
        rn::cuda::sgd_update_all(stream_, table, tensors, total, a, params, grads, momentum, control);
      });
}

int64_t CudaBackend::adamw_update_all(const std::vector<rn::ParamSlice>& slices, AdamArgs a, float* params,
                                      const float* grads, float* m, float* v) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  if (slices.empty()) return kUpdateApplied;
  const auto* table = reinterpret_cast<const rn::cuda::ParamSlice*>(upload_slices(slices));
  const int tensors = static_cast<int>(slices.size());
  const int64_t total = slices.back().offset + slices.back().numel;
  return checked_update(
      [&](unsigned* first_bad, const StepControl* control) {
        rn::cuda::adamw_update_check_all(stream_, table, tensors, total, a, params, grads, m, v, first_bad, control);
      },
      [&](const StepControl* control) {
        rn::cuda::adamw_update_all(stream_, table, tensors, total, a, params, grads, m, v, control);
      });
}

// --- captured steps ------------------------------------------------------------------

void CudaBackend::copy_device(void* dst, const void* src, int64_t bytes) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  if (bytes > 0 && dst != src) {
    RN_CUDA(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, stream_));
  }
}

void CudaBackend::set_step_inputs(const StepInputs& inputs) {
  // Ordered on the stream before the replay that reads it.
  upload(&control_->in, &inputs, sizeof(StepInputs));
}

void CudaBackend::stage_param_table(const std::vector<rn::ParamSlice>& slices) { upload_slices(slices); }

void CudaBackend::finish_gradients(int64_t count, float* grads) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  finish_step(stream_, control_);
  scale_by_control(stream_, count, control_, grads);
}

StepOutcome CudaBackend::step_outcome() {
  double host[4] = {0, 0, 0, 0};
  download(host, control_->results, sizeof(host));
  unsigned bad = kNoBadTensor;
  download(&bad, &control_->bad_tensor, sizeof(bad));
  return {host[0], host[1], host[2], host[3], bad == kNoBadTensor ? kUpdateApplied : static_cast<int64_t>(bad)};
}

// Queues the step's work directly, in the recording mode (results stay on the device).
void CudaBackend::record_step(const StepRecording& record) {
  recording_ = true;
  try {
    record();
  } catch (...) {
    recording_ = false;
    throw;
  }
  recording_ = false;
}

void CudaBackend::run_captured(const void* key, uint64_t version, const StepRecording& record) {
  if (!graphs_enabled_) {
    record_step(record);
    return;
  }
  Captured& c = captured_[key];
  if (c.exec == nullptr || c.version != version || c.slices_generation != slices_generation_) {
    if (c.exec != nullptr) RN_CUDA(cudaGraphExecDestroy(c.exec));
    c.exec = nullptr;
    // Thread-local mode: other threads (an input copy on Node's main thread) may keep
    // calling CUDA while this one captures.
    RN_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      record_step(record);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      throw;
    }
    RN_CUDA(cudaStreamEndCapture(stream_, &graph));
    const cudaError_t made = cudaGraphInstantiate(&c.exec, graph, 0);
    cudaGraphDestroy(graph);
    if (made != cudaSuccess) {
      c.exec = nullptr;
      cuda_fail("cudaGraphInstantiate", made);
    }
    c.version = version;
    c.slices_generation = slices_generation_;
  }
  RN_CUDA(cudaGraphLaunch(c.exec, stream_));
}

void CudaBackend::drop_captures(const void* key) {
  // A plan may die on any thread (its network released after an async call) while another
  // network's step on this backend captures or replays: serialise with the calls.
  std::lock_guard<std::recursive_mutex> lock(call_mutex_);
  auto it = captured_.find(key);
  if (it == captured_.end()) return;
  if (it->second.exec != nullptr) cudaGraphExecDestroy(it->second.exec);
  captured_.erase(it);
}

}  // namespace rn::cuda
