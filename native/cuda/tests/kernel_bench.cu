// Times the memory-bound CUDA kernels on ResNet-50 (batch 256) shapes and prints each
// as microseconds and effective bandwidth (bytes the kernel must move / time). It reports,
// never asserts. Beside it, torch_kernel_bench.py times PyTorch's equivalents on the same
// GPU. Build (no CMake target yet), from the repository root:
//   nvcc -std=c++17 -O3 -arch=sm_90 -I native native/cuda/tests/kernel_bench.cu native/cuda/kernels/*.cu
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../kernels.hpp"

namespace {

cudaStream_t stream;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::printf("cuda error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// Zero-filled device floats (the kernels' speed does not depend on the values).
float* zeros(long count) {
  float* p = nullptr;
  check(cudaMalloc(&p, count * sizeof(float)), "cudaMalloc");
  check(cudaMemset(p, 0, count * sizeof(float)), "cudaMemset");
  return p;
}

// Mean microseconds of one call over 20 timed calls after 3 warm-up calls.
template <typename F>
float time_us(F&& call) {
  cudaEvent_t begin, end;
  cudaEventCreate(&begin);
  cudaEventCreate(&end);
  for (int i = 0; i < 3; ++i) call();
  constexpr int kReps = 20;
  cudaEventRecord(begin, stream);
  for (int i = 0; i < kReps; ++i) call();
  cudaEventRecord(end, stream);
  check(cudaEventSynchronize(end), "timed calls");
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, begin, end);
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return ms * 1000.0f / kReps;
}

double gb_per_s(double bytes, float us) { return bytes / (us * 1e3); }

void bench_batch_norm(const char* name, long rows, long c) {
  const long n = rows * c;
  const double tensor = 4.0 * static_cast<double>(n);
  float *x = zeros(n), *y = zeros(n), *dy = zeros(n), *dx = zeros(n), *skip = zeros(n);
  float *mean = zeros(c), *var = zeros(c), *gamma = zeros(c), *beta = zeros(c);
  float* scratch = zeros(rn::cuda::channel_scratch_floats(c));
  const rn::BatchNormArgs a{rows, c, 1e-5f, gamma, beta, mean, var};
  const float stats = time_us([&] { rn::cuda::batch_norm_statistics<float>(stream, rows, c, x, mean, var, scratch); });
  const float fused = time_us([&] { rn::cuda::batch_norm_forward<float>(stream, a, x, skip, true, y); });
  const float fused_bwd = time_us(
      [&] { rn::cuda::batch_norm_backward<float>(stream, a, true, x, y, true, dy, dx, skip, gamma, beta, scratch); });
  const float plain_fwd = time_us([&] {
    rn::cuda::batch_norm_statistics<float>(stream, rows, c, x, mean, var, scratch);
    rn::cuda::batch_norm_forward<float>(stream, a, x, nullptr, false, y);
  });
  const float plain_bwd = time_us([&] {
    rn::cuda::batch_norm_backward<float>(stream, a, true, x, y, false, dy, dx, nullptr, gamma, beta, scratch);
  });
  std::printf(
      "%-16s bn statistics %7.1f us %5.0f GB/s | apply+add+relu %7.1f us %5.0f GB/s | "
      "relu+bn backward (with dskip) %7.1f us %5.0f GB/s\n",
      name, stats, gb_per_s(tensor, stats), fused, gb_per_s(3 * tensor, fused), fused_bwd,
      gb_per_s(8 * tensor, fused_bwd));
  std::printf("%-16s plain bn training forward (statistics + apply) %7.1f us | plain bn backward %7.1f us\n", name,
              plain_fwd, plain_bwd);
  for (float* p : {x, y, dy, dx, skip, mean, var, gamma, beta, scratch}) cudaFree(p);
}

void bench_optimizers() {
  // ResNet-50's 25,557,032 parameters, as 161 tensors padded to 64 floats.
  constexpr int kTensors = 161;
  const long per_tensor = 25557032L / kTensors;
  std::vector<rn::cuda::ParamSlice> table;
  long total = 0;
  for (int i = 0; i < kTensors; ++i) {
    table.push_back({total, per_tensor, 0.1f, 1e-4f});
    total += (per_tensor + 63) / 64 * 64;
  }
  rn::cuda::ParamSlice* device_table = nullptr;
  check(cudaMalloc(&device_table, sizeof(rn::cuda::ParamSlice) * kTensors), "cudaMalloc");
  check(cudaMemcpy(device_table, table.data(), sizeof(rn::cuda::ParamSlice) * kTensors, cudaMemcpyHostToDevice),
        "table upload");
  float *params = zeros(total), *grads = zeros(total), *m = zeros(total), *v = zeros(total);
  double* out = nullptr;
  check(cudaMalloc(&out, sizeof(double)), "cudaMalloc");
  rn::SgdArgs sgd;
  sgd.momentum = 0.9f;
  sgd.nesterov = true;
  const rn::AdamArgs adam;
  const double bytes = 4.0 * static_cast<double>(total);
  const float t_sgd =
      time_us([&] { rn::cuda::sgd_update_all(stream, device_table, kTensors, total, sgd, params, grads, m); });
  const float t_adam =
      time_us([&] { rn::cuda::adamw_update_all(stream, device_table, kTensors, total, adam, params, grads, m, v); });
  const float t_norm = time_us([&] { rn::cuda::sum_of_squares(stream, total, grads, out); });
  std::printf(
      "25.6M parameters: sgd nesterov %7.1f us %5.0f GB/s | adamw %7.1f us %5.0f GB/s | "
      "sum_of_squares %7.1f us %5.0f GB/s\n",
      t_sgd, gb_per_s(5 * bytes, t_sgd), t_adam, gb_per_s(7 * bytes, t_adam), t_norm, gb_per_s(bytes, t_norm));
  for (float* p : {params, grads, m, v}) cudaFree(p);
  cudaFree(device_table);
  cudaFree(out);
}

void bench_max_pool() {
  // The stem's 3x3 / 2 'same' max pool: [256, 112, 112, 64] -> [256, 56, 56, 64].
  const rn::Pool2dGeometry g{256, 112, 112, 64, 3, 3, 2, 2, 0, 1, 0, 1, 56, 56};
  const long in = 256L * 112 * 112 * 64, out = 256L * 56 * 56 * 64;
  float *x = zeros(in), *dx = zeros(in), *y = zeros(out), *dy = zeros(out);
  const float fwd = time_us([&] { rn::cuda::max_pool_forward<float>(stream, g, x, y); });
  const float bwd = time_us([&] { rn::cuda::max_pool_backward<float>(stream, g, x, dy, dx); });
  std::printf("max pool 3x3/2 [256,112,112,64]: forward %7.1f us | backward %7.1f us\n", fwd, bwd);
  for (float* p : {x, dx, y, dy}) cudaFree(p);
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 0;
  }
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  bench_batch_norm("stem 112x112x64", 256L * 112 * 112, 64);
  bench_batch_norm("56x56x256", 256L * 56 * 56, 256);
  bench_batch_norm("28x28x512", 256L * 28 * 28, 512);
  bench_batch_norm("7x7x2048", 256L * 7 * 7, 2048);
  bench_optimizers();
  bench_max_pool();
  check(cudaGetLastError(), "kernels");
  return 0;
}
