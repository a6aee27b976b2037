/**
 * Translation, rotation, scale, stretch and shear, composed into ONE affine
 * map per image and applied in one warp (so the image is resampled once, not
 * once per effect, and a box is moved by one matrix). The map acts about the
 * image centre: `p_out = c + t + R(angle) Shear(shear) S(sx, sy) (p_in - c)`,
 * with `sx = zoom * sqrt(stretch)` and `sy = zoom / sqrt(stretch)`.
 *
 * @module
 */
import type { tf } from "../../../core/tf.ts";
import {
  type Affine,
  checkDrawnParams,
  checkProbability,
  checkRange,
  drawApplied,
  invert,
  type Shape,
  type Transform,
  uniform,
} from "./transform.ts";
import { warpAffine } from "./warp.ts";

/** Options of {@linkcode randomAffine}. */
export interface RandomAffineOptions {
  /** Largest shift as a fraction of the width and height, each way. @default 0 */
  translate?: number;
  /** Largest rotation in degrees, each way. @default 0 */
  rotate?: number;
  /** Range of the isotropic zoom. @default [1, 1] */
  zoom?: readonly [number, number];
  /** Range of the stretch (x scale over y scale), drawn log-uniformly. @default [1, 1] */
  stretch?: readonly [number, number];
  /** Largest shear angle in degrees (x shifts with y), each way. @default 0 */
  shear?: number;
  /** Probability that an image is transformed (else left as it is). @default 1 */
  p?: number;
  /**
   * Round the shift to whole pixels: with no rotation, zoom, stretch or shear
   * the image is then copied (up to float32 rounding of the sampling
   * positions), not blurred by a sub-pixel shift. @default false
   */
  wholePixels?: boolean;
}

/** Parameters of {@linkcode randomAffine} per image: degrees, factors, pixels. */
export type AffineParams = {
  angle: number[];
  shear: number[];
  zoom: number[];
  stretch: number[];
  tx: number[];
  ty: number[];
};

/**
 * The forward map (input index coordinates to output ones) of one image's
 * parameters, about the centre of an `h x w` image.
 *
 * @param p The batch's parameters.
 * @param i The image.
 * @param h Height.
 * @param w Width.
 * @returns The map.
 */
export function affineForward(p: AffineParams, i: number, h: number, w: number): Affine {
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  const a = p.angle[i] * Math.PI / 180, k = Math.tan(p.shear[i] * Math.PI / 180);
  const sx = p.zoom[i] * Math.sqrt(p.stretch[i]), sy = p.zoom[i] / Math.sqrt(p.stretch[i]);
  const cos = Math.cos(a), sin = Math.sin(a);
  // R * Shear * S, with Shear = [[1, k], [0, 1]].
  const m00 = cos * sx, m01 = (cos * k - sin) * sy;
  const m10 = sin * sx, m11 = (sin * k + cos) * sy;
  const tx = cx + p.tx[i] - (m00 * cx + m01 * cy);
  const ty = cy + p.ty[i] - (m10 * cx + m11 * cy);
  return [m00, m01, tx, m10, m11, ty];
}

/**
 * A random affine map per image from translation, rotation, zoom, stretch and
 * shear ranges; all zero (the default) is the identity.
 *
 * @param options The ranges.
 * @returns The transform.
 * @throws {RangeError} for negative ranges or factors at or below 0.
 */
export function randomAffine(options: RandomAffineOptions = {}): Transform<AffineParams> {
  const translate = options.translate ?? 0,
    rotate = options.rotate ?? 0,
    shear = options.shear ?? 0;
  for (
    const [k, v, max] of [["translate", translate, 1], ["rotate", rotate, 180], [
      "shear",
      shear,
      60,
    ]] as const
  ) {
    if (!(v >= 0 && v <= max)) {
      throw new RangeError(`randomAffine: ${k} ${v} is invalid: give a number from 0 to ${max}`);
    }
  }
  const zoom = checkRange("randomAffine: zoom", options.zoom ?? [1, 1], 1e-3);
  const stretch = checkRange("randomAffine: stretch", options.stretch ?? [1, 1], 1e-3);
  const prob = checkProbability("randomAffine: p", options.p ?? 1);
  const whole = options.wholePixels ?? false;
  const name = "affine";
  const inverse = (p: AffineParams, [n, h, w]: Shape): Affine[] => {
    checkDrawnParams(name, p, "angle", n);
    return Array.from({ length: n }, (_, i) => invert(affineForward(p, i, h, w)));
  };
  return {
    name,
    kind: "affine",
    draw(rng, [n, h, w]) {
      const on = drawApplied(rng, n, prob);
      const p: AffineParams = { angle: [], shear: [], zoom: [], stretch: [], tx: [], ty: [] };
      const [l0, l1] = [Math.log(stretch[0]), Math.log(stretch[1])];
      for (let i = 0; i < n; i++) {
        // Every image draws the same count of numbers, applied or not, so
        // that changing p leaves the other images' draws where they were.
        const v = [
          uniform(rng, -rotate, rotate),
          uniform(rng, -shear, shear),
          uniform(rng, zoom[0], zoom[1]),
          Math.exp(uniform(rng, l0, l1)),
          uniform(rng, -translate, translate) * w,
          uniform(rng, -translate, translate) * h,
        ];
        if (whole) v[4] = Math.round(v[4]), v[5] = Math.round(v[5]);
        const [angle, sh, z, st, tx, ty] = on[i] ? v : [0, 0, 1, 1, 0, 0];
        p.angle.push(angle), p.shear.push(sh), p.zoom.push(z), p.stretch.push(st);
        p.tx.push(tx), p.ty.push(ty);
      }
      return p;
    },
    inverse,
    apply: (x: tf.Tensor4D, p) => warpAffine(x, inverse(p, x.shape), [x.shape[1], x.shape[2]]),
  };
}
