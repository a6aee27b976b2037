/**
 * AlexNet's PCA colour augmentation ("fancy PCA"; Krizhevsky, Sutskever &
 * Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
 * 2012), fitted on the user's own training set: the RGB covariance of every
 * pixel of the data is streamed over a {@linkcode DataSource} batch by batch
 * (sums and sums of outer products, accumulated in float64), decomposed into
 * eigenvalues `lambda_i` and eigenvectors `p_i` (Jacobi, `eigen.ts`), and each
 * image gets the offset `sum_i alpha_i lambda_i p_i` added to all its pixels,
 * with `alpha_i ~ N(0, std^2)` drawn once per image (std 0.1 in the paper).
 * The moments are a mergeable state: shards of a data set fit apart and merge.
 * The paper's `lambda_i` is an eigenvalue (a variance); `magnitude: "std"`
 * uses its square root instead, the spread of the data along `p_i` (in [0, 1]
 * pixel units a variance is small, so the paper's offsets are faint there).
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { DataSource } from "../../../core/data/source.ts";
import { checkDrawnParams, type Transform } from "./transform.ts";
import { symmetricEigen } from "./eigen.ts";
import type { Mergeable } from "../../../core/jobs/mergeable.ts";

/** The colour statistics of a data set. */
export interface ColorPca {
  /** Mean pixel value per channel. */
  mean: number[];
  /** Covariance of pixel values between channels (c x c). */
  covariance: number[][];
  /** Eigenvalues of the covariance, largest first. */
  eigenvalues: number[];
  /** Unit eigenvectors, `eigenvectors[k]` with `eigenvalues[k]`. */
  eigenvectors: number[][];
  /** Pixels the statistics were taken over. */
  pixels: number;
}

/** Options of {@linkcode fitColorPca} and {@linkcode colorMoments}. */
export interface FitColorPcaOptions {
  /** Images read per batch. @default 256 */
  batchSize?: number;
  /** Images used (the first ones of the source, from `start`). @default all (from `start`) */
  count?: number;
  /** First image used (a shard's slice starts here). @default 0 */
  start?: number;
}

/**
 * The sums a colour covariance is made of, over some of a data set's pixels:
 * per-channel sums, sums of outer products (float64) and the pixel count.
 * Two parts' moments add up to their union's, so a data set too big for one
 * process is fitted in shards and merged ({@linkcode COLOR_MOMENTS_STATE}).
 */
export interface ColorMoments {
  /** Per-channel sums of pixel values. */
  sum: Float64Array;
  /** Sums of `x_i x_j` over pixels, row-major c x c. */
  outer: Float64Array;
  /** Pixels summed. */
  pixels: number;
}

/**
 * Streams the colour moments of images `[start, start + count)` of a data
 * set, batch by batch.
 *
 * @param data The training images.
 * @param options Batch size, first image and how many.
 * @returns Their moments.
 * @throws {RangeError} for an empty or out-of-range slice or a bad batch size.
 */
export async function colorMoments(
  data: DataSource,
  options: FitColorPcaOptions = {},
): Promise<ColorMoments> {
  const begin = options.start ?? 0;
  const count = options.count ?? data.size - begin;
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(begin) || begin < 0 || begin >= data.size) {
    throw new RangeError(
      `fitColorPca: start ${begin} is invalid: give 0 to ${data.size - 1} for ${data.name}`,
    );
  }
  if (!Number.isInteger(count) || count < 1 || begin + count > data.size) {
    throw new RangeError(
      `fitColorPca: count ${count} is invalid: give 1 to ${
        data.size - begin
      } images of ${data.name}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`fitColorPca: batchSize ${batchSize} is invalid: give a positive integer`);
  }
  const c = data.shape[2];
  const sum = new Float64Array(c), outer = new Float64Array(c * c);
  let pixels = 0;
  for (let at = begin; at < begin + count; at += batchSize) {
    const n = Math.min(batchSize, begin + count - at);
    const idx = Array.from({ length: n }, (_, i) => at + i);
    const { x, y } = await data.batch(idx);
    // One batch's float32 sums lose little; batches add up in float64, so
    // E[x x^T] - mean mean^T stays accurate for pixels of bounded range.
    const [s, o] = tf.tidy(() => {
      const flat = x.reshape([-1, c]);
      return [flat.sum(0), tf.matMul(flat, flat, true, false)];
    });
    const sv = await s.data() as Float32Array, ov = await o.data() as Float32Array;
    tf.dispose([x, y, s, o]);
    sv.forEach((v: number, i: number) => sum[i] += v);
    ov.forEach((v: number, i: number) => outer[i] += v);
    pixels += n * data.shape[0] * data.shape[1];
  }
  return { sum, outer, pixels };
}

/**
 * Colour moments as a job's mergeable state: two disjoint parts' moments
 * add up to their union's. Batches are summed in float32 and added in
 * float64; shards cut batches elsewhere than one run, so merged shards agree
 * with it to float32 rounding (1e-6 of the pixel range; `tests/jobs_color_pca_test.ts`).
 */
export const COLOR_MOMENTS_STATE: Mergeable<ColorMoments> = {
  merge: (a, b) => {
    if (a.sum.length !== b.sum.length) {
      throw new RangeError(
        `Colour moments of ${a.sum.length} and ${b.sum.length} channels cannot be merged: ` +
          "fit every shard on the same data",
      );
    }
    return {
      sum: a.sum.map((v, i) => v + b.sum[i]),
      outer: a.outer.map((v, i) => v + b.outer[i]),
      pixels: a.pixels + b.pixels,
    };
  },
  encode: (m) => ({ json: { pixels: m.pixels }, arrays: { sum: m.sum, outer: m.outer } }),
  decode: (payload) => {
    const { sum, outer } = payload.arrays;
    const pixels = (payload.json as { pixels?: unknown })?.pixels;
    if (
      !(sum instanceof Float64Array) || !(outer instanceof Float64Array) ||
      outer.length !== sum.length * sum.length || typeof pixels !== "number"
    ) {
      throw new RangeError("This state holds no colour moments: it was written by another job");
    }
    return { sum, outer, pixels };
  },
};

/**
 * The colour statistics from moments: mean, covariance
 * `E[x x^T] - mean mean^T`, and its eigen-decomposition.
 *
 * @param m The moments (of one run, or merged shards).
 * @returns Mean, covariance, eigenvalues and eigenvectors.
 */
export function colorPcaOf(m: ColorMoments): ColorPca {
  const c = m.sum.length;
  const mean = Array.from(m.sum, (v) => v / m.pixels);
  const covariance = Array.from(
    { length: c },
    (_, i) =>
      Array.from({ length: c }, (_, j) => m.outer[i * c + j] / m.pixels - mean[i] * mean[j]),
  );
  const { values, vectors } = symmetricEigen(covariance);
  return { mean, covariance, eigenvalues: values, eigenvectors: vectors, pixels: m.pixels };
}

/**
 * Streams the pixel covariance of a data set and decomposes it.
 *
 * @param data The training images.
 * @param options Batch size and how many images.
 * @returns Mean, covariance, eigenvalues and eigenvectors.
 * @throws {RangeError} for an empty source or a bad count.
 */
export async function fitColorPca(
  data: DataSource,
  options: FitColorPcaOptions = {},
): Promise<ColorPca> {
  return colorPcaOf(await colorMoments(data, options));
}

/** Options of {@linkcode fancyPca}. */
export interface FancyPcaOptions {
  /** Standard deviation of the Gaussian alphas. @default 0.1 */
  std?: number;
  /** `eigenvalue` (the paper's `alpha_i lambda_i`) or `std` (`alpha_i sqrt(lambda_i)`). @default "eigenvalue" */
  magnitude?: "eigenvalue" | "std";
}

/** Parameters of {@linkcode fancyPca}: per image its `c` alphas. */
export type FancyPcaParams = { alpha: number[] };

/**
 * The fancy PCA transform for statistics fitted by {@linkcode fitColorPca}.
 *
 * @param pca The data's colour statistics.
 * @param options Alpha spread and magnitude rule.
 * @returns The transform.
 * @throws {RangeError} for a negative std.
 */
export function fancyPca(pca: ColorPca, options: FancyPcaOptions = {}): Transform<FancyPcaParams> {
  const std = options.std ?? 0.1;
  if (!(std >= 0)) throw new RangeError(`fancyPca: std ${std} is invalid: give a number >= 0`);
  const c = pca.eigenvalues.length;
  const scale = pca.eigenvalues.map((l) =>
    (options.magnitude ?? "eigenvalue") === "std" ? Math.sqrt(Math.max(l, 0)) : l
  );
  const name = "fancy PCA";
  return {
    name,
    kind: "photometric",
    draw: (rng, [n]) => ({ alpha: Array.from({ length: n * c }, () => std * rng.normal()) }),
    apply(x, p) {
      const [n, , , ch] = x.shape;
      if (ch !== c) {
        throw new RangeError(
          `fancyPca: fitted on ${c}-channel images but the batch has ${ch}; fit it on data like the batch`,
        );
      }
      checkDrawnParams(name, p, "alpha", n, c);
      const offsets = new Float32Array(n * c);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < c; k++) {
          const a = p.alpha[i * c + k] * scale[k];
          for (let j = 0; j < c; j++) offsets[i * c + j] += a * pca.eigenvectors[k][j];
        }
      }
      return tf.tidy(() => x.add(tf.tensor4d(offsets, [n, 1, 1, c])) as tf.Tensor4D);
    },
  };
}
