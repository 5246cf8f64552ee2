// The resize-and-crop rule of a model's preprocessing, on a sharp pipeline: shared by
// io.decodeImage (and so predictImages and the CLI's predict) and datasets.imageFolder's
// `resizeTo`, so that evaluation and prediction prepare images the same way.
//
// The shorter side is scaled to resizeTo (the longer one to ⌊resizeTo · long / short⌋, as
// torchvision's Resize(int)) and [height, width] is cut from the centre (offsets rounded half to
// even, as torchvision's CenterCrop). When that would not cover the crop (a crop wider than
// resizeTo), the image is scaled up just enough to cover it. A square crop whose side is
// resizeTo is the same rule as "cover, then crop": it goes through sharp's own cover resize,
// exactly what datasets.imageFolder does by default. Without resizeTo, the image is stretched.
import type { Sharp } from 'sharp';

/** The most pixels the resized image (before the crop) may have: extreme aspect ratios are refused. */
export const MAX_RESIZED_PIXELS = 1 << 28;

/** Python's round(): halves to the even neighbour (torchvision's CenterCrop offsets). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `input()` (a fresh sharp pipeline over the image each call) resized and centre-cropped to
 * [h, w] by the rule above. Throws a plain Error (the caller wraps it, naming the file) when the
 * image has no size or the resized image would be absurdly large.
 */
export async function resizeAndCrop(input: () => Sharp, [h, w]: readonly [number, number], resizeTo: number | undefined): Promise<Sharp> {
  if (resizeTo === undefined) return input().resize({ width: w, height: h, fit: 'fill' });
  if (h === w && resizeTo === h) return input().resize({ width: w, height: h, fit: 'cover', position: 'centre' });
  const meta = await input().metadata();
  const W = meta.width;
  const H = meta.pageHeight ?? meta.height; // GIF: the first frame's height
  if (!W || !H) throw new Error('the image has no dimensions');
  let rw: number;
  let rh: number;
  if (W <= H) {
    rw = resizeTo;
    rh = Math.floor((resizeTo * H) / W);
  } else {
    rh = resizeTo;
    rw = Math.floor((resizeTo * W) / H);
  }
  if (rw < w || rh < h) {
    const up = Math.max(w / rw, h / rh);
    rw = Math.max(w, Math.round(rw * up));
    rh = Math.max(h, Math.round(rh * up));
  }
  if (rw * rh > MAX_RESIZED_PIXELS) {
    throw new Error(`its ${W}×${H} pixels would be resized to ${rw}×${rh}, above the limit of ${MAX_RESIZED_PIXELS} pixels`);
  }
  const top = roundHalfEven((rh - h) / 2);
  const left = roundHalfEven((rw - w) / 2);
  return input().resize({ width: rw, height: rh, fit: 'fill' }).extract({ left, top, width: w, height: h });
}
