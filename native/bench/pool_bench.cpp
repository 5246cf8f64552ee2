// parallel_for dispatch latency (thread_pool.cpp): the mean wall time of a parallel_for whose
// chunks do (almost) nothing, back to back and with serial work between calls (as a forward
// pass at batch 1 issues them), and the process CPU time it burns. Build:
//   cmake --build build-x --target resnet_pool_bench && build-x/resnet_pool_bench
// RESNET_POOL_SPIN_US=0 turns the spinning off (every hand-off sleeps on a condition variable).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include "../core/thread_pool.hpp"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

void busy_for(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

void measure(const char* what, int calls, std::chrono::nanoseconds gap) {
  std::atomic<int64_t> sink{0};
  double dispatch = 0.0;
  const double cpu0 = cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    if (gap.count() > 0) busy_for(gap);
    const auto t0 = std::chrono::steady_clock::now();
    rn::parallel_for(rn::num_threads(),
                     [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); });
    dispatch += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::printf("%-34s %8.2f us per parallel_for   CPU %.2f of %.2f s wall\n", what, dispatch / calls,
              cpu_seconds() - cpu0, wall);
}

}  // namespace

int main() {
  std::printf("threads %d\n", rn::num_threads());
  measure("back to back", 50000, std::chrono::nanoseconds(0));
  measure("20 us serial work between calls", 10000, std::chrono::microseconds(20));
  measure("200 us serial work between calls", 2000, std::chrono::microseconds(200));
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::printf("idle 1 s after the calls: CPU %.4f s\n", cpu_seconds() - cpu0);
  return 0;
}
