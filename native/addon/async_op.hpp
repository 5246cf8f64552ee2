// One AsyncWorker for every op: `work` runs on a libuv thread (it may throw rn::Error),
// `result` turns what it produced into a JS value on the main thread. The promise
// rejects with a ResNetError carrying the error's code.
#pragma once

#include <napi.h>

#include <functional>
#include <string>

namespace rn::addon {

class AsyncOp : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise queue(Napi::Env env, const char* name, Work work, Result result);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  AsyncOp(Napi::Env env, const char* name, Work work, Result result);

  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  std::string code_;
  std::string message_;
};

}  // namespace rn::addon
