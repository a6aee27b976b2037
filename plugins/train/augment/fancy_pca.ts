/**
 * AlexNet's PCA colour augmentation ("fancy PCA"; Krizhevsky, Sutskever &
 * Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
 * 2012), fitted on the user's own training set: the RGB covariance of every
 * pixel of the data is streamed over a {@linkcode DataSource} batch by batch
 * (sums and sums of outer products, accumulated in float64), decomposed into
 * eigenvalues `lambda_i` and eigenvectors `p_i` (Jacobi, `eigen.ts`), and each
 * image gets the offset `sum_i alpha_i lambda_i p_i` added to all its pixels,
 * with `alpha_i ~ N(0, std^2)` drawn once per image (std 0.1 in the paper).
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

/** Options of {@linkcode fitColorPca}. */
export interface FitColorPcaOptions {
  /** Images read per batch. @default 256 */
  batchSize?: number;
  /** Images used (the first ones of the source). @default all */
  count?: number;
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
  const count = options.count ?? data.size;
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(count) || count < 1 || count > data.size) {
    throw new RangeError(
      `fitColorPca: count ${count} is invalid: give 1 to ${data.size} images of ${data.name}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`fitColorPca: batchSize ${batchSize} is invalid: give a positive integer`);
  }
  const c = data.shape[2];
  const sum = new Float64Array(c), outer = new Float64Array(c * c);
  let pixels = 0;
  for (let start = 0; start < count; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
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
    pixels += idx.length * data.shape[0] * data.shape[1];
  }
  const mean = Array.from(sum, (v) => v / pixels);
  const covariance = Array.from(
    { length: c },
    (_, i) => Array.from({ length: c }, (_, j) => outer[i * c + j] / pixels - mean[i] * mean[j]),
  );
  const { values, vectors } = symmetricEigen(covariance);
  return { mean, covariance, eigenvalues: values, eigenvectors: vectors, pixels };
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
