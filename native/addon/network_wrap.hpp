// NativeNetwork: the JS handle of a core Network (lib/model/model.ts wraps it). Steps
// run in AsyncWorkers holding their own reference to the network and the images, one
// at a time (the network's mutex); synchronous calls made while a step runs get E_BUSY.
#pragma once

#include "napi_config.hpp"

#include <memory>

#include "../core/network.hpp"

namespace rn::addon {

class NativeNetwork : public Napi::ObjectWrap<NativeNetwork> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit NativeNetwork(const Napi::CallbackInfo& info);
  ~NativeNetwork() override;

 private:
  Napi::Value parameter_table(const Napi::CallbackInfo& info);
  Napi::Value describe(const Napi::CallbackInfo& info);
  Napi::Value initialize(const Napi::CallbackInfo& info);
  Napi::Value get_parameter(const Napi::CallbackInfo& info);
  Napi::Value set_parameter(const Napi::CallbackInfo& info);
  Napi::Value get_gradient(const Napi::CallbackInfo& info);
  Napi::Value set_optimizer(const Napi::CallbackInfo& info);
  Napi::Value set_learning_rate(const Napi::CallbackInfo& info);
  Napi::Value set_training(const Napi::CallbackInfo& info);
  Napi::Value set_frozen(const Napi::CallbackInfo& info);
  Napi::Value train_step(const Napi::CallbackInfo& info);
  Napi::Value compute_gradients(const Napi::CallbackInfo& info);
  Napi::Value predict(const Napi::CallbackInfo& info);
  Napi::Value evaluate(const Napi::CallbackInfo& info);
  // predict's time split over the plan's steps (Network::profile_predict).
  Napi::Value profile_predict(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value optimizer_state_info(const Napi::CallbackInfo& info);
  Napi::Value get_optimizer_state(const Napi::CallbackInfo& info);
  Napi::Value set_optimizer_state(const Napi::CallbackInfo& info);

  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value is_disposed(const Napi::CallbackInfo& info);

  // The network, or E_DISPOSED.
  std::shared_ptr<Network> net() const;
  void sync_external_memory(Napi::Env env);
  // Holds the JS object (so the wrap outlives a step in flight) for a result callback.
  // Destroyed on the JS thread when the op's worker is deleted (success or failure).
  struct KeepAlive {
    NativeNetwork* owner = nullptr;
    Napi::ObjectReference ref;
    ~KeepAlive() {
      if (owner) --owner->in_flight_;
    }
  };
  std::unique_lock<std::mutex> exclusive(const std::string& op);
  int in_flight_ = 0;  // steps queued or running (JS thread only)
  std::shared_ptr<KeepAlive> keep_alive(const Napi::CallbackInfo& info);

  std::shared_ptr<Network> network_;
  int64_t accounted_bytes_ = 0;
  std::string device_ = "cpu";  // canonical: cpu, cuda:N
};

// allocationStats(): { allocations, liveBytes } of the core's counted buffers.
Napi::Value allocation_stats(const Napi::CallbackInfo& info);

}  // namespace rn::addon
