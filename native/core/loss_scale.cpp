#include "loss_scale.hpp"

#include <algorithm>

namespace rn {

LossScaler::Verdict LossScaler::update(bool gradients_finite) {
  if (gradients_finite) {
    if (config_.dynamic && ++good_steps_ >= config_.growth_interval) {
      scale_ = std::min(scale_ * config_.growth_factor, config_.max_scale);
      good_steps_ = 0;
    }
    return Verdict::Apply;
  }
  if (!config_.dynamic || scale_ <= config_.min_scale) return Verdict::Fail;
  scale_ = std::max(scale_ * config_.backoff_factor, config_.min_scale);
  good_steps_ = 0;
  ++skipped_steps_;
  return Verdict::Skip;
}

}  // namespace rn
