#include "plan.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <queue>
#include <set>
#include <tuple>

#include "error.hpp"

namespace rn {
namespace {

constexpr int64_t kAlign = 16;  // floats: every buffer starts 64-byte aligned
int64_t aligned(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// One buffer to place: `size` floats alive over the time steps [start, end].
struct Interval {
  int64_t size, start, end;
  int64_t offset = -1;
};

// Buffers alive at the last time step overlap each other there, so every placement keeps
// them apart: they are stacked at the bottom in order of start. The part of that stack a
// buffer alive over [s, e] overlaps is then a prefix: the ones that started by e.
class TailStack {
 public:
  explicit TailStack(std::vector<Interval*> tails) {
    std::sort(tails.begin(), tails.end(), [](const Interval* a, const Interval* b) { return a->start < b->start; });
    for (Interval* t : tails) {
      t->offset = top_;
      top_ += t->size;
      starts_.push_back(t->start);
      tops_.push_back(top_);
    }
  }
  int64_t top() const { return top_; }
  // The lowest free offset for a buffer that ends at `end`.
  int64_t above_those_started_by(int64_t end) const {
    const auto n = std::upper_bound(starts_.begin(), starts_.end(), end) - starts_.begin();
    return n == 0 ? 0 : tops_[static_cast<size_t>(n - 1)];
  }

 private:
  std::vector<int64_t> starts_, tops_;
  int64_t top_ = 0;
};

// Pairs of buffers alive at a common time step: all pairs less those where one ends before
// the other starts. O(n log n).
int64_t overlapping_pairs(const std::vector<Interval*>& items) {
  std::vector<int64_t> ends;
  ends.reserve(items.size());
  for (const Interval* it : items) ends.push_back(it->end);
  std::sort(ends.begin(), ends.end());
  const auto n = static_cast<int64_t>(items.size());
  int64_t disjoint = 0;
  for (const Interval* it : items) disjoint += std::lower_bound(ends.begin(), ends.end(), it->start) - ends.begin();
  return n * (n - 1) / 2 - disjoint;
}

// Greedy by size (as TFLite's arena planner): largest first, each at the lowest offset above
// the tail stack's prefix that no time-overlapping buffer placed before occupies. On every
// standard model it reaches the peak of live bytes. O(n log n + pairs · log), the overlapping
// pairs found by one sweep over time.
void place_greedy(std::vector<Interval*>& items, const TailStack& stack) {
  const size_t n = items.size();
  std::vector<size_t> by_start(n);
  for (size_t i = 0; i < n; ++i) by_start[i] = i;
  std::sort(by_start.begin(), by_start.end(), [&](size_t a, size_t b) { return items[a]->start < items[b]->start; });
  std::vector<std::vector<size_t>> overlaps(n);
  std::set<std::pair<int64_t, size_t>> alive;  // (end, index)
  for (size_t j : by_start) {
    while (!alive.empty() && alive.begin()->first < items[j]->start) alive.erase(alive.begin());
    for (const auto& [end, i] : alive) {
      overlaps[i].push_back(j);
      overlaps[j].push_back(i);
    }
    alive.emplace(items[j]->end, j);
  }
  std::vector<size_t> by_size = by_start;
  std::stable_sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) { return items[a]->size > items[b]->size; });
  std::vector<std::pair<int64_t, int64_t>> busy;
  for (size_t i : by_size) {
    Interval& it = *items[i];
    busy.clear();
    for (size_t j : overlaps[i]) {
      if (items[j]->offset >= 0) busy.emplace_back(items[j]->offset, items[j]->offset + items[j]->size);
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = stack.above_those_started_by(it.end);
    for (const auto& [b, e] : busy) {
      if (offset + it.size <= b) break;
      offset = std::max(offset, e);
    }
    it.offset = offset;
  }
}

// The arena's free gaps below its top, found by offset (to merge neighbours) and by size
// (best fit). Every operation is O(log n).
class FreeGaps {
 public:
  explicit FreeGaps(int64_t base) : top_(base) {}
  // The lowest offset of the smallest gap that holds `size` floats, else the top (which grows).
  int64_t take(int64_t size) {
    auto fit = by_size_.lower_bound({size, 0});
    if (fit == by_size_.end()) {
      const int64_t offset = top_;
      top_ += size;
      return offset;
    }
    const auto [gap, offset] = *fit;
    by_size_.erase(fit);
    by_offset_.erase(offset);
    if (gap > size) insert(offset + size, gap - size);
    return offset;
  }
  // Frees [offset, offset + size), merged with the free gaps beside it; a gap that reaches
  // the top lowers the top instead.
  void give_back(int64_t offset, int64_t size) {
    auto next = by_offset_.lower_bound(offset);
    if (next != by_offset_.end() && next->first == offset + size) {
      size += next->second;
      erase(next);
    }
    auto prev = by_offset_.lower_bound(offset);
    if (prev != by_offset_.begin() && std::prev(prev)->first + std::prev(prev)->second == offset) {
      --prev;
      offset = prev->first;
      size += prev->second;
      erase(prev);
    }
    if (offset + size == top_) {
      top_ = offset;
    } else {
      insert(offset, size);
    }
  }

 private:
  void insert(int64_t offset, int64_t size) {
    by_offset_.emplace(offset, size);
    by_size_.emplace(size, offset);
  }
  void erase(std::map<int64_t, int64_t>::iterator it) {
    by_size_.erase({it->second, it->first});
    by_offset_.erase(it);
  }
  std::map<int64_t, int64_t> by_offset_;           // offset → size
  std::set<std::pair<int64_t, int64_t>> by_size_;  // (size, offset)
  int64_t top_;
};

// A sweep over time, O(n log n) whatever the overlaps, above the whole tail stack: at each
// buffer's start the buffers that ended before it are freed, then it takes the smallest free
// gap that holds it, else the top. Among buffers starting together the largest goes first.
// Up to ~16% above greedy by size on standard models, so only its fallback.
void place_sweep(std::vector<Interval*>& items, const TailStack& stack) {
  std::sort(items.begin(), items.end(), [](const Interval* a, const Interval* b) {
    return a->start != b->start ? a->start < b->start : a->size > b->size;
  });
  auto ends_later = [](const Interval* a, const Interval* b) { return a->end > b->end; };
  std::priority_queue<Interval*, std::vector<Interval*>, decltype(ends_later)> alive(ends_later);
  FreeGaps gaps(stack.top());
  for (Interval* it : items) {
    while (!alive.empty() && alive.top()->end < it->start) {
      gaps.give_back(alive.top()->offset, alive.top()->size);
      alive.pop();
    }
    it->offset = gaps.take(it->size);
    if (it->size > 0) alive.push(it);
  }
}

// Greedy by size costs the number of overlapping pairs: a few per buffer in real networks
// (ResNet-152's training plan: under one), quadratic only in graphs where thousands of
// values live at once. Past this many per buffer the sweep places them instead.
constexpr int64_t kGreedyPairsPerBuffer = 64;

// Places every buffer (sets its offset) and returns the arena size: the buffers alive to the
// end stacked, the others above by greedy by size, or by the sweep where overlaps abound.
// Near-linear in the buffer count either way.
int64_t place(const std::vector<Interval*>& items) {
  int64_t last = 0;
  for (const Interval* it : items) last = std::max(last, it->end);
  std::vector<Interval*> tails, rest;
  for (Interval* it : items) (it->end == last ? tails : rest).push_back(it);
  const TailStack stack(std::move(tails));
  if (overlapping_pairs(rest) <= kGreedyPairsPerBuffer * static_cast<int64_t>(rest.size())) {
    place_greedy(rest, stack);
  } else {
    place_sweep(rest, stack);
  }
  int64_t total = stack.top();
  for (const Interval* it : rest) total = std::max(total, it->offset + it->size);
  return total;
}

// A layer's parameters by role, found in O(1): parameter_table lists them layer by layer,
// so each layer's are one run that starts at first_[layer].
class LayerParams {
 public:
  LayerParams(const std::vector<ParamInfo>& params, size_t layer_count)
      : params_(params), first_(layer_count, params.size()) {
    for (size_t i = params.size(); i-- > 0;) first_[static_cast<size_t>(params[i].layer)] = i;
  }
  // [lo, hi) over the layer's trainable parameters' offsets; {-1, -1} when it has none.
  std::pair<int64_t, int64_t> trainable_span(int layer) const {
    int64_t lo = -1, hi = -1;
    for (size_t i = first_[static_cast<size_t>(layer)]; i < params_.size() && params_[i].layer == layer; ++i) {
      const ParamInfo& p = params_[i];
      if (!p.trainable) continue;
      lo = lo < 0 ? p.offset : std::min(lo, p.offset);
      hi = std::max(hi, p.offset + p.numel);
    }
    return {lo, hi};
  }
  const ParamInfo* find(int layer, ParamRole role, int sub = 0) const {
    for (size_t i = first_[static_cast<size_t>(layer)]; i < params_.size() && params_[i].layer == layer; ++i) {
      if (params_[i].role == role && params_[i].sub == sub) return &params_[i];
    }
    return nullptr;
  }

 private:
  const std::vector<ParamInfo>& params_;
  std::vector<size_t> first_;
};

}  // namespace

Plan::Plan(const GraphSpec& spec, const std::vector<ParamInfo>& params, const Shape& input, PlanMode mode,
           Backend& backend, int64_t memory_budget, const Freezing& freezing)
    : input_shape_(input), mode_(mode), backend_(backend) {
  const std::vector<Shape> shapes = infer_shapes(spec, input);
  check_feature_counts(spec, params, shapes, input);
  if (memory_budget == kNoMemoryBudget) check_activation_growth(spec, shapes);
  output_ = spec.output;
  classes_ = spec.classes;
  build_steps(spec, params, shapes, freezing);
  plan_memory(memory_budget);
}

const Shape& Plan::output_shape() const { return values_[static_cast<size_t>(output_)].shape; }

struct Plan::StepBuild {
  StepBuild(const GraphSpec& graph, const std::vector<ParamInfo>& params, int output_value)
      : spec(graph),
        layer_params(params, graph.layers.size()),
        output(output_value),
        layer_consumers(graph.layers.size() + 1),
        absorbed(graph.layers.size(), false),
        materialized(graph.layers.size() + 1, false),
        step_of_layer(graph.layers.size(), -1) {
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      for (int v : spec.layers[i].inputs) layer_consumers[static_cast<size_t>(v)].push_back(static_cast<int>(i));
    }
    materialized[0] = true;
  }
  // The layer reading value v when it is its only reader, is of `type` and v is not the output; else -1.
  int single_consumer(int v, LayerType type) const {
    const auto& c = layer_consumers[static_cast<size_t>(v)];
    if (c.size() != 1 || v == output) return -1;
    return spec.layers[static_cast<size_t>(c[0])].type == type ? c[0] : -1;
  }
  // Layer `layer` runs inside step s (fused): s now writes that layer's value.
  void absorb(Step& s, int layer) {
    absorbed[static_cast<size_t>(layer)] = true;
    s.out = layer + 1;
  }

  const GraphSpec& spec;
  const LayerParams layer_params;
  const int output;
  std::vector<std::vector<int>> layer_consumers;  // by value id: the layers reading it
  std::vector<bool> absorbed, materialized;       // by layer; by value id
  std::vector<int> step_of_layer;                 // -1 for absorbed layers
};

int Plan::backward_step_count() const {
  int n = 0;
  for (const Step& s : steps_) n += s.runs_backward ? 1 : 0;
  return n;
}

void Plan::build_steps(const GraphSpec& spec, const std::vector<ParamInfo>& params, const std::vector<Shape>& shapes,
                       const Freezing& freezing) {
  const size_t layer_count = spec.layers.size();
  values_.assign(layer_count + 1, Value{});
  values_[0].shape = shapes[0];
  values_[0].numel = checked_numel(shapes[0], "input");
  StepBuild b(spec, params, output_);
  for (size_t i = 0; i < layer_count; ++i) {
    if (b.absorbed[i]) continue;
    const Layer& l = spec.layers[i];
    Step s = layer_step(b, static_cast<int>(i), shapes[static_cast<size_t>(l.inputs[0])], freezing);
    if (l.type == LayerType::BatchNorm) fuse_batch_norm(s, b);
    if (l.type == LayerType::Add) fuse_add(s, b);
    b.materialized[static_cast<size_t>(s.out)] = true;
    b.step_of_layer[i] = static_cast<int>(steps_.size());
    Value& out = values_[static_cast<size_t>(s.out)];
    out.shape = shapes[static_cast<size_t>(s.out)];
    out.numel = checked_numel(out.shape, l.name);
    out.producer = static_cast<int>(steps_.size());
    steps_.push_back(s);
  }
  link_values(spec, b.materialized);
  mark_gradient_needs();
  mark_accumulation();
}

void Plan::mark_gradient_needs() {
  for (Value& v : values_) v.needs_grad = false;
  if (!mode_.backward) return;
  for (Step& s : steps_) {
    const bool trainable = s.params_lo >= 0 && !s.frozen;
    s.runs_backward = trainable || values_[static_cast<size_t>(s.in)].needs_grad ||
                      (s.in2 >= 0 && values_[static_cast<size_t>(s.in2)].needs_grad);
    values_[static_cast<size_t>(s.out)].needs_grad = s.runs_backward;
  }
}

Plan::Step Plan::layer_step(const StepBuild& b, int layer, const Shape& x, const Freezing& freezing) const {
  const Layer& l = b.spec.layers[static_cast<size_t>(layer)];
  const LayerParams& lp = b.layer_params;
  Step s;
  s.type = l.type;
  s.layer = layer;
  s.in = l.inputs[0];
  s.out = layer + 1;
  s.frozen = freezing.is_frozen(layer);
  std::tie(s.params_lo, s.params_hi) = lp.trainable_span(layer);
  switch (l.type) {
    case LayerType::Conv2d: {
      Shape w{l.kh, l.kw, x[3] / l.groups, l.filters};
      s.conv = conv2d_geometry(x, w, l.groups, l.window, "conv2d layer '" + l.name + "'");
      s.w = lp.find(layer, ParamRole::Weight)->offset;
      if (const ParamInfo* bias = lp.find(layer, ParamRole::Bias)) s.b = bias->offset;
      break;
    }
    case LayerType::BatchNorm:
      s.epsilon = l.epsilon;
      s.momentum = l.momentum;
      s.w = lp.find(layer, ParamRole::Gamma)->offset;
      s.b = lp.find(layer, ParamRole::Beta)->offset;
      s.rmean = lp.find(layer, ParamRole::RunningMean)->offset;
      s.rvar = lp.find(layer, ParamRole::RunningVar)->offset;
      s.batch_stats = mode_.batch_stats && !(s.frozen && freezing.uses_running_statistics(layer));
      break;
    case LayerType::Add:
      s.in2 = l.inputs[1];
      break;
    case LayerType::MaxPool:
    case LayerType::AvgPool:
      s.pool =
          pool2d_geometry(x, l.kh, l.kw, l.window, std::string(layer_type_name(l.type)) + " layer '" + l.name + "'");
      break;
    case LayerType::Dense:
      s.w = lp.find(layer, ParamRole::Weight)->offset;
      if (const ParamInfo* bias = lp.find(layer, ParamRole::Bias)) s.b = bias->offset;
      break;
    case LayerType::ZeroPad:
      s.pads = l.pads;
      break;
    case LayerType::SqueezeExcite:
      s.hidden = l.units;
      s.w = lp.find(layer, ParamRole::Weight, 1)->offset;
      s.b = lp.find(layer, ParamRole::Bias, 1)->offset;
      s.w2 = lp.find(layer, ParamRole::Weight, 2)->offset;
      s.b2 = lp.find(layer, ParamRole::Bias, 2)->offset;
      break;
    case LayerType::ZeroPadShortcut:
      s.sh = l.window.stride_h;
      s.sw = l.window.stride_w;
      break;
    case LayerType::Relu:
    case LayerType::GlobalAvgPool:
    case LayerType::Flatten:
      break;
  }
  return s;
}

void Plan::fuse_batch_norm(Step& s, StepBuild& b) {
  const int li = s.layer;
  if (int r = b.single_consumer(li + 1, LayerType::Relu); r >= 0) {
    s.relu = true;
    b.absorb(s, r);
  } else if (int a = b.single_consumer(li + 1, LayerType::Add); a >= 0) {
    const Layer& add = b.spec.layers[static_cast<size_t>(a)];
    const int other = add.inputs[0] == li + 1 ? add.inputs[1] : add.inputs[0];
    if (other != li + 1 && other <= li && b.materialized[static_cast<size_t>(other)]) {
      s.in2 = other;
      b.absorb(s, a);
      if (int r2 = b.single_consumer(a + 1, LayerType::Relu); r2 >= 0) {
        s.relu = true;
        b.absorb(s, r2);
      }
    }
  }
  if (s.batch_stats && s.in > 0 && b.layer_consumers[static_cast<size_t>(s.in)].size() == 1) {
    const int producer = b.step_of_layer[static_cast<size_t>(s.in - 1)];
    if (producer >= 0 && steps_[static_cast<size_t>(producer)].type == LayerType::Conv2d &&
        steps_[static_cast<size_t>(producer)].out == s.in) {
      s.stats_in_conv = true;
      steps_[static_cast<size_t>(producer)].stats_step = static_cast<int>(steps_.size());
    }
  }
}

void Plan::fuse_add(Step& s, StepBuild& b) const {
  if (int r = b.single_consumer(s.layer + 1, LayerType::Relu); r >= 0) {
    s.relu = true;
    b.absorb(s, r);
  }
}

void Plan::link_values(const GraphSpec& spec, const std::vector<bool>& materialized) {
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& s = steps_[si];
    values_[static_cast<size_t>(s.in)].consumers.push_back(static_cast<int>(si));
    if (s.in2 >= 0) values_[static_cast<size_t>(s.in2)].consumers.push_back(static_cast<int>(si));
  }
  if (!materialized[static_cast<size_t>(output_)]) {
    fail(ErrorCode::InvalidArgument,
         "model spec: the output layer is fused into another layer; make it the last layer");
  }
  for (size_t v = 1; v < values_.size(); ++v) {
    if (materialized[v] && values_[v].consumers.empty() && static_cast<int>(v) != output_) {
      fail(ErrorCode::InvalidArgument, "model spec: the output of layer '" + spec.layers[v - 1].name +
                                           "' is never used (every layer must lead to the output)");
    }
  }
}

void Plan::mark_accumulation() {
  std::vector<bool> written(values_.size(), false);
  for (size_t si = steps_.size(); si-- > 0;) {
    Step& s = steps_[si];
    if (!s.runs_backward) continue;  // writes no gradient
    s.acc_in = written[static_cast<size_t>(s.in)];
    written[static_cast<size_t>(s.in)] = true;
    if (s.in2 >= 0) {
      s.acc_in2 = written[static_cast<size_t>(s.in2)];
      written[static_cast<size_t>(s.in2)] = true;
    }
  }
}

struct Plan::Buffers {
  Buffers(size_t value_count, size_t step_count, int64_t steps)
      : S(steps),
        end_of_step(2 * steps + 2),
        acts(value_count),
        grads(value_count),
        stats(step_count),
        aux(step_count),
        grad_owner(value_count, -1) {}
  const int64_t S;
  const int64_t end_of_step;           // forward s at time s, loss at S, backward s at 2S - s
  std::vector<Interval> acts, grads;   // by value id
  std::vector<Interval> stats, aux;    // by step
  std::vector<Interval*> items;        // to place, in this order (placement's ties depend on it)
  std::vector<int> grad_owner;         // in-place backward: the value whose grad buffer we share
  int64_t scratch = 0, max_value = 0;  // floats
  int64_t sink = 0;                    // floats: the largest frozen layer whose backward runs
  Interval scratch_iv{}, acc_a{}, acc_b{}, sink_iv{};
};

void Plan::plan_memory(int64_t memory_budget) {
  Buffers m(values_.size(), steps_.size(), static_cast<int64_t>(steps_.size()));
  forward_lifetimes(m);
  if (mode_.backward) gradient_lifetimes(m);
  m.scratch_iv = {aligned(m.scratch), 0, m.end_of_step};
  m.acc_a = {mode_.backward ? aligned(backend_.activation_floats(m.max_value)) : 0, 0, m.end_of_step};
  m.acc_b = m.acc_a;
  m.items.push_back(&m.scratch_iv);
  m.items.push_back(&m.acc_a);
  m.items.push_back(&m.acc_b);
  if (m.sink > 0) {
    m.sink_iv = {aligned(m.sink), 0, m.end_of_step};
    m.items.push_back(&m.sink_iv);
  }

  const int64_t total = place_device_slots(place(m.items));
  check_memory_budget(total, memory_budget);
  arena_ = BackendBuffer(backend_, total, "a plan arena for input " + shape_to_string(input_shape_));
  assign_offsets(m);
}

void Plan::forward_lifetimes(Buffers& m) const {
  for (size_t v = 1; v < values_.size(); ++v) {
    const Value& val = values_[v];
    if (val.producer < 0) continue;
    m.max_value = std::max(m.max_value, val.numel);
    int64_t last_use = val.producer;
    for (int c : val.consumers) last_use = std::max<int64_t>(last_use, c);
    if (static_cast<int>(v) == output_) last_use = m.end_of_step;
    m.acts[v] = {aligned(backend_.activation_floats(val.numel)), val.producer,
                 mode_.backward ? m.end_of_step : last_use};
    m.items.push_back(&m.acts[v]);
  }
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& s = steps_[si];
    const Value& x = values_[static_cast<size_t>(s.in)];
    const int64_t t = static_cast<int64_t>(si);
    const int64_t c = x.shape.back();
    switch (s.type) {
      case LayerType::Conv2d:
        m.scratch = std::max(m.scratch, backend_.conv2d_scratch_floats(s.conv));
        break;
      case LayerType::BatchNorm:
        m.scratch = std::max(m.scratch, backend_.channel_scratch_floats(c));
        if (s.batch_stats) {
          m.stats[si] = {aligned(2 * c), std::min<int64_t>(t, s.stats_in_conv ? t - 1 : t), m.end_of_step};
          if (s.stats_in_conv) m.stats[si].start = values_[static_cast<size_t>(s.in)].producer;
          m.items.push_back(&m.stats[si]);
        }
        break;
      case LayerType::SqueezeExcite: {
        const int64_t n = x.shape[0];
        m.aux[si] = {aligned(n * c) * 2 + aligned(n * s.hidden), t, mode_.backward ? m.end_of_step : t};
        m.items.push_back(&m.aux[si]);
        m.scratch = std::max(m.scratch, 2 * n * c + n * s.hidden);
        break;
      }
      default:
        break;
    }
  }
}

void Plan::gradient_lifetimes(Buffers& m) const {
  const int64_t S = m.S;
  for (const Step& s : steps_) {
    // A frozen layer whose backward runs still computes its parameters' gradients (the
    // kernels take them together), into the sink; a convolution skips them instead.
    if (s.runs_backward && s.frozen && s.params_lo >= 0 && s.type != LayerType::Conv2d) {
      m.sink = std::max(m.sink, s.params_hi - s.params_lo);
    }
  }
  for (size_t v = 1; v < values_.size(); ++v) {
    const Value& val = values_[v];
    if (val.producer < 0 || !val.needs_grad) continue;
    int64_t first_writer = -1;
    for (int c : val.consumers) first_writer = std::max<int64_t>(first_writer, c);
    const int64_t start = static_cast<int>(v) == output_ ? S : 2 * S - first_writer;
    m.grads[v] = {aligned(backend_.activation_floats(val.numel)), start, 2 * S - val.producer};
  }
  // In place: batch-norm and ReLU backward may write their input's gradient over their
  // output's when they are the first writer and the sizes match. A chain of them shares one
  // buffer, its last value's: walking the steps backwards, the output's owner is final when
  // its input is reached, so every value names that owner directly (no chains to follow).
  for (size_t si = steps_.size(); si-- > 0;) {
    const Step& s = steps_[si];
    if ((s.type != LayerType::BatchNorm && s.type != LayerType::Relu) ||
        !values_[static_cast<size_t>(s.in)].needs_grad || s.acc_in)
      continue;
    if (values_[static_cast<size_t>(s.in)].numel != values_[static_cast<size_t>(s.out)].numel) continue;
    const int owner = m.grad_owner[static_cast<size_t>(s.out)];
    const int root = owner >= 0 ? owner : s.out;
    m.grad_owner[static_cast<size_t>(s.in)] = root;
    Interval& r = m.grads[static_cast<size_t>(root)];
    const Interval& g = m.grads[static_cast<size_t>(s.in)];
    r.start = std::min(r.start, g.start);
    r.end = std::max(r.end, g.end);
  }
  for (size_t v = 1; v < values_.size(); ++v) {
    if (values_[v].producer >= 0 && values_[v].needs_grad && m.grad_owner[v] < 0) m.items.push_back(&m.grads[v]);
  }
}

int64_t Plan::place_device_slots(int64_t total) {
  if (!backend_.is_device()) return total;
  // The host's input and labels are copied in each run (in mixed precision the fp32 input
  // is then converted into its own activation slot); predict's softmax or fp32 logits land
  // in the probabilities slot.
  const int64_t n = input_shape_[0];
  input_slot_ = total;
  total += aligned(values_[0].numel);
  if (backend_.activation_bytes() != static_cast<int>(sizeof(float))) {
    input_act_slot_ = total;
    total += aligned(backend_.activation_floats(values_[0].numel));
  }
  labels_slot_ = total;
  total += aligned(n);
  probs_slot_ = total;
  total += aligned(n * classes_);
  return total;
}

void Plan::check_memory_budget(int64_t total, int64_t memory_budget) const {
  const int64_t bytes = total * static_cast<int64_t>(sizeof(float));
  if (memory_budget != kNoMemoryBudget && bytes > memory_budget) {
    fail(ErrorCode::Alloc, std::string(mode_.backward ? "a training" : "an inference") + " plan for input " +
                               shape_to_string(input_shape_) + " needs " + std::to_string(bytes) +
                               " bytes of arena (activations, gradients and scratch), over the memory budget of " +
                               std::to_string(memory_budget) +
                               " bytes; use smaller batches or images, or raise memoryBudget");
  }
}

void Plan::assign_offsets(const Buffers& m) {
  for (size_t v = 1; v < values_.size(); ++v) {
    if (values_[v].producer < 0) continue;
    values_[v].act = m.acts[v].offset;
    if (values_[v].needs_grad) {
      const int owner = m.grad_owner[v];
      values_[v].grad = m.grads[owner >= 0 ? static_cast<size_t>(owner) : v].offset;
    }
  }
  for (size_t si = 0; si < steps_.size(); ++si) {
    Step& s = steps_[si];
    if (s.type == LayerType::BatchNorm && s.batch_stats) {
      s.mean = m.stats[si].offset;
      s.var = s.mean + values_[static_cast<size_t>(s.in)].shape.back();
    }
    if (s.type == LayerType::SqueezeExcite) s.aux = m.aux[si].offset;
  }
  scratch_ = m.scratch_iv.offset;
  scratch_floats_ = m.scratch;
  acc_a_ = m.acc_a.offset;
  acc_b_ = m.acc_b.offset;
  sink_ = m.sink > 0 ? m.sink_iv.offset : -1;
}

const int32_t* Plan::stage_labels(const int32_t* labels) {
  if (labels_slot_ < 0) return labels;
  float* slot = arena_.data() + labels_slot_;
  if (labels == reinterpret_cast<const int32_t*>(slot)) return labels;  // already staged
  backend_.upload(slot, labels, input_shape_[0] * static_cast<int64_t>(sizeof(int32_t)));
  return reinterpret_cast<const int32_t*>(slot);
}

const float* Plan::stage_input(const float* input, bool input_on_device) {
  if (input_slot_ < 0) return input;
  float* slot = arena_.data() + input_slot_;
  const int64_t bytes = values_[0].numel * static_cast<int64_t>(sizeof(float));
  if (input_on_device) {
    backend_.copy_device(slot, input, bytes);
  } else {
    backend_.upload(slot, input, bytes);
  }
  return slot;
}

float* Plan::act(int v, const float* input) const {
  if (v == 0) return const_cast<float*>(input);
  return const_cast<float*>(arena_.data()) + values_[static_cast<size_t>(v)].act;
}

float* Plan::grad(int v) const {
  if (v == 0 || !values_[static_cast<size_t>(v)].needs_grad) return nullptr;
  return const_cast<float*>(arena_.data()) + values_[static_cast<size_t>(v)].grad;
}

}  // namespace rn
