/**
 * Horizontal and vertical flips ("change the pixels without changing the
 * label": a mirrored shirt is still a shirt), each image flipped or not with
 * probability `p`, in one batched warp (`warp.ts`): a mirror map, which the
 * warp kernels copy bit-exactly row by row (or `cropAndResize` with a box
 * whose x1 exceeds its x2, exact at integer positions).
 *
 * @example Flip every image left to right
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { seededRandom } from "../../../core/random.ts";
 * import { horizontalFlip } from "./flip.ts";
 * const t = horizontalFlip({ p: 1 });
 * const x = tf.tensor4d([1, 2, 3], [1, 1, 3, 1]);
 * const y = t.apply(x, t.draw(seededRandom(0), [1, 1, 3, 1]));
 * if ((await y.data()).join() !== "3,2,1") throw new Error();
 * tf.dispose([x, y]);
 * ```
 *
 * @module
 */
import type { tf } from "../../../core/tf.ts";
import {
  type Affine,
  checkDrawnParams,
  checkProbability,
  drawApplied,
  IDENTITY,
  type Shape,
  type Transform,
} from "./transform.ts";
import { warpAffine } from "./warp.ts";

/** Options of {@linkcode horizontalFlip} and {@linkcode verticalFlip}. */
export interface FlipOptions {
  /** Probability that an image is flipped. @default 0.5 */
  p?: number;
}

/** Parameters a flip drew: 1 where the image is flipped, else 0. */
export type FlipParams = { flip: number[] };

function flip(axis: "horizontal" | "vertical", options: FlipOptions): Transform<FlipParams> {
  const p = checkProbability(`${axis}Flip: p`, options.p ?? 0.5);
  const name = `${axis} flip`;
  const inverse = (params: FlipParams, shape: Shape): Affine[] => {
    const [n, h, w] = shape;
    checkDrawnParams(name, params, "flip", n);
    return params.flip.map((f) =>
      !f ? IDENTITY : axis === "horizontal" ? [-1, 0, w - 1, 0, 1, 0] : [1, 0, 0, 0, -1, h - 1]
    );
  };
  return {
    name,
    kind: "affine",
    draw: (rng, [n]) => ({ flip: drawApplied(rng, n, p).map(Number) }),
    inverse,
    apply: (x: tf.Tensor4D, params) =>
      warpAffine(x, inverse(params, x.shape), [x.shape[1], x.shape[2]]),
  };
}

/**
 * Left-right mirror of each image with probability `p`.
 *
 * @param options The probability.
 * @returns The transform.
 */
export function horizontalFlip(options: FlipOptions = {}): Transform<FlipParams> {
  return flip("horizontal", options);
}

/**
 * Top-bottom mirror of each image with probability `p`.
 *
 * @param options The probability.
 * @returns The transform.
 */
export function verticalFlip(options: FlipOptions = {}): Transform<FlipParams> {
  return flip("vertical", options);
}
