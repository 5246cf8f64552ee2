// In-place optimizer updates over one parameter tensor (PyTorch semantics), and the read-only
// checks that an update would leave every new value finite (Backend::*_update_finite).
#pragma once

#include "../core/backend.hpp"

namespace rn::cpu {

double sum_of_squares(int64_t count, const float* x);
void scale(int64_t count, float factor, float* x);
void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf);
void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v);
bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                       const float* momentum_buf);
bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad, const float* m,
                         const float* v);

}  // namespace rn::cpu
