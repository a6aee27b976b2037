/**
 * Colour jitter: random brightness, contrast, saturation and hue per image, in
 * a random order per image (as torchvision's `ColorJitter`). Every one of the
 * four is a linear map of a pixel's colour (hue as a rotation of the chroma
 * plane of YIQ; contrast pulls towards the image's mean gray, itself a linear
 * function of the image), so the four compose, per image, into one 3x3 matrix
 * and an offset, and the whole jitter is one batched matrix product on the
 * backend plus one clip to the value range. (torchvision clips after each of
 * the four and rotates hue in HSV; here the clip comes once at the end and hue
 * turns in YIQ, the cheap linear form.)
 *
 * On 1-channel images the gray pixel has no saturation or hue: those two
 * leave it unchanged (exactly, by the same formulas), and brightness and
 * contrast apply as on colour images.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Random } from "../../../core/random.ts";
import { checkDrawnParams, checkRange, type Shape, type Transform, uniform } from "./transform.ts";

/** Options of {@linkcode colorJitter} (strengths as in torchvision's ColorJitter). */
export interface ColorJitterOptions {
  /** Brightness factor drawn from [max(0, 1 - b), 1 + b]. @default 0 */
  brightness?: number;
  /** Contrast factor drawn from [max(0, 1 - c), 1 + c]. @default 0 */
  contrast?: number;
  /** Saturation factor drawn from [max(0, 1 - s), 1 + s]. @default 0 */
  saturation?: number;
  /** Hue shift drawn from [-h, h], in turns of the colour circle (at most 0.5). @default 0 */
  hue?: number;
  /** Draw the order of the four per image (else brightness, contrast, saturation, hue). @default true */
  randomOrder?: boolean;
  /** Value range to clip to at the end, or `null` for none. @default [0, 1] */
  range?: readonly [number, number] | null;
}

/** Parameters of {@linkcode colorJitter} per image: the factors and the order (0..23). */
export type ColorJitterParams = {
  brightness: number[];
  contrast: number[];
  saturation: number[];
  hue: number[];
  order: number[];
};

/** A c x c matrix as rows. */
export type ColorMatrix = number[][];
type M3 = ColorMatrix;

const GRAY = [0.2989, 0.587, 0.114];
const YIQ: M3 = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];

function mul(a: M3, b: M3): M3 {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}
function mulV(a: M3, v: number[]): number[] {
  return a.map((row) => row.reduce((s, x, k) => s + x * v[k], 0));
}
function eye(c: number, s = 1): M3 {
  return Array.from({ length: c }, (_, i) => Array.from({ length: c }, (_, j) => i === j ? s : 0));
}
function add(a: M3, b: M3): M3 {
  return a.map((row, i) => row.map((v, j) => v + b[i][j]));
}
function inv3(m: M3): M3 {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}
const YIQ_INV = inv3(YIQ);

/** The 4! orders of the four adjustments. */
const ORDERS: number[][] = (() => {
  const out: number[][] = [];
  const go = (rest: number[], acc: number[]) =>
    rest.length
      ? rest.forEach((v, i) => go([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, v]))
      : out.push(acc);
  go([0, 1, 2, 3], []);
  return out;
})();

/**
 * The colour map of one image as `x -> A x + T m + t0`, where `m` is the
 * image's per-channel mean before the jitter.
 *
 * @param p The batch's parameters.
 * @param i The image.
 * @param c Channels (1 or 3).
 * @returns `A`, `T` (c x c) and `t0` (c).
 */
export function jitterMatrices(
  p: ColorJitterParams,
  i: number,
  c: number,
): { A: ColorMatrix; T: ColorMatrix; t0: number[] } {
  const g = c === 3 ? GRAY : [1];
  const oneG: M3 = Array.from({ length: c }, () => [...g]); // 1 g^T
  let A = eye(c), T = eye(c, 0), t0 = Array(c).fill(0);
  for (const op of ORDERS[p.order[i]]) {
    if (op === 0) {
      const b = p.brightness[i];
      A = mul(eye(c, b), A), T = mul(eye(c, b), T), t0 = t0.map((v) => v * b);
    } else if (op === 1) {
      // x' = k x + (1 - k) g^T mean(x) 1, and mean(x) = (A + T) m + t0.
      const k = p.contrast[i];
      const pull = oneG.map((row) => row.map((v) => v * (1 - k)));
      T = add(mul(eye(c, k), T), mul(pull, add(A, T)));
      A = mul(eye(c, k), A);
      t0 = mulV(add(eye(c, k), pull), t0);
    } else if (op === 2) {
      const s = p.saturation[i];
      const S = add(eye(c, s), oneG.map((row) => row.map((v) => v * (1 - s))));
      A = mul(S, A), T = mul(S, T), t0 = mulV(S, t0);
    } else if (c === 3 && p.hue[i] !== 0) {
      const a = 2 * Math.PI * p.hue[i], cos = Math.cos(a), sin = Math.sin(a);
      const H = mul(YIQ_INV, mul([[1, 0, 0], [0, cos, -sin], [0, sin, cos]], YIQ));
      A = mul(H, A), T = mul(H, T), t0 = mulV(H, t0);
    }
  }
  return { A, T, t0 };
}

/**
 * Random brightness, contrast, saturation and hue.
 *
 * @param options Strengths, order, clip range.
 * @returns The transform.
 * @throws {RangeError} for negative strengths or a hue above 0.5.
 */
export function colorJitter(options: ColorJitterOptions = {}): Transform<ColorJitterParams> {
  const s = {
    brightness: options.brightness ?? 0,
    contrast: options.contrast ?? 0,
    saturation: options.saturation ?? 0,
    hue: options.hue ?? 0,
  };
  for (const [k, v] of Object.entries(s)) {
    if (!(v >= 0) || (k === "hue" && v > 0.5)) {
      throw new RangeError(
        `colorJitter: ${k} ${v} is invalid: give a number >= 0${k === "hue" ? " and <= 0.5" : ""}`,
      );
    }
  }
  const range = options.range === null
    ? null
    : checkRange("colorJitter: range", options.range ?? [0, 1]);
  const randomOrder = options.randomOrder ?? true;
  const name = "colour jitter";
  const factor = (rng: Random, v: number) => uniform(rng, Math.max(0, 1 - v), 1 + v);
  return {
    name,
    kind: "photometric",
    draw(rng: Random, [n]: Shape) {
      const p: ColorJitterParams = {
        brightness: [],
        contrast: [],
        saturation: [],
        hue: [],
        order: [],
      };
      for (let i = 0; i < n; i++) {
        p.brightness.push(factor(rng, s.brightness));
        p.contrast.push(factor(rng, s.contrast));
        p.saturation.push(factor(rng, s.saturation));
        p.hue.push(uniform(rng, -s.hue, s.hue));
        p.order.push(randomOrder ? Math.floor(rng.next() * 24) : 0);
      }
      return p;
    },
    apply(x, p) {
      const [n, h, w, c] = x.shape;
      if (c !== 1 && c !== 3) {
        throw new RangeError(
          `colorJitter: images have ${c} channels; give gray (1) or RGB (3) images`,
        );
      }
      checkDrawnParams(name, p, "brightness", n);
      const mats = Array.from({ length: n }, (_, i) => jitterMatrices(p, i, c));
      return tf.tidy(() => {
        const flat = (f: (m: { A: M3; T: M3; t0: number[] }) => number[]) => mats.flatMap(f);
        // Row vectors: y = x A^T + m T^T + t0.
        const At = tf.tensor3d(flat((m) => m.A[0].map((_, j) => m.A.map((r) => r[j])).flat()), [
          n,
          c,
          c,
        ]);
        const Tt = tf.tensor3d(flat((m) => m.T[0].map((_, j) => m.T.map((r) => r[j])).flat()), [
          n,
          c,
          c,
        ]);
        const t0 = tf.tensor3d(flat((m) => m.t0), [n, 1, c]);
        // Means, offsets and the colour map as batched matrix products: on
        // the WASM backend these run natively, while a broadcast add of an
        // [n, 1, c] offset over the pixels took 8x the time of the product.
        const px = x.reshape([n, h * w, c]);
        const mean = tf.matMul(tf.fill([n, 1, h * w], 1 / (h * w)), px);
        const offset = tf.matMul(mean, Tt).add(t0);
        const y = tf.matMul(px, At).add(tf.matMul(tf.ones([n, h * w, 1]), offset));
        const out = y.reshape([n, h, w, c]);
        return (range ? out.clipByValue(range[0], range[1]) : out) as tf.Tensor4D;
      });
    },
  };
}
