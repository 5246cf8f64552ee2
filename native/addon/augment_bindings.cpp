#include "augment_bindings.hpp"

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../cpu/augment_kernels.hpp"
#include "args.hpp"
#include "async_op.hpp"
#include "errors.hpp"
#include "tensor_wrap.hpp"

namespace rn::addon {
namespace {

const std::string kOp = "augmentBatch";

std::string dims(int64_t a, int64_t b, int64_t c) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + "]";
}

// A non-negative integer option that fits in 2^53.
int64_t count_field(const Napi::Object& o, const char* key) {
  const int64_t v = int_field(o, key, kOp);
  if (v < 0) fail(ErrorCode::InvalidArgument, kOp + ": " + key + " must be a non-negative integer");
  return v;
}

// `channels` finite numbers (an array or a Float32Array), or empty for null / undefined.
std::vector<float> channel_values(const Napi::Object& o, const char* key, int64_t channels) {
  Napi::Value v = o.Get(key);
  std::vector<float> out;
  if (v.IsNull() || v.IsUndefined()) return out;
  if (!v.IsArray() && !(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array)) {
    fail(ErrorCode::InvalidArgument, kOp + ": " + key + " must be an array of numbers");
  }
  Napi::Object arr = v.As<Napi::Object>();
  const uint32_t n =
      v.IsArray() ? v.As<Napi::Array>().Length() : static_cast<uint32_t>(v.As<Napi::TypedArray>().ElementLength());
  if (static_cast<int64_t>(n) != channels) {
    fail(ErrorCode::InvalidShape, kOp + ": " + key + " has " + std::to_string(n) + " values but the images have " +
                                      std::to_string(channels) + " channels");
  }
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value e = arr.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(d) || std::fabs(d) > 3.0e38) {
      fail(ErrorCode::InvalidArgument, kOp + ": " + key + "[" + std::to_string(i) + "] must be a finite number");
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

// A [lo, hi] pair of finite numbers at o[key], or false when it is null / undefined.
bool range_field(const Napi::Object& o, const char* key, double& lo, double& hi) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return false;
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
    fail(ErrorCode::InvalidArgument, kOp + ": " + key + " must be [min, max]");
  }
  Napi::Object a = v.As<Napi::Object>();
  double r[2];
  for (uint32_t i = 0; i < 2; ++i) {
    Napi::Value e = a.Get(i);
    r[i] = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(r[i])) fail(ErrorCode::InvalidArgument, kOp + ": " + key + " must hold finite numbers");
  }
  lo = r[0];
  hi = r[1];
  return true;
}

// An object option, or an empty handle when it is null / undefined.
Napi::Object sub_object(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return Napi::Object();
  return object_arg(v, kOp, key);
}

// randomResizedCrop { scale, ratio }, centerCrop { resize }, colorJitter { brightness, contrast,
// saturation } (each [min, max] or null), mixupAlpha, cutmixAlpha.
void read_imagenet_options(const Napi::Object& o, cpu::AugmentParams& p) {
  if (Napi::Object rrc = sub_object(o, "randomResizedCrop"); !rrc.IsEmpty()) {
    p.crop = cpu::CropMode::RandomResized;
    if (!range_field(rrc, "scale", p.scale_lo, p.scale_hi) || !range_field(rrc, "ratio", p.ratio_lo, p.ratio_hi)) {
      fail(ErrorCode::InvalidArgument, kOp + ": randomResizedCrop needs scale and ratio");
    }
  }
  if (Napi::Object cc = sub_object(o, "centerCrop"); !cc.IsEmpty()) {
    if (p.crop != cpu::CropMode::Pad) {
      fail(ErrorCode::InvalidArgument, kOp + ": pass randomResizedCrop or centerCrop, not both");
    }
    p.crop = cpu::CropMode::Center;
    p.resize = count_field(cc, "resize");
  }
  if (Napi::Object cj = sub_object(o, "colorJitter"); !cj.IsEmpty()) {
    cpu::JitterRange* ranges[3] = {&p.brightness, &p.contrast, &p.saturation};
    const char* names[3] = {"brightness", "contrast", "saturation"};
    for (int k = 0; k < 3; ++k) {
      double lo = 1.0, hi = 1.0;
      ranges[k]->on = range_field(cj, names[k], lo, hi);
      ranges[k]->lo = static_cast<float>(lo);
      ranges[k]->hi = static_cast<float>(hi);
    }
  }
  for (const char* key : {"mixupAlpha", "cutmixAlpha"}) {
    Napi::Value v = o.Get(key);
    if (v.IsNull() || v.IsUndefined()) continue;
    const double a = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!(a >= 0.0 && a <= 1.0e6)) {
      fail(ErrorCode::InvalidArgument, kOp + ": " + key + " must be a finite number ≥ 0");
    }
    (std::string(key) == "mixupAlpha" ? p.mixup_alpha : p.cutmix_alpha) = a;
  }
}

// augmentBatch(src, dst, { count, imageShape: [h, w, c], padding, flip, mean, std, seed, step,
// randomResizedCrop?, centerCrop?, colorJitter?, mixupAlpha?, cutmixAlpha? }) → { kind, lambda }
Napi::Value augment_batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 3) fail(ErrorCode::InvalidArgument, kOp + ": expected (src, dst, options)");
    TensorPtr dst = NativeTensor::unwrap(info[1], kOp, "dst");
    Napi::Object o = object_arg(info[2], kOp, "options");

    cpu::AugmentParams p;
    p.count = count_field(o, "count");
    Napi::Value shape = o.Get("imageShape");
    if (!shape.IsArray() || shape.As<Napi::Array>().Length() != 3) {
      fail(ErrorCode::InvalidShape, kOp + ": imageShape must be [height, width, channels]");
    }
    Napi::Object s = shape.As<Napi::Object>();
    int64_t hwc[3];
    for (uint32_t i = 0; i < 3; ++i) {
      Napi::Value d = s.Get(i);
      const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : std::nan("");
      if (!std::isfinite(v) || v != std::floor(v) || v < 1 || v > double(1 << 24)) {
        fail(ErrorCode::InvalidShape, kOp + ": imageShape must be [height, width, channels] of positive integers");
      }
      hwc[i] = static_cast<int64_t>(v);
    }
    p.height = hwc[0];
    p.width = hwc[1];
    p.channels = hwc[2];
    p.padding = count_field(o, "padding");
    p.flip = bool_field(o, "flip", kOp);
    p.seed = static_cast<uint64_t>(count_field(o, "seed"));
    p.step = static_cast<uint64_t>(count_field(o, "step"));
    std::vector<float> mean = channel_values(o, "mean", p.channels);
    std::vector<float> stdev = channel_values(o, "std", p.channels);
    for (size_t i = 0; i < stdev.size(); ++i) {
      if (!(stdev[i] > 0.0f)) fail(ErrorCode::InvalidArgument, kOp + ": std[" + std::to_string(i) + "] must be > 0");
    }
    if (p.padding > (int64_t{1} << 24)) fail(ErrorCode::InvalidArgument, kOp + ": padding must be at most 2^24");
    read_imagenet_options(o, p);

    const Shape& ds = dst->shape();
    const bool resamples = p.crop != cpu::CropMode::Pad;
    if (resamples && ds.size() == 4 && ds[3] == p.channels) {
      p.out_height = ds[1];  // the window is resampled to dst's size
      p.out_width = ds[2];
    }
    if (ds.size() != 4 || ds[3] != p.channels || (!resamples && (ds[1] != p.height || ds[2] != p.width))) {
      fail(ErrorCode::InvalidShape, kOp + ": dst has shape " + shape_to_string(ds) + " but imageShape is " +
                                        dims(p.height, p.width, p.channels) + " (dst must be [n, " +
                                        std::to_string(p.height) + ", " + std::to_string(p.width) + ", " +
                                        std::to_string(p.channels) + "])");
    }
    if (p.count > ds[0]) {
      fail(ErrorCode::InvalidShape, kOp + ": count " + std::to_string(p.count) + " is above dst's batch size " +
                                        std::to_string(ds[0]) + " (dst shape " + shape_to_string(ds) + ")");
    }
    // src is copied last (read_typed_array), once the options' getters have run: one batch,
    // count·h·w·c floats — 3 MB for 256 CIFAR images, a memcpy far shorter than the kernel —
    // so that JS may reuse, shrink, transfer or (shared) write src as soon as this returns.
    if (double(p.count) * double(p.height) * double(p.width) * double(p.channels) > 0x1.0p52) {
      fail(ErrorCode::InvalidShape, kOp + ": count × imageShape is too large");
    }
    const int64_t need = p.count * p.height * p.width * p.channels;  // checked above: no overflow
    auto src = std::make_shared<std::vector<float>>(
        read_typed_array<float>(info[0], kOp, "src", [&](std::span<const float> values) {
          if (static_cast<int64_t>(values.size()) < need) {
            fail(ErrorCode::InvalidShape, kOp + ": src has " + std::to_string(values.size()) + " floats but " +
                                              std::to_string(p.count) + " images of " +
                                              dims(p.height, p.width, p.channels) + " need " + std::to_string(need));
          }
          return std::vector<float>(values.begin(), values.begin() + need);
        }));

    // dst is a shared reference, so dispose() meanwhile cannot free it; the caller must not
    // use dst until the promise settles.
    auto channel =
        std::make_shared<std::pair<std::vector<float>, std::vector<float>>>(std::move(mean), std::move(stdev));
    auto mix = std::make_shared<cpu::AugmentMix>();
    return AsyncOp::queue(
        env, "resnet-native:augmentBatch",
        [src, dst, p, channel, mix]() mutable {
          p.mean = channel->first.empty() ? nullptr : channel->first.data();
          p.std = channel->second.empty() ? nullptr : channel->second.data();
          *mix = cpu::augment_batch(src->data(), dst->data(), p);
        },
        [mix](Napi::Env e) -> Napi::Value {
          Napi::Object r = Napi::Object::New(e);
          r.Set("kind", mix->kind == 0 ? "none" : mix->kind == 1 ? "mixup" : "cutmix");
          r.Set("lambda", mix->lambda);
          return r;
        });
  });
}

}  // namespace

void define_augment(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentBatch", Napi::Function::New<augment_batch>(env, "augmentBatch"));
}

}  // namespace rn::addon
