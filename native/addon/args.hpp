// Reading op options from the plain JS objects lib/ops.ts passes. lib validates and
// normalises first; these checks are the last line, so a direct call can't crash us.
#pragma once

#include "napi_config.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/geometry.hpp"

namespace rn::addon {

Napi::Object object_arg(const Napi::Value& v, const std::string& op, const char* name);
int64_t int_field(const Napi::Object& o, const char* key, const std::string& op);
double number_field(const Napi::Object& o, const char* key, const std::string& op);
bool bool_field(const Napi::Object& o, const char* key, const std::string& op);
// [a, b] of positive integers.
void pair_field(const Napi::Object& o, const char* key, const std::string& op, int64_t& a, int64_t& b);
Padding padding_field(const Napi::Object& o, const std::string& op);
// { strides: [h, w], dilations?: [h, w], padding }.
Window2dOptions window_options(const Napi::Object& o, const std::string& op);

// Typed arrays: the one way bindings read them. Their memory belongs to JS, which can shrink
// it (a resizable ArrayBuffer), detach and free it (a transfer) or write it (a
// SharedArrayBuffer, from any thread) — between two N-API calls (an option's getter is JS)
// and at any time once a call returns while its kernel runs. So no binding keeps a pointer
// into a typed array: read_typed_array takes `v`'s elements at their current address and
// length and lends them to `use`, which must copy what it needs and must not call into JS.
// Call it after the binding's other arguments are read. (A SharedArrayBuffer written by
// another thread meanwhile can give a torn copy, never an out-of-bounds read: it only grows.)
// E_DTYPE, naming `op` and `what`, unless `v` is a Float32Array (T = float) or an Int32Array
// (T = int32_t).
template <typename T, typename Use>
decltype(auto) read_typed_array(const Napi::Value& v, const std::string& op, const std::string& what, Use&& use) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, int32_t>);
  constexpr bool is_float = std::is_same_v<T, float>;
  if (!v.IsTypedArray() ||
      v.As<Napi::TypedArray>().TypedArrayType() != (is_float ? napi_float32_array : napi_int32_array)) {
    fail(ErrorCode::InvalidDtype, op + ": " + what + (is_float ? " must be a Float32Array" : " must be an Int32Array"));
  }
  const auto array = v.As<Napi::TypedArrayOf<T>>();  // address and length as of now
  return use(std::span<const T>(array.Data(), array.ElementLength()));
}

// read_typed_array's elements, copied.
template <typename T>
std::vector<T> typed_array_copy(const Napi::Value& v, const std::string& op, const std::string& what) {
  return read_typed_array<T>(v, op, what, [](std::span<const T> s) { return std::vector<T>(s.begin(), s.end()); });
}

// Int32Array -> labels.
std::vector<int32_t> labels_arg(const Napi::Value& v, const std::string& op);

}  // namespace rn::addon
