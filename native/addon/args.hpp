// Reading op options from the plain JS objects lib/ops.ts passes. lib validates and
// normalises first; these checks are the last line, so a direct call can't crash us.
#pragma once

#include "napi_config.hpp"

#include <cstdint>
#include <string>
#include <vector>

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
// Int32Array (or array of integers) -> labels.
std::vector<int32_t> labels_arg(const Napi::Value& v, const std::string& op);

}  // namespace rn::addon
