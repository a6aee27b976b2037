/**
 * The contract every augmentation transform follows, and the plane geometry they
 * share. A transform first *draws* its parameters for a whole batch (small
 * arrays, one entry per image, from a seeded generator) and then *applies* them
 * as batched tensor work; because the drawn parameters are plain JSON, a batch
 * can be augmented again exactly (replay) and the geometric ones can move boxes
 * with the pixels.
 *
 * Coordinates: pixel index coordinates, where pixel `(col, row)` has its centre
 * at `(col, row)` (the convention of `tf.image.transform` and `cropAndResize`).
 * Boxes are given in edge coordinates (`x, y, w, h` in pixels, pixel `i`
 * covering `[i, i + 1)`), so a box's edge `e` is the index coordinate `e - 0.5`.
 *
 * @module
 */
import type { tf } from "../../../core/tf.ts";
import type { Random } from "../../../core/random.ts";

/** `[n, height, width, channels]` of a batch. */
export type Shape = readonly [number, number, number, number];

/**
 * A plane affine map `(x, y) -> (a x + b y + c, d x + e y + f)` as
 * `[a, b, c, d, e, f]`.
 */
export type Affine = readonly [number, number, number, number, number, number];

/** The parameters a transform drew for one batch: named arrays of numbers (JSON). */
export type DrawnParams = Record<string, number[]>;

/** How a transform acts, which decides how a pipeline runs it and what follows it. */
export type TransformKind =
  /** Moves pixels by an affine map per image (merged with its neighbours into one warp). */
  | "affine"
  /** Moves pixels by a non-affine map (its own resampling). */
  | "warp"
  /** Changes values, not positions (boxes stay). */
  | "photometric"
  /** Mixes each image with another of the batch, and their labels. */
  | "mix";

/**
 * One augmentation. `draw` picks the random parameters of a batch; `apply`
 * does the tensor work with given parameters (so applying the same parameters
 * again gives the same images).
 */
export interface Transform<P extends DrawnParams = DrawnParams> {
  /** Name, as grids and tables show it. */
  readonly name: string;
  /** How it acts. */
  readonly kind: TransformKind;
  /** Output `[height, width]` for an input of `[height, width]` (default: the same). */
  outputSize?(height: number, width: number): [number, number];
  /**
   * Draws the parameters of a batch.
   * @param rng The generator (its state advances).
   * @param shape The batch's shape.
   */
  draw(rng: Random, shape: Shape): P;
  /**
   * Applies drawn parameters.
   * @param x The batch (not disposed).
   * @param params What `draw` gave for a batch of this shape.
   * @returns A new batch.
   */
  apply(x: tf.Tensor4D, params: P): tf.Tensor4D;
  /**
   * For `affine` transforms: per image, the map from output index coordinates
   * to input index coordinates (the sampling map).
   */
  inverse?(params: P, shape: Shape): Affine[];
  /**
   * For `warp` transforms: where the input point `(x, y)` of image `i` lands
   * in the output (index coordinates), or `undefined` when it leaves the view.
   */
  forward?(params: P, shape: Shape, i: number, x: number, y: number): [number, number] | undefined;
  /** For `mix` transforms: the soft labels `[n, classes]` that go with the mixed images. */
  mixLabels?(labels: tf.Tensor2D, params: P): tf.Tensor2D;
}

/** The identity map. */
export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/**
 * `first` then `second`: the map `p -> second(first(p))`.
 *
 * @param second Applied last.
 * @param first Applied first.
 * @returns The composed map.
 */
export function compose(second: Affine, first: Affine): Affine {
  const [a, b, c, d, e, f] = second;
  const [p, q, r, s, t, u] = first;
  return [
    a * p + b * s,
    a * q + b * t,
    a * r + b * u + c,
    d * p + e * s,
    d * q + e * t,
    d * r + e * u + f,
  ];
}

/**
 * The inverse map.
 *
 * @param m An invertible map.
 * @returns Its inverse.
 * @throws {RangeError} for a singular map (zero scale), naming the fix.
 */
export function invert(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (!(Math.abs(det) > 1e-12)) {
    throw new RangeError(
      "An affine map is singular (a scale or stretch of 0): keep scales above 0",
    );
  }
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/**
 * Applies a map to a point.
 *
 * @param m The map.
 * @param x Column.
 * @param y Row.
 * @returns The image of the point.
 */
export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

/**
 * Whether a map only scales and shifts each axis (possibly mirrored): then
 * the resampling is separable (the warp kernels' and `cropAndResize`'s fast
 * path), faster than a general warp.
 *
 * @param m The map.
 * @returns True when it has no rotation or shear.
 */
export function axisAligned(m: Affine): boolean {
  return Math.abs(m[1]) < 1e-9 && Math.abs(m[3]) < 1e-9;
}

/**
 * Per image, whether it is drawn (probability `p`): the images not drawn get
 * their transform's identity parameters.
 *
 * @param rng The generator.
 * @param n Images.
 * @param p Probability of applying.
 * @returns One flag per image.
 */
export function drawApplied(rng: Random, n: number, p: number): boolean[] {
  return Array.from({ length: n }, () => p >= 1 || rng.next() < p);
}

/**
 * Uniform draw in `[lo, hi]`.
 *
 * @param rng The generator.
 * @param lo Low end.
 * @param hi High end.
 * @returns The number.
 */
export function uniform(rng: Random, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.next();
}

/**
 * Checks a probability option.
 *
 * @param what The option's name, for the message.
 * @param p The value.
 * @returns `p`.
 * @throws {RangeError} outside [0, 1].
 */
export function checkProbability(what: string, p: number): number {
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`${what} ${p} is not a probability: give one in [0, 1]`);
  }
  return p;
}

/**
 * Checks a `[lo, hi]` range option.
 *
 * @param what The option's name.
 * @param r The range.
 * @param min Smallest allowed `lo`.
 * @param max Largest allowed `hi`.
 * @returns The range.
 * @throws {RangeError} for a range that is not two ordered numbers within bounds.
 */
export function checkRange(
  what: string,
  r: readonly number[],
  min = -Infinity,
  max = Infinity,
): [number, number] {
  if (!Array.isArray(r) || r.length !== 2 || !(r[0] <= r[1]) || !(r[0] >= min) || !(r[1] <= max)) {
    throw new RangeError(
      `${what} ${JSON.stringify(r)} is invalid: give [lo, hi] with ${min} <= lo <= hi <= ${max}`,
    );
  }
  return [r[0], r[1]];
}

/**
 * Checks that drawn parameters fit a batch.
 *
 * @param name The transform.
 * @param params Its parameters.
 * @param key A per-image array among them.
 * @param n The batch's size.
 * @param per Numbers per image.
 * @throws {RangeError} when the parameters were drawn for another batch size.
 */
export function checkDrawnParams(
  name: string,
  params: DrawnParams,
  key: string,
  n: number,
  per = 1,
): void {
  const a = params?.[key];
  if (!Array.isArray(a) || a.length !== n * per) {
    throw new RangeError(
      `${name}: the parameters were drawn for ${
        Array.isArray(a) ? a.length / per : "no"
      } images but the batch holds ${n}; replay parameters on the batch they were drawn for`,
    );
  }
}
