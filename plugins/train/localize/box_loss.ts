/**
 * The losses a box regression head trains with, on normalized `(x, y, w, h)`
 * rows: the lecture's L2 loss ("train the regression head only with SGD and L2
 * loss"), the smooth-L1 (Huber) loss of Girshick's Fast R-CNN (ICCV 2015), which
 * is L2 near zero and L1 beyond `beta` so that a few far-off boxes do not
 * dominate, and the GIoU loss `1 - GIoU` of Rezatofighi et al. (CVPR 2019), which
 * optimizes the overlap the metric measures rather than coordinate errors.
 *
 * @example The losses of a perfect prediction are zero
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { boxLoss } from "./box_loss.ts";
 * const t = tf.tensor2d([[0.1, 0.2, 0.3, 0.4]]);
 * for (const name of ["l2", "smooth-l1", "giou"] as const) {
 *   const l = boxLoss(name, t, t);
 *   if (Math.abs(l.dataSync()[0]) > 1e-6) throw new Error(name);
 *   l.dispose();
 * }
 * t.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { giou, xywhToCorners } from "./iou.ts";

/** The box losses by name. */
export type BoxLossName = "l2" | "smooth-l1" | "giou";

/** The box losses' names, for schemas and messages. */
export const BOX_LOSSES: readonly BoxLossName[] = ["l2", "smooth-l1", "giou"];

/**
 * Where smooth-L1 turns from quadratic to linear, in normalized units: 1/9 as in
 * Detectron's box regression (about 7 pixels on a 64-pixel image).
 */
export const SMOOTH_L1_BETA = 1 / 9;

/**
 * Checks a box loss name.
 *
 * @param name The name given.
 * @returns The name, typed.
 * @throws {RangeError} naming the losses there are.
 */
export function checkBoxLoss(name: string): BoxLossName {
  if (!(BOX_LOSSES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Unknown box loss "${name}": use one of ${BOX_LOSSES.join(", ")}`,
    );
  }
  return name as BoxLossName;
}

/**
 * The mean loss of predicted boxes against true ones.
 *
 * - `l2`: `sum_k (p_k - t_k)^2` per box, averaged over boxes.
 * - `smooth-l1`: `sum_k h(p_k - t_k)`, `h(d) = d^2 / (2 beta)` for `|d| < beta`,
 *   else `|d| - beta / 2`.
 * - `giou`: `1 - GIoU` of the boxes.
 *
 * @param name Which loss.
 * @param predicted `[n, 4]` normalized `(x, y, w, h)`.
 * @param target `[n, 4]` normalized `(x, y, w, h)`.
 * @param beta Smooth-L1's turning point. @default SMOOTH_L1_BETA
 * @returns A scalar (the caller disposes of it); differentiable.
 * @throws {RangeError} for an unknown name or shapes that are not `[n, 4]` alike.
 */
export function boxLoss(
  name: BoxLossName,
  predicted: tf.Tensor2D,
  target: tf.Tensor2D,
  beta: number = SMOOTH_L1_BETA,
): tf.Scalar {
  checkBoxLoss(name);
  if (predicted.shape.join() !== target.shape.join() || predicted.shape[1] !== 4) {
    throw new RangeError(
      `boxLoss: predicted [${predicted.shape}] and target [${target.shape}] must both be [n, 4]`,
    );
  }
  return tf.tidy(() => {
    if (name === "giou") {
      return tf.sub(1, giou(xywhToCorners(predicted), xywhToCorners(target))).mean();
    }
    const d = predicted.sub(target);
    if (name === "l2") return d.square().sum(1).mean();
    // h(d) = m^2 / (2 beta) + (|d| - m) with m = min(|d|, beta): one formula, both sides.
    const a = d.abs();
    const m = tf.minimum(a, beta);
    return m.square().div(2 * beta).add(a.sub(m)).sum(1).mean();
  }) as tf.Scalar;
}
