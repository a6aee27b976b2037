/**
 * Step priors of the optimization loop: maps of the image applied after each
 * update, outside the gradient (Yosinski et al., "Understanding Neural Networks
 * Through Deep Visualization", 2015): L2 decay, Gaussian blur every k steps,
 * clipping of pixels with small norm or small contribution, and a clamp to the
 * valid input range. The differentiable priors (L2, total variation,
 * alpha-norm) are objectives: see `objectives.ts`.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";

/** What a step prior knows of the current step. */
export interface PriorStep {
  /** The step just taken, from 1. */
  step: number;
  /** d objective / d image at this step (model input space). */
  grad: tf.Tensor4D;
}

/** A map of the image applied after an update. */
export interface StepPrior {
  /** Short name for captions. */
  readonly name: string;
  /** The new image (model input space). */
  apply(image: tf.Tensor4D, at: PriorStep): tf.Tensor4D;
}

/**
 * Yosinski's L2 decay: X <- (1 - theta) X.
 *
 * @param theta Decay per step, in [0, 1).
 * @returns The prior.
 */
export function decay(theta: number): StepPrior {
  if (!(theta >= 0 && theta < 1)) {
    throw new RangeError(`decay: theta must be in [0, 1), got ${theta}`);
  }
  return { name: `decay(${theta})`, apply: (x) => x.mul(1 - theta) as tf.Tensor4D };
}

/**
 * A Gaussian blur of the image.
 *
 * @param x A batch `[n, h, w, c]`.
 * @param sigma Standard deviation in pixels.
 * @returns The blurred batch (edges reflected).
 */
export function gaussianBlur(x: tf.Tensor4D, sigma: number): tf.Tensor4D {
  if (!(sigma > 0)) return x.clone();
  const [n, h, w, c] = x.shape;
  const r = Math.max(1, Math.min(Math.ceil(2 * sigma), Math.floor((Math.min(h, w) - 1) / 2)));
  const k = Array.from(
    { length: 2 * r + 1 },
    (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma ** 2)),
  );
  const total = k.reduce((a, b) => a + b, 0);
  const k1 = k.map((v) => v / total);
  return tf.tidy(() => {
    const planes = x.transpose([0, 3, 1, 2]).reshape([n * c, h, w, 1]) as tf.Tensor4D;
    const padded = tf.mirrorPad(planes, [[0, 0], [r, r], [r, r], [0, 0]], "reflect");
    const rows = tf.conv2d(padded, tf.tensor4d(k1, [2 * r + 1, 1, 1, 1]), 1, "valid");
    const both = tf.conv2d(rows, tf.tensor4d(k1, [1, 2 * r + 1, 1, 1]), 1, "valid");
    return both.reshape([n, c, h, w]).transpose([0, 2, 3, 1]) as tf.Tensor4D;
  });
}

/**
 * Gaussian blur every `every` steps.
 *
 * @param sigma Standard deviation in pixels.
 * @param every Blur after steps `every`, `2 * every`, ...
 * @returns The prior.
 */
export function blur(sigma: number, every = 1): StepPrior {
  if (!(sigma >= 0)) throw new RangeError(`blur: sigma must be >= 0, got ${sigma}`);
  if (!Number.isInteger(every) || every < 1) {
    throw new RangeError(`blur: every must be a whole number >= 1, got ${every}`);
  }
  return {
    name: `blur(${sigma} every ${every})`,
    apply: (x, at) => (at.step % every === 0 ? gaussianBlur(x, sigma) : x.clone()),
  };
}

/** Zeroes the pixels whose score `[n, h, w]` is below the image's `percentile`. */
function keepTop(x: tf.Tensor4D, score: tf.Tensor, percentile: number): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const drop = Math.floor((h * w * percentile) / 100);
  if (drop <= 0) return x.clone();
  return tf.tidy(() => {
    const flat = score.reshape([n, h * w]);
    const kept = tf.topk(flat, h * w - drop).values;
    const threshold = kept.min(1).reshape([n, 1, 1, 1]);
    const mask = score.reshape([n, h, w, 1]).greaterEqual(threshold).toFloat();
    return x.mul(mask) as tf.Tensor4D;
  });
}

/**
 * Yosinski's clipping of pixels with small norm: pixels whose norm over channels
 * is below the image's `percentile` are set to 0 (the mean, in model space).
 *
 * @param percentile Share of pixels clipped, 0 to 100.
 * @returns The prior.
 */
export function clipNorm(percentile: number): StepPrior {
  if (!(percentile >= 0 && percentile <= 100)) {
    throw new RangeError(`clipNorm: percentile must be from 0 to 100, got ${percentile}`);
  }
  return {
    name: `clipNorm(${percentile}%)`,
    apply: (x) => tf.tidy(() => keepTop(x, x.square().sum(3).sqrt(), percentile)),
  };
}

/**
 * Yosinski's clipping of pixels with small contribution: the contribution of a
 * pixel is |sum over channels of x * d objective / dx| (how much the objective
 * would change were the pixel set to 0); pixels below the image's `percentile`
 * are set to 0.
 *
 * @param percentile Share of pixels clipped, 0 to 100.
 * @returns The prior.
 */
export function clipContribution(percentile: number): StepPrior {
  if (!(percentile >= 0 && percentile <= 100)) {
    throw new RangeError(`clipContribution: percentile must be from 0 to 100, got ${percentile}`);
  }
  return {
    name: `clipContribution(${percentile}%)`,
    apply: (x, at) => tf.tidy(() => keepTop(x, x.mul(at.grad).sum(3).abs(), percentile)),
  };
}

/**
 * A clamp to the valid input range, per channel (e.g. `net.inputBounds()`).
 *
 * @param bounds Lowest and highest values per channel, model space.
 * @returns The prior.
 */
export function clampRange(bounds: { lo: readonly number[]; hi: readonly number[] }): StepPrior {
  const { lo, hi } = bounds;
  if (lo.length === 0 || lo.length !== hi.length || lo.some((v, i) => !(v <= hi[i]))) {
    throw new RangeError(`clampRange: give lo <= hi per channel, got lo [${lo}], hi [${hi}]`);
  }
  return {
    name: "clampRange",
    apply: (x) =>
      tf.tidy(() => {
        const c = x.shape[3];
        const l = tf.tensor1d([...Array(c)].map((_, i) => lo[i % lo.length]));
        const h = tf.tensor1d([...Array(c)].map((_, i) => hi[i % hi.length]));
        return tf.minimum(tf.maximum(x, l), h) as tf.Tensor4D;
      }),
  };
}
