/**
 * A max-pool gradient for the WebGPU backend that routes each window's gradient
 * to its *first* maximum, as the CPU and (with `wasm_kernels.ts`) WASM backends do.
 * Stock WebGPU picks the last maximum; on images with flat regions (MNIST strokes
 * give exactly tied conv outputs) that changes saliency and DeconvNet maps, so
 * WebGPU would disagree with the other backends.
 *
 * The swap is at the gradient level (the `MaxPool` gradient), built from ops every
 * backend has: a window-major form for pools whose windows tile the input
 * (stride = window, the common case), and one pass per position in the window
 * for overlapping or gapped pools (3x3 stride 2, as in AlexNet and ResNet).
 * Other backends keep the stock gradient.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import type { UniformPad as Pad } from "./kernel_types.ts";

let registered = false;

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

/**
 * d maxPool / dx with ties sent to the first maximum of each window (row-major),
 * for any window and stride: each position (i, j) of the window is one strided
 * view of the padded input; it takes a window's gradient when it holds the
 * window's maximum and no earlier position did; the views' gradients are put
 * back in place (zeros between strides) and summed.
 *
 * @param dy Gradient of the pool output `[b, oh, ow, c]`.
 * @param x The pool input `[b, h, w, c]`.
 * @param filter Window `[fh, fw]`.
 * @param strides Strides `[sh, sw]`.
 * @param pad Padding mode.
 * @returns The gradient w.r.t. `x`.
 */
export function firstMaxPoolGradStrided(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filter: [number, number],
  strides: [number, number],
  pad: Pad,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const info = tf.backend_util.computePool2DInfo(x.shape, filter, strides, 1, pad);
    const { outHeight: oh, outWidth: ow } = info;
    const [fh, fw] = filter, [sh, sw] = strides;
    const { top, left } = info.padInfo;
    // Padded so that every window lies inside; -inf so padding never wins.
    const hp = Math.max((oh - 1) * sh + fh, top + h), wp = Math.max((ow - 1) * sw + fw, left + w);
    const xp = tf.pad(x, [[0, 0], [top, hp - h - top], [left, wp - w - left], [0, 0]], -Infinity);
    const best = tf.maxPool(x, filter, strides, pad);
    let seen = tf.zerosLike(best);
    let total = tf.zeros([b, hp, wp, c]) as tf.Tensor4D;
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const view = tf.stridedSlice(
          xp,
          [0, i, j, 0],
          [b, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c],
          [1, sh, sw, 1],
        );
        // Float ops only (see firstMaxPoolGrad): 1 where the view holds the max.
        const isMax = tf.sub(1, tf.sign(tf.sub(best, view)));
        const first = tf.mul(isMax, tf.sub(1, seen));
        seen = tf.minimum(tf.add(seen, isMax), 1);
        // Back in place: (sh - 1) zeros after each row, (sw - 1) after each column,
        // with rank-4 pads (WebGPU's pad is wrong at rank 6).
        const g = tf.mul(first, dy).reshape([b, oh, 1, ow * c]);
        const rowsSpread = tf.pad(g, [[0, 0], [0, 0], [0, sh - 1], [0, 0]])
          .reshape([b * oh * sh, ow, 1, c]);
        const spread = tf.pad(rowsSpread, [[0, 0], [0, 0], [0, sw - 1], [0, 0]])
          .reshape([b, oh * sh, ow * sw, c]);
        const placed = tf.pad(spread, [
          [0, 0],
          [i, Math.max(0, hp - i - oh * sh)],
          [j, Math.max(0, wp - j - ow * sw)],
          [0, 0],
        ]).slice([0, 0, 0, 0], [b, hp, wp, c]);
        total = tf.add(total, placed);
      }
    }
    return total.slice([0, top, left, 0], [b, h, w, c]) as tf.Tensor4D;
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
      if (tf.getBackend() !== "webgpu" || attrs.dimRoundingMode != null) {
        return stock.gradFunc(dy, saved, attrs);
      }
      const x = saved[0] as tf.Tensor4D;
      const tiled = strides[0] === filter[0] && strides[1] === filter[1];
      return {
        x: () =>
          tiled
            ? firstMaxPoolGrad(dy as tf.Tensor4D, x, filter, pad)
            : firstMaxPoolGradStrided(dy as tf.Tensor4D, x, filter, strides, pad),
      };
    },
  });
}
