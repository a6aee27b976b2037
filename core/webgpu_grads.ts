/**
 * A max-pool gradient for the WebGPU backend that routes each window's gradient
 * to its *first* maximum, as the CPU and (with the core's kernel) WASM backends do.
 * Stock WebGPU picks the last maximum; on images with flat regions (MNIST strokes
 * give exactly tied conv outputs) that changes saliency and DeconvNet maps, so
 * WebGPU would disagree with the other backends.
 *
 * The swap is at the gradient level (the `MaxPool` gradient), for pools whose
 * windows do not overlap (stride = window, the common case), built from ops every
 * backend has; other pools and other backends keep the stock gradient.
 *
 * @module
 */
import { tf } from "./tf.ts";

let registered = false;

type Pad = "valid" | "same" | number;

/**
 * d maxPool / dx with ties sent to the first maximum of each window (row-major),
 * for non-overlapping windows.
 *
 * @param dy Gradient of the pool output `[b, oh, ow, c]`.
 * @param x The pool input `[b, h, w, c]`.
 * @param filter Window `[fh, fw]`.
 * @param pad Padding mode.
 * @returns The gradient w.r.t. `x`.
 */
export function firstMaxPoolGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filter: [number, number],
  pad: Pad,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const [, oh, ow] = dy.shape;
    const [fh, fw] = filter;
    const side = (n: number, o: number, f: number) => {
      const total = oh > 0 && pad === "same" ? Math.max((o - 1) * f + f - n, 0) : 0;
      const before = typeof pad === "number" ? pad : Math.floor(total / 2);
      return { before, after: o * f - n - before };
    };
    const rows = side(h, oh, fh), cols = side(w, ow, fw);
    // Pad with -inf so padding never wins; drop rows a valid pool leaves unused.
    let xp = tf.pad(x, [[0, 0], [rows.before, Math.max(0, rows.after)], [
      cols.before,
      Math.max(0, cols.after),
    ], [0, 0]], -Infinity);
    xp = xp.slice([0, 0, 0, 0], [b, oh * fh, ow * fw, c]);
    // [windows, positions in a window, channels]: rank 3, which WebGPU's cumsum takes.
    const windows = xp.reshape([b, oh, fh, ow, fw, c]).transpose([0, 1, 3, 2, 4, 5])
      .reshape([b * oh * ow, fh * fw, c]);
    const best = windows.max(1, true);
    // Float ops only: WebGPU's cumsum of a tensor cast from bool reads the bool's
    // integer bits (gives 1.4e-45 for 1). best >= windows, so 1 - sign(best - v)
    // is 1 at a maximum and 0 elsewhere.
    const isMax = tf.sub(1, tf.sign(tf.sub(best, windows)));
    // The first maximum: the running count of maxima is 1 there, and only there
    // (relu(1 - |count - 1|) is 1 at count 1, 0 at counts 0, 2, 3, ...).
    const count = tf.cumsum(isMax, 1);
    const first = tf.mul(isMax, tf.relu(tf.sub(1, tf.abs(tf.sub(count, 1)))));
    const g = first.mul(dy.reshape([b * oh * ow, 1, c]));
    const back = g.reshape([b, oh, ow, fh, fw, c]).transpose([0, 1, 3, 2, 4, 5])
      .reshape([b, oh * fh, ow * fw, c]);
    const full = tf.pad(back, [[0, 0], [0, Math.max(0, -rows.after)], [
      0,
      Math.max(0, -cols.after),
    ], [0, 0]]);
    return full.slice([0, rows.before, cols.before, 0], [b, h, w, c]) as tf.Tensor4D;
  });
}

/** Installs the first-maximum `MaxPool` gradient for WebGPU; safe to call twice. */
export function registerWebGpuGradients(): void {
  if (registered) return;
  registered = true;
  const stock = tf.getGradient("MaxPool");
  if (!stock) return;
  tf.unregisterGradient("MaxPool");
  tf.registerGradient({
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const pair = (v: unknown): [number, number] =>
        Array.isArray(v) ? [Number(v[0]), Number(v[1])] : [Number(v), Number(v)];
      const filter = pair(attrs.filterSize);
      const strides = pair(attrs.strides);
      const pad = attrs.pad as Pad;
      const overlapping = strides[0] !== filter[0] || strides[1] !== filter[1];
      if (tf.getBackend() !== "webgpu" || overlapping || attrs.dimRoundingMode != null) {
        return stock.gradFunc(dy, saved, attrs);
      }
      const x = saved[0] as tf.Tensor4D;
      return { x: () => firstMaxPoolGrad(dy as tf.Tensor4D, x, filter, pad) };
    },
  });
}
