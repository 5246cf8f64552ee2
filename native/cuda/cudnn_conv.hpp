// Convolutions through cuDNN 9 in NHWC: forward, backward-data, backward-filter, on fp32
// data, or fp16 / bf16 data (mixed precision: activations, weights and the weight gradient in
// the half type, accumulation in fp32 on tensor cores).
// For each geometry the descriptors and the algorithms are chosen once (a timed search
// by default, cuDNN's heuristic with RESNET_CUDNN_SEARCH=heuristic) and cached.
//
// This uses cuDNN's legacy convolution API, which cuDNN 9 keeps (deprecated); it sits
// behind this one class so the graph API (cudnn_graph.h) can replace it in one place.
//
// cuDNN pads symmetrically and wants filters as [out, kh, kw, in/groups]; the backend
// (cuda_backend.cpp) pre-pads asymmetric ('same', stride 2) inputs and transposes the
// HWIO weights, so the shapes here are always symmetric and OHWI.
#pragma once

#include <cudnn.h>

#include <array>
#include <cstdint>
#include <map>

#include "../core/geometry.hpp"

namespace rn::cuda {

class ConvEngine {
 public:
  // `data_type`: CUDNN_DATA_FLOAT, CUDNN_DATA_HALF or CUDNN_DATA_BFLOAT16.
  ConvEngine(cudnnHandle_t handle, bool allow_tf32, cudnnDataType_t data_type);
  ~ConvEngine();
  ConvEngine(const ConvEngine&) = delete;
  ConvEngine& operator=(const ConvEngine&) = delete;

  // `g` must have pad_top == pad_bottom and pad_left == pad_right.
  size_t workspace_bytes(const Conv2dGeometry& g);
  // Buffers hold elements of the engine's data type.
  void forward(const Conv2dGeometry& g, const void* x, const void* w_ohwi, void* y, void* workspace);
  void backward_data(const Conv2dGeometry& g, const void* dy, const void* w_ohwi, void* dx, void* workspace);
  void backward_filter(const Conv2dGeometry& g, const void* x, const void* dy, void* dw_ohwi, void* workspace);

 private:
  struct Entry {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
    cudnnConvolutionFwdAlgo_t fwd_algo{};
    cudnnConvolutionBwdDataAlgo_t data_algo{};
    cudnnConvolutionBwdFilterAlgo_t filter_algo{};
    size_t workspace = 0;
  };
  using Key = std::array<int64_t, 16>;
  static Key key_of(const Conv2dGeometry& g);
  Entry& entry(const Conv2dGeometry& g);
  void choose_algorithms(Entry& e);

  cudnnHandle_t handle_;
  bool allow_tf32_;
  cudnnDataType_t data_type_;
  bool timed_search_;
  std::map<Key, Entry> cache_;
};

}  // namespace rn::cuda
