// NativeTensor: the JS handle of a core Tensor. JS holds one shared reference; ops in
// flight hold their own, so dispose() during an op never frees memory under it.
#pragma once

#include "napi_config.hpp"

#include "../core/tensor.hpp"

namespace rn::addon {

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;

  // A new JS handle owning `tensor`.
  static Napi::Object wrap(Napi::Env env, TensorPtr tensor);
  // The tensor behind a JS argument: E_ARG if it is not a tensor, E_DISPOSED if disposed.
  // Device tensors are refused (E_DEVICE) unless `allow_device` (the model calls take them).
  static TensorPtr unwrap(const Napi::Value& value, const std::string& op, const std::string& name,
                          bool allow_device = false);

 private:
  void adopt(Napi::Env env, TensorPtr tensor);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value to_float32_array(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value is_disposed(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value to_device(const Napi::CallbackInfo& info);

  TensorPtr tensor_;
  int64_t accounted_bytes_ = 0;
};

}  // namespace rn::addon
