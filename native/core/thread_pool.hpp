// The one thread pool the core owns. Sized to the machine's cores (RESNET_NUM_THREADS
// overrides); the caller's thread takes part, so a 2-core machine uses 1 worker + caller.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace rn {

// A non-owning reference to a callable (begin, end): unlike std::function it never
// allocates, so training steps that call parallel_for stay allocation-free.
class RangeFn {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f)  // NOLINT: implicit on purpose, lambdas convert at the call site
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(o))(b, e); }) {}
  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread, and
// returns when all are done. Safe to call from several threads (calls are serialised)
// and from inside a task (the nested call runs inline). The first exception thrown by
// a chunk is rethrown in the caller.
void parallel_for(int64_t n, RangeFn fn);

// Threads that parallel_for uses, the caller included.
int num_threads();

}  // namespace rn
