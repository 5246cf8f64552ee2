// Element-wise kernels of the training engine: ReLU, residual add, accumulation, and the
// dense layer (the classifier head: k·m is small, so a row loop beats packing for the GEMM).
#pragma once

#include <cstdint>

namespace rn::cpu {

void relu_forward(int64_t count, const float* x, float* y);
void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx);
void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y);
void accumulate(int64_t count, const float* x, float* y);
void copy(int64_t count, const float* x, float* y);
void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b, float* y);
void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                    float* dw, float* db);

}  // namespace rn::cpu
