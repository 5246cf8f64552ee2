// The training engine's batch-norm kernels over [rows, channels]: statistics, the
// forward with an optional residual add and ReLU (the BN + add + ReLU fusion), and a
// backward that folds in the ReLU backward. Per-thread double partial sums use scratch.
#pragma once

#include "../core/backend.hpp"

namespace rn::cpu {

int64_t channel_scratch_floats(int64_t channels);

// sum[c] += Σ x, sq[c] += Σ x² over rows [begin, end) of x [rows × c], in float blocks of
// 32 rows (fs, fq: c floats each) added to the double totals. Also the conv epilogue's.
void sums_rows(int64_t c, const float* x, int64_t begin, int64_t end, double* sum, double* sq, float* fs, float* fq);

// Batch mean and (biased) variance from per-part sums: partial holds, for each of `parts`,
// `channels` sums then `channels` sums of squares, in double, over `count` rows in all.
void finish_batch_statistics(int parts, int64_t channels, const double* partial, double count, float* mean, float* var);
void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var, float* scratch);
void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y, float* scratch);
void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                         const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta, float* scratch);

}  // namespace rn::cpu
