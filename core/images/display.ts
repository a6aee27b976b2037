/**
 * Images made viewable: resizing, gray to RGB, and mapping any real-valued tensor
 * (activations, gradients, weights) to [0, 1] for display.

 * Conventions: image tensors are float32 `[height, width, channels]` (or
 * `[batch, height, width, channels]`) with values in [0, 1] and 1 (gray) or 3
 * (RGB) channels. Every function that returns a tensor leaves
 * `tf.memory().numTensors` unchanged apart from the tensor it returns; inputs are
 * never disposed.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { checkImageTensor, checkSize, describeValue } from "./_checks.ts";

/** Interpolation of {@link resize}. */
export type ResizeMethod = "bilinear" | "nearest";

/**
 * Resizes an image or a batch of images (half-pixel centres, as in PIL and
 * OpenCV; nearest-neighbour with an integer factor repeats each pixel exactly).
 *
 * @param t A `[height, width, channels]` image.
 * @param height Output height.
 * @param width Output width.
 * @param method `"bilinear"` (default) or `"nearest"`.
 * @returns A new float32 `[height, width, channels]` tensor.
 */
export function resize(
  t: tf.Tensor3D,
  height: number,
  width: number,
  method?: ResizeMethod,
): tf.Tensor3D;
/**
 * Resizes a batch of images (half-pixel centres, as in PIL and OpenCV).
 *
 * @param t A `[batch, height, width, channels]` batch.
 * @param height Output height.
 * @param width Output width.
 * @param method `"bilinear"` (default) or `"nearest"`.
 * @returns A new float32 `[batch, height, width, channels]` tensor.
 */
export function resize(
  t: tf.Tensor4D,
  height: number,
  width: number,
  method?: ResizeMethod,
): tf.Tensor4D;
export function resize(
  t: tf.Tensor3D | tf.Tensor4D,
  height: number,
  width: number,
  method: ResizeMethod = "bilinear",
): tf.Tensor3D | tf.Tensor4D {
  if (!(t instanceof tf.Tensor) || (t.rank !== 3 && t.rank !== 4)) {
    throw new RangeError(
      "resize: expected a [height, width, channels] or [batch, height, width, channels] " +
        `tensor, got ${t instanceof tf.Tensor ? `shape [${t.shape.join(", ")}]` : typeof t}.`,
    );
  }
  checkSize(height, width, "resize");
  if (method !== "bilinear" && method !== "nearest") {
    throw new RangeError(`resize: method must be "bilinear" or "nearest", got "${method}".`);
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    const h = t.shape[t.rank - 3], w = t.shape[t.rank - 2];
    if (h === height && w === width) return x.clone();
    return method === "bilinear"
      ? tf.image.resizeBilinear(x, [height, width], false, true)
      : tf.image.resizeNearestNeighbor(x, [height, width], false, true);
  });
}

/**
 * Makes an image RGB: gray is copied into three channels, RGB is returned as a
 * copy.
 *
 * @param t A `[height, width, 1 | 3]` image.
 * @returns A new `[height, width, 3]` float32 tensor.
 */
export function toRgb(t: tf.Tensor3D): tf.Tensor3D {
  checkImageTensor(t, "toRgb");
  return tf.tidy(() => {
    const x = t.toFloat();
    return t.shape[2] === 1 ? tf.tile(x, [1, 1, 3]) : x.clone();
  });
}

/** How {@link toDisplay} maps values to [0, 1]. */
export type DisplayMode = "minmax" | "symmetric" | "percentile" | "clip01";

/** Options of {@link toDisplay}. */
export interface DisplayOptions {
  /**
   * - `"minmax"`: min to 0, max to 1 (a constant maps to 0).
   * - `"symmetric"`: 0 to 0.5, `±max|v|` to 0 and 1 (for signed maps such as
   *   gradients or weights).
   * - `"percentile"`: like `"symmetric"` (when some value is negative) or `[0, p]`
   *   to `[0, 1]` (when none is), where `p` is the `percentile`-th percentile of
   *   `|v|`, and values beyond are clipped: robust to a few extreme values.
   * - `"clip01"`: values clipped to [0, 1].
   *
   * @default {"minmax"}
   */
  mode?: DisplayMode;
  /**
   * Percentile of `|v|` that maps to full intensity in `"percentile"` mode,
   * in (0, 100].
   *
   * @default {99}
   */
  percentile?: number;
  /**
   * Normalize each item of the first axis (each image of a batch, each tile)
   * on its own instead of the whole tensor at once.
   *
   * @default {false}
   */
  perItem?: boolean;
}

/**
 * Maps any real-valued tensor to [0, 1] for viewing.
 *
 * @param t Any tensor (float or int), e.g. activations, gradients, weights.
 * @param options See {@link DisplayOptions}.
 * @returns A new float32 tensor of the same shape with values in [0, 1].
 */
export function toDisplay<T extends tf.Tensor>(t: T, options: DisplayOptions = {}): T {
  const { mode = "minmax", percentile = 99, perItem = false } = options;
  if (!(t instanceof tf.Tensor) || t.isDisposed) {
    throw new TypeError(`toDisplay: expected a live tf.Tensor, got ${describeValue(t)}.`);
  }
  if (!["minmax", "symmetric", "percentile", "clip01"].includes(mode)) {
    throw new RangeError(
      `toDisplay: mode must be "minmax", "symmetric", "percentile" or "clip01", got "${mode}".`,
    );
  }
  if (!(percentile > 0 && percentile <= 100)) {
    throw new RangeError(`toDisplay: percentile must be in (0, 100], got ${percentile}.`);
  }
  if (perItem && t.rank < 1) {
    throw new RangeError("toDisplay: perItem needs a tensor with at least one axis.");
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    if (mode === "clip01") return tf.clipByValue(x, 0, 1) as T;
    if (x.size === 0) return x.clone() as T;
    const byItem = perItem && t.rank >= 2;
    const items = byItem ? t.shape[0] : 1;
    const statShape = byItem ? [items, ...t.shape.slice(1).map(() => 1)] : [];
    const flat = x.reshape([items, -1]);
    const stat = (s: tf.Tensor): tf.Tensor => s.reshape(statShape);
    const safe = (s: tf.Tensor): tf.Tensor => tf.where(tf.greater(s, 0), s, tf.onesLike(s));
    if (mode === "minmax") {
      const lo = stat(flat.min(1));
      const range = tf.sub(stat(flat.max(1)), lo);
      return tf.clipByValue(tf.div(tf.sub(x, lo), safe(range)), 0, 1) as T;
    }
    const abs = flat.abs();
    if (mode === "symmetric") {
      const m = safe(stat(abs.max(1)));
      return tf.clipByValue(tf.add(0.5, tf.div(x, tf.mul(2, m))), 0, 1) as T;
    }
    const n = flat.shape[1] as number;
    const k = Math.min(n, Math.max(1, Math.ceil(n * (1 - percentile / 100))));
    const p = safe(stat(tf.topk(abs, k, false).values.min(1)));
    const signed = stat(tf.less(flat.min(1), 0).toFloat());
    const u = tf.div(x, p);
    const sym = tf.add(0.5, tf.mul(0.5, tf.clipByValue(u, -1, 1)));
    const pos = tf.clipByValue(u, 0, 1);
    return tf.add(tf.mul(signed, sym), tf.mul(tf.sub(1, signed), pos)) as T;
  });
}
