/**
 * A seeded procedural RGB image set for the colour transforms, since no RGB
 * data set can be had on these machines: each image is a two-colour linear
 * gradient at a random angle with a filled disc and a filled rectangle of
 * random colours, drawn as broadcast tensor work on the whole batch. The
 * shapes' boxes come with the images (for the boxes demo), and the colours are
 * drawn so that the set has a real, non-diagonal RGB covariance for fancy PCA.
 *
 * @example Eight 32x32 images
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { proceduralRgb } from "./procedural_rgb.ts";
 * const { images, boxes } = proceduralRgb(8, 32, 32, 1);
 * if (images.shape.join() !== "8,32,32,3" || boxes.length !== 8) throw new Error();
 * images.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { seededRandom } from "../../../core/random.ts";
import type { PixelBox } from "./boxes.ts";

/** A procedural batch and the boxes of its shapes. */
export interface ProceduralRgb {
  /** `[n, height, width, 3]` in [0, 1]. */
  images: tf.Tensor4D;
  /** Per image: the disc's box (label 0) and the rectangle's (label 1). */
  boxes: PixelBox[][];
}

/**
 * Draws a procedural RGB batch.
 *
 * @param n Images.
 * @param height Height in pixels.
 * @param width Width in pixels.
 * @param seed Seed.
 * @returns The images and their shapes' boxes.
 * @throws {RangeError} for sizes that are not positive integers.
 */
export function proceduralRgb(
  n: number,
  height: number,
  width: number,
  seed: number,
): ProceduralRgb {
  for (const [k, v] of [["n", n], ["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`proceduralRgb: ${k} ${v} is invalid: give a positive integer`);
    }
  }
  const rng = seededRandom(seed);
  // Warm, sky-like palettes: colours vary mostly along a luminance axis and
  // one chroma axis, as natural images do.
  const colour = () => {
    const l = rng.next(), t = rng.next() - 0.5;
    return [l + 0.35 * t, l + 0.05 * t, l - 0.3 * t].map((v) => Math.min(1, Math.max(0, v)));
  };
  const cols: Record<string, number[]> = { c0: [], c1: [], cd: [], cr: [] };
  const g: Record<string, number[]> = {
    dx: [],
    dy: [],
    cx: [],
    cy: [],
    r: [],
    top: [],
    left: [],
    bh: [],
    bw: [],
  };
  const boxes: PixelBox[][] = [];
  for (let i = 0; i < n; i++) {
    for (const k of ["c0", "c1", "cd", "cr"]) cols[k].push(...colour());
    const a = 2 * Math.PI * rng.next();
    g.dx.push(Math.cos(a)), g.dy.push(Math.sin(a));
    const r = Math.max(1, (0.12 + 0.12 * rng.next()) * Math.min(height, width));
    const cx = r + rng.next() * (width - 2 * r), cy = r + rng.next() * (height - 2 * r);
    g.cx.push(cx), g.cy.push(cy), g.r.push(r);
    const bh = Math.max(1, Math.round((0.2 + 0.25 * rng.next()) * height));
    const bw = Math.max(1, Math.round((0.2 + 0.25 * rng.next()) * width));
    const top = Math.floor(rng.next() * (height - bh + 1)),
      left = Math.floor(rng.next() * (width - bw + 1));
    g.top.push(top), g.left.push(left), g.bh.push(bh), g.bw.push(bw);
    boxes.push([
      { x: cx - r, y: cy - r, w: 2 * r, h: 2 * r, label: 0 },
      { x: left, y: top, w: bw, h: bh, label: 1 },
    ]);
  }
  const images = tf.tidy(() => {
    const v = (a: number[]) => tf.tensor4d(a, [n, 1, 1, 1]);
    const c = (a: number[]) => tf.tensor4d(a, [n, 1, 1, 3]);
    // Pixel centres.
    const xs = tf.range(0, width).add(0.5).reshape([1, 1, width, 1]);
    const ys = tf.range(0, height).add(0.5).reshape([1, height, 1, 1]);
    const t = xs.div(width).sub(0.5).mul(v(g.dx)).add(ys.div(height).sub(0.5).mul(v(g.dy))).add(0.5)
      .clipByValue(0, 1);
    let img = c(cols.c0).mul(tf.sub(1, t)).add(c(cols.c1).mul(t));
    const disc = xs.sub(v(g.cx)).square().add(ys.sub(v(g.cy)).square()).less(v(g.r).square())
      .toFloat();
    img = img.mul(tf.sub(1, disc)).add(disc.mul(c(cols.cd)));
    const rect = ys.greaterEqual(v(g.top)).logicalAnd(ys.less(v(g.top.map((x, i) => x + g.bh[i]))))
      .logicalAnd(xs.greaterEqual(v(g.left))).logicalAnd(
        xs.less(v(g.left.map((x, i) => x + g.bw[i]))),
      )
      .toFloat();
    return img.mul(tf.sub(1, rect)).add(rect.mul(c(cols.cr))) as tf.Tensor4D;
  });
  return { images, boxes };
}
