#include "loss_kernels.hpp"

#include <cmath>

namespace rn::cpu {
namespace {

// log(sum(exp(row))) with the max subtracted for stability.
double log_sum_exp(int64_t classes, const float* row, float* max_out) {
  float m = row[0];
  for (int64_t j = 1; j < classes; ++j) m = row[j] > m ? row[j] : m;
  double s = 0.0;
  for (int64_t j = 0; j < classes; ++j) s += std::exp(double(row[j]) - m);
  *max_out = m;
  return double(m) + std::log(s);
}

}  // namespace

double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels, float smoothing,
                             int64_t* correct, int64_t* correct5) {
  double total = 0.0;
  int64_t hits = 0, hits5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits + i * classes;
    float m;
    const double lse = log_sum_exp(classes, row, &m);
    // Target: (1 - s) on the label plus s / classes everywhere.
    double mean_logit = 0.0;
    for (int64_t j = 0; j < classes; ++j) mean_logit += row[j];
    mean_logit /= double(classes);
    const double label_logit = row[labels[i]];
    total += lse - (1.0 - smoothing) * label_logit - smoothing * mean_logit;
    int64_t arg = 0;
    for (int64_t j = 1; j < classes; ++j) arg = row[j] > row[arg] ? j : arg;
    hits += arg == labels[i] ? 1 : 0;
    int64_t above = 0;  // classes scored strictly higher than the label
    for (int64_t j = 0; j < classes; ++j) above += row[j] > label_logit ? 1 : 0;
    hits5 += above < 5 ? 1 : 0;
  }
  if (correct) *correct = hits;
  if (correct5) *correct5 = hits5;
  return total / double(n);
}

void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                    float smoothing, float dloss, float* dlogits) {
  const double scale = double(dloss) / double(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits + i * classes;
    float m;
    const double lse = log_sum_exp(classes, row, &m);
    float* d = dlogits + i * classes;
    for (int64_t j = 0; j < classes; ++j) {
      const double target = smoothing / double(classes) + (j == labels[i] ? 1.0 - smoothing : 0.0);
      d[j] = static_cast<float>((std::exp(double(row[j]) - lse) - target) * scale);
    }
  }
}

void softmax(int64_t n, int64_t classes, const float* logits, float* probs) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits + i * classes;
    float m;
    const double lse = log_sum_exp(classes, row, &m);
    for (int64_t j = 0; j < classes; ++j) probs[i * classes + j] = static_cast<float>(std::exp(double(row[j]) - lse));
  }
}

}  // namespace rn::cpu
