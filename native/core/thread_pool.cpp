#include "thread_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

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

class ThreadPool {
 public:
  explicit ThreadPool(int threads) : threads_(threads) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &fn;
      task_n_ = n;
      task_chunks_ = chunks;
      pending_ = chunks - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_chunk(int index) {
    int64_t begin = task_n_ * index / task_chunks_;
    int64_t end = task_n_ * (index + 1) / task_chunks_;
    t_inside_pool_task = true;
    try {
      (*task_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_inside_pool_task = false;
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        if (index >= task_chunks_) continue;
      }
      run_chunk(index);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const RangeFn* task_ = nullptr;
  int64_t task_n_ = 0;
  int task_chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

ThreadPool& pool() {
  // Intentionally leaked: joining threads during static destruction at process exit
  // races with Node's own teardown.
  static ThreadPool* instance = new ThreadPool(configured_threads());
  return *instance;
}

}  // namespace

void parallel_for(int64_t n, RangeFn fn) { pool().run(n, fn); }

int num_threads() { return pool().size(); }

}  // namespace rn
