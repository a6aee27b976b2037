/**
 * Rectangle masks of a batch, one rectangle per image, built by broadcast
 * comparisons of row and column indices (no per-pixel loop): what cutout,
 * random erasing and cutmix paste through.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";

/**
 * 1 inside each image's rectangle `[top, top + height) x [left, left + width)`, else 0.
 *
 * @param n Images.
 * @param h Height.
 * @param w Width.
 * @param r Per image top, left, height, width (whole pixels; may reach outside).
 * @returns A new `[n, h, w, 1]` float mask.
 */
export function rectMasks(
  n: number,
  h: number,
  w: number,
  r: { top: number[]; left: number[]; height: number[]; width: number[] },
): tf.Tensor4D {
  return tf.tidy(() => {
    const rows = tf.range(0, h).reshape([1, h, 1, 1]);
    const cols = tf.range(0, w).reshape([1, 1, w, 1]);
    const v = (a: number[]) => tf.tensor4d(a, [n, 1, 1, 1]);
    const inY = rows.greaterEqual(v(r.top)).logicalAnd(
      rows.less(v(r.top.map((t, i) => t + r.height[i]))),
    );
    const inX = cols.greaterEqual(v(r.left)).logicalAnd(
      cols.less(v(r.left.map((l, i) => l + r.width[i]))),
    );
    return inY.toFloat().mul(inX.toFloat()) as tf.Tensor4D;
  });
}
