#include "async_op.hpp"

namespace rn::addon {

AsyncOp::AsyncOp(Napi::Env env, const char* name, Work work, Result result)
    : Napi::AsyncWorker(env, name),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      result_(std::move(result)) {}

Napi::Promise AsyncOp::queue(Napi::Env env, const char* name, Work work, Result result) {
  auto* op = new AsyncOp(env, name, std::move(work), std::move(result));
  Napi::Promise promise = op->deferred_.Promise();
  op->Queue();  // the op deletes itself once complete (OnWorkComplete)
  return promise;
}

void AsyncOp::Execute() {
  try {
    work_();
  } catch (...) {
    failure_ = current_failure();
  }
}

void AsyncOp::settle(Napi::Env env) {
  if (!failure_) {
    try {
      deferred_.Resolve(result_(env));
      return;
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
      return;
    } catch (...) {
      failure_ = current_failure();  // e.g. std::bad_alloc building the result
    }
  }
  deferred_.Reject(make_error(env, failure_->code, failure_->message).Value());
}

void AsyncOp::OnWorkComplete(Napi::Env env, napi_status status) {
  if (status != napi_cancelled) {
    try {
      Napi::HandleScope scope(env);
      settle(env);
    } catch (...) {
      // Settling runs JS (a ResNetError's or a tensor's constructor). Once the environment
      // is being torn down, every N-API call that would run JS fails and node-addon-api
      // throws; nobody is left to await the promise: drop the result.
    }
  }
  Destroy();  // frees work_ and result_, and with them what the op held
}

}  // namespace rn::addon
