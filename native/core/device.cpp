#include "device.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "error.hpp"

#if defined(__linux__)
#include <dlfcn.h>
#include <glob.h>
#include <unistd.h>
#endif

namespace rn {

DeviceRequest parse_device(const std::string& device) {
  DeviceRequest r;
  if (device == "cpu") return r;
  if (device == "cuda" || device == "gpu") {
    r.cuda = true;
    return r;
  }
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() <= 8) {
    int ordinal = 0;
    for (size_t i = 5; i < device.size(); ++i) {
      if (device[i] < '0' || device[i] > '9') ordinal = -1;
      if (ordinal >= 0) ordinal = ordinal * 10 + (device[i] - '0');
    }
    if (ordinal >= 0) {
      r.cuda = true;
      r.ordinal = ordinal;
      return r;
    }
  }
  fail(ErrorCode::InvalidArgument, "device must be 'cpu', 'cuda' or 'cuda:N', got '" + device + "'");
}

#if defined(__linux__)
namespace {

const char* kCudnnHelp =
    "Install cuDNN 9 for CUDA 13 (for example `pip install nvidia-cudnn-cu13`) and set RESNET_CUDNN_PATH to the "
    "folder holding libcudnn.so.9 (a pip install puts it in site-packages/nvidia/cudnn/lib), or add that folder "
    "to LD_LIBRARY_PATH";

struct Plugin {
  bool tried = false;
  std::string error;  // set when loading failed
  std::string path, cudnn_path;
  rn_cuda_query_fn query = nullptr;
  rn_cuda_create_backend_fn create = nullptr;
  std::map<std::pair<int, unsigned>, Backend*> backends;
};

std::mutex g_mutex;
Plugin g_plugin;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool is_file(const std::string& p) { return !p.empty() && access(p.c_str(), R_OK) == 0; }

std::string folder_of_this_module() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_status), &info) == 0 || info.dli_fname == nullptr) return ".";
  std::string p = info.dli_fname;
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

// The site-packages folder of the first python3 that has nvidia.cudnn installed.
std::string python_cudnn_folder() {
  const std::string python = env("PYTHON").empty() ? "python3" : env("PYTHON");
  const std::string cmd = python +
                          " -c \"import importlib.util as u; s = u.find_spec('nvidia.cudnn'); "
                          "print(list(s.submodule_search_locations)[0] if s else '')\" 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {};
  char buf[4096] = {0};
  std::string out = fgets(buf, sizeof(buf), pipe) ? std::string(buf) : std::string();
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Candidates for libcudnn.so.9, in the documented order of preference.
std::vector<std::string> cudnn_candidates() {
  std::vector<std::string> c;
  for (const char* var : {"RESNET_CUDNN_PATH", "CUDNN_ROOT"}) {
    const std::string base = env(var);
    if (base.empty()) continue;
    c.push_back(base);  // the file itself
    for (const char* sub : {"", "/lib", "/lib64", "/lib/x86_64-linux-gnu"}) c.push_back(base + sub + "/libcudnn.so.9");
  }
  c.emplace_back("libcudnn.so.9");  // LD_LIBRARY_PATH and the system's library cache
  c.emplace_back("/usr/local/cuda/lib64/libcudnn.so.9");
  for (const std::string& base : {env("VIRTUAL_ENV"), env("CONDA_PREFIX"), env("HOME") + "/.local"}) {
    if (base.empty()) continue;
    for (const std::string& p : glob_paths(base + "/lib/python3*/site-packages/nvidia/cudnn/lib/libcudnn.so.9")) {
      c.push_back(p);
    }
  }
  for (const std::string& p : glob_paths("/usr/local/lib/python3*/dist-packages/nvidia/cudnn/lib/libcudnn.so.9")) {
    c.push_back(p);
  }
  return c;
}

bool load_global(const std::string& path, std::string* error) {
  if (path.find('/') != std::string::npos && !is_file(path)) return false;
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr) return true;
  const char* e = dlerror();
  if (error && e) *error = e;
  return false;
}

void load_plugin_locked() {
  Plugin& p = g_plugin;
  if (p.tried) return;
  p.tried = true;
  p.path =
      env("RESNET_CUDA_PLUGIN").empty() ? folder_of_this_module() + "/libresnet_cuda.so" : env("RESNET_CUDA_PLUGIN");
  if (!is_file(p.path)) {
    p.error = "the CUDA plugin " + p.path +
              " is not there: this build of resnet-native has no CUDA support (rebuild from source on a machine "
              "with nvcc and cuDNN 9: RESNET_NATIVE_BUILD_FROM_SOURCE=1 npm install, with CUDNN_ROOT set)";
    return;
  }
  std::string why;
  if (!load_global("libcuda.so.1", &why)) {
    p.error = "the NVIDIA driver (libcuda.so.1) could not be loaded" + (why.empty() ? "" : " (" + why + ")") +
              ": install the NVIDIA driver, or run on a machine with an NVIDIA GPU";
    return;
  }
  std::string cudnn_error;
  for (const std::string& candidate : cudnn_candidates()) {
    if (load_global(candidate, &cudnn_error)) {
      p.cudnn_path = candidate;
      break;
    }
  }
  if (p.cudnn_path.empty()) {
    const std::string folder = python_cudnn_folder();
    if (!folder.empty() && load_global(folder + "/lib/libcudnn.so.9", &cudnn_error))
      p.cudnn_path = folder + "/lib/libcudnn.so.9";
  }
  if (p.cudnn_path.empty()) {
    p.error = std::string("cuDNN 9 (libcudnn.so.9) was not found") +
              (cudnn_error.empty() ? "" : " (last error: " + cudnn_error + ")") + ". " + kCudnnHelp;
    return;
  }
  void* handle = dlopen(p.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = dlerror();
    p.error = "the CUDA plugin " + p.path + " could not be loaded: " + (e ? e : "unknown error");
    return;
  }
  auto abi = reinterpret_cast<rn_cuda_abi_version_fn>(dlsym(handle, "rn_cuda_abi_version"));
  p.query = reinterpret_cast<rn_cuda_query_fn>(dlsym(handle, "rn_cuda_query"));
  p.create = reinterpret_cast<rn_cuda_create_backend_fn>(dlsym(handle, "rn_cuda_create_backend"));
  if (!abi || !p.query || !p.create || abi() != cuda_abi::kCudaPluginAbi) {
    p.query = nullptr, p.create = nullptr;
    p.error = "the CUDA plugin " + p.path + " does not match this addon (reinstall resnet-native)";
  }
}

}  // namespace

Backend& backend_for_device(const DeviceRequest& request) {
  if (!request.cuda) return cpu_backend();
  std::lock_guard<std::mutex> lock(g_mutex);
  load_plugin_locked();
  if (!g_plugin.error.empty()) fail(ErrorCode::Device, "device '" + request.canonical() + "': " + g_plugin.error);
  const unsigned options = (request.allow_tf32 ? 1u : 0u) | (static_cast<unsigned>(request.precision) << 1);
  auto it = g_plugin.backends.find({request.ordinal, options});
  if (it != g_plugin.backends.end()) return *it->second;
  char error[1024] = {0};
  Backend* backend = g_plugin.create(request.ordinal, options, error, sizeof(error));
  if (backend == nullptr) fail(ErrorCode::Device, "device '" + request.canonical() + "': " + error);
  g_plugin.backends[{request.ordinal, options}] = backend;
  return *backend;
}

CudaStatus cuda_status() {
  CudaStatus s;
  std::lock_guard<std::mutex> lock(g_mutex);
  load_plugin_locked();
  s.plugin_path = g_plugin.path;
  s.cudnn_path = g_plugin.cudnn_path;
  if (!g_plugin.error.empty()) {
    s.reason = g_plugin.error;
    return s;
  }
  char error[1024] = {0};
  if (g_plugin.query(&s.info, error, sizeof(error)) != 0) {
    s.reason = error;
    return s;
  }
  s.available = s.info.device_count > 0;
  if (!s.available) s.reason = "no CUDA GPU is visible (CUDA_VISIBLE_DEVICES, or the driver sees none)";
  return s;
}

#else  // not Linux

Backend& backend_for_device(const DeviceRequest& request) {
  if (!request.cuda) return cpu_backend();
  fail(ErrorCode::Device, "device '" + request.canonical() + "': the CUDA backend is available on Linux x64 only");
}

CudaStatus cuda_status() {
  CudaStatus s;
  s.reason = "the CUDA backend is available on Linux x64 only";
  return s;
}

#endif

}  // namespace rn
