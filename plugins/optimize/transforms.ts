/**
 * Transforms applied to the image before each forward pass of the optimization
 * loop: differentiable maps of a batch `[n, h, w, c]` to a batch of the same
 * shape, drawn at random from the loop's seeded generator. Optimizing through
 * them makes the image robust to them (Lucid's transformation robustness).
 *
 * `jitter` is the lecture's jitter (Yosinski et al.): translate by rolling, take
 * the gradient at the translated image, undo the translation. Rolling is a
 * permutation, so differentiating through it does exactly that. `scale` and
 * `rotate` resample bilinearly about the centre with a gather (border pixels
 * repeated), which differentiates on every backend.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Random } from "../../core/random.ts";

/** A differentiable, seeded map of a batch to a batch of the same shape. */
export interface Transform {
  /** Short name for captions. */
  readonly name: string;
  /** Applies it; `rng` draws this step's parameters. */
  apply(x: tf.Tensor4D, rng: Random): tf.Tensor4D;
}

/**
 * Rolls a batch by whole pixels, wrapping around (numpy's `roll` on axes 1, 2).
 *
 * @param x A batch `[n, h, w, c]`.
 * @param dy Rows to move down (negative: up).
 * @param dx Columns to move right (negative: left).
 * @returns The rolled batch.
 * @example Rolling and rolling back gives the input
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { roll } from "./transforms.ts";
 * await tf.setBackend("cpu");
 * const x = tf.range(0, 12).reshape([1, 3, 4, 1]) as tf.Tensor4D;
 * const back = roll(roll(x, 1, -3), -1, 3);
 * if ((await back.sub(x).abs().max().data())[0] !== 0) throw new Error("not undone");
 * ```
 */
export function roll(x: tf.Tensor4D, dy: number, dx: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const sy = ((dy % h) + h) % h;
    const sx = ((dx % w) + w) % w;
    let out: tf.Tensor4D = x;
    if (sy) {
      out = tf.concat([
        out.slice([0, h - sy, 0, 0], [-1, sy, -1, -1]),
        out.slice([0, 0, 0, 0], [-1, h - sy, -1, -1]),
      ], 1);
    }
    if (sx) {
      out = tf.concat([
        out.slice([0, 0, w - sx, 0], [-1, -1, sx, -1]),
        out.slice([0, 0, 0, 0], [-1, -1, w - sx, -1]),
      ], 2);
    }
    return out === x ? x.clone() : out;
  });
}

/**
 * Jitter: a random translation by rolling, by up to `pixels` in each direction.
 *
 * @param pixels Largest shift.
 * @returns The transform.
 */
export function jitter(pixels: number): Transform {
  if (!Number.isInteger(pixels) || pixels < 0) {
    throw new RangeError(`jitter: pixels must be a whole number >= 0, got ${pixels}`);
  }
  return {
    name: `jitter(${pixels})`,
    apply(x, rng) {
      const dy = rng.int(2 * pixels + 1) - pixels;
      const dx = rng.int(2 * pixels + 1) - pixels;
      return roll(x, dy, dx);
    },
  };
}

/**
 * Resamples a batch bilinearly about its centre: output pixel p reads the input
 * at `centre + M (p - centre)`, border pixels repeated outside.
 *
 * @param x A batch `[n, h, w, c]`.
 * @param m The 2x2 matrix `[[ryy, ryx], [rxy, rxx]]` from output to input offsets
 *   (rows, columns).
 * @returns The resampled batch.
 */
export function resample(
  x: tf.Tensor4D,
  m: readonly [number, number, number, number],
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [a, b, cc, d] = m;
  if (a === 1 && b === 0 && cc === 0 && d === 1) return x.clone();
  const cy = (h - 1) / 2, cx = (w - 1) / 2;
  const idx = [
    new Int32Array(h * w),
    new Int32Array(h * w),
    new Int32Array(h * w),
    new Int32Array(h * w),
  ];
  const wt = [
    new Float32Array(h * w),
    new Float32Array(h * w),
    new Float32Array(h * w),
    new Float32Array(h * w),
  ];
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      const p = r * w + col;
      // Snap near-integers so that exact maps (90 degrees, scale 1) stay exact.
      const snap = (v: number) => (Math.abs(v - Math.round(v)) < 1e-6 ? Math.round(v) : v);
      const sy = clamp(snap(cy + a * (r - cy) + b * (col - cx)), h - 1);
      const sx = clamp(snap(cx + cc * (r - cy) + d * (col - cx)), w - 1);
      const y0 = Math.floor(sy), x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
      const fy = sy - y0, fx = sx - x0;
      idx[0][p] = y0 * w + x0;
      idx[1][p] = y0 * w + x1;
      idx[2][p] = y1 * w + x0;
      idx[3][p] = y1 * w + x1;
      wt[0][p] = (1 - fy) * (1 - fx);
      wt[1][p] = (1 - fy) * fx;
      wt[2][p] = fy * (1 - fx);
      wt[3][p] = fy * fx;
    }
  }
  // The transpose (for the gradient), padded to the most entries of any input pixel:
  // a gather again, since the stock gradient of gather (a segment sum) is very slow
  // on the CPU backend.
  const lists: [number, number][][] = Array.from({ length: h * w }, () => []);
  for (let k = 0; k < 4; k++) {
    for (let p = 0; p < h * w; p++) if (wt[k][p] !== 0) lists[idx[k][p]].push([p, wt[k][p]]);
  }
  const most = Math.max(1, ...lists.map((l) => l.length));
  const idxT = Array.from({ length: most }, () => new Int32Array(h * w));
  const wtT = Array.from({ length: most }, () => new Float32Array(h * w));
  lists.forEach((l, q) =>
    l.forEach(([p, v], k) => {
      idxT[k][q] = p;
      wtT[k][q] = v;
    })
  );
  const apply = (t: tf.Tensor, ids: Int32Array[], ws: Float32Array[]) =>
    tf.tidy(() => {
      const flat = t.reshape([n, h * w, c]);
      let out: tf.Tensor | undefined;
      for (let k = 0; k < ids.length; k++) {
        const term = tf.gather(flat, tf.tensor1d(ids[k], "int32"), 1)
          .mul(tf.tensor3d(ws[k], [1, h * w, 1]));
        out = out ? out.add(term) : term;
      }
      return out!.reshape([n, h, w, c]) as tf.Tensor4D;
    });
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: apply(args[0] as tf.Tensor, idx, wt),
    gradFunc: (dy: tf.Tensor) => apply(dy, idxT, wtT),
  }));
  return f(x) as tf.Tensor4D;
}

/**
 * Rotates a batch about its centre by `degrees` (counter-clockwise as shown,
 * rows downward), bilinear, border pixels repeated.
 *
 * @param x A batch `[n, h, w, c]`.
 * @param degrees Angle.
 * @returns The rotated batch.
 */
export function rotateBy(x: tf.Tensor4D, degrees: number): tf.Tensor4D {
  const t = (degrees * Math.PI) / 180;
  const cos = Math.cos(t), sin = Math.sin(t);
  // Inverse rotation: output offsets to input offsets.
  return resample(x, [cos, sin, -sin, cos]);
}

/**
 * Scales a batch about its centre by `factor` (> 1 enlarges), bilinear, border
 * pixels repeated; the size stays the same.
 *
 * @param x A batch `[n, h, w, c]`.
 * @param factor Scale factor.
 * @returns The scaled batch.
 */
export function scaleBy(x: tf.Tensor4D, factor: number): tf.Tensor4D {
  if (!(factor > 0)) throw new RangeError(`scale: factor must be > 0, got ${factor}`);
  return resample(x, [1 / factor, 0, 0, 1 / factor]);
}

function pickOne(values: readonly number[], rng: Random): number {
  return values[rng.int(values.length)];
}

/**
 * A random scaling by one of `factors` (Lucid's `random_scale`).
 *
 * @param factors Scale factors to draw from.
 * @returns The transform.
 */
export function scale(factors: readonly number[]): Transform {
  if (factors.length === 0 || factors.some((f) => !(f > 0))) {
    throw new RangeError(`scale: give one or more factors > 0, got [${factors}]`);
  }
  return {
    name: `scale(${factors.join(",")})`,
    apply: (x, rng) => scaleBy(x, pickOne(factors, rng)),
  };
}

/**
 * A random rotation by one of `degrees` (Lucid's `random_rotate`).
 *
 * @param degrees Angles to draw from.
 * @returns The transform.
 */
export function rotate(degrees: readonly number[]): Transform {
  if (degrees.length === 0 || degrees.some((d) => !Number.isFinite(d))) {
    throw new RangeError(`rotate: give one or more angles in degrees, got [${degrees}]`);
  }
  return {
    name: `rotate(${degrees.join(",")})`,
    apply: (x, rng) => rotateBy(x, pickOne(degrees, rng)),
  };
}

/**
 * Transforms applied one after the other.
 *
 * @param transforms The transforms, first applied first.
 * @returns The transform.
 */
export function compose(...transforms: Transform[]): Transform {
  return {
    name: transforms.map((t) => t.name).join(" > ") || "identity",
    apply(x, rng) {
      return tf.tidy(() => {
        let out: tf.Tensor4D = x;
        for (const t of transforms) out = t.apply(out, rng);
        return out === x ? x.clone() : out;
      });
    },
  };
}

/** Lucid's standard robustness transforms, scaled to an image of side `size`. */
export function standardTransforms(size: number): Transform[] {
  const j = Math.max(1, Math.round(size / 28));
  return [
    jitter(2 * j),
    scale([1, 0.975, 1.025, 0.95, 1.05]),
    rotate([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]),
    jitter(j),
  ];
}
