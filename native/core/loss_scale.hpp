// Dynamic loss scaling for fp16 training. fp16 gradients of a typical loss underflow to zero
// long before they matter, so the loss (and with it every gradient) is multiplied by a scale
// before backward and the parameter gradients divided by it before the update. When a scaled
// gradient overflows (a non-finite gradient norm) the step is skipped and the scale halved;
// after `growth_interval` good steps in a row it doubles. bf16 has fp32's range and fp32
// needs none: both default to a fixed scale of 1.
#pragma once

#include <cstdint>

namespace rn {

struct LossScaleConfig {
  bool dynamic = false;
  float initial = 1.0f;
  int64_t growth_interval = 2000;
  float growth_factor = 2.0f, backoff_factor = 0.5f;
  float min_scale = 1.0f, max_scale = 16777216.0f;  // 2^24: beyond it fp32 loses the small gradients

  // fp16's default (and the base of a user's dynamic settings): dynamic from 2^16.
  static LossScaleConfig dynamic_default() {
    LossScaleConfig c;
    c.dynamic = true;
    c.initial = 65536.0f;
    return c;
  }
};

class LossScaler {
 public:
  explicit LossScaler(LossScaleConfig config = {}) : config_(config), scale_(config.initial) {}

  const LossScaleConfig& config() const { return config_; }
  float scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  // Whether update(false) would skip (rather than fail) now.
  bool can_skip() const { return config_.dynamic && scale_ > config_.min_scale; }

  enum class Verdict { Apply, Skip, Fail };
  // After a step's gradients are known: Apply when they are finite; Skip (and back off) when
  // a dynamic scale overflowed them; Fail when they are not finite for another reason — a
  // fixed scale, or a dynamic one already at its floor (the model diverged: E_NAN).
  Verdict update(bool gradients_finite);
  // Checkpoint resume.
  void restore(float scale, int64_t good_steps) { scale_ = scale, good_steps_ = good_steps; }

 private:
  LossScaleConfig config_;
  float scale_;
  int64_t good_steps_ = 0, skipped_steps_ = 0;
};

}  // namespace rn
