// The model graph as the core sees it: lib/model/spec.ts's layers, resolved to indices.
// Values are numbered 0 = the network input, i + 1 = layer i's output. Shape inference
// and the parameter table live here; the plan compiler (plan.cpp) builds on both.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "geometry.hpp"
#include "shape.hpp"

namespace rn {

enum class LayerType {
  Conv2d,
  BatchNorm,
  Relu,
  Add,
  MaxPool,
  AvgPool,
  GlobalAvgPool,
  Flatten,
  Dense,
  ZeroPad,
  SqueezeExcite,
  ZeroPadShortcut,
};

const char* layer_type_name(LayerType type);

struct Layer {
  std::string name;
  LayerType type = LayerType::Relu;
  std::vector<int> inputs;  // value ids
  // conv2d: filters, kernel, window (strides, dilations, padding), groups, bias.
  // pools: kernel = pool size, window. zeroPadShortcut: filters, window strides.
  int64_t filters = 0, kh = 1, kw = 1, groups = 1;
  Window2dOptions window;
  bool use_bias = false;
  // batchNorm
  float epsilon = 1e-5f, momentum = 0.1f;
  bool residual_last = false;
  // dense: units; squeezeExcite: hidden units
  int64_t units = 0;
  // zeroPad: top, bottom, left, right
  std::array<int64_t, 4> pads{0, 0, 0, 0};
};

struct GraphSpec {
  std::string name;
  Shape input_shape;  // [h, w, c] the model was built for
  int64_t classes = 0;
  std::vector<Layer> layers;
  int output = 0;  // value id of the logits
};

enum class ParamRole { Weight, Bias, Gamma, Beta, RunningMean, RunningVar };

struct ParamInfo {
  std::string name;  // `${layer}.weight`, …
  int layer = 0;
  ParamRole role = ParamRole::Weight;
  int sub = 0;  // squeezeExcite: 1 = fc1, 2 = fc2
  Shape shape;
  int64_t numel = 0;
  bool trainable = true;
  int64_t offset = 0;  // into the trainable buffer or the running-statistics buffer
};

// Shapes of every value for an input of shape [n, h, w, c]; E_SHAPE naming the layer
// when a layer cannot take its input.
std::vector<Shape> infer_shapes(const GraphSpec& spec, const Shape& input);

// The parameters of every layer, given the shapes of its inputs (from infer_shapes with
// the model's own input shape), listed layer by layer in layer order (the plan finds a
// layer's by that). Offsets pack trainable and running buffers separately.
std::vector<ParamInfo> parameter_table(const GraphSpec& spec, const std::vector<Shape>& shapes);

// Dense layers fix their input feature count: E_SHAPE (naming the layer) when an input of
// another image size flattens to a different one.
void check_feature_counts(const GraphSpec& spec, const std::vector<ParamInfo>& params, const std::vector<Shape>& shapes,
                          const Shape& input);

// The most a layer may multiply its input's elements by, beyond the output channels its
// weights pay for (a conv's filters, a dense layer's units: each is a column of stored
// weights). Padding, pooling and parameter-free shortcuts never come near it in a real
// network (the most: a stem's 3-pixel zero padding around a 1×1 image, 49×; ResNets at
// 224² stay under 6×), while a spec that goes past it makes memory out of nothing: an
// 876-byte checkpoint whose zeroPad of 5000 asks for a 764 MB arena on a 4×4 image.
constexpr double kMaxActivationGrowth = 64.0;

// E_ALLOC naming the layer and the bytes of its input and output when a layer of `spec`, for
// these shapes (infer_shapes), grows its input past kMaxActivationGrowth. Plans check it
// unless the user set a memory budget (which then bounds the arena instead).
void check_activation_growth(const GraphSpec& spec, const std::vector<Shape>& shapes);

// Checks names, input references (only earlier layers) and attributes; E_ARG otherwise.
void validate_graph(const GraphSpec& spec);

}  // namespace rn
