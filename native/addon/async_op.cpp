#include "async_op.hpp"

#include "../core/error.hpp"
#include "errors.hpp"

namespace rn::addon {

AsyncOp::AsyncOp(Napi::Env env, const char* name, Work work, Result result)
    : Napi::AsyncWorker(env, name),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      result_(std::move(result)) {}

Napi::Promise AsyncOp::queue(Napi::Env env, const char* name, Work work, Result result) {
  auto* op = new AsyncOp(env, name, std::move(work), std::move(result));
  Napi::Promise promise = op->deferred_.Promise();
  op->Queue();  // the worker deletes itself after OnOK / OnError
  return promise;
}

void AsyncOp::Execute() {
  try {
    work_();
    return;
  } catch (const rn::Error& e) {
    code_ = error_code_name(e.code());
    message_ = e.what();
  } catch (const std::bad_alloc&) {
    code_ = "E_ALLOC";
    message_ = "out of memory";
  } catch (const std::exception& e) {
    code_ = "E_INTERNAL";
    message_ = std::string("internal error: ") + e.what();
  }
  SetError(message_);
}

void AsyncOp::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(result_(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void AsyncOp::OnError(const Napi::Error&) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  deferred_.Reject(make_error(env, code_, message_).Value());
}

}  // namespace rn::addon
