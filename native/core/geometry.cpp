#include "geometry.hpp"

#include "error.hpp"

namespace rn {
namespace {

struct Resolved {
  int64_t before, after, out;
};

// One spatial axis. TensorFlow's 'same': out = ceil(in / stride) and the total padding
// needed for that is split with the odd pixel at the end (bottom / right).
Resolved resolve_axis(int64_t in, int64_t k, int64_t stride, int64_t dilation, const Padding& padding, int axis,
                      const std::string& op, const std::string& shapes) {
  const int64_t span = (k - 1) * dilation + 1;
  Resolved r{0, 0, 0};
  switch (padding.mode) {
    case PaddingMode::Same: {
      r.out = (in + stride - 1) / stride;
      int64_t total = (r.out - 1) * stride + span - in;
      if (total < 0) total = 0;
      r.before = total / 2;
      r.after = total - r.before;
      break;
    }
    case PaddingMode::Valid:
    case PaddingMode::Explicit: {
      if (padding.mode == PaddingMode::Explicit) {
        r.before = padding.pads[static_cast<size_t>(axis * 2)];
        r.after = padding.pads[static_cast<size_t>(axis * 2 + 1)];
      }
      int64_t padded = in + r.before + r.after;
      if (padded < span) {
        fail(ErrorCode::InvalidShape, op + ": the window (" + std::to_string(span) +
                                          " pixels with dilation) is larger than the " +
                                          (axis == 0 ? "height" : "width") + " " + std::to_string(in) +
                                          " plus padding " + padding_to_string(padding) + " (" + shapes + ")");
      }
      r.out = (padded - span) / stride + 1;
      break;
    }
  }
  return r;
}

void check_positive(int64_t v, const char* name, const std::string& op) {
  if (v < 1 || v > (int64_t{1} << 24)) {
    fail(ErrorCode::InvalidArgument,
         op + ": " + name + " must be an integer between 1 and 2^24, got " + std::to_string(v));
  }
}

void check_window_options(const Window2dOptions& o, const std::string& op) {
  check_positive(o.stride_h, "stride (height)", op);
  check_positive(o.stride_w, "stride (width)", op);
  check_positive(o.dilation_h, "dilation (height)", op);
  check_positive(o.dilation_w, "dilation (width)", op);
  if (o.padding.mode == PaddingMode::Explicit) {
    for (int64_t p : o.padding.pads) {
      if (p < 0 || p > (int64_t{1} << 24)) {
        fail(ErrorCode::InvalidArgument,
             op + ": padding must be non-negative integers, got " + padding_to_string(o.padding));
      }
    }
  }
}

}  // namespace

std::string padding_to_string(const Padding& padding) {
  switch (padding.mode) {
    case PaddingMode::Same:
      return "'same'";
    case PaddingMode::Valid:
      return "'valid'";
    case PaddingMode::Explicit:
      break;
  }
  const auto& p = padding.pads;
  return "[" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " + std::to_string(p[2]) + ", " +
         std::to_string(p[3]) + "]";
}

Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& w, int64_t groups, const Window2dOptions& opts,
                               const std::string& op) {
  const std::string shapes = "input " + shape_to_string(x) + ", filter " + shape_to_string(w);
  if (x.size() != 4) fail(ErrorCode::InvalidShape, op + ": input must be rank 4 NHWC, got " + shapes);
  if (w.size() != 4) fail(ErrorCode::InvalidShape, op + ": filter must be rank 4 HWIO, got " + shapes);
  checked_numel(x, op + " input");
  checked_numel(w, op + " filter");
  check_window_options(opts, op);
  if (groups < 1) fail(ErrorCode::InvalidArgument, op + ": groups must be >= 1, got " + std::to_string(groups));
  Conv2dGeometry g{};
  g.n = x[0];
  g.h = x[1];
  g.w = x[2];
  g.c_in = x[3];
  g.kh = w[0];
  g.kw = w[1];
  g.c_out = w[3];
  g.groups = groups;
  if (g.c_in % groups != 0 || g.c_out % groups != 0) {
    fail(ErrorCode::InvalidShape, op + ": groups=" + std::to_string(groups) + " must divide both the input channels (" +
                                      std::to_string(g.c_in) + ") and the output channels (" + std::to_string(g.c_out) +
                                      "); " + shapes);
  }
  if (w[2] != g.c_in / groups) {
    fail(ErrorCode::InvalidShape, op + ": filter input channels " + std::to_string(w[2]) +
                                      " must equal input channels " + std::to_string(g.c_in) + " / groups " +
                                      std::to_string(groups) + " = " + std::to_string(g.c_in / groups) + "; " + shapes);
  }
  g.stride_h = opts.stride_h;
  g.stride_w = opts.stride_w;
  g.dilation_h = opts.dilation_h;
  g.dilation_w = opts.dilation_w;
  Resolved rh = resolve_axis(g.h, g.kh, g.stride_h, g.dilation_h, opts.padding, 0, op, shapes);
  Resolved rw = resolve_axis(g.w, g.kw, g.stride_w, g.dilation_w, opts.padding, 1, op, shapes);
  g.pad_top = rh.before;
  g.pad_bottom = rh.after;
  g.out_h = rh.out;
  g.pad_left = rw.before;
  g.pad_right = rw.after;
  g.out_w = rw.out;
  checked_numel(g.output_shape(), op + " output");
  // The reduction length of one output must stay well inside int64 too.
  checked_mul(checked_mul(g.kh, g.kw, op), g.c_in, op + " filter volume");
  return g;
}

Pool2dGeometry pool2d_geometry(const Shape& x, int64_t kh, int64_t kw, const Window2dOptions& opts,
                               const std::string& op) {
  const std::string shapes =
      "input " + shape_to_string(x) + ", window [" + std::to_string(kh) + ", " + std::to_string(kw) + "]";
  if (x.size() != 4) fail(ErrorCode::InvalidShape, op + ": input must be rank 4 NHWC, got " + shapes);
  checked_numel(x, op + " input");
  check_positive(kh, "window height", op);
  check_positive(kw, "window width", op);
  check_window_options(opts, op);
  Pool2dGeometry g{};
  g.n = x[0];
  g.h = x[1];
  g.w = x[2];
  g.c = x[3];
  g.kh = kh;
  g.kw = kw;
  g.stride_h = opts.stride_h;
  g.stride_w = opts.stride_w;
  Resolved rh = resolve_axis(g.h, kh, g.stride_h, 1, opts.padding, 0, op, shapes);
  Resolved rw = resolve_axis(g.w, kw, g.stride_w, 1, opts.padding, 1, op, shapes);
  if (rh.before >= kh || rh.after >= kh || rw.before >= kw || rw.after >= kw) {
    fail(ErrorCode::InvalidArgument, op + ": padding " + padding_to_string(opts.padding) +
                                         " must be smaller than the window, or some windows would see only padding (" +
                                         shapes + ")");
  }
  g.pad_top = rh.before;
  g.pad_bottom = rh.after;
  g.out_h = rh.out;
  g.pad_left = rw.before;
  g.pad_right = rw.after;
  g.out_w = rw.out;
  return g;
}

}  // namespace rn
