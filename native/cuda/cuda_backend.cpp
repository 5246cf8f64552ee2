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

}  // namespace

CudaBackend::CudaBackend(int ordinal, bool allow_tf32) : ordinal_(ordinal) {
  RN_CUDA(cudaSetDevice(ordinal_));
  RN_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  RN_CUDNN(cudnnCreate(&cudnn_));
  RN_CUDNN(cudnnSetStream(cudnn_, stream_));
  allocator_ = std::make_unique<DeviceAllocator>(ordinal_);
  conv_ = std::make_unique<ConvEngine>(cudnn_, allow_tf32);
  results_ = static_cast<double*>(allocator_->allocate(16 * sizeof(double), "loss results"));
  profiler_ = std::make_unique<Profiler>();
  if (profiler_->enabled()) {
    // Backends live until the process exits; the totals are printed then.
    static std::vector<Profiler*> profilers;
    if (profilers.empty()) std::atexit([] { for (Profiler* p : profilers) p->print(); });
    profilers.push_back(profiler_.get());
  }
}

CudaBackend::~CudaBackend() {
  // Backends live until the process exits; tidy up anyway for tools that destroy them.
  cudaSetDevice(ordinal_);
  if (stream_) cudaStreamSynchronize(stream_);
  conv_.reset();
  allocator_.reset();
  if (cudnn_) cudnnDestroy(cudnn_);
  if (stream_) cudaStreamDestroy(stream_);
}

float* CudaBackend::allocate(int64_t count, const std::string& what) {
  return static_cast<float*>(allocator_->allocate(static_cast<size_t>(count) * sizeof(float), what.c_str()));
}

void CudaBackend::release(float* p) { allocator_->release(p); }

void CudaBackend::upload(void* dst, const void* host_src, int64_t bytes) {
  ProfileScope profile(*profiler_, stream_, Work::Upload);
  if (bytes <= 0) return;
  // From pageable memory the call returns once the source has been staged, so the caller
  // may reuse its buffer at once; the copy itself stays ordered on the stream.
  RN_CUDA(cudaMemcpyAsync(dst, host_src, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, stream_));
}

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

// Networks on one GPU share this backend (stream, cuDNN handle, algorithm cache): their
// calls, from different worker threads, take turns.
void CudaBackend::begin_call() {
  call_mutex_.lock();
  const cudaError_t e = cudaSetDevice(ordinal_);
  if (e != cudaSuccess) {
    call_mutex_.unlock();
    cuda_fail("cudaSetDevice", e);
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
  s.weights = aligned(workspace);
  s.padded = s.weights + aligned(g.kh * g.kw * (g.c_in / g.groups) * g.c_out);
  s.channel = s.padded + (s.prepad ? aligned(s.sym.n * s.sym.h * s.sym.w * s.sym.c_in) : 0);
  s.total = s.channel + aligned(std::max(channel_scratch_floats(g.c_out), int64_t(1)));
  return s;
}

int64_t CudaBackend::conv2d_scratch_floats(const Conv2dGeometry& g) const { return conv_scratch(g).total; }

void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                                 float* mean, float* var, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvForward);
  const ConvScratch s = conv_scratch(g);
  float* w_ohwi = scratch + s.weights;
  hwio_to_ohwi(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, w, w_ohwi);
  const float* input = x;
  if (s.prepad) {
    zero_pad_forward(g.input_shape(), s.extra.data(), x, scratch + s.padded);
    input = scratch + s.padded;
  }
  conv_->forward(s.sym, input, w_ohwi, y, scratch + s.workspace);
  const int64_t rows = g.n * g.out_h * g.out_w;
  if (bias) add_channel_bias(stream_, rows, g.c_out, bias, y);
  if (mean && var) rn::cuda::batch_norm_statistics(stream_, rows, g.c_out, y, mean, var, scratch + s.channel);
}

void CudaBackend::conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                        float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvBackwardData);
  const ConvScratch s = conv_scratch(g);
  float* w_ohwi = scratch + s.weights;
  hwio_to_ohwi(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, w, w_ohwi);
  if (s.prepad) {
    // The gradient of the padded input, cropped back to the real one.
    conv_->backward_data(s.sym, dy, w_ohwi, scratch + s.padded, scratch + s.workspace);
    zero_pad_backward(g.input_shape(), s.extra.data(), scratch + s.padded, dx);
  } else {
    conv_->backward_data(s.sym, dy, w_ohwi, dx, scratch + s.workspace);
  }
}

void CudaBackend::conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw,
                                         float* db, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::ConvBackwardFilter);
  const ConvScratch s = conv_scratch(g);
  const float* input = x;
  if (s.prepad) {
    zero_pad_forward(g.input_shape(), s.extra.data(), x, scratch + s.padded);
    input = scratch + s.padded;
  }
  float* dw_ohwi = scratch + s.weights;
  conv_->backward_filter(s.sym, input, dy, dw_ohwi, scratch + s.workspace);
  ohwi_to_hwio(stream_, g.kh, g.kw, g.c_in / g.groups, g.c_out, dw_ohwi, dw);
  if (db) channel_sums(stream_, g.n * g.out_h * g.out_w, g.c_out, dy, db, scratch + s.channel);
}

// --- batch-norm ----------------------------------------------------------------------

int64_t CudaBackend::channel_scratch_floats(int64_t channels) const { return rn::cuda::channel_scratch_floats(channels); }

void CudaBackend::batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                                        float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormStats);
  rn::cuda::batch_norm_statistics(stream_, rows, channels, x, mean, var, scratch);
}

void CudaBackend::batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var,
                                            float momentum, float* running_mean, float* running_var) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormStats);
  rn::cuda::batch_norm_update_running(stream_, rows, channels, mean, var, momentum, running_mean, running_var);
}

void CudaBackend::batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                                     float*) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormForward);
  rn::cuda::batch_norm_forward(stream_, a, x, skip, relu, y);
}

void CudaBackend::batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y,
                                      bool relu, const float* dy, float* dx, float* dskip, float* dgamma,
                                      float* dbeta, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::BatchNormBackward);
  rn::cuda::batch_norm_backward(stream_, a, training, x, y, relu, dy, dx, dskip, dgamma, dbeta, scratch);
}

// --- element-wise, pools, dense, padding, SE -------------------------------------------

void CudaBackend::relu_forward(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise); rn::cuda::relu_forward(stream_, count, x, y); }

void CudaBackend::relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::relu_backward_from_output(stream_, count, y, dy, dx);
}

void CudaBackend::add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::add_forward(stream_, count, a, b, relu, y);
}

void CudaBackend::accumulate(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise); rn::cuda::accumulate(stream_, count, x, y); }

void CudaBackend::copy(int64_t count, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  if (count > 0 && x != y) {
    RN_CUDA(cudaMemcpyAsync(y, x, static_cast<size_t>(count) * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
}

void CudaBackend::max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::max_pool_forward(stream_, g, x, y);
}

void CudaBackend::max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::max_pool_backward(stream_, g, x, dy, dx);
}

void CudaBackend::avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::avg_pool_forward(stream_, g, x, y);
}

void CudaBackend::avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::avg_pool_backward(stream_, g, dy, dx);
}

void CudaBackend::global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::global_avg_pool_forward(stream_, n, hw, c, x, y);
}

void CudaBackend::global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Pool);
  rn::cuda::global_avg_pool_backward(stream_, n, hw, c, dy, dx);
}

void CudaBackend::dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                                float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Dense);
  rn::cuda::dense_forward(stream_, n, k, m, x, w, b, y);
}

void CudaBackend::dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                                 float* dx, float* dw, float* db) {
  ProfileScope profile(*profiler_, stream_, Work::Dense);
  rn::cuda::dense_backward(stream_, n, k, m, x, w, dy, dx, dw, db);
}

void CudaBackend::zero_pad_forward(const Shape& x_shape, const int64_t* pads, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::zero_pad_forward(stream_, x_shape, pads, x, y);
}

void CudaBackend::zero_pad_backward(const Shape& x_shape, const int64_t* pads, const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::zero_pad_backward(stream_, x_shape, pads, dy, dx);
}

void CudaBackend::zero_pad_shortcut_forward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                            const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::zero_pad_shortcut_forward(stream_, x_shape, y_shape, sh, sw, x, y);
}

void CudaBackend::zero_pad_shortcut_backward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                             const float* dy, float* dx) {
  ProfileScope profile(*profiler_, stream_, Work::Elementwise);
  rn::cuda::zero_pad_shortcut_backward(stream_, x_shape, y_shape, sh, sw, dy, dx);
}

void CudaBackend::squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  rn::cuda::squeeze_excite_forward(stream_, a, x, y);
}

void CudaBackend::squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx,
                                          float* dw1, float* db1, float* dw2, float* db2, float* scratch) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  rn::cuda::squeeze_excite_backward(stream_, a, x, dy, dx, dw1, db1, dw2, db2, scratch);
}

// --- loss ----------------------------------------------------------------------------

double CudaBackend::softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                          float smoothing, int64_t* correct, int64_t* correct5) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  rn::cuda::softmax_cross_entropy(stream_, n, classes, logits, labels, smoothing, results_);
  double host[3] = {0, 0, 0};
  download(host, results_, sizeof(host));
  if (correct) *correct = static_cast<int64_t>(host[1]);
  if (correct5) *correct5 = static_cast<int64_t>(host[2]);
  return host[0];
}

void CudaBackend::softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits,
                                                 const int32_t* labels, float smoothing, float dloss, float* dlogits) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  rn::cuda::softmax_cross_entropy_backward(stream_, n, classes, logits, labels, smoothing, dloss, dlogits);
}

void CudaBackend::softmax(int64_t n, int64_t classes, const float* logits, float* probs) {
  ProfileScope profile(*profiler_, stream_, Work::Loss);
  rn::cuda::softmax(stream_, n, classes, logits, probs);
}

// --- optimizers ----------------------------------------------------------------------

double CudaBackend::sum_of_squares(int64_t count, const float* x) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  rn::cuda::sum_of_squares(stream_, count, x, results_ + 4);
  double host = 0;
  download(&host, results_ + 4, sizeof(host));
  return host;
}

bool CudaBackend::all_finite(int64_t count, const float* x) {
  ProfileScope profile(*profiler_, stream_, Work::Other);
  int* flag = reinterpret_cast<int*>(results_ + 6);
  rn::cuda::all_finite(stream_, count, x, flag);
  int host = 0;
  download(&host, flag, sizeof(host));
  return host != 0;
}

void CudaBackend::scale(int64_t count, float factor, float* x) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer); rn::cuda::scale(stream_, count, factor, x); }

void CudaBackend::sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) {
  sgd_update_all({{0, count, a.lr, a.weight_decay}}, a, param, grad, momentum_buf);
}

void CudaBackend::adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) {
  adamw_update_all({{0, count, a.lr, a.weight_decay}}, a, param, grad, m, v);
}

const rn::ParamSlice* CudaBackend::upload_slices(const std::vector<rn::ParamSlice>& slices) {
  const size_t bytes = slices.size() * sizeof(rn::ParamSlice);
  const bool same = slices_host_.size() == slices.size() &&
                    (bytes == 0 || std::memcmp(slices_host_.data(), slices.data(), bytes) == 0);
  if (same) return slices_;
  if (slices.size() > slices_capacity_) {
    allocator_->release(slices_);
    slices_capacity_ = std::max<size_t>(slices.size(), 64);
    slices_ = static_cast<rn::ParamSlice*>(allocator_->allocate(slices_capacity_ * sizeof(rn::ParamSlice), "optimizer table"));
  }
  slices_host_ = slices;
  upload(slices_, slices_host_.data(), static_cast<int64_t>(bytes));
  return slices_;
}

void CudaBackend::sgd_update_all(const std::vector<rn::ParamSlice>& slices, SgdArgs a, float* params, const float* grads,
                                 float* momentum) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  if (slices.empty()) return;
  const rn::ParamSlice* table = upload_slices(slices);
  const int64_t total = slices.back().offset + slices.back().numel;
  rn::cuda::sgd_update_all(stream_, reinterpret_cast<const rn::cuda::ParamSlice*>(table),
                           static_cast<int>(slices.size()), total, a, params, grads, momentum);
}

void CudaBackend::adamw_update_all(const std::vector<rn::ParamSlice>& slices, AdamArgs a, float* params,
                                   const float* grads, float* m, float* v) {
  ProfileScope profile(*profiler_, stream_, Work::Optimizer);
  if (slices.empty()) return;
  const rn::ParamSlice* table = upload_slices(slices);
  const int64_t total = slices.back().offset + slices.back().numel;
  rn::cuda::adamw_update_all(stream_, reinterpret_cast<const rn::cuda::ParamSlice*>(table),
                             static_cast<int>(slices.size()), total, a, params, grads, m, v);
}

}  // namespace rn::cuda
