// The one thread pool the core owns. Sized to the machine's cores (RESNET_NUM_THREADS
// overrides); the caller's thread takes part, so a 2-core machine uses 1 worker + caller.
// Hand-offs spin before they sleep: a worker waits for the next task, and the caller for the
// workers' chunks, spinning for up to RESNET_POOL_SPIN_US microseconds (default 50; 0: never)
// before blocking on a condition variable, so a forward pass that issues a parallel_for every
// few tens of microseconds (batch 1) pays no futex wake-up per call, and an idle process sleeps.
// The budget adapts per thread (shrinking while waits outlast it), and spinning stops for a
// while when a spinner finds itself descheduled (an oversubscribed machine).
#pragma once

#include <cstdint>

#include "function_ref.hpp"

namespace rn {

// fn(begin, end) over a chunk; a FunctionRef, so parallel_for never allocates.
using RangeFn = FunctionRef<void(int64_t, int64_t)>;

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread, and
// returns when all are done. Safe to call from several threads (calls are serialised)
// and from inside a task (the nested call runs inline). The first exception thrown by
// a chunk is rethrown in the caller.
void parallel_for(int64_t n, RangeFn fn);

// Threads that parallel_for uses, the caller included.
int num_threads();

}  // namespace rn
