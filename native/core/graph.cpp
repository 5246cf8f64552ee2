#include "graph.hpp"

#include <algorithm>
#include <unordered_set>

#include "error.hpp"

namespace rn {

const char* layer_type_name(LayerType type) {
  switch (type) {
    case LayerType::Conv2d:
      return "conv2d";
    case LayerType::BatchNorm:
      return "batchNorm";
    case LayerType::Relu:
      return "relu";
    case LayerType::Add:
      return "add";
    case LayerType::MaxPool:
      return "maxPool";
    case LayerType::AvgPool:
      return "avgPool";
    case LayerType::GlobalAvgPool:
      return "globalAvgPool";
    case LayerType::Flatten:
      return "flatten";
    case LayerType::Dense:
      return "dense";
    case LayerType::ZeroPad:
      return "zeroPad";
    case LayerType::SqueezeExcite:
      return "squeezeExcite";
    case LayerType::ZeroPadShortcut:
      return "zeroPadShortcut";
  }
  return "?";
}

namespace {

size_t expected_inputs(LayerType type) { return type == LayerType::Add ? 2 : 1; }

std::string where(const Layer& l) { return std::string(layer_type_name(l.type)) + " layer '" + l.name + "'"; }

void need_rank(const Layer& l, const Shape& s, size_t rank) {
  if (s.size() != rank) {
    fail(ErrorCode::InvalidShape,
         where(l) + ": expects a rank-" + std::to_string(rank) + " input, got " + shape_to_string(s));
  }
}

}  // namespace

void validate_graph(const GraphSpec& spec) {
  if (spec.layers.empty()) fail(ErrorCode::InvalidArgument, "model spec: no layers");
  if (spec.input_shape.size() != 3)
    fail(ErrorCode::InvalidArgument, "model spec: inputShape must be [height, width, channels]");
  if (spec.classes < 1) fail(ErrorCode::InvalidArgument, "model spec: classes must be at least 1");
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const Layer& l = spec.layers[i];
    if (l.name.empty()) fail(ErrorCode::InvalidArgument, "model spec: layer " + std::to_string(i) + " has no name");
    if (l.name == "input") fail(ErrorCode::InvalidArgument, "model spec: 'input' is reserved and cannot name a layer");
    if (!names.insert(l.name).second)
      fail(ErrorCode::InvalidArgument, "model spec: duplicate layer name '" + l.name + "'");
    if (l.inputs.size() != expected_inputs(l.type)) {
      fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + " needs " + std::to_string(expected_inputs(l.type)) +
                                           " input(s), got " + std::to_string(l.inputs.size()));
    }
    for (int v : l.inputs) {
      if (v < 0 || v > static_cast<int>(i)) {
        fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + " takes an input that is not an earlier layer");
      }
    }
    const bool windowed = l.type == LayerType::Conv2d || l.type == LayerType::MaxPool || l.type == LayerType::AvgPool;
    if (windowed && (l.kh < 1 || l.kw < 1 || l.window.stride_h < 1 || l.window.stride_w < 1 ||
                     l.window.dilation_h < 1 || l.window.dilation_w < 1)) {
      fail(ErrorCode::InvalidArgument,
           "model spec: " + where(l) + " needs positive kernel size, strides and dilations");
    }
    if (l.type == LayerType::Conv2d && (l.filters < 1 || l.groups < 1 || l.filters % l.groups != 0)) {
      fail(ErrorCode::InvalidArgument,
           "model spec: " + where(l) + ": filters must be positive and divisible by groups");
    }
    if ((l.type == LayerType::Dense || l.type == LayerType::SqueezeExcite) && l.units < 1) {
      fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + " needs a positive unit count");
    }
    if (l.type == LayerType::BatchNorm && !(l.epsilon > 0.0f && l.momentum >= 0.0f && l.momentum <= 1.0f)) {
      fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + ": epsilon must be > 0 and momentum in [0, 1]");
    }
    if (l.type == LayerType::ZeroPadShortcut && (l.filters < 1 || l.window.stride_h < 1 || l.window.stride_w < 1)) {
      fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + " needs positive filters and strides");
    }
    for (int64_t p : l.pads) {
      if (p < 0) fail(ErrorCode::InvalidArgument, "model spec: " + where(l) + ": padding cannot be negative");
    }
  }
  if (spec.output < 1 || spec.output > static_cast<int>(spec.layers.size())) {
    fail(ErrorCode::InvalidArgument, "model spec: output must name a layer");
  }
}

std::vector<Shape> infer_shapes(const GraphSpec& spec, const Shape& input) {
  std::vector<Shape> shapes;
  shapes.reserve(spec.layers.size() + 1);
  shapes.push_back(input);
  for (const Layer& l : spec.layers) {
    const Shape& x = shapes[static_cast<size_t>(l.inputs[0])];
    Shape y;
    switch (l.type) {
      case LayerType::Conv2d: {
        need_rank(l, x, 4);
        if (x[3] % l.groups != 0) {
          fail(ErrorCode::InvalidShape, where(l) + ": " + std::to_string(x[3]) + " input channels do not divide into " +
                                            std::to_string(l.groups) + " groups");
        }
        Shape w{l.kh, l.kw, x[3] / l.groups, l.filters};
        y = conv2d_geometry(x, w, l.groups, l.window, where(l)).output_shape();
        break;
      }
      case LayerType::MaxPool:
      case LayerType::AvgPool:
        need_rank(l, x, 4);
        y = pool2d_geometry(x, l.kh, l.kw, l.window, where(l)).output_shape();
        break;
      case LayerType::BatchNorm:
      case LayerType::Relu:
        if (x.size() != 4 && x.size() != 2) need_rank(l, x, 4);
        y = x;
        break;
      case LayerType::SqueezeExcite:
        need_rank(l, x, 4);
        y = x;
        break;
      case LayerType::Add: {
        const Shape& b = shapes[static_cast<size_t>(l.inputs[1])];
        if (x != b) {
          fail(ErrorCode::InvalidShape,
               where(l) + ": inputs " + shape_to_string(x) + " and " + shape_to_string(b) + " differ");
        }
        y = x;
        break;
      }
      case LayerType::GlobalAvgPool:
        need_rank(l, x, 4);
        y = {x[0], x[3]};
        break;
      case LayerType::Flatten:
        if (x.size() < 2) need_rank(l, x, 4);
        y = {x[0], checked_numel(Shape(x.begin() + 1, x.end()), where(l))};
        break;
      case LayerType::Dense:
        need_rank(l, x, 2);
        y = {x[0], l.units};
        break;
      case LayerType::ZeroPad:
        need_rank(l, x, 4);
        y = {x[0], x[1] + l.pads[0] + l.pads[1], x[2] + l.pads[2] + l.pads[3], x[3]};
        break;
      case LayerType::ZeroPadShortcut:
        need_rank(l, x, 4);
        if (l.filters < x[3]) {
          fail(ErrorCode::InvalidShape,
               where(l) + ": cannot shrink " + std::to_string(x[3]) + " channels to " + std::to_string(l.filters));
        }
        y = {x[0], (x[1] - 1) / l.window.stride_h + 1, (x[2] - 1) / l.window.stride_w + 1, l.filters};
        break;
    }
    checked_numel(y, where(l));
    shapes.push_back(std::move(y));
  }
  const Shape& logits = shapes[static_cast<size_t>(spec.output)];
  if (logits.size() != 2 || logits[1] != spec.classes) {
    fail(ErrorCode::InvalidShape, "model output '" + spec.layers[static_cast<size_t>(spec.output - 1)].name +
                                      "' has shape " + shape_to_string(logits) + "; expected [n, " +
                                      std::to_string(spec.classes) + "]");
  }
  return shapes;
}

std::vector<ParamInfo> parameter_table(const GraphSpec& spec, const std::vector<Shape>& shapes) {
  std::vector<ParamInfo> table;
  int64_t trainable_offset = 0, running_offset = 0;
  auto add = [&](int layer, const std::string& suffix, ParamRole role, int sub, Shape shape, bool trainable) {
    ParamInfo p;
    p.name = spec.layers[static_cast<size_t>(layer)].name + "." + suffix;
    p.layer = layer;
    p.role = role;
    p.sub = sub;
    p.numel = checked_numel(shape, p.name);
    p.shape = std::move(shape);
    p.trainable = trainable;
    int64_t& offset = trainable ? trainable_offset : running_offset;
    p.offset = offset;
    offset += (p.numel + 15) / 16 * 16;  // keep every parameter 64-byte aligned
    table.push_back(std::move(p));
  };
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const Layer& l = spec.layers[i];
    const Shape& x = shapes[static_cast<size_t>(l.inputs[0])];
    const int li = static_cast<int>(i);
    const int64_t c = x.back();
    switch (l.type) {
      case LayerType::Conv2d:
        add(li, "weight", ParamRole::Weight, 0, {l.kh, l.kw, c / l.groups, l.filters}, true);
        if (l.use_bias) add(li, "bias", ParamRole::Bias, 0, {l.filters}, true);
        break;
      case LayerType::BatchNorm:
        add(li, "weight", ParamRole::Gamma, 0, {c}, true);
        add(li, "bias", ParamRole::Beta, 0, {c}, true);
        add(li, "running_mean", ParamRole::RunningMean, 0, {c}, false);
        add(li, "running_var", ParamRole::RunningVar, 0, {c}, false);
        break;
      case LayerType::Dense:
        add(li, "weight", ParamRole::Weight, 0, {c, l.units}, true);
        if (l.use_bias) add(li, "bias", ParamRole::Bias, 0, {l.units}, true);
        break;
      case LayerType::SqueezeExcite:
        add(li, "fc1.weight", ParamRole::Weight, 1, {c, l.units}, true);
        add(li, "fc1.bias", ParamRole::Bias, 1, {l.units}, true);
        add(li, "fc2.weight", ParamRole::Weight, 2, {l.units, c}, true);
        add(li, "fc2.bias", ParamRole::Bias, 2, {c}, true);
        break;
      default:
        break;
    }
  }
  return table;
}

}  // namespace rn

namespace rn {

void check_activation_growth(const GraphSpec& spec, const std::vector<Shape>& shapes) {
  constexpr double kFloatBytes = sizeof(float);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const Layer& l = spec.layers[i];
    const Shape& x = shapes[static_cast<size_t>(l.inputs[0])];
    const Shape& y = shapes[i + 1];
    const double in = static_cast<double>(checked_numel(x, where(l)));
    const double out = static_cast<double>(checked_numel(y, where(l)));
    const bool weights_per_channel = l.type == LayerType::Conv2d || l.type == LayerType::Dense;
    const double paid = weights_per_channel ? std::max(1.0, double(y.back()) / double(x.back())) : 1.0;
    if (out <= kMaxActivationGrowth * paid * in) continue;
    fail(ErrorCode::Alloc,
         where(l) + ": its output " + shape_to_string(y) + " would take " +
             std::to_string(static_cast<int64_t>(out * kFloatBytes)) + " bytes from an input " + shape_to_string(x) +
             " of " + std::to_string(static_cast<int64_t>(in * kFloatBytes)) + " bytes (" +
             std::to_string(static_cast<int64_t>(out / in)) + "x; a layer may grow its input " +
             std::to_string(static_cast<int>(kMaxActivationGrowth)) +
             "x at most, beyond the channels its weights add). Refused as an absurd spec; a model that "
             "means it can set memoryBudget (bytes), which then bounds the arena instead");
  }
}

void check_feature_counts(const GraphSpec& spec, const std::vector<ParamInfo>& params, const std::vector<Shape>& shapes,
                          const Shape& input) {
  for (const ParamInfo& p : params) {
    const Layer& l = spec.layers[static_cast<size_t>(p.layer)];
    if (l.type != LayerType::Dense || p.role != ParamRole::Weight) continue;
    const Shape& x = shapes[static_cast<size_t>(l.inputs[0])];
    if (x.back() != p.shape[0]) {
      fail(ErrorCode::InvalidShape, "dense layer '" + l.name + "' was built for " + std::to_string(p.shape[0]) +
                                        " input features; an input of shape " + shape_to_string(input) + " gives it " +
                                        std::to_string(x.back()));
    }
  }
}

}  // namespace rn
