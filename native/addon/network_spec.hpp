// Reading a model spec (lib/model/spec.ts's ModelSpec, a plain JS object) into the
// core's GraphSpec. lib validates first; these checks are the last line.
#pragma once

#include "napi_config.hpp"

#include "../core/graph.hpp"

namespace rn::addon {

GraphSpec parse_model_spec(const Napi::Value& value);

}  // namespace rn::addon
