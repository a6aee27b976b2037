/**
 * Resampling a batch under a per-image map, the one warp every geometric
 * transform ends in. Bilinear at input index coordinates; outside the input,
 * pixels are 0.
 *
 * Where the backend has convlens's warp kernels (`core/images/warp_kernel.ts`;
 * WASM and CPU), they do the work, in one pass per image. Elsewhere (WebGPU),
 * and with `{ kernel: false }`, the warp is composed from stock tfjs ops: an
 * affine map goes to `cropAndResize` when it only scales and shifts (crops,
 * flips, scale augmentation), `tf.image.transform` otherwise, and a batched
 * bilinear gather on a sampling grid on the CPU backend, whose `Transform`
 * kernel in tfjs 4.22 returns after the first image of a batch (the rest stay
 * at the fill value). Non-affine maps (lens distortion) build their sampling
 * grid as a tensor and use the grid kernel or the same bilinear gather.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { runSampleGridKernel, runWarpKernel } from "../../../core/images/warp_kernel.ts";
import { type Affine, axisAligned } from "./transform.ts";

/** Options of {@linkcode warpAffine} and {@linkcode sampleBilinear}. */
export interface WarpOptions {
  /**
   * Use the backend's warp kernel where it has one; false composes the warp
   * from stock tfjs ops (the reference the kernels are checked against).
   * @default true
   */
  kernel?: boolean;
}

/**
 * Bilinear sampling of `x` at a grid of input index coordinates, zero outside.
 *
 * @param x `[n, h, w, c]` images.
 * @param gx `[n, H, W]` columns to sample at (pixel index coordinates).
 * @param gy `[n, H, W]` rows.
 * @param options Whether to use the backend's kernel.
 * @returns A new `[n, H, W, c]` batch.
 */
export function sampleBilinear(
  x: tf.Tensor4D,
  gx: tf.Tensor3D,
  gy: tf.Tensor3D,
  options: WarpOptions = {},
): tf.Tensor4D {
  const fast = options.kernel === false ? undefined : runSampleGridKernel(x, gx, gy);
  if (fast) return fast;
  const [n, h, w, c] = x.shape;
  const [, H, W] = gx.shape;
  return tf.tidy(() => {
    const flat = x.reshape([n * h * w, c]);
    const x0 = gx.floor(), y0 = gy.floor();
    const fx = gx.sub(x0), fy = gy.sub(y0);
    const base = tf.range(0, n).mul(h * w).reshape([n, 1, 1]);
    let out: tf.Tensor | undefined;
    for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
      const xi = x0.add(dx), yi = y0.add(dy);
      const valid = xi.greaterEqual(0).logicalAnd(xi.lessEqual(w - 1))
        .logicalAnd(yi.greaterEqual(0)).logicalAnd(yi.lessEqual(h - 1)).toFloat();
      const weight = valid.mul(dx ? fx : tf.sub(1, fx)).mul(dy ? fy : tf.sub(1, fy));
      const index = base.add(yi.clipByValue(0, h - 1).mul(w).add(xi.clipByValue(0, w - 1))).toInt();
      const v = tf.gather(flat, index.reshape([-1])).mul(weight.reshape([-1, 1]));
      out = out ? out.add(v) : v;
    }
    return out!.reshape([n, H, W, c]) as tf.Tensor4D;
  });
}

/**
 * The sampling grid of an affine map per image.
 *
 * @param inverse Per image, output index coordinates to input ones.
 * @param size Output `[height, width]`.
 * @returns `[n, H, W]` columns and rows (new tensors).
 */
export function affineGrid(
  inverse: readonly Affine[],
  size: readonly [number, number],
): { gx: tf.Tensor3D; gy: tf.Tensor3D } {
  const [H, W] = size;
  const n = inverse.length;
  return tf.tidy(() => {
    const ox = tf.range(0, W).reshape([1, 1, W]);
    const oy = tf.range(0, H).reshape([1, H, 1]);
    const col = (k: number) => tf.tensor3d(inverse.map((m) => m[k]), [n, 1, 1]);
    const gx = col(0).mul(ox).add(col(1).mul(oy)).add(col(2)).mul(tf.ones([1, H, W]));
    const gy = col(3).mul(ox).add(col(4).mul(oy)).add(col(5)).mul(tf.ones([1, H, W]));
    return { gx: gx as tf.Tensor3D, gy: gy as tf.Tensor3D };
  });
}

/**
 * Resamples each image under its own affine map, in one batched kernel call.
 *
 * @param x `[n, h, w, c]` images (not disposed).
 * @param inverse Per image, the map from output index coordinates to input ones.
 * @param size Output `[height, width]`.
 * @param options Whether to use the backend's kernel.
 * @returns A new `[n, height, width, c]` batch.
 * @throws {RangeError} when the maps do not match the batch.
 */
export function warpAffine(
  x: tf.Tensor4D,
  inverse: readonly Affine[],
  size: readonly [number, number],
  options: WarpOptions = {},
): tf.Tensor4D {
  const [n, h, w] = x.shape;
  if (inverse.length !== n) {
    throw new RangeError(`warpAffine: ${inverse.length} maps for a batch of ${n} images`);
  }
  const fast = options.kernel === false ? undefined : runWarpKernel(x, inverse, size);
  if (fast) return fast;
  const [H, W] = size;
  if (inverse.every(axisAligned) && h > 1 && w > 1) {
    // Flips and the identity sample exact pixel centres. Any other map whose
    // samples come near or past the border goes through a one-pixel zero
    // frame: cropAndResize drops a sample that float32 rounding puts a hair
    // outside the image (a whole row of a shifted image went black), and
    // with the frame its bilinear reads zeros outside, as tf.image.transform
    // does, so that both paths agree.
    const exact = H === h && W === w &&
      inverse.every((m) =>
        ((m[0] === 1 && m[2] === 0) || (m[0] === -1 && m[2] === w - 1)) &&
        ((m[4] === 1 && m[5] === 0) || (m[4] === -1 && m[5] === h - 1))
      );
    const near = (a: number, b: number, len: number) =>
      Math.min(a, b) < 0.5 || Math.max(a, b) > len - 1.5;
    const frame = !exact &&
      inverse.some((m) =>
        near(m[5], m[4] * (H - 1) + m[5], h) || near(m[2], m[0] * (W - 1) + m[2], w)
      );
    const o = frame ? 1 : 0, ph = h + 2 * o, pw = w + 2 * o;
    // cropAndResize samples row y1 (h-1) + i (y2-y1)(h-1)/(H-1) for output row i.
    const boxes = new Float32Array(4 * n);
    const box = (m: Affine, k: number) => {
      const y1 = (m[5] + o - k * m[4]) / (ph - 1), x1 = (m[2] + o) / (pw - 1);
      const y2 = H > 1 ? (m[4] * (H - 1) + m[5] + o) / (ph - 1) : y1;
      const x2 = W > 1 ? (m[0] * (W - 1) + m[2] + o) / (pw - 1) : x1;
      return [y1, x1, y2, x2];
    };
    // The WASM CropAndResize of tfjs 4.22 ignores x1 when a box starts at
    // row 0 (y1 = 0) with an x scale of exactly 1 (a pure shift); then start
    // every box k rows higher (the first k such that none starts at row 0)
    // and drop those rows again.
    const hit = (k: number) =>
      inverse.some((m) => Math.abs(m[0] - 1) < 1e-6 && m[2] + o !== 0 && m[5] + o - k * m[4] === 0);
    let extra = 0;
    if (tf.getBackend() === "wasm" && H > 1) { while (hit(extra)) extra++; }
    inverse.forEach((m, i) => boxes.set(box(m, extra), 4 * i));
    return tf.tidy(() => {
      const src = frame ? x.pad([[0, 0], [1, 1], [1, 1], [0, 0]]) : x;
      const out = tf.image.cropAndResize(
        src as tf.Tensor4D,
        tf.tensor2d(boxes, [n, 4]),
        tf.range(0, n, 1, "int32") as tf.Tensor1D,
        [H + extra, W],
        "bilinear",
      );
      return extra ? out.slice([0, extra, 0, 0], [n, H, W, -1]) : out;
    });
  }
  if (tf.getBackend() === "cpu") {
    const { gx, gy } = affineGrid(inverse, size);
    try {
      return sampleBilinear(x, gx, gy, { kernel: false });
    } finally {
      tf.dispose([gx, gy]);
    }
  }
  return tf.tidy(() =>
    tf.image.transform(
      x,
      tf.tensor2d(inverse.flatMap((m) => [...m, 0, 0]), [n, 8]),
      "bilinear",
      "constant",
      0,
      [H, W],
    )
  );
}
