// In-place optimizer updates over one parameter tensor (PyTorch semantics).
#pragma once

#include "../core/backend.hpp"

namespace rn::cpu {

double sum_of_squares(int64_t count, const float* x);
void scale(int64_t count, float factor, float* x);
void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf);
void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v);

}  // namespace rn::cpu
