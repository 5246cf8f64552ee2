#include "network_spec.hpp"

#include <unordered_map>

#include "../core/error.hpp"
#include "args.hpp"

namespace rn::addon {
namespace {

const char* kOp = "model spec";

std::string string_field(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) fail(ErrorCode::InvalidArgument, where + ": " + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

LayerType layer_type(const std::string& s, const std::string& where) {
  static const std::unordered_map<std::string, LayerType> types{
      {"conv2d", LayerType::Conv2d},
      {"batchNorm", LayerType::BatchNorm},
      {"relu", LayerType::Relu},
      {"add", LayerType::Add},
      {"maxPool", LayerType::MaxPool},
      {"avgPool", LayerType::AvgPool},
      {"globalAvgPool", LayerType::GlobalAvgPool},
      {"flatten", LayerType::Flatten},
      {"dense", LayerType::Dense},
      {"zeroPad", LayerType::ZeroPad},
      {"squeezeExcite", LayerType::SqueezeExcite},
      {"zeroPadShortcut", LayerType::ZeroPadShortcut},
  };
  auto it = types.find(s);
  if (it == types.end()) fail(ErrorCode::InvalidArgument, where + ": unknown layer type '" + s + "'");
  return it->second;
}

// Numeric padding n means n on every side.
Window2dOptions window(const Napi::Object& o, const std::string& where) {
  Napi::Object copy = Napi::Object::New(o.Env());
  copy.Set("strides", o.Get("strides"));
  if (o.Has("dilations")) copy.Set("dilations", o.Get("dilations"));
  Napi::Value pad = o.Get("padding");
  if (pad.IsNumber()) {
    Napi::Array arr = Napi::Array::New(o.Env(), 4);
    for (uint32_t i = 0; i < 4; ++i) arr.Set(i, pad);
    pad = arr;
  }
  copy.Set("padding", pad);
  return window_options(copy, where);
}

// The spec's inputShape: [height, width, channels], each positive.
Shape input_shape(const Napi::Object& o) {
  Napi::Value shape = o.Get("inputShape");
  if (!shape.IsArray() || shape.As<Napi::Array>().Length() != 3) {
    fail(ErrorCode::InvalidArgument, "model spec: inputShape must be [height, width, channels]");
  }
  Shape dims;
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Object holder = Napi::Object::New(o.Env());
    holder.Set("inputShape", shape.As<Napi::Array>().Get(i));
    const int64_t d = int_field(holder, "inputShape", kOp);
    if (d < 1) fail(ErrorCode::InvalidArgument, "model spec: inputShape entries must be positive");
    dims.push_back(d);
  }
  return dims;
}

// The layer's inputs as value ids, each the name of an earlier layer (or "input") in `value_of`.
std::vector<int> layer_inputs(const Napi::Object& lo, const std::string& where,
                              const std::unordered_map<std::string, int>& value_of) {
  Napi::Value inputs = lo.Get("inputs");
  if (!inputs.IsArray()) fail(ErrorCode::InvalidArgument, where + ": inputs must be an array of layer names");
  Napi::Array in = inputs.As<Napi::Array>();
  std::vector<int> ids;
  for (uint32_t k = 0; k < in.Length(); ++k) {
    Napi::Value name = in.Get(k);
    if (!name.IsString()) fail(ErrorCode::InvalidArgument, where + ": inputs must be layer names");
    auto it = value_of.find(name.As<Napi::String>().Utf8Value());
    if (it == value_of.end()) {
      fail(ErrorCode::InvalidArgument,
           where + ": input '" + name.As<Napi::String>().Utf8Value() + "' is not an earlier layer");
    }
    ids.push_back(it->second);
  }
  return ids;
}

// The fields of l.type's layers (filters, kernel, window, units, …) into l.
void read_type_fields(const Napi::Object& lo, const std::string& where, Layer& l) {
  switch (l.type) {
    case LayerType::Conv2d:
      l.filters = int_field(lo, "filters", where);
      pair_field(lo, "kernelSize", where, l.kh, l.kw);
      l.window = window(lo, where);
      l.groups = lo.Has("groups") ? int_field(lo, "groups", where) : 1;
      l.use_bias = bool_field(lo, "useBias", where);
      break;
    case LayerType::BatchNorm:
      l.epsilon = static_cast<float>(number_field(lo, "epsilon", where));
      l.momentum = static_cast<float>(number_field(lo, "momentum", where));
      l.residual_last = lo.Has("residualLast") && lo.Get("residualLast").ToBoolean().Value();
      break;
    case LayerType::MaxPool:
    case LayerType::AvgPool:
      pair_field(lo, "poolSize", where, l.kh, l.kw);
      l.window = window(lo, where);
      break;
    case LayerType::Dense:
      l.units = int_field(lo, "units", where);
      l.use_bias = bool_field(lo, "useBias", where);
      break;
    case LayerType::SqueezeExcite:
      l.units = int_field(lo, "hidden", where);
      break;
    case LayerType::ZeroPad: {
      Napi::Object holder = Napi::Object::New(lo.Env());
      Napi::Value pad = lo.Get("padding");
      holder.Set("padding", pad);
      Padding p = padding_field(holder, where);
      if (p.mode != PaddingMode::Explicit)
        fail(ErrorCode::InvalidArgument, where + ": padding must be [top, bottom, left, right]");
      l.pads = p.pads;
      break;
    }
    case LayerType::ZeroPadShortcut:
      l.filters = int_field(lo, "filters", where);
      pair_field(lo, "strides", where, l.window.stride_h, l.window.stride_w);
      break;
    default:
      break;
  }
}

// Layer i of the spec: name, type, inputs (resolved through `value_of`) and its type's fields.
Layer parse_layer(const Napi::Value& value, uint32_t i, const std::unordered_map<std::string, int>& value_of) {
  Napi::Object lo = object_arg(value, kOp, "layer");
  Layer l;
  l.name = string_field(lo, "name", "model spec layer " + std::to_string(i));
  const std::string where = "model spec layer '" + l.name + "'";
  l.type = layer_type(string_field(lo, "type", where), where);
  l.inputs = layer_inputs(lo, where, value_of);
  read_type_fields(lo, where, l);
  return l;
}

}  // namespace

GraphSpec parse_model_spec(const Napi::Value& value) {
  Napi::Object o = object_arg(value, kOp, "spec");
  GraphSpec spec;
  spec.name = o.Has("name") && o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "model";
  spec.input_shape = input_shape(o);
  spec.classes = int_field(o, "classes", kOp);
  Napi::Value layers = o.Get("layers");
  if (!layers.IsArray()) fail(ErrorCode::InvalidArgument, "model spec: layers must be an array");
  Napi::Array arr = layers.As<Napi::Array>();
  std::unordered_map<std::string, int> value_of{{"input", 0}};
  const uint32_t layer_count = arr.Length();
  spec.layers.reserve(layer_count);
  for (uint32_t i = 0; i < layer_count; ++i) {
    // One scope per layer: the handles a layer's reads create die with it. Left in the call's
    // scope they would pile up, and every garbage collection during the parse scans them all
    // (quadratic in the layer count).
    Napi::HandleScope scope(o.Env());
    Layer l = parse_layer(arr.Get(i), i, value_of);
    value_of[l.name] = static_cast<int>(i) + 1;
    spec.layers.push_back(std::move(l));
  }
  const std::string output = string_field(o, "output", kOp);
  auto it = value_of.find(output);
  if (it == value_of.end() || it->second == 0)
    fail(ErrorCode::InvalidArgument, "model spec: output '" + output + "' is not a layer");
  spec.output = it->second;
  return spec;
}

}  // namespace rn::addon
