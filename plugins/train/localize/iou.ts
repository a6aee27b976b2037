/**
 * Intersection over Union, the localization metric of the lecture ("Evaluation
 * metric: Intersection over Union"), and the generalized IoU of Rezatofighi et
 * al., "Generalized Intersection over Union: A Metric and A Loss for Bounding Box
 * Regression" (CVPR 2019): `GIoU = IoU - |C \ (A u B)| / |C|` with `C` the
 * smallest box enclosing both, which is below 0 for disjoint boxes (down to -1)
 * and so still says how far apart they are.
 *
 * Batched: boxes are `[n, 4]` tensors of corners `[y0, x0, y1, x1]` (the order of
 * the one {@linkcode Box} type, ends exclusive), in pixels or normalized alike
 * (IoU does not change when an axis is scaled). A box with `y1 < y0` or
 * `x1 < x0` has no area. The conversions to and from the lecture's `(x, y, w, h)`
 * (top-left corner and size, normalized to the image) live here too.
 *
 * @example IoU of two half-overlapping squares
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { iou } from "./iou.ts";
 * const a = tf.tensor2d([[0, 0, 2, 2]]), b = tf.tensor2d([[0, 1, 2, 3]]);
 * const v = iou(a, b);
 * if (Math.abs(v.dataSync()[0] - 2 / 6) > 1e-6) throw new Error("iou");
 * tf.dispose([a, b, v]);
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Box } from "../../../core/images/grids.ts";

/** Keeps unions of empty boxes from dividing by zero. */
const EPS = 1e-9;

function checkPair(a: tf.Tensor, b: tf.Tensor, what: string): void {
  const ok = a.rank === 2 && b.rank === 2 && a.shape[1] === 4 && b.shape[1] === 4 &&
    a.shape[0] === b.shape[0];
  if (!ok) {
    throw new RangeError(
      `${what}: give two [n, 4] tensors of boxes [y0, x0, y1, x1] with the same n, ` +
        `got [${a.shape}] and [${b.shape}]`,
    );
  }
}

/** Intersection, union and enclosing-box area of each pair, each `[n]`. */
function areas(a: tf.Tensor2D, b: tf.Tensor2D): [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D] {
  const [ay0, ax0, ay1, ax1] = tf.unstack(a, 1);
  const [by0, bx0, by1, bx1] = tf.unstack(b, 1);
  const area = (y0: tf.Tensor, x0: tf.Tensor, y1: tf.Tensor, x1: tf.Tensor) =>
    tf.relu(y1.sub(y0)).mul(tf.relu(x1.sub(x0)));
  const inter = area(
    tf.maximum(ay0, by0),
    tf.maximum(ax0, bx0),
    tf.minimum(ay1, by1),
    tf.minimum(ax1, bx1),
  );
  const union = area(ay0, ax0, ay1, ax1).add(area(by0, bx0, by1, bx1)).sub(inter);
  const hull = area(
    tf.minimum(ay0, by0),
    tf.minimum(ax0, bx0),
    tf.maximum(ay1, by1),
    tf.maximum(ax1, bx1),
  );
  return [inter as tf.Tensor1D, union as tf.Tensor1D, hull as tf.Tensor1D];
}

/**
 * IoU of each pair of boxes: `|A n B| / |A u B|` (0 where both are empty).
 *
 * @param a `[n, 4]` boxes `[y0, x0, y1, x1]`.
 * @param b `[n, 4]` boxes in the same units.
 * @returns `[n]` IoUs in [0, 1] (the caller disposes of it).
 * @throws {RangeError} for tensors that are not `[n, 4]` of the same n.
 */
export function iou(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  checkPair(a, b, "iou");
  return tf.tidy(() => {
    const [inter, union] = areas(a, b);
    return inter.div(union.add(EPS)) as tf.Tensor1D;
  });
}

/**
 * Generalized IoU of each pair (Rezatofighi et al. 2019):
 * `IoU - (|C| - |A u B|) / |C|`, `C` the smallest box enclosing both; in (-1, 1],
 * 1 for identical boxes, below 0 for disjoint ones. Differentiable (its loss is
 * `1 - GIoU`).
 *
 * @param a `[n, 4]` boxes `[y0, x0, y1, x1]`.
 * @param b `[n, 4]` boxes in the same units.
 * @returns `[n]` GIoUs (the caller disposes of it).
 * @throws {RangeError} for tensors that are not `[n, 4]` of the same n.
 */
export function giou(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  checkPair(a, b, "giou");
  return tf.tidy(() => {
    const [inter, union, hull] = areas(a, b);
    const hullSafe = hull.add(EPS);
    return inter.div(union.add(EPS)).sub(hull.sub(union).div(hullSafe)) as tf.Tensor1D;
  });
}

/** What {@linkcode iouSummary} measures. */
export interface IouSummary {
  /** Mean IoU. */
  meanIoU: number;
  /** Share of pairs with IoU above 0.5 (the usual "correct localization"). */
  iouAbove05: number;
  /** Each pair's IoU. */
  ious: number[];
}

/**
 * Mean IoU and the share above 0.5 of each pair of boxes.
 *
 * @param a `[n, 4]` predicted boxes `[y0, x0, y1, x1]`.
 * @param b `[n, 4]` true boxes.
 * @returns The figures and each IoU.
 * @throws {RangeError} for tensors that are not `[n, 4]` of the same n.
 */
export async function iouSummary(a: tf.Tensor2D, b: tf.Tensor2D): Promise<IouSummary> {
  const t = iou(a, b);
  const ious = Array.from(await t.data());
  t.dispose();
  const n = Math.max(ious.length, 1);
  return {
    meanIoU: ious.reduce((s, v) => s + v, 0) / n,
    iouAbove05: ious.filter((v) => v > 0.5).length / n,
    ious,
  };
}

/**
 * A box as the lecture's `(x, y, w, h)`: top-left corner and size, each
 * normalized to the image (x and w by its width, y and h by its height).
 *
 * @param box The box in pixels.
 * @param height Image height in pixels.
 * @param width Image width in pixels.
 * @returns `[x, y, w, h]`.
 */
export function boxToXywh(
  box: Box,
  height: number,
  width: number,
): [number, number, number, number] {
  return [
    box.x0 / width,
    box.y0 / height,
    (box.x1 - box.x0) / width,
    (box.y1 - box.y0) / height,
  ];
}

/**
 * The box in pixels of a normalized `(x, y, w, h)` (no rounding: a regression
 * head's output is fractional).
 *
 * @param xywh `[x, y, w, h]`, top-left corner and size normalized to the image.
 * @param height Image height in pixels.
 * @param width Image width in pixels.
 * @returns The box.
 */
export function xywhToBox(
  xywh: readonly number[],
  height: number,
  width: number,
): Box {
  const [x, y, w, h] = xywh;
  return { y0: y * height, x0: x * width, y1: (y + h) * height, x1: (x + w) * width };
}

/**
 * Normalized `(x, y, w, h)` rows `[n, 4]` as normalized corners `[y0, x0, y1, x1]`.
 *
 * @param xywh `[n, 4]`.
 * @returns `[n, 4]` corners (the caller disposes of it).
 */
export function xywhToCorners(xywh: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [x, y, w, h] = tf.unstack(xywh, 1);
    return tf.stack([y, x, y.add(h), x.add(w)], 1) as tf.Tensor2D;
  });
}

/**
 * Boxes in pixels as a tensor of normalized `(x, y, w, h)` rows.
 *
 * @param boxes The boxes.
 * @param height Image height in pixels.
 * @param width Image width in pixels.
 * @returns `[n, 4]` (the caller disposes of it).
 */
export function boxesToXywh(boxes: readonly Box[], height: number, width: number): tf.Tensor2D {
  return tf.tensor2d(boxes.map((b) => boxToXywh(b, height, width)), [boxes.length, 4]);
}

/**
 * Boxes in pixels as a tensor of corners `[y0, x0, y1, x1]` (pixels).
 *
 * @param boxes The boxes.
 * @returns `[n, 4]` (the caller disposes of it).
 */
export function boxesToCorners(boxes: readonly Box[]): tf.Tensor2D {
  return tf.tensor2d(boxes.map((b) => [b.y0, b.x0, b.y1, b.x1]), [boxes.length, 4]);
}

/**
 * Reads a tensor of corners back as boxes, scaled from normalized units to
 * pixels when `height` and `width` are given.
 *
 * @param corners `[n, 4]` corners `[y0, x0, y1, x1]`.
 * @param height Scale of rows. @default 1
 * @param width Scale of columns. @default 1
 * @returns One box per row.
 */
export async function cornersToBoxes(
  corners: tf.Tensor2D,
  height = 1,
  width = 1,
): Promise<Box[]> {
  const v = await corners.data();
  return Array.from({ length: corners.shape[0] }, (_, i) => ({
    y0: v[4 * i] * height,
    x0: v[4 * i + 1] * width,
    y1: v[4 * i + 2] * height,
    x1: v[4 * i + 3] * width,
  }));
}
