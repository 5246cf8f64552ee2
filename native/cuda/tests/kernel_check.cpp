// Cross-checks every CUDA kernel of native/cuda/kernels.hpp against the CPU backend (or,
// for the few kernels the CPU backend has no method for, a plain host loop), on seeded
// random inputs of awkward sizes: n = 1, channels not divisible by 4, rows not divisible
// by any tile, misaligned buffers. One line per case:
//   ok|FAIL <kernel> <shape> worst=<ratio>
// where ratio = max |got − expected| / (1e-4·√L + 1e-4·|expected|), L the length of the
// reduction behind each output; a case passes when ratio ≤ 1. Kernels whose results come
// from reductions are also run twice and must be bit-identical. Exits non-zero on any
// failure, and 0 with "SKIP: no CUDA device (<reason>)" where there is no GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
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
// offsets the pointer by whole floats to exercise the unaligned (scalar) paths.
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

std::string shape_text(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (int64_t d : dims) s += (s.size() > 1 ? "," : "") + std::to_string(d);
  return s + "]";
}

double worst_ratio(const Floats& got, const Floats& expected, int64_t reduction_length) {
  const double abs_tol = 1e-4 * std::sqrt(double(std::max<int64_t>(1, reduction_length)));
  double worst = 0.0;
  if (got.size() != expected.size()) return INFINITY;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = expected[i], a = got[i];
    if (std::isnan(e) || std::isnan(a)) {
      if (std::isnan(e) != std::isnan(a)) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::fabs(a - e) / (abs_tol + 1e-4 * std::fabs(e)));
  }
  return worst;
}

void report(const std::string& kernel, const std::string& shape, double worst) {
  const bool ok = worst <= 1.0;
  if (!ok) ++failures;
  std::printf("%s %s %s worst=%.3g\n", ok ? "ok" : "FAIL", kernel.c_str(), shape.c_str(), worst);
}

void compare(const std::string& kernel, const std::string& shape, const Floats& got, const Floats& expected,
             int64_t reduction_length) {
  report(kernel, shape, worst_ratio(got, expected, reduction_length));
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

void check_batch_norm(int64_t rows, int64_t c, bool determinism) {
  const std::string shape = shape_text({rows, c});
  const Floats x = random_floats(rows * c, -1.0f, 2.0f);
  Floats mean(c), var(c), cpu_scratch(static_cast<size_t>(cpu().channel_scratch_floats(c)));
  cpu().batch_norm_statistics(rows, c, x.data(), mean.data(), var.data(), cpu_scratch.data());

  Device<float> dx_in(x), dmean(c), dvar(c), scratch(static_cast<size_t>(rn::cuda::channel_scratch_floats(c)));
  rn::cuda::batch_norm_statistics(stream, rows, c, dx_in.get(), dmean.get(), dvar.get(), scratch.get());
  const Floats gmean = dmean.download(), gvar = dvar.download();
  compare("batch_norm_statistics.mean", shape, gmean, mean, rows);
  compare("batch_norm_statistics.var", shape, gvar, var, rows);
  if (determinism) {
    rn::cuda::batch_norm_statistics(stream, rows, c, dx_in.get(), dmean.get(), dvar.get(), scratch.get());
    compare_exact("determinism.batch_norm_statistics", shape,
                  bit_identical(dmean.download(), gmean) && bit_identical(dvar.download(), gvar));
  }

  // Running averages from the CPU's statistics, so both sides start equal.
  const Floats rm0 = random_floats(c), rv0 = random_floats(c, 0.5f, 2.0f);
  Floats rm = rm0, rv = rv0;
  cpu().batch_norm_update_running(rows, c, mean.data(), var.data(), 0.1f, rm.data(), rv.data());
  Device<float> drm(rm0), drv(rv0), cmean(mean), cvar(var);
  rn::cuda::batch_norm_update_running(stream, rows, c, cmean.get(), cvar.get(), 0.1f, drm.get(), drv.get());
  compare("batch_norm_update_running.mean", shape, drm.download(), rm, 1);
  compare("batch_norm_update_running.var", shape, drv.download(), rv, 1);

  const Floats gamma = random_floats(c, 0.5f, 1.5f), beta = random_floats(c);
  Device<float> dgamma_in(gamma), dbeta_in(beta);
  rn::BatchNormArgs host_args{rows, c, 1e-5f, gamma.data(), beta.data(), mean.data(), var.data()};
  rn::BatchNormArgs dev_args{rows, c, 1e-5f, dgamma_in.get(), dbeta_in.get(), cmean.get(), cvar.get()};
  const Floats skip = random_floats(rows * c);
  Device<float> dskip_in(skip);
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_skip = variant & 1, relu = variant & 2;
    const std::string tag = std::string(with_skip ? ".skip" : "") + (relu ? ".relu" : "");
    Floats y(x.size());
    cpu().batch_norm_forward(host_args, x.data(), with_skip ? skip.data() : nullptr, relu, y.data(),
                             cpu_scratch.data());
    Device<float> dy_out(x.size());
    rn::cuda::batch_norm_forward(stream, dev_args, dx_in.get(), with_skip ? dskip_in.get() : nullptr, relu,
                                 dy_out.get());
    compare("batch_norm_forward" + tag, shape, dy_out.download(), y, 1);

    // Backward from the CPU's y (the ReLU mask then agrees exactly), both modes.
    const Floats dy = random_floats(rows * c);
    Device<float> dy_in(dy), dy_saved(y);
    for (bool training : {true, false}) {
      const std::string mode = training ? ".train" : ".infer";
      Floats dx(x.size()), dsk(x.size()), dg(c), db(c);
      cpu().batch_norm_backward(host_args, training, x.data(), y.data(), relu, dy.data(), dx.data(),
                                with_skip ? dsk.data() : nullptr, dg.data(), db.data(), cpu_scratch.data());
      Device<float> gdx(x.size()), gdsk(x.size()), gdg(c), gdb(c);
      rn::cuda::batch_norm_backward(stream, dev_args, training, dx_in.get(), dy_saved.get(), relu, dy_in.get(),
                                    gdx.get(), with_skip ? gdsk.get() : nullptr, gdg.get(), gdb.get(), scratch.get());
      const Floats got_dx = gdx.download(), got_dg = gdg.download();
      compare("batch_norm_backward.dx" + tag + mode, shape, got_dx, dx, rows);
      if (with_skip) compare("batch_norm_backward.dskip" + tag + mode, shape, gdsk.download(), dsk, 1);
      compare("batch_norm_backward.dgamma" + tag + mode, shape, got_dg, dg, rows);
      compare("batch_norm_backward.dbeta" + tag + mode, shape, gdb.download(), db, rows);
      if (determinism && variant == 3 && training) {
        rn::cuda::batch_norm_backward(stream, dev_args, training, dx_in.get(), dy_saved.get(), relu, dy_in.get(),
                                      gdx.get(), gdsk.get(), gdg.get(), gdb.get(), scratch.get());
        compare_exact("determinism.batch_norm_backward", shape,
                      bit_identical(gdx.download(), got_dx) && bit_identical(gdg.download(), got_dg));
      }
    }
  }
}

// ---- element-wise, bias, layout ----------------------------------------------------------

void check_elementwise(int64_t count, size_t shift) {
  const std::string shape = shape_text({count}) + (shift ? "+unaligned" : "");
  const Floats a = random_floats(count), b = random_floats(count);
  Device<float> da(a, shift), db(b, shift), dout(count, shift);
  Floats out(a.size());

  cpu().relu_forward(count, a.data(), out.data());
  rn::cuda::relu_forward(stream, count, da.get(), dout.get());
  compare("relu_forward", shape, dout.download(), out, 1);

  cpu().relu_backward_from_output(count, a.data(), b.data(), out.data());
  rn::cuda::relu_backward_from_output(stream, count, da.get(), db.get(), dout.get());
  compare("relu_backward_from_output", shape, dout.download(), out, 1);

  for (bool relu : {false, true}) {
    cpu().add_forward(count, a.data(), b.data(), relu, out.data());
    rn::cuda::add_forward(stream, count, da.get(), db.get(), relu, dout.get());
    compare(relu ? "add_forward.relu" : "add_forward", shape, dout.download(), out, 1);
  }

  out = b;
  cpu().accumulate(count, a.data(), out.data());
  Device<float> acc(b, shift);
  rn::cuda::accumulate(stream, count, da.get(), acc.get());
  compare("accumulate", shape, acc.download(), out, 1);

  out = a;
  cpu().scale(count, -0.37f, out.data());
  rn::cuda::scale(stream, count, -0.37f, da.get());
  compare("scale", shape, da.download(), out, 1);
}

void check_channel_bias(int64_t rows, int64_t c, bool determinism) {
  const std::string shape = shape_text({rows, c});
  const Floats y = random_floats(rows * c), bias = random_floats(c);
  Floats expected = y, sums(c, 0.0f);
  std::vector<double> exact(c, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      expected[r * c + ch] += bias[ch];
      exact[ch] += y[r * c + ch];
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) sums[ch] = static_cast<float>(exact[ch]);
  Device<float> dy(y), dbias(bias), dsums(c), scratch(static_cast<size_t>(rn::cuda::channel_scratch_floats(c)));
  rn::cuda::channel_sums(stream, rows, c, dy.get(), dsums.get(), scratch.get());
  const Floats got = dsums.download();
  compare("channel_sums", shape, got, sums, rows);
  if (determinism) {
    rn::cuda::channel_sums(stream, rows, c, dy.get(), dsums.get(), scratch.get());
    compare_exact("determinism.channel_sums", shape, bit_identical(dsums.download(), got));
  }
  rn::cuda::add_channel_bias(stream, rows, c, dbias.get(), dy.get());
  compare("add_channel_bias", shape, dy.download(), expected, 1);
}

void check_layout(int64_t kh, int64_t kw, int64_t ci, int64_t co) {
  const std::string shape = shape_text({kh, kw, ci, co});
  const Floats hwio = random_floats(kh * kw * ci * co);
  Floats ohwi(hwio.size());
  for (int64_t k = 0; k < kh * kw * ci; ++k) {
    for (int64_t o = 0; o < co; ++o) ohwi[o * kh * kw * ci + k] = hwio[k * co + o];
  }
  Device<float> src(hwio), dst(hwio.size()), back(hwio.size());
  rn::cuda::hwio_to_ohwi(stream, kh, kw, ci, co, src.get(), dst.get());
  compare_exact("hwio_to_ohwi", shape, bit_identical(dst.download(), ohwi));
  rn::cuda::ohwi_to_hwio(stream, kh, kw, ci, co, dst.get(), back.get());
  compare_exact("ohwi_to_hwio", shape, bit_identical(back.download(), hwio));
}

// ---- pools -------------------------------------------------------------------------------

void check_pools(const Shape& xs, int64_t k, int64_t stride, rn::PaddingMode mode, bool ties) {
  rn::Window2dOptions opts;
  opts.stride_h = opts.stride_w = stride;
  opts.padding.mode = mode;
  const rn::Pool2dGeometry g = rn::pool2d_geometry(xs, k, k, opts, "kernel_check");
  const std::string shape = shape_text({xs[0], xs[1], xs[2], xs[3]}) + " k" + std::to_string(k) + "s" +
                            std::to_string(stride) + (mode == rn::PaddingMode::Same ? "same" : "valid") +
                            (ties ? "+ties" : "");
  const int64_t in = g.n * g.h * g.w * g.c, out = g.n * g.out_h * g.out_w * g.c;
  const Floats x = ties ? tied_floats(in) : random_floats(in), dy = random_floats(out);
  Device<float> dx_in(x), ddy(dy), dout(out), dgrad(in);
  Floats y(out), dx(in);

  cpu().max_pool_forward(g, x.data(), y.data());
  rn::cuda::max_pool_forward(stream, g, dx_in.get(), dout.get());
  compare("max_pool_forward", shape, dout.download(), y, 1);
  cpu().max_pool_backward(g, x.data(), dy.data(), dx.data());
  rn::cuda::max_pool_backward(stream, g, dx_in.get(), ddy.get(), dgrad.get());
  const Floats got = dgrad.download();
  compare("max_pool_backward", shape, got, dx, k * k);
  rn::cuda::max_pool_backward(stream, g, dx_in.get(), ddy.get(), dgrad.get());
  compare_exact("determinism.max_pool_backward", shape, bit_identical(dgrad.download(), got));

  cpu().avg_pool_forward(g, x.data(), y.data());
  rn::cuda::avg_pool_forward(stream, g, dx_in.get(), dout.get());
  compare("avg_pool_forward", shape, dout.download(), y, k * k);
  cpu().avg_pool_backward(g, dy.data(), dx.data());
  rn::cuda::avg_pool_backward(stream, g, ddy.get(), dgrad.get());
  compare("avg_pool_backward", shape, dgrad.download(), dx, k * k);
}

void check_global_pool(int64_t n, int64_t hw, int64_t c) {
  const std::string shape = shape_text({n, hw, c});
  const Floats x = random_floats(n * hw * c), dy = random_floats(n * c);
  Floats y(n * c), dx(n * hw * c);
  Device<float> dx_in(x), ddy(dy), dout(n * c), dgrad(n * hw * c);
  cpu().global_avg_pool_forward(n, hw, c, x.data(), y.data());
  rn::cuda::global_avg_pool_forward(stream, n, hw, c, dx_in.get(), dout.get());
  compare("global_avg_pool_forward", shape, dout.download(), y, hw);
  cpu().global_avg_pool_backward(n, hw, c, dy.data(), dx.data());
  rn::cuda::global_avg_pool_backward(stream, n, hw, c, ddy.get(), dgrad.get());
  compare("global_avg_pool_backward", shape, dgrad.download(), dx, 1);
}

// ---- dense, padding, squeeze-excite ------------------------------------------------------

void check_dense(int64_t n, int64_t k, int64_t m, bool with_bias, bool with_dx) {
  const std::string shape = shape_text({n, k, m}) + (with_bias ? "" : "+nobias") + (with_dx ? "" : "+nodx");
  const Floats x = random_floats(n * k), w = random_floats(k * m), b = random_floats(m), dy = random_floats(n * m);
  Device<float> dxi(x), dw_in(w), db_in(b), ddy(dy), dout(n * m), gdx(n * k), gdw(k * m), gdb(m);
  Floats y(n * m), dx(n * k), dw(k * m), db(m);
  cpu().dense_forward(n, k, m, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
  rn::cuda::dense_forward(stream, n, k, m, dxi.get(), dw_in.get(), with_bias ? db_in.get() : nullptr, dout.get());
  compare("dense_forward", shape, dout.download(), y, k);
  cpu().dense_backward(n, k, m, x.data(), w.data(), dy.data(), with_dx ? dx.data() : nullptr, dw.data(),
                       with_bias ? db.data() : nullptr);
  rn::cuda::dense_backward(stream, n, k, m, dxi.get(), dw_in.get(), ddy.get(), with_dx ? gdx.get() : nullptr,
                           gdw.get(), with_bias ? gdb.get() : nullptr);
  if (with_dx) compare("dense_backward.dx", shape, gdx.download(), dx, m);
  compare("dense_backward.dw", shape, gdw.download(), dw, n);
  if (with_bias) compare("dense_backward.db", shape, gdb.download(), db, n);
}

void check_padding(const Shape& xs, std::vector<int64_t> pads) {
  const std::string shape = shape_text({xs[0], xs[1], xs[2], xs[3]}) + " pads" +
                            shape_text({pads[0], pads[1], pads[2], pads[3]});
  const int64_t in = xs[0] * xs[1] * xs[2] * xs[3];
  const int64_t out = xs[0] * (xs[1] + pads[0] + pads[1]) * (xs[2] + pads[2] + pads[3]) * xs[3];
  const Floats x = random_floats(in), dy = random_floats(out);
  Floats y(out), dx(in);
  Device<float> dxi(x), ddy(dy), dout(out), dgrad(in);
  cpu().zero_pad_forward(xs, pads.data(), x.data(), y.data());
  rn::cuda::zero_pad_forward(stream, xs, pads.data(), dxi.get(), dout.get());
  compare_exact("zero_pad_forward", shape, bit_identical(dout.download(), y));
  cpu().zero_pad_backward(xs, pads.data(), dy.data(), dx.data());
  rn::cuda::zero_pad_backward(stream, xs, pads.data(), ddy.get(), dgrad.get());
  compare_exact("zero_pad_backward", shape, bit_identical(dgrad.download(), dx));
}

void check_shortcut(const Shape& xs, const Shape& ys, int64_t stride) {
  const std::string shape = shape_text({xs[0], xs[1], xs[2], xs[3]}) + "->" + shape_text({ys[0], ys[1], ys[2], ys[3]});
  const int64_t in = xs[0] * xs[1] * xs[2] * xs[3], out = ys[0] * ys[1] * ys[2] * ys[3];
  const Floats x = random_floats(in), dy = random_floats(out);
  Floats y(out), dx(in);
  Device<float> dxi(x), ddy(dy), dout(out), dgrad(in);
  cpu().zero_pad_shortcut_forward(xs, ys, stride, stride, x.data(), y.data());
  rn::cuda::zero_pad_shortcut_forward(stream, xs, ys, stride, stride, dxi.get(), dout.get());
  compare_exact("zero_pad_shortcut_forward", shape, bit_identical(dout.download(), y));
  cpu().zero_pad_shortcut_backward(xs, ys, stride, stride, dy.data(), dx.data());
  rn::cuda::zero_pad_shortcut_backward(stream, xs, ys, stride, stride, ddy.get(), dgrad.get());
  compare_exact("zero_pad_shortcut_backward", shape, bit_identical(dgrad.download(), dx));
}

void check_squeeze_excite(int64_t n, int64_t hw, int64_t c, int64_t hidden) {
  const std::string shape = shape_text({n, hw, c, hidden});
  const Floats x = random_floats(n * hw * c), dy = random_floats(n * hw * c);
  const Floats w1 = random_floats(c * hidden), b1 = random_floats(hidden), w2 = random_floats(hidden * c),
               b2 = random_floats(c);
  Floats pooled(n * c), hidden_act(n * hidden), gate(n * c), y(n * hw * c), dx(n * hw * c);
  Floats dw1(c * hidden), db1(hidden), dw2(hidden * c), db2(c), scratch(3 * n * c + n * hidden);
  rn::SqueezeExciteArgs ha{n, hw, c, hidden, w1.data(), b1.data(), w2.data(), b2.data(),
                           pooled.data(), hidden_act.data(), gate.data()};
  cpu().squeeze_excite_forward(ha, x.data(), y.data());
  cpu().squeeze_excite_backward(ha, x.data(), dy.data(), dx.data(), dw1.data(), db1.data(), dw2.data(), db2.data(),
                                scratch.data());

  Device<float> gx(x), gdy(dy), gw1(w1), gb1(b1), gw2(w2), gb2(b2), gpooled(n * c), ghidden(n * hidden),
      ggate(n * c), gy(n * hw * c), gdx(n * hw * c), gdw1(c * hidden), gdb1(hidden), gdw2(hidden * c), gdb2(c),
      gscratch(scratch.size());
  rn::SqueezeExciteArgs da{n, hw, c, hidden, gw1.get(), gb1.get(), gw2.get(), gb2.get(),
                           gpooled.get(), ghidden.get(), ggate.get()};
  rn::cuda::squeeze_excite_forward(stream, da, gx.get(), gy.get());
  rn::cuda::squeeze_excite_backward(stream, da, gx.get(), gdy.get(), gdx.get(), gdw1.get(), gdb1.get(), gdw2.get(),
                                    gdb2.get(), gscratch.get());
  compare("squeeze_excite_forward.pooled", shape, gpooled.download(), pooled, hw);
  compare("squeeze_excite_forward.hidden", shape, ghidden.download(), hidden_act, hw * c);
  compare("squeeze_excite_forward.gate", shape, ggate.download(), gate, hw * c);
  compare("squeeze_excite_forward.y", shape, gy.download(), y, hw * c);
  compare("squeeze_excite_backward.dx", shape, gdx.download(), dx, hw * c);
  compare("squeeze_excite_backward.dw1", shape, gdw1.download(), dw1, n * hw * c);
  compare("squeeze_excite_backward.db1", shape, gdb1.download(), db1, n * hw * c);
  compare("squeeze_excite_backward.dw2", shape, gdw2.download(), dw2, n * hw);
  compare("squeeze_excite_backward.db2", shape, gdb2.download(), db2, n * hw);
}

// ---- loss, reductions, optimizers -------------------------------------------------------

void check_loss(int64_t n, int64_t classes, float smoothing, bool ties) {
  const std::string shape = shape_text({n, classes}) + " s=" + std::to_string(smoothing).substr(0, 4) +
                            (ties ? "+ties" : "");
  const Floats logits = ties ? tied_floats(n * classes) : random_floats(n * classes, -4.0f, 4.0f);
  std::vector<int32_t> labels(n);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(classes - 1));
  for (int32_t& l : labels) l = pick(rng);
  int64_t correct = 0, correct5 = 0;
  const double loss = cpu().softmax_cross_entropy(n, classes, logits.data(), labels.data(), smoothing, &correct,
                                                  &correct5);
  Device<float> dlogits(logits), dgrad(n * classes);
  Device<int32_t> dlabels(labels);
  Device<double> out(3);
  rn::cuda::softmax_cross_entropy(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, out.get());
  const std::vector<double> got = out.download();
  compare("softmax_cross_entropy.loss", shape, {static_cast<float>(got[0])}, {static_cast<float>(loss)}, classes);
  compare_exact("softmax_cross_entropy.correct", shape, got[1] == double(correct));
  compare_exact("softmax_cross_entropy.correct5", shape, got[2] == double(correct5));
  rn::cuda::softmax_cross_entropy(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, out.get());
  compare_exact("determinism.softmax_cross_entropy", shape, bit_identical(out.download(), got));

  Floats grad(n * classes);
  cpu().softmax_cross_entropy_backward(n, classes, logits.data(), labels.data(), smoothing, 2.5f, grad.data());
  rn::cuda::softmax_cross_entropy_backward(stream, n, classes, dlogits.get(), dlabels.get(), smoothing, 2.5f,
                                           dgrad.get());
  compare("softmax_cross_entropy_backward", shape, dgrad.download(), grad, classes);
  cpu().softmax(n, classes, logits.data(), grad.data());
  rn::cuda::softmax(stream, n, classes, dlogits.get(), dgrad.get());
  compare("softmax", shape, dgrad.download(), grad, classes);
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

  Device<int> flag(1);
  rn::cuda::all_finite(stream, count, dx.get(), flag.get());
  compare_exact("all_finite.finite", shape, flag.download()[0] == 1);
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    Floats y = x;
    y[static_cast<size_t>(count - 1) / 2] = bad;
    Device<float> dy(y);
    rn::cuda::all_finite(stream, count, dy.get(), flag.get());
    compare_exact(std::string("all_finite.") + (std::isnan(bad) ? "nan" : bad > 0 ? "inf" : "-inf"), shape,
                  flag.download()[0] == 0);
  }
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
  for (const SgdCase& sc : {SgdCase{0.0f, false, false, false}, SgdCase{0.9f, false, false, true},
                            SgdCase{0.9f, false, false, false}, SgdCase{0.9f, true, false, false},
                            SgdCase{0.9f, true, true, false}}) {
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

  check_batch_norm(1, 3, false);
  check_batch_norm(7, 5, false);
  check_batch_norm(1000, 64, true);
  check_batch_norm(4099, 6, false);
  check_batch_norm(3 * 17 * 17, 36, false);
  check_batch_norm(20011, 130, true);
  check_batch_norm(2 * 56 * 56, 256, true);

  for (int64_t count : {1, 3, 4, 1027, 100003}) check_elementwise(count, 0);
  check_elementwise(1027, 1);
  check_channel_bias(1, 3, false);
  check_channel_bias(4097, 64, true);
  check_channel_bias(999, 37, false);
  check_layout(1, 1, 3, 5);
  check_layout(3, 3, 64, 128);
  check_layout(7, 7, 3, 64);

  check_pools({2, 112, 112, 64}, 3, 2, rn::PaddingMode::Same, false);
  check_pools({1, 9, 7, 5}, 3, 2, rn::PaddingMode::Same, true);
  check_pools({3, 8, 8, 3}, 2, 2, rn::PaddingMode::Valid, true);
  check_pools({1, 5, 6, 4}, 3, 1, rn::PaddingMode::Same, false);
  check_pools({3, 37, 29, 70}, 3, 2, rn::PaddingMode::Same, false);  // partial tiles, partial channel tile
  check_pools({1, 10, 9, 6}, 7, 1, rn::PaddingMode::Same, true);     // window table too big: the gather path
  check_pools({2, 15, 13, 9}, 4, 3, rn::PaddingMode::Same, false);   // tiled, window size not unrolled
  check_global_pool(1, 1, 3);
  check_global_pool(4, 49, 2048);
  check_global_pool(3, 64, 10);

  check_dense(1, 1, 1, true, true);
  check_dense(3, 5, 7, true, true);
  check_dense(65, 130, 67, false, true);
  check_dense(64, 512, 1000, true, false);
  check_padding({1, 5, 7, 3}, {1, 2, 0, 3});
  check_padding({2, 32, 32, 16}, {3, 3, 3, 3});
  check_shortcut({2, 8, 8, 16}, {2, 4, 4, 32}, 2);
  check_shortcut({1, 7, 7, 3}, {1, 4, 4, 7}, 2);
  check_squeeze_excite(1, 1, 5, 2);
  check_squeeze_excite(3, 49, 12, 3);
  check_squeeze_excite(2, 196, 256, 16);

  check_loss(1, 10, 0.0f, false);
  check_loss(7, 3, 0.1f, true);
  check_loss(300, 1000, 0.1f, false);
  check_loss(64, 10, 0.0f, true);
  check_reductions(1);
  check_reductions(1000);
  check_reductions(3000017);
  check_optimizers({1});
  check_optimizers({7, 64, 3, 9408, 1, 1000, 20000});

  check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
