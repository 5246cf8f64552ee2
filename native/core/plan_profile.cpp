// Profiling a plan's forward (plan.hpp: describe_steps, set_step_timer): what each step runs
// and how long it took.
#include <chrono>
#include <string>
#include <vector>

#include "plan.hpp"

namespace rn {
namespace {

std::string window(int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
  return std::to_string(kh) + "x" + std::to_string(kw) + "/" +
         (sh == sw ? std::to_string(sh) : std::to_string(sh) + "x" + std::to_string(sw));
}

std::string map(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w) + " out"; }

}  // namespace

std::vector<Plan::StepDescription> Plan::describe_steps() const {
  std::vector<StepDescription> out;
  out.reserve(steps_.size());
  for (const Step& s : steps_) {
    StepDescription d;
    d.layer = s.layer;
    d.op = layer_type_name(s.type);
    if (s.type == LayerType::Conv2d) {
      if (s.fold_beta >= 0) d.op += "+batchNorm";
      const Conv2dGeometry& g = s.conv;
      d.detail = window(g.kh, g.kw, g.stride_h, g.stride_w) + " " + std::to_string(g.c_in) + "->" +
                 std::to_string(g.c_out) + (g.groups > 1 ? " groups " + std::to_string(g.groups) : "") + ", " +
                 map(g.out_h, g.out_w);
    } else if (s.type == LayerType::MaxPool || s.type == LayerType::AvgPool) {
      const Pool2dGeometry& g = s.pool;
      d.detail = window(g.kh, g.kw, g.stride_h, g.stride_w) + " " + std::to_string(g.c) + ", " + map(g.out_h, g.out_w);
    }
    if (s.type == LayerType::Dense) {
      const Value& x = values_[static_cast<size_t>(s.in)];
      const Value& y = values_[static_cast<size_t>(s.out)];
      d.detail = std::to_string(x.shape.back()) + "->" + std::to_string(y.shape.back());
    }
    if (s.in2 >= 0 && s.type != LayerType::Add) d.op += "+add";
    if (s.relu) d.op += "+relu";
    out.push_back(std::move(d));
  }
  return out;
}

void Plan::time_step(size_t step, std::chrono::steady_clock::time_point start, const float* y) {
  if (backend_.is_device()) {  // its kernels run asynchronously: wait for this step's output
    unsigned char first[8];
    backend_.download(first, y, backend_.activation_bytes());
  }
  const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
  (*step_times_)[step] += ms.count();
}

}  // namespace rn
