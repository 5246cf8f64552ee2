#include "args.hpp"

#include <cmath>

#include "../core/error.hpp"

namespace rn::addon {
namespace {

int64_t to_int(const Napi::Value& v, const std::string& op, const std::string& what) {
  if (!v.IsNumber()) fail(ErrorCode::InvalidArgument, op + ": " + what + " must be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) {
    fail(ErrorCode::InvalidArgument, op + ": " + what + " must be an integer");
  }
  return static_cast<int64_t>(d);
}

}  // namespace

Napi::Object object_arg(const Napi::Value& v, const std::string& op, const char* name) {
  if (!v.IsObject()) fail(ErrorCode::InvalidArgument, op + ": " + name + " must be an object");
  return v.As<Napi::Object>();
}

int64_t int_field(const Napi::Object& o, const char* key, const std::string& op) { return to_int(o.Get(key), op, key); }

double number_field(const Napi::Object& o, const char* key, const std::string& op) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail(ErrorCode::InvalidArgument, op + ": " + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool bool_field(const Napi::Object& o, const char* key, const std::string& op) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) fail(ErrorCode::InvalidArgument, op + ": " + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

void pair_field(const Napi::Object& o, const char* key, const std::string& op, int64_t& a, int64_t& b) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
    fail(ErrorCode::InvalidArgument, op + ": " + key + " must be [height, width]");
  }
  Napi::Array arr = v.As<Napi::Array>();
  a = to_int(arr.Get(uint32_t{0}), op, key);
  b = to_int(arr.Get(uint32_t{1}), op, key);
}

Padding padding_field(const Napi::Object& o, const std::string& op) {
  Napi::Value v = o.Get("padding");
  Padding p;
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "same") {
      p.mode = PaddingMode::Same;
    } else if (s == "valid") {
      p.mode = PaddingMode::Valid;
    } else {
      fail(ErrorCode::InvalidArgument,
           op + ": padding must be 'same', 'valid', a number or [top, bottom, left, right], got '" + s + "'");
    }
    return p;
  }
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 4) {
    fail(ErrorCode::InvalidArgument, op + ": padding must be 'same', 'valid', a number or [top, bottom, left, right]");
  }
  Napi::Array arr = v.As<Napi::Array>();
  p.mode = PaddingMode::Explicit;
  for (uint32_t i = 0; i < 4; ++i) p.pads[i] = to_int(arr.Get(i), op, "padding");
  return p;
}

Window2dOptions window_options(const Napi::Object& o, const std::string& op) {
  Window2dOptions w;
  pair_field(o, "strides", op, w.stride_h, w.stride_w);
  if (o.Has("dilations")) pair_field(o, "dilations", op, w.dilation_h, w.dilation_w);
  w.padding = padding_field(o, op);
  return w;
}

std::vector<int32_t> labels_arg(const Napi::Value& v, const std::string& op) {
  return typed_array_copy<int32_t>(v, op, "labels");
}

}  // namespace rn::addon
