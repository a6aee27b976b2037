/**
 * The resampling kernels a backend may provide for image warps, by name: the
 * contract between the augmentation code that warps batches and the backends
 * that run the warps fast. A caller asks {@linkcode runWarpKernel}; where the
 * current backend registers no such kernel (or the batch is not float32) it
 * gets `undefined` and composes the warp from stock tfjs ops instead.
 *
 * Both kernels sample bilinearly at input index coordinates (pixel centres at
 * whole numbers) and read 0 outside the input:
 *
 * - {@linkcode WARP_AFFINE_KERNEL}: input `x` `[n, h, w, c]`; attributes
 *   `maps` (6 numbers per image, `[a, b, c, d, e, f]`: output column `j` and
 *   row `i` sample input column `a j + b i + c` and row `d j + e i + f`),
 *   `height` and `width` of the output.
 * - {@linkcode SAMPLE_GRID_KERNEL}: inputs `x` `[n, h, w, c]`, `gx` and `gy`
 *   `[n, H, W]` (the column and row each output pixel samples).
 *
 * @example A left-right mirror, if the backend has the kernel
 * ```ts
 * import { tf } from "../tf.ts";
 * import { runWarpKernel } from "./warp_kernel.ts";
 * const x = tf.tensor4d([1, 2, 3], [1, 1, 3, 1]);
 * const y = runWarpKernel(x, [[-1, 0, 2, 0, 1, 0]], [1, 3]);
 * if (y && (await y.data()).join() !== "3,2,1") throw new Error();
 * tf.dispose([x, y]);
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";

/** Kernel name of the batched affine warp. */
export const WARP_AFFINE_KERNEL = "ConvlensWarpAffine";

/** Kernel name of bilinear sampling at a per-pixel grid. */
export const SAMPLE_GRID_KERNEL = "ConvlensSampleGrid";

/** A per-image affine map from output index coordinates to input ones. */
export type WarpMap = readonly [number, number, number, number, number, number];

function available(name: string, x: tf.Tensor): boolean {
  return x.dtype === "float32" && x.size > 0 && tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Runs the current backend's affine warp kernel, if it has one.
 *
 * @param x `[n, h, w, c]` float32 images (not disposed).
 * @param maps Per image, output index coordinates to input ones.
 * @param size Output `[height, width]`.
 * @returns A new `[n, height, width, c]` batch, or `undefined` without such a kernel.
 */
export function runWarpKernel(
  x: tf.Tensor4D,
  maps: readonly WarpMap[],
  size: readonly [number, number],
): tf.Tensor4D | undefined {
  if (!available(WARP_AFFINE_KERNEL, x)) return undefined;
  return tf.engine().runKernel(WARP_AFFINE_KERNEL, { x }, {
    maps: maps.flat(),
    height: size[0],
    width: size[1],
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * Runs the current backend's grid-sampling kernel, if it has one.
 *
 * @param x `[n, h, w, c]` float32 images (not disposed).
 * @param gx `[n, H, W]` columns to sample at.
 * @param gy `[n, H, W]` rows to sample at.
 * @returns A new `[n, H, W, c]` batch, or `undefined` without such a kernel.
 */
export function runSampleGridKernel(
  x: tf.Tensor4D,
  gx: tf.Tensor3D,
  gy: tf.Tensor3D,
): tf.Tensor4D | undefined {
  if (!available(SAMPLE_GRID_KERNEL, x) || gx.dtype !== "float32" || gy.dtype !== "float32") {
    return undefined;
  }
  return tf.engine().runKernel(SAMPLE_GRID_KERNEL, { x, gx, gy }, {}) as tf.Tensor4D;
}
