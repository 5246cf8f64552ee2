// Deterministic per-channel sums over the rows of an NHWC [rows, channels] matrix, the
// shape of every batch-norm and bias reduction. Two levels, no float atomics:
//   1. column_partials_kernel: a block owns a tile of channels (threads across channels,
//      so loads are coalesced along the channel axis, 4-wide where channels % 4 == 0) and
//      one contiguous range of rows ("part"); each thread sums its rows in float over runs
//      of kFloatRun rows (as the CPU backend does), carries the runs in double, and the
//      block folds its row lanes in a fixed tree into partial[part][sum][channel].
//   2. column_finish_kernel: per channel, the parts are added in a fixed order (strided
//      lanes, then a fixed tree) and a Finish functor turns the totals into outputs.
// The launch shape is a function of (rows, channels, vectorised) only, so the same input
// at the same addresses gives bit-identical results.
#pragma once

#include "kernel_support.cuh"

namespace rn::cuda::detail {

constexpr int kFloatRun = 32;            // rows summed in float before carrying to double
constexpr int64_t kTargetBlocks = 2048;  // partial-sum blocks per reduction, at most
constexpr int64_t kMinRowsPerThread = 16;
constexpr int kFinishChannels = 32, kFinishLanes = 8;

struct ColumnLayout {
  int vec;                 // 4: 4-wide vectors along channels; 1: scalar
  int tx, ty;              // threads across channel vectors × across rows, tx·ty = kThreads
  int64_t channel_blocks;  // blocks across the channel axis
};

inline int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

inline ColumnLayout column_layout(int64_t channels, bool vectorise) {
  ColumnLayout l;
  l.vec = (vectorise && channels % 4 == 0) ? 4 : 1;
  const int64_t vectors = channels / l.vec;
  l.tx = static_cast<int>(std::min<int64_t>(32, next_pow2(vectors)));
  l.ty = kThreads / l.tx;
  l.channel_blocks = ceil_div(vectors, l.tx);
  return l;
}

// Most row parts a reduction over `channels` ever uses (bounds the scratch).
inline int64_t max_parts(const ColumnLayout& l) { return std::max<int64_t>(1, kTargetBlocks / l.channel_blocks); }

inline int64_t parts_for(const ColumnLayout& l, int64_t rows) {
  return std::max<int64_t>(1, std::min(max_parts(l), ceil_div(rows, l.ty * kMinRowsPerThread)));
}

// Doubles of partial sums a reduction with `sums` outputs per channel may need.
inline int64_t partial_doubles(int64_t channels, int sums) {
  const int64_t parts = std::max(max_parts(column_layout(channels, true)), max_parts(column_layout(channels, false)));
  return parts * sums * channels;
}

// Terms<V, T> (T the activation type it reads) provides prepare(ch0) (once per thread,
// e.g. to load per-channel constants), add(row, ch0, run) adding its S terms for channels
// ch0 .. ch0+V-1 of one row, and kRowUnroll, the rows a thread loads per loop trip (a
// divisor of kFloatRun): several independent loads in flight per thread are what
// approach the memory bandwidth, but terms that already load several tensors per row lose
// more to register pressure.
template <int V, int S, typename Terms>
__global__ void __launch_bounds__(kThreads)
    column_partials_kernel(int64_t rows, int64_t channels, int64_t parts, Terms terms, double* partial) {
  extern __shared__ double lanes[];  // [ty][S·V][tx]
  const int tx = blockDim.x, ty = blockDim.y;
  const int64_t ch0 = (int64_t(blockIdx.x) * tx + threadIdx.x) * V;
  const int64_t part = blockIdx.y;
  const int64_t begin = rows * part / parts, end = rows * (part + 1) / parts;

  double total[S][V];
  float run[S][V];
#pragma unroll
  for (int s = 0; s < S; ++s) {
#pragma unroll
    for (int k = 0; k < V; ++k) total[s][k] = 0.0, run[s][k] = 0.0f;
  }
  if (ch0 < channels) {
    terms.prepare(ch0);
    auto carry = [&] {
#pragma unroll
      for (int s = 0; s < S; ++s) {
#pragma unroll
        for (int k = 0; k < V; ++k) total[s][k] += run[s][k], run[s][k] = 0.0f;
      }
    };
    int in_run = 0;
    int64_t r = begin + threadIdx.y;
    for (; r + (Terms::kRowUnroll - 1) * int64_t(ty) < end; r += Terms::kRowUnroll * int64_t(ty)) {
#pragma unroll
      for (int u = 0; u < Terms::kRowUnroll; ++u) terms.add(r + u * int64_t(ty), ch0, run);
      in_run += Terms::kRowUnroll;
      if (in_run >= kFloatRun) carry(), in_run = 0;
    }
    for (; r < end; r += ty) terms.add(r, ch0, run);
    carry();
  }
#pragma unroll
  for (int s = 0; s < S; ++s) {
#pragma unroll
    for (int k = 0; k < V; ++k) lanes[(threadIdx.y * S * V + s * V + k) * tx + threadIdx.x] = total[s][k];
  }
  __syncthreads();
  for (int half = ty / 2; half > 0; half /= 2) {
    if (threadIdx.y < half) {
#pragma unroll
      for (int j = 0; j < S * V; ++j) {
        lanes[(threadIdx.y * S * V + j) * tx + threadIdx.x] +=
            lanes[((threadIdx.y + half) * S * V + j) * tx + threadIdx.x];
      }
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && ch0 < channels) {
#pragma unroll
    for (int s = 0; s < S; ++s) {
#pragma unroll
      for (int k = 0; k < V; ++k) partial[(part * S + s) * channels + ch0 + k] = lanes[(s * V + k) * tx + threadIdx.x];
    }
  }
}

// Finish::operator()(channel, const double (&totals)[S]) writes the outputs of one channel.
template <int S, typename Finish>
__global__ void __launch_bounds__(kFinishChannels* kFinishLanes)
    column_finish_kernel(int64_t channels, int64_t parts, const double* partial, Finish finish) {
  __shared__ double lanes[kFinishLanes][S][kFinishChannels];
  const int64_t ch = int64_t(blockIdx.x) * kFinishChannels + threadIdx.x;
  double acc[S];
#pragma unroll
  for (int s = 0; s < S; ++s) acc[s] = 0.0;
  if (ch < channels) {
    for (int64_t p = threadIdx.y; p < parts; p += kFinishLanes) {
#pragma unroll
      for (int s = 0; s < S; ++s) acc[s] += partial[(p * S + s) * channels + ch];
    }
  }
#pragma unroll
  for (int s = 0; s < S; ++s) lanes[threadIdx.y][s][threadIdx.x] = acc[s];
  __syncthreads();
  for (int half = kFinishLanes / 2; half > 0; half /= 2) {
    if (threadIdx.y < half) {
#pragma unroll
      for (int s = 0; s < S; ++s) lanes[threadIdx.y][s][threadIdx.x] += lanes[threadIdx.y + half][s][threadIdx.x];
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && ch < channels) {
    double totals[S];
#pragma unroll
    for (int s = 0; s < S; ++s) totals[s] = lanes[0][s][threadIdx.x];
    finish(ch, totals);
  }
}

// Runs both levels: Terms<V, T> is built from `args`; `partial` holds partial_doubles(channels, S).
template <template <int, typename> class Terms, typename T, int S, typename Args, typename Finish>
void reduce_columns(cudaStream_t stream, int64_t rows, int64_t channels, bool vectorise, const Args& args,
                    double* partial, const Finish& finish) {
  if (rows <= 0 || channels <= 0) return;
  const ColumnLayout l = column_layout(channels, vectorise);
  const int64_t parts = parts_for(l, rows);
  const dim3 grid(static_cast<unsigned>(l.channel_blocks), static_cast<unsigned>(parts));
  const dim3 block(l.tx, l.ty);
  const size_t shared = size_t(kThreads) * S * l.vec * sizeof(double);
  if (l.vec == 4) {
    column_partials_kernel<4, S, Terms<4, T>>
        <<<grid, block, shared, stream>>>(rows, channels, parts, Terms<4, T>(args), partial);
  } else {
    column_partials_kernel<1, S, Terms<1, T>>
        <<<grid, block, shared, stream>>>(rows, channels, parts, Terms<1, T>(args), partial);
  }
  const dim3 finish_grid(static_cast<unsigned>(ceil_div(channels, kFinishChannels)));
  const dim3 finish_block(kFinishChannels, kFinishLanes);
  column_finish_kernel<S, Finish><<<finish_grid, finish_block, 0, stream>>>(channels, parts, partial, finish);
}

// A row-major walk over [rows, channels] with the same thread layout as the reduction:
// a thread keeps one channel vector (so per-channel constants stay in registers) and
// strides over rows.
inline dim3 rows_grid(const ColumnLayout& l, int64_t rows) {
  const int64_t row_blocks = std::max<int64_t>(
      1, std::min({ceil_div(rows, l.ty), std::max<int64_t>(1, 4 * kTargetBlocks / l.channel_blocks), int64_t{65535}}));
  return dim3(static_cast<unsigned>(l.channel_blocks), static_cast<unsigned>(row_blocks));
}

}  // namespace rn::cuda::detail
