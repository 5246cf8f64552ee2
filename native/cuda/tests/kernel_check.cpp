// Cross-checks every CUDA kernel of native/cuda/kernels.hpp against the CPU backend (or,
// for the few kernels the CPU backend has no method for, a plain host loop), on seeded
// random inputs of awkward sizes: n = 1, channels not divisible by 4, rows not divisible
// by any tile, misaligned buffers. One line per case:
//   ok|FAIL <kernel> <shape> worst=<ratio>
// where ratio = max |got − expected| / (c·u·|expected| + 1e-4·√L + 1e-4·|expected|), L the
// length of the reduction behind each output; a case passes when ratio ≤ 1. Kernels whose
// results come from reductions are also run twice and must be bit-identical. Exits
// non-zero on any failure, and 0 with "SKIP: no CUDA device (<reason>)" where there is no GPU.
//
// Mixed precision: the kernels templated on the activation type T run for float (every
// case) and for __half / __nv_bfloat16 (a representative set, named e.g.
// batch_norm_forward<fp16>). Inputs are rounded to T on the host first and the CPU
// backend computes in fp32 on those rounded values, so the GPU sees exactly the CPU's
// inputs (saved tensors such as batch-norm's y are rounded likewise before the backward);
// the only extra error is then the one rounding of each T output to nearest, at most
// u·|value| with u = 2^-11 for fp16, 2^-8 for bf16. Outputs of type T get the
// c·u·|expected| term with c = 2: one u for that rounding, applied to a float result that
// may itself differ from the CPU's by the fp32 tolerance, plus headroom for the kernels
// that round double → float → T (the extra 2^-24 is far below u). Float outputs
// (statistics, parameter gradients, losses) and the float instantiations have u = 0:
// exactly the fp32 tolerance, as before.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/geometry.hpp"
#include "../kernels.hpp"

namespace {

using rn::Shape;
using Floats = std::vector<float>;

int failures = 0;
cudaStream_t stream = nullptr;

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::printf("FAIL cuda %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// A device copy of a host vector (or zeroed storage), freed on scope exit. `shift`
// offsets the pointer by whole elements to exercise the unaligned (scalar) paths.
template <typename T>
class Device {
 public:
  explicit Device(size_t count, size_t shift = 0) : count_(count), shift_(shift) {
    check_cuda(cudaMalloc(&base_, (count + shift + 1) * sizeof(T)), "cudaMalloc");
    check_cuda(cudaMemset(base_, 0, (count + shift + 1) * sizeof(T)), "cudaMemset");
  }
  explicit Device(const std::vector<T>& host, size_t shift = 0) : Device(host.size(), shift) { upload(host); }
  ~Device() { cudaFree(base_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* get() { return base_ + shift_; }
  void upload(const std::vector<T>& host) {
    check_cuda(cudaMemcpy(get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() {
    check_cuda(cudaStreamSynchronize(stream), "kernel");
    std::vector<T> host(count_);
    check_cuda(cudaMemcpy(host.data(), get(), count_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return host;
  }

 private:
  T* base_ = nullptr;
  size_t count_, shift_;
};

std::mt19937 rng(20240607);

Floats random_floats(int64_t count, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  Floats v(static_cast<size_t>(count));
  for (float& x : v) x = d(rng);
  return v;
}

// Small integers: forces ties (max-pool first maximum, top-5 in the label's favour).
Floats tied_floats(int64_t count) {
  std::uniform_int_distribution<int> d(0, 3);
  Floats v(static_cast<size_t>(count));
  for (float& x : v) x = static_cast<float>(d(rng));
  return v;
}

// ---- activation types ---------------------------------------------------------------------

template <typename T>
struct Format;
template <>
struct Format<float> {
  static constexpr const char* name = "fp32";
  static constexpr double u = 0.0;  // the fp32 tolerance already covers float rounding
};
template <>
struct Format<__half> {
  static constexpr const char* name = "fp16";
  static constexpr double u = 0x1p-11;
};
template <>
struct Format<__nv_bfloat16> {
  static constexpr const char* name = "bf16";
  static constexpr double u = 0x1p-8;
};

// Relative tolerance for an output stored as T (see the top of the file for c = 2).
template <typename T>
constexpr double output_rel = 2.0 * Format<T>::u;

// "kernel" for float (the names the float cases always had), "kernel<fp16>" otherwise.
template <typename T>
std::string named(const std::string& kernel) {
  return std::is_same_v<T, float> ? kernel : kernel + "<" + Format<T>::name + ">";
}

// Host rounding to T (nearest even, as the kernels' stores) and exact widening back.
template <typename T>
T round_to(float v) {
  if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    return v;
  }
}
float widen(float v) { return v; }
float widen(__half v) { return __half2float(v); }
float widen(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
std::vector<T> narrow(const Floats& v) {
  std::vector<T> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](float x) { return round_to<T>(x); });
  return out;
}
template <typename T>
Floats widen(const std::vector<T>& v) {
  Floats out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](T x) { return widen(x); });
  return out;
}
// v as the GPU sees it once stored as T.
template <typename T>
Floats rounded(const Floats& v) {
  return widen(narrow<T>(v));
}
template <typename T>
Floats fetch(Device<T>& d) {
  return widen(d.download());
}

std::string shape_text(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (int64_t d : dims) s += (s.size() > 1 ? "," : "") + std::to_string(d);
  return s + "]";
}

double worst_ratio(const Floats& got, const Floats& expected, int64_t reduction_length, double rel) {
  const double abs_tol = 1e-4 * std::sqrt(double(std::max<int64_t>(1, reduction_length)));
  double worst = 0.0;
  if (got.size() != expected.size()) return INFINITY;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = expected[i], a = got[i];
    if (std::isnan(e) || std::isnan(a)) {
      if (std::isnan(e) != std::isnan(a)) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::fabs(a - e) / (abs_tol + (rel + 1e-4) * std::fabs(e)));
  }
  return worst;
}

void report(const std::string& kernel, const std::string& shape, double worst) {
  const bool ok = worst <= 1.0;
  if (!ok) ++failures;
  std::printf("%s %s %s worst=%.3g\n", ok ? "ok" : "FAIL", kernel.c_str(), shape.c_str(), worst);
}

// rel: output_rel<T> for outputs stored as an activation type T, 0 for float outputs.
void compare(const std::string& kernel, const std::string& shape, const Floats& got, const Floats& expected,
             int64_t reduction_length, double rel = 0.0) {
  report(kernel, shape, worst_ratio(got, expected, reduction_length, rel));
}

void compare_exact(const std::string& kernel, const std::string& shape, bool equal) {
  report(kernel, shape, equal ? 0.0 : INFINITY);
}

template <typename T>
bool bit_identical(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

rn::Backend& cpu() { return rn::cpu_backend(); }

// ---- batch-norm ------------------------------------------------------------------------

template <typename T>
void check_batch_norm(int64_t rows, int64_t c, bool determinism) {
  const std::string shape = shape_text({rows, c});
  const Floats x = rounded<T>(random_floats(rows * c, -1.0f, 2.0f));
  Floats mean(c), var(c), cpu_scratch(static_cast<size_t>(cpu().channel_scratch_floats(c)));
  cpu().batch_norm_statistics(rows, c, x.data(), mean.data(), var.data(), cpu_scratch.data());

  Device<T> dx_in(narrow<T>(x));
  Device<float> dmean(c), dvar(c), scratch(static_cast<size_t>(rn::cuda::channel_scratch_floats(c)));
  rn::cuda::batch_norm_statistics<T>(stream, rows, c, dx_in.get(), dmean.get(), dvar.get(), scratch.get());
  const Floats gmean = dmean.download(), gvar = dvar.download();
  compare(named<T>("batch_norm_statistics") + ".mean", shape, gmean, mean, rows);
  compare(named<T>("batch_norm_statistics") + ".var", shape, gvar, var, rows);
  if (determinism) {
    rn::cuda::batch_norm_statistics<T>(stream, rows, c, dx_in.get(), dmean.get(), dvar.get(), scratch.get());
    compare_exact(named<T>("determinism.batch_norm_statistics"), shape,
                  bit_identical(dmean.download(), gmean) && bit_identical(dvar.download(), gvar));
  }

  Device<float> cmean(mean), cvar(var);
  if constexpr (std::is_same_v<T, float>) {  // all float: no activation type to vary
    // Running averages from the CPU's statistics, so both sides start equal.
    const Floats rm0 = random_floats(c), rv0 = random_floats(c, 0.5f, 2.0f);
    Floats rm = rm0, rv = rv0;
    cpu().batch_norm_update_running(rows, c, mean.data(), var.data(), 0.1f, rm.data(), rv.data());
    Device<float> drm(rm0), drv(rv0);
    rn::cuda::batch_norm_update_running(stream, rows, c, cmean.get(), cvar.get(), 0.1f, drm.get(), drv.get());
    compare("batch_norm_update_running.mean", shape, drm.download(), rm, 1);
    compare("batch_norm_update_running.var", shape, drv.download(), rv, 1);
  }

  const Floats gamma = random_floats(c, 0.5f, 1.5f), beta = random_floats(c);
  Device<float> dgamma_in(gamma), dbeta_in(beta);
  rn::BatchNormArgs host_args{rows, c, 1e-5f, gamma.data(), beta.data(), mean.data(), var.data()};
  rn::BatchNormArgs dev_args{rows, c, 1e-5f, dgamma_in.get(), dbeta_in.get(), cmean.get(), cvar.get()};
  const Floats skip = rounded<T>(random_floats(rows * c));
  Device<T> dskip_in(narrow<T>(skip));
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_skip = variant & 1, relu = variant & 2;
    const std::string tag = std::string(with_skip ? ".skip" : "") + (relu ? ".relu" : "");
    Floats y(x.size());
    cpu().batch_norm_forward(host_args, x.data(), with_skip ? skip.data() : nullptr, relu, y.data(),
                             cpu_scratch.data());
    Device<T> dy_out(x.size());
    rn::cuda::batch_norm_forward<T>(stream, dev_args, dx_in.get(), with_skip ? dskip_in.get() : nullptr, relu,
                                    dy_out.get());
    compare(named<T>("batch_norm_forward") + tag, shape, fetch(dy_out), y, 1, output_rel<T>);

    // Backward from the CPU's y as stored in T (the ReLU mask then agrees exactly), both modes.
    y = rounded<T>(y);
    const Floats dy = rounded<T>(random_floats(rows * c));
    Device<T> dy_in(narrow<T>(dy)), dy_saved(narrow<T>(y));
    for (bool training : {true, false}) {
      const std::string mode = training ? ".train" : ".infer";
      const std::string kernel = named<T>("batch_norm_backward");
      Floats dx(x.size()), dsk(x.size()), dg(c), db(c);
      cpu().batch_norm_backward(host_args, training, x.data(), y.data(), relu, dy.data(), dx.data(),
                                with_skip ? dsk.data() : nullptr, dg.data(), db.data(), cpu_scratch.data());
      Device<T> gdx(x.size()), gdsk(x.size());
      Device<float> gdg(c), gdb(c);
      rn::cuda::batch_norm_backward<T>(stream, dev_args, training, dx_in.get(), dy_saved.get(), relu, dy_in.get(),
                                       gdx.get(), with_skip ? gdsk.get() : nullptr, gdg.get(), gdb.get(),
                                       scratch.get());
      const std::vector<T> got_dx = gdx.download();
      const Floats got_dg = gdg.download();
      compare(kernel + ".dx" + tag + mode, shape, widen(got_dx), dx, rows, output_rel<T>);
      if (with_skip) compare(kernel + ".dskip" + tag + mode, shape, fetch(gdsk), dsk, 1, output_rel<T>);
      compare(kernel + ".dgamma" + tag + mode, shape, got_dg, dg, rows);
      compare(kernel + ".dbeta" + tag + mode, shape, gdb.download(), db, rows);
      if (determinism && variant == 3 && training) {
        rn::cuda::batch_norm_backward<T>(stream, dev_args, training, dx_in.get(), dy_saved.get(), relu, dy_in.get(),
                                         gdx.get(), gdsk.get(), gdg.get(), gdb.get(), scratch.get());
        compare_exact(named<T>("determinism.batch_norm_backward"), shape,
                      bit_identical(gdx.download(), got_dx) && bit_identical(gdg.download(), got_dg));
        // dx written over dy (the backend's in-place use): the same values.
        Device<T> inplace(narrow<T>(dy));
        rn::cuda::batch_norm_backward<T>(stream, dev_args, training, dx_in.get(), dy_saved.get(), relu, inplace.get(),
                                         inplace.get(), gdsk.get(), gdg.get(), gdb.get(), scratch.get());
        compare_exact(kernel + ".dx_over_dy", shape, bit_identical(inplace.download(), got_dx));
      }
    }
  }
}

// ---- element-wise, bias, layout ----------------------------------------------------------

template <typename T>
void check_elementwise(int64_t count, size_t shift) {
  const std::string shape = shape_text({count}) + (shift ? "+offset" + std::to_string(shift * sizeof(T)) + "B" : "");
  const Floats a = rounded<T>(random_floats(count)), b = rounded<T>(random_floats(count));
  Device<T> da(narrow<T>(a), shift), db(narrow<T>(b), shift), dout(count, shift);
  Floats out(a.size());

  cpu().relu_forward(count, a.data(), out.data());
  rn::cuda::relu_forward<T>(stream, count, da.get(), dout.get());
  compare(named<T>("relu_forward"), shape, fetch(dout), out, 1, output_rel<T>);

  cpu().relu_backward_from_output(count, a.data(), b.data(), out.data());
  rn::cuda::relu_backward_from_output<T>(stream, count, da.get(), db.get(), dout.get());
  compare(named<T>("relu_backward_from_output"), shape, fetch(dout), out, 1, output_rel<T>);

  for (bool relu : {false, true}) {
    cpu().add_forward(count, a.data(), b.data(), relu, out.data());
    rn::cuda::add_forward<T>(stream, count, da.get(), db.get(), relu, dout.get());
    compare(named<T>("add_forward") + (relu ? ".relu" : ""), shape, fetch(dout), out, 1, output_rel<T>);
  }

  out = b;
  cpu().accumulate(count, a.data(), out.data());
  Device<T> acc(narrow<T>(b), shift);
  rn::cuda::accumulate<T>(stream, count, da.get(), acc.get());
  compare(named<T>("accumulate"), shape, fetch(acc), out, 1, output_rel<T>);

  if constexpr (std::is_same_v<T, float>) {  // parameter gradients only
    out = a;
    cpu().scale(count, -0.37f, out.data());
    rn::cuda::scale(stream, count, -0.37f, da.get());
    compare("scale", shape, da.download(), out, 1);
  }
}

// float → T must round exactly as the host's round-to-nearest-even (fp16 overflow to
// ±inf included) and T → float must widen exactly; float → float is a copy.
template <typename T>
void check_convert(int64_t count, size_t shift) {
  const std::string shape = shape_text({count}) + (shift ? "+offset" + std::to_string(shift * sizeof(T)) + "B" : "");
  const std::string to = std::string("convert<fp32,") + Format<T>::name + ">";
  Floats x = random_floats(count, -8.0f, 8.0f);
  // fp16's largest finite value, just under and at the rounding midpoint to inf, beyond
  // it, a bf16 tie, fp16 subnormals and a value that rounds to fp16's smallest subnormal.
  const float special[] = {65504.0f, 65519.0f, 65520.0f, -1e5f, 3e38f, 1.0f + 0x1p-8f, 1e-6f, -3e-8f};
  for (size_t i = 0; i < std::size(special) && i < x.size(); ++i) x[i * x.size() / std::size(special)] = special[i];
  Device<float> dx(x, shift);
  Device<T> dy(x.size(), shift);
  rn::cuda::convert<float, T>(stream, count, dx.get(), dy.get());
  const std::vector<T> got = dy.download();
  compare_exact(to, shape, bit_identical(got, narrow<T>(x)));
  if constexpr (!std::is_same_v<T, float>) {
    Device<float> back(x.size(), shift);
    rn::cuda::convert<T, float>(stream, count, dy.get(), back.get());
    compare_exact(std::string("convert<") + Format<T>::name + ",fp32>", shape,
                  bit_identical(back.download(), widen(got)));
  }
}

template <typename T>
void check_channel_bias(int64_t rows, int64_t c, bool determinism) {
  const std::string shape = shape_text({rows, c});
  const Floats y = rounded<T>(random_floats(rows * c)), bias = random_floats(c);
  Floats expected = y, sums(c, 0.0f);
  std::vector<double> exact(c, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      expected[r * c + ch] += bias[ch];
      exact[ch] += y[r * c + ch];
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) sums[ch] = static_cast<float>(exact[ch]);
  Device<T> dy(narrow<T>(y));
  Device<float> dbias(bias), dsums(c), scratch(static_cast<size_t>(rn::cuda::channel_scratch_floats(c)));
  rn::cuda::channel_sums<T>(stream, rows, c, dy.get(), dsums.get(), scratch.get());
  const Floats got = dsums.download();
  compare(named<T>("channel_sums"), shape, got, sums, rows);
  if (determinism) {
    rn::cuda::channel_sums<T>(stream, rows, c, dy.get(), dsums.get(), scratch.get());
    compare_exact(named<T>("determinism.channel_sums"), shape, bit_identical(dsums.download(), got));
  }
  rn::cuda::add_channel_bias<T>(stream, rows, c, dbias.get(), dy.get());
  compare(named<T>("add_channel_bias"), shape, fetch(dy), expected, 1, output_rel<T>);
}

// fp32 weights → T while transposing, and a T gradient → fp32: exact, given the rounding.
template <typename T>
void check_layout(int64_t kh, int64_t kw, int64_t ci, int64_t co) {
  const std::string shape = shape_text({kh, kw, ci, co});
  const Floats hwio = random_floats(kh * kw * ci * co);
  Floats ohwi(hwio.size());
  for (int64_t k = 0; k < kh * kw * ci; ++k) {
    for (int64_t o = 0; o < co; ++o) ohwi[o * kh * kw * ci + k] = hwio[k * co + o];
  }
  Device<float> src(hwio), back(hwio.size());
  Device<T> dst(hwio.size());
  rn::cuda::hwio_to_ohwi<T>(stream, kh, kw, ci, co, src.get(), dst.get());
  compare_exact(named<T>("hwio_to_ohwi"), shape, bit_identical(dst.download(), narrow<T>(ohwi)));
  rn::cuda::ohwi_to_hwio<T>(stream, kh, kw, ci, co, dst.get(), back.get());
  compare_exact(named<T>("ohwi_to_hwio"), shape, bit_identical(back.download(), rounded<T>(hwio)));
}

// ---- pools -------------------------------------------------------------------------------

template <typename T>
void check_pools(const Shape& xs, int64_t k, int64_t stride, rn::PaddingMode mode, bool ties) {
  rn::Window2dOptions opts;
  opts.stride_h = opts.stride_w = stride;
  opts.padding.mode = mode;
  const rn::Pool2dGeometry g = rn::pool2d_geometry(xs, k, k, opts, "kernel_check");
  const std::string shape = shape_text({xs[0], xs[1], xs[2], xs[3]}) + " k" + std::to_string(k) + "s" +
                            std::to_string(stride) + (mode == rn::PaddingMode::Same ? "same" : "valid") +
                            (ties ? "+ties" : "");
  const int64_t in = g.n * g.h * g.w * g.c, out = g.n * g.out_h * g.out_w * g.c;
  const Floats x = rounded<T>(ties ? tied_floats(in) : random_floats(in)), dy = rounded<T>(random_floats(out));
  Device<T> dx_in(narrow<T>(x)), ddy(narrow<T>(dy)), dout(out), dgrad(in);
  Floats y(out), dx(in);

  cpu().max_pool_forward(g, x.data(), y.data());
  rn::cuda::max_pool_forward<T>(stream, g, dx_in.get(), dout.get());
  compare(named<T>("max_pool_forward"), shape, fetch(dout), y, 1, output_rel<T>);
  cpu().max_pool_backward(g, x.data(), dy.data(), dx.data());
  rn::cuda::max_pool_backward<T>(stream, g, dx_in.get(), ddy.get(), dgrad.get());
  const std::vector<T> got = dgrad.download();
  compare(named<T>("max_pool_backward"), shape, widen(got), dx, k * k, output_rel<T>);
  rn::cuda::max_pool_backward<T>(stream, g, dx_in.get(), ddy.get(), dgrad.get());
  compare_exact(named<T>("determinism.max_pool_backward"), shape, bit_identical(dgrad.download(), got));

  cpu().avg_pool_forward(g, x.data(), y.data());
  rn::cuda::avg_pool_forward<T>(stream, g, dx_in.get(), dout.get());
  compare(named<T>("avg_pool_forward"), shape, fetch(dout), y, k * k, output_rel<T>);
  cpu().avg_pool_backward(g, dy.data(), dx.data());
  rn::cuda::avg_pool_backward<T>(stream, g, ddy.get(), dgrad.get());
  compare(named<T>("avg_pool_backward"), shape, fetch(dgrad), dx, k * k, output_rel<T>);
}

template <typename T>
void check_global_pool(int64_t n, int64_t hw, int64_t c) {
  const std::string shape = shape_text({n, hw, c});
  const Floats x = rounded<T>(random_floats(n * hw * c)), dy = rounded<T>(random_floats(n * c));
  Floats y(n * c), dx(n * hw * c);
  Device<T> dx_in(narrow<T>(x)), ddy(narrow<T>(dy)), dout(n * c), dgrad(n * hw * c);
  cpu().global_avg_pool_forward(n, hw, c, x.data(), y.data());
  rn::cuda::global_avg_pool_forward<T>(stream, n, hw, c, dx_in.get(), dout.get());
  compare(named<T>("global_avg_pool_forward"), shape, fetch(dout), y, hw, output_rel<T>);
  cpu().global_avg_pool_backward(n, hw, c, dy.data(), dx.data());
  rn::cuda::global_avg_pool_backward<T>(stream, n, hw, c, ddy.get(), dgrad.get());
  compare(named<T>("global_avg_pool_backward"), shape, fetch(dgrad), dx, 1, output_rel<T>);
}

// ---- dense, padding, squeeze-excite ------------------------------------------------------

template <typename T>
void check_dense(int64_t n, int64_t k, int64_t m, bool with_bias, bool with_dx) {
  const std::string shape = shape_text({n, k, m}) + (with_bias ? "" : "+nobias") + (with_dx ? "" : "+nodx");
  const Floats x = rounded<T>(random_floats(n * k)), w = random_floats(k * m), b = random_floats(m),
               dy = rounded<T>(random_floats(n * m));
  Device<T> dxi(narrow<T>(x)), ddy(narrow<T>(dy)), dout(n * m), gdx(n * k);
  Device<float> dw_in(w), db_in(b), gdw(k * m), gdb(m);
  Floats y(n * m), dx(n * k), dw(k * m), db(m);
  cpu().dense_forward(n, k, m, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
  rn::cuda::dense_forward<T>(stream, n, k, m, dxi.get(), dw_in.get(), with_bias ? db_in.get() : nullptr, dout.get());
  compare(named<T>("dense_forward"), shape, fetch(dout), y, k, output_rel<T>);
  cpu().dense_backward(n, k, m, x.data(), w.data(), dy.data(), with_dx ? dx.data() : nullptr, dw.data(),
                       with_bias ? db.data() : nullptr);
  rn::cuda::dense_backward<T>(stream, n, k, m, dxi.get(), dw_in.get(), ddy.get(), with_dx ? gdx.get() : nullptr,
                              gdw.get(), with_bias ? gdb.get() : nullptr);
  if (with_dx) compare(named<T>("dense_backward") + ".dx", shape, fetch(gdx), dx, m, output_rel<T>);
  compare(named<T>("dense_backward") + ".dw", shape, gdw.download(), dw, n);
  if (with_bias) compare(named<T>("dense_backward") + ".db", shape, gdb.download(), db, n);
}

// Pure copies and zeros: exact.
template <typename T>
void check_padding(const Shape& xs, std::vector<int64_t> pads) {
  const std::string shape =
      shape_text({xs[0], xs[1], xs[2], xs[3]}) + " pads" + shape_text({pads[0], pads[1], pads[2], pads[3]});
  const int64_t in = xs[0] * xs[1] * xs[2] * xs[3];
  const int64_t out = xs[0] * (xs[1] + pads[0] + pads[1]) * (xs[2] + pads[2] + pads[3]) * xs[3];
  const Floats x = rounded<T>(random_floats(in)), dy = rounded<T>(random_floats(out));
  Floats y(out), dx(in);
  Device<T> dxi(narrow<T>(x)), ddy(narrow<T>(dy)), dout(out), dgrad(in);
  cpu().zero_pad_forward(xs, pads.data(), x.data(), y.data());
  rn::cuda::zero_pad_forward<T>(stream, xs, pads.data(), dxi.get(), dout.get());
  compare_exact(named<T>("zero_pad_forward"), shape, bit_identical(fetch(dout), y));
  cpu().zero_pad_backward(xs, pads.data(), dy.data(), dx.data());
  rn::cuda::zero_pad_backward<T>(stream, xs, pads.data(), ddy.get(), dgrad.get());
  compare_exact(named<T>("zero_pad_backward"), shape, bit_identical(fetch(dgrad), dx));
}

template <typename T>
void check_shortcut(const Shape& xs, const Shape& ys, int64_t stride) {
  const std::string shape = shape_text({xs[0], xs[1], xs[2], xs[3]}) + "->" + shape_text({ys[0], ys[1], ys[2], ys[3]});
  const int64_t in = xs[0] * xs[1] * xs[2] * xs[3], out = ys[0] * ys[1] * ys[2] * ys[3];
  const Floats x = rounded<T>(random_floats(in)), dy = rounded<T>(random_floats(out));
  Floats y(out), dx(in);
  Device<T> dxi(narrow<T>(x)), ddy(narrow<T>(dy)), dout(out), dgrad(in);
  cpu().zero_pad_shortcut_forward(xs, ys, stride, stride, x.data(), y.data());
  rn::cuda::zero_pad_shortcut_forward<T>(stream, xs, ys, stride, stride, dxi.get(), dout.get());
  compare_exact(named<T>("zero_pad_shortcut_forward"), shape, bit_identical(fetch(dout), y));
  cpu().zero_pad_shortcut_backward(xs, ys, stride, stride, dy.data(), dx.data());
  rn::cuda::zero_pad_shortcut_backward<T>(stream, xs, ys, stride, stride, ddy.get(), dgrad.get());
  compare_exact(named<T>("zero_pad_shortcut_backward"), shape, bit_identical(fetch(dgrad), dx));
}

template <typename T>
void check_squeeze_excite(int64_t n, int64_t hw, int64_t c, int64_t hidden) {
  const std::string shape = shape_text({n, hw, c, hidden});
  const Floats x = rounded<T>(random_floats(n * hw * c)), dy = rounded<T>(random_floats(n * hw * c));
  const Floats w1 = random_floats(c * hidden), b1 = random_floats(hidden), w2 = random_floats(hidden * c),
               b2 = random_floats(c);
  Floats pooled(n * c), hidden_act(n * hidden), gate(n * c), y(n * hw * c), dx(n * hw * c);
  Floats dw1(c * hidden), db1(hidden), dw2(hidden * c), db2(c), scratch(3 * n * c + n * hidden);
  rn::SqueezeExciteArgs ha{
      n, hw, c, hidden, w1.data(), b1.data(), w2.data(), b2.data(), pooled.data(), hidden_act.data(), gate.data()};
  cpu().squeeze_excite_forward(ha, x.data(), y.data());
  cpu().squeeze_excite_backward(ha, x.data(), dy.data(), dx.data(), dw1.data(), db1.data(), dw2.data(), db2.data(),
                                scratch.data());

  Device<T> gx(narrow<T>(x)), gdy(narrow<T>(dy)), gy(n * hw * c), gdx(n * hw * c);
  Device<float> gw1(w1), gb1(b1), gw2(w2), gb2(b2), gpooled(n * c), ghidden(n * hidden), ggate(n * c), gdw1(c * hidden),
      gdb1(hidden), gdw2(hidden * c), gdb2(c), gscratch(scratch.size());
  rn::SqueezeExciteArgs da{
      n, hw, c, hidden, gw1.get(), gb1.get(), gw2.get(), gb2.get(), gpooled.get(), ghidden.get(), ggate.get()};
  rn::cuda::squeeze_excite_forward<T>(stream, da, gx.get(), gy.get());
  rn::cuda::squeeze_excite_backward<T>(stream, da, gx.get(), gdy.get(), gdx.get(), gdw1.get(), gdb1.get(), gdw2.get(),
                                       gdb2.get(), gscratch.get());
  const std::string forward = named<T>("squeeze_excite_forward"), backward = named<T>("squeeze_excite_backward");
  compare(forward + ".pooled", shape, gpooled.download(), pooled, hw);
  compare(forward + ".hidden", shape, ghidden.download(), hidden_act, hw * c);
  compare(forward + ".gate", shape, ggate.download(), gate, hw * c);
  compare(forward + ".y", shape, fetch(gy), y, hw * c, output_rel<T>);
  compare(backward + ".dx", shape, fetch(gdx), dx, hw * c, output_rel<T>);
  compare(backward + ".dw1", shape, gdw1.download(), dw1, n * hw * c);
  compare(backward + ".db1", shape, gdb1.download(), db1, n * hw * c);
  compare(backward + ".dw2", shape, gdw2.download(), dw2, n * hw);
  compare(backward + ".db2", shape, gdb2.download(), db2, n * hw);
}

// ---- loss, reductions, optimizers -------------------------------------------------------

// dloss is the loss scale in fp16 training (e.g. 1024): the gradient must take it before
// its one rounding to T.
template <typename T>
void check_loss(int64_t n, int64_t classes, float smoothing, bool ties, float dloss = 2.5f) {
  const std::string shape =
      shape_text({n, classes}) + " s=" + std::to_string(smoothing).substr(0, 4) + (ties ? "+ties" : "");
  const Floats logits = rounded<T>(ties ? tied_floats(n * classes) : random_floats(n * classes, -4.0f, 4.0f));
  std::vector<int32_t> labels(n);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(classes - 1));
  for (int32_t& l : labels) l = pick(rng);
  int64_t correct = 0, correct5 = 0;
  const double loss =
      cpu().softmax_cross_entropy(n, classes, logits.data(), labels.data(), smoothing, &correct, &correct5);
  Device<T> dlogits(narrow<T>(logits)), dgrad(n * classes);
  Device<float> dprobs(n * classes);
  Device<int32_t> dlabels(labels);
  Device<double> out(3);
  const std::string kernel = named<T>("softmax_cross_entropy");
  rn::cuda::softmax_cross_entropy<T>(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, out.get());
  const std::vector<double> got = out.download();
  compare(kernel + ".loss", shape, {static_cast<float>(got[0])}, {static_cast<float>(loss)}, classes);
  compare_exact(kernel + ".correct", shape, got[1] == double(correct));
  compare_exact(kernel + ".correct5", shape, got[2] == double(correct5));
  rn::cuda::softmax_cross_entropy<T>(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, out.get());
  compare_exact(named<T>("determinism.softmax_cross_entropy"), shape, bit_identical(out.download(), got));

  Floats grad(n * classes);
  cpu().softmax_cross_entropy_backward(n, classes, logits.data(), labels.data(), smoothing, dloss, grad.data());
  rn::cuda::softmax_cross_entropy_backward<T>(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, dloss,
                                              dgrad.get());
  const std::string scaled = dloss == 2.5f ? "" : " dloss=" + std::to_string(static_cast<int>(dloss));
  compare(named<T>("softmax_cross_entropy_backward"), shape + scaled, fetch(dgrad), grad, classes, output_rel<T>);
  cpu().softmax(n, classes, logits.data(), grad.data());
  rn::cuda::softmax<T>(stream, n, classes, dlogits.get(), dprobs.get());
  compare(named<T>("softmax"), shape, dprobs.download(), grad, classes);
}

// x's values as T, then each of NaN, inf and -inf planted in the middle.
template <typename T>
void check_all_finite(int64_t count, const Floats& x) {
  const std::string shape = shape_text({count});
  Device<T> dx(narrow<T>(x));
  Device<int> flag(1);
  rn::cuda::all_finite<T>(stream, count, dx.get(), flag.get());
  compare_exact(named<T>("all_finite") + ".finite", shape, flag.download()[0] == 1);
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    Floats y = x;
    y[static_cast<size_t>(count - 1) / 2] = bad;
    Device<T> dy(narrow<T>(y));
    rn::cuda::all_finite<T>(stream, count, dy.get(), flag.get());
    compare_exact(named<T>("all_finite") + (std::isnan(bad) ? ".nan"
                                            : bad > 0       ? ".inf"
                                                            : ".-inf"),
                  shape, flag.download()[0] == 0);
  }
}

void check_reductions(int64_t count) {
  const std::string shape = shape_text({count});
  Floats x = random_floats(count);
  const double expected = cpu().sum_of_squares(count, x.data());
  Device<float> dx(x);
  Device<double> out(1);
  rn::cuda::sum_of_squares(stream, count, dx.get(), out.get());
  const std::vector<double> got = out.download();
  compare("sum_of_squares", shape, {static_cast<float>(got[0])}, {static_cast<float>(expected)}, count);
  rn::cuda::sum_of_squares(stream, count, dx.get(), out.get());  // also proves the arrival counter resets
  compare_exact("determinism.sum_of_squares", shape, bit_identical(out.download(), got));
  check_all_finite<float>(count, x);
}

// Tensors packed with gaps between them (the padding must stay untouched).
struct Packing {
  std::vector<rn::cuda::ParamSlice> table;
  int64_t total = 0;
};

Packing packing(const std::vector<int64_t>& sizes) {
  Packing p;
  std::uniform_real_distribution<float> lr(0.01f, 0.2f), wd(0.0f, 0.05f);
  for (int64_t numel : sizes) {
    p.table.push_back({p.total, numel, lr(rng), wd(rng)});
    p.total += (numel + 3) / 4 * 4 + 4;  // aligned, plus a gap
  }
  return p;
}

void check_optimizers(const std::vector<int64_t>& sizes) {
  const Packing pk = packing(sizes);
  const std::string shape = std::to_string(sizes.size()) + "tensors/" + std::to_string(pk.total) + "floats";
  const Floats params = random_floats(pk.total), grads = random_floats(pk.total), state = random_floats(pk.total),
               state2 = random_floats(pk.total, 0.0f, 0.1f);
  Device<rn::cuda::ParamSlice> table(pk.table);

  struct SgdCase {
    float momentum;
    bool nesterov, decoupled, first_step;
  };
  for (const SgdCase& sc :
       {SgdCase{0.0f, false, false, false}, SgdCase{0.9f, false, false, true}, SgdCase{0.9f, false, false, false},
        SgdCase{0.9f, true, false, false}, SgdCase{0.9f, true, true, false}}) {
    rn::SgdArgs a;
    a.momentum = sc.momentum, a.nesterov = sc.nesterov, a.decoupled = sc.decoupled, a.first_step = sc.first_step;
    Floats p = params, m = state;
    for (const auto& s : pk.table) {
      rn::SgdArgs t = a;
      t.lr = s.lr, t.weight_decay = s.weight_decay;
      cpu().sgd_update(s.numel, t, p.data() + s.offset, grads.data() + s.offset, m.data() + s.offset);
    }
    Device<float> dp(params), dg(grads), dm(state);
    rn::cuda::sgd_update_all(stream, table.get(), static_cast<int>(pk.table.size()), pk.total, a, dp.get(), dg.get(),
                             sc.momentum != 0.0f ? dm.get() : nullptr);
    const std::string tag = std::string(".m") + (sc.momentum != 0.0f ? "0.9" : "0") + (sc.nesterov ? ".nesterov" : "") +
                            (sc.decoupled ? ".decoupled" : "") + (sc.first_step ? ".first" : "");
    compare("sgd_update_all.params" + tag, shape, dp.download(), p, 1);
    compare("sgd_update_all.momentum" + tag, shape, dm.download(), m, 1);
  }
  for (int64_t step : {1, 10}) {
    rn::AdamArgs a;
    a.step = step;
    Floats p = params, m = state, v = state2;
    for (const auto& s : pk.table) {
      rn::AdamArgs t = a;
      t.lr = s.lr, t.weight_decay = s.weight_decay;
      cpu().adamw_update(s.numel, t, p.data() + s.offset, grads.data() + s.offset, m.data() + s.offset,
                         v.data() + s.offset);
    }
    Device<float> dp(params), dg(grads), dm(state), dv(state2);
    rn::cuda::adamw_update_all(stream, table.get(), static_cast<int>(pk.table.size()), pk.total, a, dp.get(), dg.get(),
                               dm.get(), dv.get());
    const std::string tag = ".step" + std::to_string(step);
    compare("adamw_update_all.params" + tag, shape, dp.download(), p, 1);
    compare("adamw_update_all.m" + tag, shape, dm.download(), m, 1);
    compare("adamw_update_all.v" + tag, shape, dv.download(), v, 1);
  }
}

}  // namespace

// The kernels templated on the activation type, for a 2-byte T: one or two shapes each,
// covering the vector and scalar paths and every kernel's T loads and stores.
template <typename T>
void check_reduced_precision() {
  check_batch_norm<T>(7, 5, false);
  check_batch_norm<T>(1000, 64, true);
  check_batch_norm<T>(3 * 17 * 17, 36, false);

  check_elementwise<T>(100003, 0);
  check_elementwise<T>(1027, 1);  // scalar path
  check_elementwise<T>(1027, 4);  // 8-byte aligned, not 16: still the vector path
  check_convert<T>(100003, 0);
  check_convert<T>(1027, 1);
  check_channel_bias<T>(4097, 64, true);
  check_channel_bias<T>(999, 37, false);
  check_layout<T>(3, 3, 64, 128);
  check_layout<T>(7, 7, 3, 64);

  check_pools<T>({3, 37, 29, 70}, 3, 2, rn::PaddingMode::Same, false);
  check_pools<T>({1, 9, 7, 5}, 3, 2, rn::PaddingMode::Same, true);
  check_pools<T>({1, 10, 9, 6}, 7, 1, rn::PaddingMode::Same, true);  // the gather path
  check_global_pool<T>(4, 49, 2048);

  check_dense<T>(65, 130, 67, true, true);
  check_dense<T>(3, 5, 7, true, true);
  check_padding<T>({2, 32, 32, 16}, {3, 3, 3, 3});
  check_shortcut<T>({2, 8, 8, 16}, {2, 4, 4, 32}, 2);
  check_squeeze_excite<T>(3, 49, 12, 3);
  check_squeeze_excite<T>(2, 196, 256, 16);

  check_loss<T>(300, 1000, 0.1f, false);
  check_loss<T>(300, 1000, 0.1f, false, 1024.0f);
  check_loss<T>(64, 10, 0.0f, true, 1024.0f);
  check_all_finite<T>(1000, random_floats(1000));
  check_all_finite<T>(3000017, random_floats(3000017));
}

int main() {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
    return 0;
  }
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");

  check_batch_norm<float>(1, 3, false);
  check_batch_norm<float>(7, 5, false);
  check_batch_norm<float>(1000, 64, true);
  check_batch_norm<float>(4099, 6, false);
  check_batch_norm<float>(3 * 17 * 17, 36, false);
  check_batch_norm<float>(20011, 130, true);
  check_batch_norm<float>(2 * 56 * 56, 256, true);

  for (int64_t count : {1, 3, 4, 1027, 100003}) check_elementwise<float>(count, 0);
  check_elementwise<float>(1027, 1);
  check_channel_bias<float>(1, 3, false);
  check_channel_bias<float>(4097, 64, true);
  check_channel_bias<float>(999, 37, false);
  check_layout<float>(1, 1, 3, 5);
  check_layout<float>(3, 3, 64, 128);
  check_layout<float>(7, 7, 3, 64);

  check_pools<float>({2, 112, 112, 64}, 3, 2, rn::PaddingMode::Same, false);
  check_pools<float>({1, 9, 7, 5}, 3, 2, rn::PaddingMode::Same, true);
  check_pools<float>({3, 8, 8, 3}, 2, 2, rn::PaddingMode::Valid, true);
  check_pools<float>({1, 5, 6, 4}, 3, 1, rn::PaddingMode::Same, false);
  check_pools<float>({3, 37, 29, 70}, 3, 2, rn::PaddingMode::Same, false);  // partial tiles, partial channel tile
  check_pools<float>({1, 10, 9, 6}, 7, 1, rn::PaddingMode::Same, true);     // window table too big: the gather path
  check_pools<float>({2, 15, 13, 9}, 4, 3, rn::PaddingMode::Same, false);   // tiled, window size not unrolled
  check_global_pool<float>(1, 1, 3);
  check_global_pool<float>(4, 49, 2048);
  check_global_pool<float>(3, 64, 10);

  check_dense<float>(1, 1, 1, true, true);
  check_dense<float>(3, 5, 7, true, true);
  check_dense<float>(65, 130, 67, false, true);
  check_dense<float>(64, 512, 1000, true, false);
  check_padding<float>({1, 5, 7, 3}, {1, 2, 0, 3});
  check_padding<float>({2, 32, 32, 16}, {3, 3, 3, 3});
  check_shortcut<float>({2, 8, 8, 16}, {2, 4, 4, 32}, 2);
  check_shortcut<float>({1, 7, 7, 3}, {1, 4, 4, 7}, 2);
  check_squeeze_excite<float>(1, 1, 5, 2);
  check_squeeze_excite<float>(3, 49, 12, 3);
  check_squeeze_excite<float>(2, 196, 256, 16);

  check_loss<float>(1, 10, 0.0f, false);
  check_loss<float>(7, 3, 0.1f, true);
  check_loss<float>(300, 1000, 0.1f, false);
  check_loss<float>(64, 10, 0.0f, true);
  check_reductions(1);
  check_reductions(1000);
  check_reductions(3000017);
  check_optimizers({1});
  check_optimizers({7, 64, 3, 9408, 1, 1000, 20000});
  // After every older float case, so their seeded inputs stay what they were.
  check_convert<float>(1027, 0);
  check_convert<float>(1027, 1);

  check_reduced_precision<__half>();
  check_reduced_precision<__nv_bfloat16>();

  check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
