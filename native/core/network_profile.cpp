// Network::profile_predict (network.hpp): predict with the plan's step timer set.
#include <chrono>

#include "error.hpp"
#include "network.hpp"

namespace rn {
namespace {

// Unsets the plan's step timer however the runs end.
class StepTimer {
 public:
  StepTimer(Plan& plan, std::vector<double>& times) : plan_(plan) { plan_.set_step_timer(&times); }
  ~StepTimer() { plan_.set_step_timer(nullptr); }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

 private:
  Plan& plan_;
};

}  // namespace

Network::PredictProfile Network::profile_predict(const Tensor& images, int runs) {
  if (runs < 1) fail(ErrorCode::InvalidArgument, "profilePredict: runs must be at least 1");
  check_images(images, "profilePredict");
  PredictProfile out;
  out.logits = predict(images, false);  // untimed: builds the plan, folds and prepares the weights
  Plan& plan = plan_for(images.shape(), {false, false});
  std::vector<double> times(static_cast<size_t>(plan.step_count()), 0.0);
  double total = 0.0;
  {
    StepTimer timer(plan, times);
    for (int r = 0; r < runs; ++r) {
      const auto start = std::chrono::steady_clock::now();
      out.logits = predict(images, false);
      total += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
  }
  out.total_ms = total / runs;
  const std::vector<Plan::StepDescription> described = plan.describe_steps();
  out.steps.reserve(described.size());
  for (size_t i = 0; i < described.size(); ++i) {
    const Plan::StepDescription& d = described[i];
    out.steps.push_back({spec_.layers[static_cast<size_t>(d.layer)].name, d.op, d.detail, times[i] / runs});
  }
  return out;
}

}  // namespace rn
