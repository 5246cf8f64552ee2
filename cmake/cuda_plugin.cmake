# Builds native/cuda into the shared library resnet_cuda when nvcc and cuDNN 9 are found.
# The Node addon never links it: native/core/device.cpp loads it at run time.

function(resnet_cuda_unavailable why)
  if(RESNET_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RESNET_CUDA=ON but ${why}")
  endif()
  message(STATUS "CUDA plugin: not built (${why})")
endfunction()

if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  resnet_cuda_unavailable("the CUDA plugin is built on Linux only")
  return()
endif()

if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  resnet_cuda_unavailable("no CUDA compiler (nvcc) was found; set CUDACXX or put nvcc on PATH")
  return()
endif()

set(_cudnn_hints)
foreach(hint IN ITEMS "${CUDNN_ROOT}" "$ENV{CUDNN_ROOT}" "${RESNET_CUDNN_PATH}" "$ENV{RESNET_CUDNN_PATH}")
  if(hint)
    list(APPEND _cudnn_hints "${hint}" "${hint}/..")
  endif()
endforeach()
list(APPEND _cudnn_hints "${CMAKE_SOURCE_DIR}/.cudnn")
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_hints} PATH_SUFFIXES include
  PATHS /usr/include /usr/local/cuda/include /usr/include/x86_64-linux-gnu)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints} PATH_SUFFIXES lib lib64
  PATHS /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  resnet_cuda_unavailable("cuDNN 9 was not found (run `node scripts/fetch-cudnn.mjs`, or set CUDNN_ROOT / RESNET_CUDNN_PATH)")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Ampere, Hopper and Blackwell machine code, plus PTX for later GPUs to JIT.
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 100-real 100-virtual)
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
message(STATUS "CUDA plugin: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, cuDNN ${CUDNN_LIBRARY}")

file(GLOB RESNET_CUDA_SOURCES CONFIGURE_DEPENDS native/cuda/*.cpp native/cuda/kernels/*.cu)
add_library(resnet_cuda SHARED ${RESNET_CUDA_SOURCES})
target_include_directories(resnet_cuda SYSTEM PRIVATE ${CUDNN_INCLUDE_DIR})
target_compile_options(resnet_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${RESNET_WARNINGS}>)
# cudart is linked statically (the user needs only the driver and cuDNN); the core's
# symbols stay private to the plugin so they never interpose the addon's.
target_link_libraries(resnet_cuda PRIVATE resnet_core CUDA::cudart_static ${CUDNN_LIBRARY})
target_link_options(resnet_cuda PRIVATE "LINKER:--exclude-libs,ALL" "LINKER:--no-undefined")
set_target_properties(resnet_cuda PROPERTIES
  CUDA_SEPARABLE_COMPILATION OFF
  CXX_VISIBILITY_PRESET hidden
  CUDA_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  # cmake-js puts the addon in build/Release: the plugin goes beside it.
  LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/Release"
  LIBRARY_OUTPUT_DIRECTORY_RELEASE "${CMAKE_BINARY_DIR}/Release"
  SKIP_BUILD_RPATH ON)

# Kernel and backend checks against the CPU backend; run on a GPU machine (npm run test:cuda-native).
if(EXISTS ${CMAKE_SOURCE_DIR}/native/cuda/tests)
  file(GLOB RESNET_CUDA_TEST_SOURCES CONFIGURE_DEPENDS native/cuda/tests/*.cpp)
  if(RESNET_CUDA_TEST_SOURCES)
    add_executable(resnet_cuda_check EXCLUDE_FROM_ALL ${RESNET_CUDA_TEST_SOURCES} ${RESNET_CUDA_SOURCES})
    target_include_directories(resnet_cuda_check SYSTEM PRIVATE ${CUDNN_INCLUDE_DIR})
    target_link_libraries(resnet_cuda_check PRIVATE resnet_core CUDA::cudart_static ${CUDNN_LIBRARY})
    set_target_properties(resnet_cuda_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/Release")
  endif()
endif()
