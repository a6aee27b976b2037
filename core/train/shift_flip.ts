/**
 * The augmentation the built-in models train with: each image shifted by a
 * whole number of pixels (up to `maxShift` each way, zeros filling in) and,
 * optionally, mirrored left to right, in one batched call: the backend's warp
 * kernel (`core/images/warp_kernel.ts`; whole-pixel maps are row copies)
 * where it has one, else one batched crop of the padded batch
 * (`tf.image.cropAndResize` at integer positions copies pixels exactly, and a
 * box whose x1 exceeds its x2 is the mirrored crop).
 *
 * @example The shapes stay
 * ```ts
 * import { tf } from "../tf.ts";
 * import { seededRandom } from "../random.ts";
 * import { shiftFlip } from "./shift_flip.ts";
 * const x = tf.ones([4, 8, 8, 1]) as tf.Tensor4D;
 * const y = shiftFlip({ maxShift: 2, flip: true })(x, seededRandom(1), 0);
 * if (y.shape.join() !== x.shape.join()) throw new Error();
 * tf.dispose([x, y]);
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { Random } from "../random.ts";
import type { Augment } from "./fit.ts";
import { runWarpKernel, type WarpMap } from "../images/warp_kernel.ts";

/** Options of {@linkcode shiftFlip}. */
export interface ShiftFlipOptions {
  /** Largest shift in pixels, each way and axis. @default 2 */
  maxShift?: number;
  /** Mirror half of the images left to right. @default false */
  flip?: boolean;
}

/**
 * The shift-and-flip batch transform.
 *
 * @param options Largest shift, whether to mirror.
 * @returns A batch transform for `fit`'s `augment`.
 */
export function shiftFlip(options: ShiftFlipOptions = {}): Augment {
  const s = options.maxShift ?? 2;
  const flip = options.flip ?? false;
  if (!Number.isInteger(s) || s < 0) {
    throw new RangeError(`maxShift ${s} is invalid: give a whole number of pixels, 0 or more`);
  }
  return (x: tf.Tensor4D, rng: Random) => {
    const [n, h, w] = x.shape;
    const boxes = new Float32Array(4 * n);
    // The padded batch is 2^k + 1 pixels each way, so that every box
    // coordinate (over its last index, 2^k) and every product cropAndResize
    // forms from one is exact in float32: the crops copy whole pixels, no
    // blend. One extra row on top, never sampled: tfjs 4.22's WASM
    // CropAndResize ignores x1 for a box that starts at row 0 with an x scale
    // of exactly 1, which lost every sideways shift of an image not shifted
    // vertically.
    const pow2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(v, 1)));
    const ph = pow2(h + 2 * s), pw = pow2(w + 2 * s - 1);
    const maps: WarpMap[] = [];
    for (let i = 0; i < n; i++) {
      const dy = rng.int(2 * s + 1), dx = rng.int(2 * s + 1);
      const x1 = dx / pw, x2 = (dx + w - 1) / pw;
      const mirrored = flip && rng.next() < 0.5;
      boxes.set([(dy + 1) / ph, mirrored ? x2 : x1, (dy + h) / ph, mirrored ? x1 : x2], 4 * i);
      // The same crop as a map from output to input pixels: rows i + dy - s,
      // columns j + dx - s, or mirrored, dx + w - 1 - s - j.
      maps.push(mirrored ? [-1, 0, dx + w - 1 - s, 0, 1, dy - s] : [1, 0, dx - s, 0, 1, dy - s]);
    }
    return runWarpKernel(x, maps, [h, w]) ?? tf.tidy(() =>
      tf.image.cropAndResize(
        x.pad([[0, 0], [s + 1, ph - h - s], [s, pw + 1 - w - s], [0, 0]]),
        tf.tensor2d(boxes, [n, 4]),
        tf.range(0, n, 1, "int32") as tf.Tensor1D,
        [h, w],
        "bilinear",
      )
    );
  };
}
