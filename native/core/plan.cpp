#include "plan.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <queue>
#include <set>

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
           Backend& backend, int64_t memory_budget)
    : input_shape_(input), mode_(mode), backend_(backend) {
  const std::vector<Shape> shapes = infer_shapes(spec, input);
  check_feature_counts(spec, params, shapes, input);
  if (memory_budget == kNoMemoryBudget) check_activation_growth(spec, shapes);
  output_ = spec.output;
  classes_ = spec.classes;
  build_steps(spec, params, shapes);
  plan_memory(memory_budget);
}

const Shape& Plan::output_shape() const { return values_[static_cast<size_t>(output_)].shape; }

void Plan::build_steps(const GraphSpec& spec, const std::vector<ParamInfo>& params, const std::vector<Shape>& shapes) {
  const size_t layer_count = spec.layers.size();
  const LayerParams layer_params(params, layer_count);
  values_.assign(layer_count + 1, Value{});
  values_[0].shape = shapes[0];
  values_[0].numel = checked_numel(shapes[0], "input");
  std::vector<std::vector<int>> layer_consumers(layer_count + 1);
  for (size_t i = 0; i < layer_count; ++i) {
    for (int v : spec.layers[i].inputs) layer_consumers[static_cast<size_t>(v)].push_back(static_cast<int>(i));
  }
  auto single_consumer = [&](int v, LayerType type) -> int {
    const auto& c = layer_consumers[static_cast<size_t>(v)];
    if (c.size() != 1 || v == output_) return -1;
    return spec.layers[static_cast<size_t>(c[0])].type == type ? c[0] : -1;
  };
  std::vector<bool> absorbed(layer_count, false), materialized(layer_count + 1, false);
  materialized[0] = true;
  std::vector<int> step_of_layer(layer_count, -1);

  for (size_t i = 0; i < layer_count; ++i) {
    if (absorbed[i]) continue;
    const Layer& l = spec.layers[i];
    const int li = static_cast<int>(i);
    Step s;
    s.type = l.type;
    s.layer = li;
    s.in = l.inputs[0];
    s.out = li + 1;
    const Shape& x = shapes[static_cast<size_t>(s.in)];
    switch (l.type) {
      case LayerType::Conv2d: {
        Shape w{l.kh, l.kw, x[3] / l.groups, l.filters};
        s.conv = conv2d_geometry(x, w, l.groups, l.window, "conv2d layer '" + l.name + "'");
        s.w = layer_params.find(li, ParamRole::Weight)->offset;
        if (const ParamInfo* b = layer_params.find(li, ParamRole::Bias)) s.b = b->offset;
        break;
      }
      case LayerType::BatchNorm: {
        s.epsilon = l.epsilon;
        s.momentum = l.momentum;
        s.w = layer_params.find(li, ParamRole::Gamma)->offset;
        s.b = layer_params.find(li, ParamRole::Beta)->offset;
        s.rmean = layer_params.find(li, ParamRole::RunningMean)->offset;
        s.rvar = layer_params.find(li, ParamRole::RunningVar)->offset;
        // BN → ReLU, or BN → add (other operand computed earlier) [→ ReLU].
        if (int r = single_consumer(li + 1, LayerType::Relu); r >= 0) {
          s.relu = true;
          absorbed[static_cast<size_t>(r)] = true;
          s.out = r + 1;
        } else if (int a = single_consumer(li + 1, LayerType::Add); a >= 0) {
          const Layer& add = spec.layers[static_cast<size_t>(a)];
          const int other = add.inputs[0] == li + 1 ? add.inputs[1] : add.inputs[0];
          if (other != li + 1 && other <= li && materialized[static_cast<size_t>(other)]) {
            s.in2 = other;
            absorbed[static_cast<size_t>(a)] = true;
            s.out = a + 1;
            if (int r2 = single_consumer(a + 1, LayerType::Relu); r2 >= 0) {
              s.relu = true;
              absorbed[static_cast<size_t>(r2)] = true;
              s.out = r2 + 1;
            }
          }
        }
        // conv → BN statistics: the conv producing our input computes them if we are its only user.
        if (mode_.batch_stats && s.in > 0 && layer_consumers[static_cast<size_t>(s.in)].size() == 1) {
          const int producer = step_of_layer[static_cast<size_t>(s.in - 1)];
          if (producer >= 0 && steps_[static_cast<size_t>(producer)].type == LayerType::Conv2d &&
              steps_[static_cast<size_t>(producer)].out == s.in) {
            s.stats_in_conv = true;
            steps_[static_cast<size_t>(producer)].stats_step = static_cast<int>(steps_.size());
          }
        }
        break;
      }
      case LayerType::Relu:
        break;
      case LayerType::Add:
        s.in2 = l.inputs[1];
        if (int r = single_consumer(li + 1, LayerType::Relu); r >= 0) {
          s.relu = true;
          absorbed[static_cast<size_t>(r)] = true;
          s.out = r + 1;
        }
        break;
      case LayerType::MaxPool:
      case LayerType::AvgPool:
        s.pool =
            pool2d_geometry(x, l.kh, l.kw, l.window, std::string(layer_type_name(l.type)) + " layer '" + l.name + "'");
        break;
      case LayerType::GlobalAvgPool:
        break;
      case LayerType::Flatten:
        break;
      case LayerType::Dense:
        s.w = layer_params.find(li, ParamRole::Weight)->offset;
        if (const ParamInfo* b = layer_params.find(li, ParamRole::Bias)) s.b = b->offset;
        break;
      case LayerType::ZeroPad:
        s.pads = l.pads;
        break;
      case LayerType::SqueezeExcite:
        s.hidden = l.units;
        s.w = layer_params.find(li, ParamRole::Weight, 1)->offset;
        s.b = layer_params.find(li, ParamRole::Bias, 1)->offset;
        s.w2 = layer_params.find(li, ParamRole::Weight, 2)->offset;
        s.b2 = layer_params.find(li, ParamRole::Bias, 2)->offset;
        break;
      case LayerType::ZeroPadShortcut:
        s.sh = l.window.stride_h;
        s.sw = l.window.stride_w;
        break;
    }
    materialized[static_cast<size_t>(s.out)] = true;
    step_of_layer[i] = static_cast<int>(steps_.size());
    Value& out = values_[static_cast<size_t>(s.out)];
    out.shape = shapes[static_cast<size_t>(s.out)];
    out.numel = checked_numel(out.shape, l.name);
    out.producer = static_cast<int>(steps_.size());
    steps_.push_back(s);
  }
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
  // Backward runs the steps in reverse: the first to reach a value writes its gradient,
  // later ones accumulate.
  std::vector<bool> written(values_.size(), false);
  for (size_t si = steps_.size(); si-- > 0;) {
    Step& s = steps_[si];
    s.acc_in = written[static_cast<size_t>(s.in)];
    written[static_cast<size_t>(s.in)] = true;
    if (s.in2 >= 0) {
      s.acc_in2 = written[static_cast<size_t>(s.in2)];
      written[static_cast<size_t>(s.in2)] = true;
    }
  }
}

void Plan::plan_memory(int64_t memory_budget) {
  const int64_t S = static_cast<int64_t>(steps_.size());
  const int64_t end_of_step = 2 * S + 2;  // forward s at time s, loss at S, backward s at 2S - s
  std::vector<Interval> acts(values_.size()), grads(values_.size());
  std::vector<Interval> stats(steps_.size()), aux(steps_.size());
  std::vector<Interval*> items;
  std::vector<int> grad_owner(values_.size(), -1);  // in-place backward: the value whose grad buffer we share

  int64_t scratch = 0, max_value = 0;
  for (size_t v = 1; v < values_.size(); ++v) {
    const Value& val = values_[v];
    if (val.producer < 0) continue;
    max_value = std::max(max_value, val.numel);
    int64_t last_use = val.producer;
    for (int c : val.consumers) last_use = std::max<int64_t>(last_use, c);
    if (static_cast<int>(v) == output_) last_use = end_of_step;
    acts[v] = {aligned(backend_.activation_floats(val.numel)), val.producer, mode_.backward ? end_of_step : last_use};
    items.push_back(&acts[v]);
  }
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& s = steps_[si];
    const Value& x = values_[static_cast<size_t>(s.in)];
    const int64_t t = static_cast<int64_t>(si);
    const int64_t c = x.shape.back();
    switch (s.type) {
      case LayerType::Conv2d:
        scratch = std::max(scratch, backend_.conv2d_scratch_floats(s.conv));
        break;
      case LayerType::BatchNorm:
        scratch = std::max(scratch, backend_.channel_scratch_floats(c));
        if (mode_.batch_stats) {
          stats[si] = {aligned(2 * c), std::min<int64_t>(t, s.stats_in_conv ? t - 1 : t), end_of_step};
          if (s.stats_in_conv) stats[si].start = values_[static_cast<size_t>(s.in)].producer;
          items.push_back(&stats[si]);
        }
        break;
      case LayerType::SqueezeExcite: {
        const int64_t n = x.shape[0];
        aux[si] = {aligned(n * c) * 2 + aligned(n * s.hidden), t, mode_.backward ? end_of_step : t};
        items.push_back(&aux[si]);
        scratch = std::max(scratch, 2 * n * c + n * s.hidden);
        break;
      }
      default:
        break;
    }
  }
  if (mode_.backward) {
    for (size_t v = 1; v < values_.size(); ++v) {
      const Value& val = values_[v];
      if (val.producer < 0) continue;
      int64_t first_writer = -1;
      for (int c : val.consumers) first_writer = std::max<int64_t>(first_writer, c);
      const int64_t start = static_cast<int>(v) == output_ ? S : 2 * S - first_writer;
      grads[v] = {aligned(backend_.activation_floats(val.numel)), start, 2 * S - val.producer};
    }
    // In place: batch-norm and ReLU backward may write their input's gradient over their
    // output's when they are the first writer and the sizes match. A chain of them shares one
    // buffer, its last value's: walking the steps backwards, the output's owner is final when
    // its input is reached, so every value names that owner directly (no chains to follow).
    for (size_t si = steps_.size(); si-- > 0;) {
      const Step& s = steps_[si];
      if ((s.type != LayerType::BatchNorm && s.type != LayerType::Relu) || s.in == 0 || s.acc_in) continue;
      if (values_[static_cast<size_t>(s.in)].numel != values_[static_cast<size_t>(s.out)].numel) continue;
      const int owner = grad_owner[static_cast<size_t>(s.out)];
      const int root = owner >= 0 ? owner : s.out;
      grad_owner[static_cast<size_t>(s.in)] = root;
      Interval& r = grads[static_cast<size_t>(root)];
      const Interval& g = grads[static_cast<size_t>(s.in)];
      r.start = std::min(r.start, g.start);
      r.end = std::max(r.end, g.end);
    }
    for (size_t v = 1; v < values_.size(); ++v) {
      if (values_[v].producer >= 0 && grad_owner[v] < 0) items.push_back(&grads[v]);
    }
  }
  Interval scratch_iv{aligned(scratch), 0, end_of_step};
  Interval acc_a{mode_.backward ? aligned(backend_.activation_floats(max_value)) : 0, 0, end_of_step};
  Interval acc_b = acc_a;
  items.push_back(&scratch_iv);
  items.push_back(&acc_a);
  items.push_back(&acc_b);

  int64_t total = place(items);
  if (backend_.is_device()) {
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
  }
  const int64_t bytes = total * static_cast<int64_t>(sizeof(float));
  if (memory_budget != kNoMemoryBudget && bytes > memory_budget) {
    fail(ErrorCode::Alloc, std::string(mode_.backward ? "a training" : "an inference") + " plan for input " +
                               shape_to_string(input_shape_) + " needs " + std::to_string(bytes) +
                               " bytes of arena (activations, gradients and scratch), over the memory budget of " +
                               std::to_string(memory_budget) +
                               " bytes; use smaller batches or images, or raise memoryBudget");
  }
  arena_ = BackendBuffer(backend_, total, "a plan arena for input " + shape_to_string(input_shape_));

  for (size_t v = 1; v < values_.size(); ++v) {
    if (values_[v].producer < 0) continue;
    values_[v].act = acts[v].offset;
    if (mode_.backward) {
      const int owner = grad_owner[v];
      values_[v].grad = grads[owner >= 0 ? static_cast<size_t>(owner) : v].offset;
    }
  }
  for (size_t si = 0; si < steps_.size(); ++si) {
    Step& s = steps_[si];
    if (s.type == LayerType::BatchNorm && mode_.batch_stats) {
      s.mean = stats[si].offset;
      s.var = s.mean + values_[static_cast<size_t>(s.in)].shape.back();
    }
    if (s.type == LayerType::SqueezeExcite) s.aux = aux[si].offset;
  }
  scratch_ = scratch_iv.offset;
  scratch_floats_ = scratch;
  acc_a_ = acc_a.offset;
  acc_b_ = acc_b.offset;
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
  if (v == 0) return nullptr;
  return const_cast<float*>(arena_.data()) + values_[static_cast<size_t>(v)].grad;
}

}  // namespace rn
