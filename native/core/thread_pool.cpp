#include "thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define RN_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define RN_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define RN_CPU_RELAX() ((void)0)
#endif

namespace rn {
namespace {

thread_local bool t_inside_pool_task = false;

int configured_threads() {
  if (const char* env = std::getenv("RESNET_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// How long a worker (waiting for the next task) and the caller (waiting for the workers'
// chunks) spin before sleeping on a condition variable. A forward pass at batch 1 issues a
// parallel_for every few tens of microseconds; a futex wake-up per call costs about as much.
// Bounded, so an idle process sleeps. RESNET_POOL_SPIN_US overrides (0: always sleep).
std::chrono::nanoseconds configured_spin() {
  int64_t us = 50;
  if (const char* env = std::getenv("RESNET_POOL_SPIN_US")) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end != env && v >= 0 && v <= 10000) us = v;
  }
  return std::chrono::microseconds(us);
}

// Spinning only pays while both threads of a hand-off own a core. On an oversubscribed machine
// a spinner burns the time slice the thread it waits for needs, and sleeping on a condition
// variable (woken threads are scheduled promptly) is faster. A spinner that finds it was
// descheduled mid-spin (a gap of kPreempted between two looks at the clock, where 32 pauses take
// about a microsecond) turns spinning off for every thread for kSpinOff.
constexpr std::chrono::nanoseconds kPreempted = std::chrono::microseconds(20);
constexpr std::chrono::nanoseconds kSpinOff = std::chrono::milliseconds(100);
std::atomic<int64_t> g_spin_off_until{0};  // steady_clock nanoseconds

int64_t nanos(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A waiter's spin budget adapts to what spinning buys it: halved (down to kMinSpin) each time
// the wait outlasts it, so a thread whose waits are long (serial work between calls, a loaded
// machine) soon sleeps almost at once, and doubled (up to the configured bound) each time the
// wait ends within it.
constexpr std::chrono::nanoseconds kMinSpin = std::chrono::microseconds(1);
thread_local std::chrono::nanoseconds t_spin{-1};  // this thread's budget; -1: not yet set

// Spins until done() or this thread's budget (at most `bound`) has passed; true when done()
// held. Past the first few microseconds it also yields, so that the thread it waits for, if
// queued on this very core, gets to run.
template <typename Done>
bool spin_until(Done done, std::chrono::nanoseconds bound) {
  if (bound.count() <= 0) return done();
  if (t_spin.count() < 0) t_spin = bound;
  auto last = std::chrono::steady_clock::now();
  if (nanos(last) < g_spin_off_until.load(std::memory_order_relaxed)) return done();
  const auto yield_after = last + std::min(t_spin, std::chrono::nanoseconds(5000));
  const auto deadline = last + t_spin;
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (done()) {
        t_spin = std::min(bound, t_spin * 2);
        return true;
      }
      RN_CPU_RELAX();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last >= kPreempted) {
      g_spin_off_until.store(nanos(now + kSpinOff), std::memory_order_relaxed);
      return done();
    }
    last = now;
    if (now >= deadline) {
      t_spin = std::max(kMinSpin, t_spin / 2);
      return done();
    }
    if (now >= yield_after) std::this_thread::yield();
  }
}

class ThreadPool {
 public:
  ThreadPool(int threads, std::chrono::nanoseconds spin) : threads_(threads), spin_(spin) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return threads_; }

  void run(int64_t n, RangeFn fn) {
    if (n <= 0) return;
    int chunks = static_cast<int>(std::min<int64_t>(n, threads_));
    if (chunks == 1 || t_inside_pool_task) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> serial(dispatch_mutex_);
    // Every worker acknowledges every task (those without a chunk at once), so none still reads
    // the task's fields when the next one is written.
    task_ = &fn;
    task_n_ = n;
    task_chunks_ = chunks;
    error_ = nullptr;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1);  // seq_cst: publishes the task; paired with sleepers_ below
    if (sleepers_.load() > 0) {
      // Taking the mutex orders this notify after a sleeper's last look at generation_ (it holds
      // the mutex from its count in sleepers_ until it blocks); notifying after releasing it
      // spares the woken worker from blocking on the mutex at once.
      { std::lock_guard<std::mutex> lock(mutex_); }
      wake_.notify_all();
    }
    run_chunk(0);
    wait_for_workers();
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void wait_for_workers() {
    auto all_done = [this] { return pending_.load() == 0; };
    if (spin_until(all_done, spin_)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    caller_waiting_.store(true);  // seq_cst: paired with the last worker's pending_ decrement
    done_.wait(lock, all_done);
    caller_waiting_.store(false, std::memory_order_relaxed);
  }

  void run_chunk(int index) {
    int64_t begin = task_n_ * index / task_chunks_;
    int64_t end = task_n_ * (index + 1) / task_chunks_;
    t_inside_pool_task = true;
    try {
      (*task_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_inside_pool_task = false;
  }

  // Waits (spinning, then sleeping) for a generation other than `seen`; returns it.
  uint64_t next_generation(uint64_t seen) {
    auto changed = [&] { return generation_.load() != seen; };
    if (!spin_until(changed, spin_)) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);  // seq_cst: paired with run's generation_ increment
      wake_.wait(lock, changed);
      sleepers_.fetch_sub(1);
    }
    return generation_.load(std::memory_order_acquire);
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      seen = next_generation(seen);
      if (stopping_.load()) return;
      if (index < task_chunks_) run_chunk(index);
      if (pending_.fetch_sub(1) == 1 && caller_waiting_.load()) {  // seq_cst: see wait_for_workers
        { std::lock_guard<std::mutex> lock(mutex_); }  // as in run: the caller is blocked or sees pending_ 0
        done_.notify_one();
      }
    }
  }

  const int threads_;
  const std::chrono::nanoseconds spin_;
  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;  // serialises callers
  std::mutex mutex_;           // the condition variables'
  std::mutex error_mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // The task: written by the caller before generation_'s increment, read by workers after it.
  const RangeFn* task_ = nullptr;
  int64_t task_n_ = 0;
  int task_chunks_ = 0;
  std::exception_ptr error_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers yet to acknowledge the current task
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stopping_{false};
};

ThreadPool& pool() {
  // Intentionally leaked: joining threads during static destruction at process exit
  // races with Node's own teardown.
  static ThreadPool* instance = new ThreadPool(configured_threads(), configured_spin());
  return *instance;
}

}  // namespace

void parallel_for(int64_t n, RangeFn fn) { pool().run(n, fn); }

int num_threads() { return pool().size(); }

}  // namespace rn
