// Network::initialize: torchvision's parameter initialisation, from a seed.
#include <cmath>
#include <vector>
#include <algorithm>
#include <cstring>
#include <random>

#include "network.hpp"
#include "thread_pool.hpp"

namespace rn {
namespace {

// mt19937_64 is specified bit for bit by the standard; the distributions are not, so
// uniform and normal samples are drawn by hand to stay identical across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return double(engine_() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  // Marsaglia's polar method: no trigonometry, two samples per accepted pair.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Fills dst[0, count) with sample(rng) in chunks that each own a stream seeded from
// (seed, parameter, chunk): the result is the same whatever the thread count.
template <typename Sample>
void fill_random(float* dst, int64_t count, uint64_t seed, uint64_t param_index, Sample sample) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      Rng rng(seed * 0x9E3779B97F4A7C15ull + (param_index << 20) + static_cast<uint64_t>(c));
      const int64_t stop = std::min(count, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < stop; ++i) dst[i] = static_cast<float>(sample(rng));
    }
  });
}

}  // namespace

void Network::initialize(uint64_t seed, bool zero_init_residual) {
  ++params_generation_;
  // A device backend's buffers are filled on the host, then uploaded in one copy each.
  const bool staged = backend_.is_device();
  std::vector<float> trainable_host(staged ? static_cast<size_t>(trainable_.size()) : 0);
  std::vector<float> running_host(staged ? static_cast<size_t>(running_.size()) : 0);
  float* trainable_base = staged ? trainable_host.data() : trainable_.data();
  float* running_base = staged ? running_host.data() : running_.data();
  uint64_t index = 0;
  for (const ParamInfo& p : params_) {
    ++index;
    const Layer& l = spec_.layers[static_cast<size_t>(p.layer)];
    float* dst = (p.trainable ? trainable_base : running_base) + p.offset;
    auto fill = [&](float v) { std::fill(dst, dst + p.numel, v); };
    switch (p.role) {
      case ParamRole::Weight:
        if (l.type == LayerType::Conv2d) {
          // kaiming_normal_(mode='fan_out', nonlinearity='relu'): fan_out = out · kh · kw.
          const double std_dev = std::sqrt(2.0 / double(p.shape[0] * p.shape[1] * p.shape[3]));
          fill_random(dst, p.numel, seed, index, [&](Rng& r) { return r.normal() * std_dev; });
        } else {
          // nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
          const double bound = 1.0 / std::sqrt(double(p.shape[0]));
          fill_random(dst, p.numel, seed, index, [&](Rng& r) { return (2.0 * r.uniform() - 1.0) * bound; });
        }
        break;
      case ParamRole::Bias:
        if (l.type == LayerType::Conv2d) {
          fill(0.0f);
        } else {
          // The bias of a dense layer (or SE fc) shares its weight's fan-in.
          const ParamInfo& w = find(p.name.substr(0, p.name.size() - 4) + "weight");
          const double bound = 1.0 / std::sqrt(double(w.shape[0]));
          fill_random(dst, p.numel, seed, index, [&](Rng& r) { return (2.0 * r.uniform() - 1.0) * bound; });
        }
        break;
      case ParamRole::Gamma:
        fill(zero_init_residual && l.residual_last ? 0.0f : 1.0f);
        break;
      case ParamRole::Beta:
      case ParamRole::RunningMean:
        fill(0.0f);
        break;
      case ParamRole::RunningVar:
        fill(1.0f);
        break;
    }
  }
  if (staged) {
    backend_.upload(trainable_.data(), trainable_host.data(), trainable_.size() * static_cast<int64_t>(sizeof(float)));
    backend_.upload(running_.data(), running_host.data(), running_.size() * static_cast<int64_t>(sizeof(float)));
  }
}

}  // namespace rn
