// node-addon-api as this addon uses it: every addon file includes it through this header (never
// <napi.h> directly), so that all of them see one configuration — the same inline functions
// compiled differently in two files would be an ODR violation.
//
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: an environment that is being torn down (a worker
// terminated or exiting during a call) runs no JS and can take no exception. By default
// node-addon-api then throws a C++ exception out of its callback wrapper (std::terminate) or
// calls napi_fatal_error, either of which ends the whole process; with this it drops the
// exception, and the call's result with it. (NAPI_VERSION and NAPI_CPP_EXCEPTIONS are set for
// the target in CMakeLists.txt.)
#pragma once

#if defined(SRC_NAPI_H_) && !defined(NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS)
#error "napi.h was included before native/addon/napi_config.hpp: include napi_config.hpp instead"
#endif
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>
