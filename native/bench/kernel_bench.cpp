// Kernel benchmark, no Node involved: the machine's measured FP32 peak (an FMA loop) and
// memory bandwidth, then GEMM sizes and every pass of each distinct ResNet-18 / ResNet-50 /
// CIFAR convolution shape through the engine's kernels, as GFLOP/s and % of that peak.
//   npm run bench:kernels            (RESNET_NUM_THREADS=n to change the thread count)
// RESNET_BENCH_CLOCK=cpu times by CPU time instead of wall time (the pool's workers block, never
// spin, so CPU seconds ÷ threads is the time an otherwise idle machine would take): the figures
// to trust when other processes share the cores. RESNET_SIMD=avx2 keeps the AVX-512 GEMM off.
// Reports figures; asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "../core/geometry.hpp"
#include "../core/thread_pool.hpp"
#include "../cpu/batch_norm_kernels.hpp"
#include "../cpu/conv2d_kernels.hpp"
#include "../cpu/gemm.hpp"
#include "../cpu/gemm_avx512.hpp"
#include "../cpu/simd_dispatch.hpp"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

using Clock = std::chrono::steady_clock;
typedef float v8 __attribute__((vector_size(32)));

bool cpu_clock() {
  static const bool cpu = [] {
    const char* v = std::getenv("RESNET_BENCH_CLOCK");
    return v != nullptr && std::strcmp(v, "cpu") == 0;
  }();
  return cpu;
}

// Which work is timed: one thread (its own CPU time) or the whole pool (process CPU time ÷ threads).
enum class Work { OneThread, AllThreads };

double cpu_seconds(Work work) {
  timespec ts{};
  clock_gettime(work == Work::OneThread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts);
  const double s = double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  return work == Work::OneThread ? s : s / double(rn::num_threads());
}

double now_seconds(Work work) {
  return cpu_clock() ? cpu_seconds(work) : std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Seconds per call of fn, repeated until at least `min_seconds` have passed (on the chosen clock).
template <typename F>
double time_per_call(F&& fn, Work work = Work::AllThreads, double min_seconds = 0.5) {
  fn();
  int64_t calls = 0;
  const double start = now_seconds(work);
  double elapsed = 0.0;
  do {
    fn();
    ++calls;
    elapsed = now_seconds(work) - start;
  } while (elapsed < min_seconds);
  return elapsed / double(calls);
}

// 12 independent FMA chains of 8 lanes: enough to hide FMA latency on two ports.
RN_SIMD_CLONES float fma_loop(int64_t iterations, float seed) {
  v8 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = v8{} + seed * float(i + 1);
  const v8 a = v8{} + 0.999999f, b = v8{} + 1e-7f;
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * a + b;
  }
  float s = 0.0f;
  for (int i = 0; i < 12; ++i) {
    for (int l = 0; l < 8; ++l) s += acc[i][l];
  }
  return s;
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef float v16 __attribute__((vector_size(64)));
// The same with 16 lanes, for the AVX-512 peak.
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iterations, float seed) {
  v16 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = v16{} + seed * float(i + 1);
  const v16 a = v16{} + 0.999999f, b = v16{} + 1e-7f;
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * a + b;
  }
  float s = 0.0f;
  for (int i = 0; i < 12; ++i) {
    for (int l = 0; l < 16; ++l) s += acc[i][l];
  }
  return s;
}
#endif

// The FMA peak of the widest vectors the GEMM uses.
double measure_peak() {
  const bool wide = rn::cpu::gemm_avx512_enabled();
  const int lanes = wide ? 16 : 8;
  const int threads = rn::num_threads();
  const int64_t iterations = 2'000'000;
  std::vector<float> sink(static_cast<size_t>(threads));
  const double t = time_per_call([&] {
    rn::parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (wide) {
          sink[static_cast<size_t>(i)] = fma_loop_avx512(iterations, float(i));
          continue;
        }
#endif
        sink[static_cast<size_t>(i)] = fma_loop(iterations, float(i));
      }
    });
  });
  return double(threads) * double(iterations) * 12 * lanes * 2 / t / 1e9;
}

double measure_bandwidth() {
  const int64_t n = int64_t{1} << 25;  // 128 MiB per array
  std::vector<float> a(static_cast<size_t>(n), 1.0f), b(static_cast<size_t>(n), 2.0f);
  const double t = time_per_call([&] {
    rn::parallel_for(n, [&](int64_t s, int64_t e) { std::memcpy(&b[s], &a[s], size_t(e - s) * sizeof(float)); });
  });
  return 2.0 * double(n) * sizeof(float) / t / 1e9;  // read + write
}

struct ConvCase {
  const char* net;
  int64_t n, h, w, cin, cout, k, stride;
};

}  // namespace

int main() {
  using namespace rn;
  std::printf("resnet-native kernel bench: %d threads, simd %s, %s time\n", num_threads(), cpu::simd_level(),
              cpu_clock() ? "CPU" : "wall");
  const double peak = measure_peak();
  std::printf("measured FP32 peak (FMA loop, all threads): %.1f GFLOP/s\n", peak);
  std::printf("memory bandwidth (memcpy, read+write): %.1f GB/s\n\n", measure_bandwidth());

  std::printf("%-34s %10s %8s\n", "GEMM (one thread, C = A·B)", "GFLOP/s", "% peak/thr");
  for (int64_t s : {128, 256, 512, 1024}) {
    std::vector<float> a(size_t(s * s), 0.5f), bm(size_t(s * s), 0.25f), c(size_t(s * s));
    std::vector<float> packed(size_t(cpu::packed_b_floats(s, s)));
    cpu::pack_b(s, s, bm.data(), s, packed.data());
    const double t = time_per_call([&] { cpu::gemm_packed(s, s, s, a.data(), s, packed.data(), c.data(), s, false); },
                                   Work::OneThread);
    const double gf = 2.0 * double(s * s * s) / t / 1e9;
    std::printf("%-34s %10.1f %8.0f%%\n", (std::to_string(s) + "³").c_str(), gf, 100.0 * gf / (peak / num_threads()));
  }

  const ConvCase cases[] = {
      {"CIFAR stage 1 3×3 16→16", 32, 32, 32, 16, 16, 3, 1},
      {"CIFAR stage 2 3×3 32→32", 32, 16, 16, 32, 32, 3, 1},
      {"CIFAR stage 3 3×3 64→64", 32, 8, 8, 64, 64, 3, 1},
      {"ResNet stem 7×7/2 3→64", 8, 224, 224, 3, 64, 7, 2},
      {"ResNet-18 layer1 3×3 64→64", 8, 56, 56, 64, 64, 3, 1},
      {"ResNet-18 layer2 3×3/2 64→128", 8, 56, 56, 64, 128, 3, 2},
      {"ResNet-18 layer3 3×3 256→256", 8, 14, 14, 256, 256, 3, 1},
      {"ResNet-18 layer4 3×3 512→512", 8, 7, 7, 512, 512, 3, 1},
      {"ResNet-50 layer1 1×1 256→64", 8, 56, 56, 256, 64, 1, 1},
      {"ResNet-50 layer1 1×1 64→256", 8, 56, 56, 64, 256, 1, 1},
      {"ResNet-50 layer2 1×1/2 256→512", 8, 56, 56, 256, 512, 1, 2},
      {"ResNet-50 layer4 1×1 2048→512", 8, 7, 7, 2048, 512, 1, 1},
  };
  std::printf("\n%-34s %5s %22s %22s %22s %22s\n", "convolution (all threads)", "N", "forward GFLOP/s (%)",
              "grad-input GFLOP/s (%)", "grad-weight GFLOP/s (%)", "inference fwd GFLOP/s (%)");
  for (const ConvCase& cc : cases) {
    Window2dOptions o;
    o.stride_h = o.stride_w = cc.stride;
    o.padding.mode = PaddingMode::Explicit;
    const int64_t p = cc.k / 2;
    o.padding.pads = {p, p, p, p};
    const Conv2dGeometry g = conv2d_geometry({cc.n, cc.h, cc.w, cc.cin}, {cc.k, cc.k, cc.cin, cc.cout}, 1, o, cc.net);
    std::vector<float> x(size_t(cc.n * cc.h * cc.w * cc.cin), 0.5f), w(size_t(cc.k * cc.k * cc.cin * cc.cout), 0.01f);
    std::vector<float> y(size_t(g.n * g.out_h * g.out_w * cc.cout), 0.1f), dx(x.size()), dw(w.size());
    std::vector<float> scratch(size_t(cpu::conv2d_scratch_floats(g) + 64)), mean(size_t(cc.cout)), var(size_t(cc.cout));
    const double flops = 2.0 * double(g.n * g.out_h * g.out_w) * double(cc.cout) * double(cc.k * cc.k * cc.cin);
    const double tf = time_per_call([&] {
      cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y.data(), mean.data(), var.data(), scratch.data());
    });
    const double ti =
        time_per_call([&] { cpu::conv2d_backward_input(g, y.data(), w.data(), dx.data(), scratch.data()); });
    const double tw =
        time_per_call([&] { cpu::conv2d_backward_weight(g, x.data(), y.data(), dw.data(), nullptr, scratch.data()); });
    // The inference plans' forward: weights prepared once, bias, the residual add and ReLU fused,
    // no batch statistics.
    std::vector<float> prepared(size_t(cpu::conv2d_prepared_floats(g) + 16)), bias(size_t(cc.cout), 0.05f);
    std::vector<float> skip(y.size(), -0.1f), yi(y.size());
    cpu::conv2d_prepare_weights(g, w.data(), prepared.data(), scratch.data());
    cpu::ConvEpilogue epilogue;
    epilogue.skip = skip.data();
    epilogue.relu = true;
    const double tinf = time_per_call([&] {
      cpu::conv2d_forward(g, x.data(), w.data(), bias.data(), yi.data(), nullptr, nullptr, scratch.data(), epilogue,
                          prepared.data());
    });
    auto cell = [&](double t) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f (%.0f%%)", flops / t / 1e9, 100.0 * flops / t / 1e9 / peak);
      return std::string(buf);
    };
    std::printf("%-34s %5lld %22s %22s %22s %22s\n", cc.net, static_cast<long long>(cc.n), cell(tf).c_str(),
                cell(ti).c_str(), cell(tw).c_str(), cell(tinf).c_str());
  }

  std::printf("\n%-34s %14s %14s\n", "batch-norm [rows × c] (all threads)", "stats GB/s", "backward GB/s");
  for (auto [rows, c] :
       std::vector<std::pair<int64_t, int64_t>>{{32 * 32 * 32, 16}, {8 * 56 * 56, 64}, {8 * 14 * 14, 256}}) {
    std::vector<float> x(size_t(rows * c), 0.5f), y(x.size(), 0.2f), dy(x.size(), 0.1f), dx(x.size());
    std::vector<float> gamma(static_cast<size_t>(c), 1.0f), beta(static_cast<size_t>(c), 0.0f),
        mean(static_cast<size_t>(c)), var(static_cast<size_t>(c), 1.0f);
    std::vector<float> dg(static_cast<size_t>(c)), db(static_cast<size_t>(c)),
        scratch(size_t(cpu::channel_scratch_floats(c) + 64));
    const double ts =
        time_per_call([&] { cpu::batch_norm_statistics(rows, c, x.data(), mean.data(), var.data(), scratch.data()); });
    BatchNormArgs a;
    a.rows = rows;
    a.channels = c;
    a.gamma = gamma.data();
    a.beta = beta.data();
    a.mean = mean.data();
    a.var = var.data();
    const double tb = time_per_call([&] {
      cpu::batch_norm_backward(a, true, x.data(), y.data(), true, dy.data(), dx.data(), nullptr, dg.data(), db.data(),
                               scratch.data());
    });
    const double bytes = double(rows * c) * sizeof(float);
    std::printf("%-34s %14.1f %14.1f\n", (std::to_string(rows) + " × " + std::to_string(c)).c_str(), bytes / ts / 1e9,
                4 * bytes / tb / 1e9 /* reads x, y, dy twice-ish; writes dx: counted as 4 streams */);
  }
  return 0;
}
