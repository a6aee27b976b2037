/**
 * Lens distortion, barrel or pincushion, by the radial (Brown-Conrady) model
 * with coefficients `k1` and `k2`: the output pixel at distance `r` from the
 * centre (in units of the half-diagonal, so the corners are at `r = 1`) samples
 * the input at distance `r (1 + k1 r^2 + k2 r^4)` along the same ray. With
 * `k1 > 0` the periphery is pulled in (barrel: straight lines bow outward);
 * with `k1 < 0` it is pushed out (pincushion). Not affine, so the sampling
 * grid is built as a tensor and read by the backend's grid kernel (a batched
 * bilinear gather where it has none).
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import {
  checkDrawnParams,
  checkProbability,
  checkRange,
  drawApplied,
  type Shape,
  type Transform,
  uniform,
} from "./transform.ts";
import { sampleBilinear } from "./warp.ts";

/** Options of {@linkcode lensDistortion}. */
export interface LensDistortionOptions {
  /** Range of `k1` (positive: barrel, negative: pincushion). @default [-0.3, 0.3] */
  k1?: readonly [number, number];
  /** Range of `k2`. @default [-0.1, 0.1] */
  k2?: readonly [number, number];
  /** Probability that an image is distorted. @default 1 */
  p?: number;
}

/** Parameters of {@linkcode lensDistortion} per image. */
export type LensParams = { k1: number[]; k2: number[] };

function geometry(h: number, w: number): { cx: number; cy: number; R: number } {
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  return { cx, cy, R: Math.max(Math.hypot(cx, cy), 1e-6) };
}

/**
 * Random radial distortion per image.
 *
 * @param options Ranges of the coefficients and the probability.
 * @returns The transform.
 * @throws {RangeError} for bad ranges.
 */
export function lensDistortion(options: LensDistortionOptions = {}): Transform<LensParams> {
  const k1 = checkRange("lensDistortion: k1", options.k1 ?? [-0.3, 0.3], -1, 1);
  const k2 = checkRange("lensDistortion: k2", options.k2 ?? [-0.1, 0.1], -1, 1);
  const prob = checkProbability("lensDistortion: p", options.p ?? 1);
  const name = "lens distortion";
  return {
    name,
    kind: "warp",
    draw(rng, [n]) {
      const on = drawApplied(rng, n, prob);
      const p: LensParams = { k1: [], k2: [] };
      for (let i = 0; i < n; i++) {
        const a = uniform(rng, k1[0], k1[1]), b = uniform(rng, k2[0], k2[1]);
        p.k1.push(on[i] ? a : 0), p.k2.push(on[i] ? b : 0);
      }
      return p;
    },
    apply(x, p) {
      const [n, h, w] = x.shape;
      checkDrawnParams(name, p, "k1", n);
      const { cx, cy, R } = geometry(h, w);
      const grid = tf.tidy(() => {
        const dx = tf.range(0, w).sub(cx).reshape([1, 1, w]);
        const dy = tf.range(0, h).sub(cy).reshape([1, h, 1]);
        const r2 = dx.square().add(dy.square()).div(R * R);
        const f = tf.tensor3d(p.k1, [n, 1, 1]).mul(r2)
          .add(tf.tensor3d(p.k2, [n, 1, 1]).mul(r2.square())).add(1);
        return { gx: f.mul(dx).add(cx) as tf.Tensor3D, gy: f.mul(dy).add(cy) as tf.Tensor3D };
      });
      try {
        return sampleBilinear(x, grid.gx, grid.gy);
      } finally {
        tf.dispose([grid.gx, grid.gy]);
      }
    },
    forward(p, [, h, w]: Shape, i, x, y) {
      // Solve rho (1 + k1 rho^2 + k2 rho^4) = r for the output radius rho by
      // Newton's method; no solution (or a fold) means the point leaves the view.
      const { cx, cy, R } = geometry(h, w);
      const r = Math.hypot(x - cx, y - cy) / R;
      if (r < 1e-12) return [x, y];
      const a = p.k1[i], b = p.k2[i];
      let rho = r;
      for (let it = 0; it < 50; it++) {
        const f = rho * (1 + a * rho * rho + b * rho ** 4) - r;
        const d = 1 + 3 * a * rho * rho + 5 * b * rho ** 4;
        if (!(d > 1e-6)) return undefined;
        const next = rho - f / d;
        if (Math.abs(next - rho) < 1e-10) {
          rho = next;
          break;
        }
        rho = next;
      }
      if (!(rho >= 0) || Math.abs(rho * (1 + a * rho * rho + b * rho ** 4) - r) > 1e-6) {
        return undefined;
      }
      const s = rho / r;
      return [cx + (x - cx) * s, cy + (y - cy) * s];
    },
  };
}
