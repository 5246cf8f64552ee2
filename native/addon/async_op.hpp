// One AsyncWorker for every op: `work` runs on a libuv thread (it may throw rn::Error),
// `result` turns what it produced into a JS value on the main thread. The promise
// rejects with a ResNetError carrying the error's code.
//
// An op can complete in an environment that is being torn down (a worker terminated, or
// exiting, while the op ran). Then nothing can be settled: the result is dropped, and
// deleting the op frees everything the two functions hold (tensors, a network's keep-alive,
// references) without calling into JS.
#pragma once

#include "napi_config.hpp"

#include <functional>
#include <optional>
#include <string>

#include "errors.hpp"

namespace rn::addon {

class AsyncOp : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise queue(Napi::Env env, const char* name, Work work, Result result);

 protected:
  void Execute() override;
  // Settles the promise, or drops the result when it cannot; lets no exception out (out of
  // node-addon-api's own, a std::exception from `result` would reach std::terminate).
  void OnWorkComplete(Napi::Env env, napi_status status) override;

 private:
  AsyncOp(Napi::Env env, const char* name, Work work, Result result);
  void settle(Napi::Env env);

  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  std::optional<Failure> failure_;  // set by Execute when `work` threw
};

}  // namespace rn::addon
