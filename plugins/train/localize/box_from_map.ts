/**
 * Boxes from attribution maps, localization without a trained box head: after
 * Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks" (ICLR 2014
 * workshop), who localized ImageNet objects from their class saliency maps (they
 * thresholded the map, grew a colour segmentation from it and boxed the largest
 * connected component). Here the map (Grad-CAM, saliency, occlusion: any
 * non-negative `[n, h, w]` map) is thresholded at a fraction of each image's
 * maximum and the box taken around either all pixels above it or the largest
 * 8-connected region of them.
 *
 * All of it is batched tensor work: the regions are labelled by propagating the
 * largest pixel index through each region with a masked 3x3 max-pool until
 * nothing changes, and their sizes counted with one `denseBincount` per batch.
 *
 * @example The box of one bright square
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { boxFromMap } from "./box_from_map.ts";
 * const map = tf.tidy(() => tf.zeros([1, 8, 8]).add(tf.pad(tf.ones([1, 2, 3]), [[0, 0], [2, 4], [1, 4]])));
 * const box = await boxFromMap(map as tf.Tensor3D);
 * const v = Array.from(box.dataSync());
 * if (v.join() !== "2,1,4,4") throw new Error(v.join());
 * tf.dispose([map, box]);
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";

/** Which above-threshold pixels the box encloses. */
export type MapRegion = "largest" | "all";

/** The regions, for schemas and messages. */
export const MAP_REGIONS: readonly MapRegion[] = ["largest", "all"];

/** Options of {@linkcode boxFromMap}. */
export interface BoxFromMapOptions {
  /** Pixels at or above `fraction * max` of their image's map count. @default 0.5 */
  fraction?: number;
  /** `largest`: the largest 8-connected region; `all`: every pixel above. @default "largest" */
  region?: MapRegion;
}

/** Label propagation checks for convergence this often (each check reads a value back). */
const CHECK_EVERY = 8;

/**
 * Labels the 8-connected regions of masks: each pixel of a region gets the
 * largest `index + 1` in it, background 0.
 */
async function labelRegions(mask: tf.Tensor3D): Promise<tf.Tensor3D> {
  const [n, h, w] = mask.shape;
  let labels = tf.tidy(() =>
    mask.mul(tf.range(1, h * w + 1).reshape([1, h, w])).expandDims(3)
  ) as tf.Tensor4D;
  const m4 = mask.expandDims(3);
  try {
    // A region's label crosses at least one pixel per step, so h * w steps always do.
    for (let step = 1; step <= h * w; step++) {
      const next = tf.tidy(() => tf.maxPool(labels, 3, 1, "same").mul(m4)) as tf.Tensor4D;
      let done = false;
      if (step % CHECK_EVERY === 0) {
        const same = tf.tidy(() => next.equal(labels).all());
        done = (await same.data())[0] === 1;
        same.dispose();
      }
      labels.dispose();
      labels = next;
      if (done) break;
    }
    return tf.tidy(() => labels.reshape([n, h, w])) as tf.Tensor3D;
  } finally {
    labels.dispose();
    m4.dispose();
  }
}

/**
 * The box of each map's pixels at or above `fraction` of its maximum (all of
 * them, or the largest 8-connected region). A map whose maximum is not above 0
 * gives the whole image.
 *
 * @param map `[n, h, w]` non-negative maps (e.g. `attributionMap` of an attribution).
 * @param options Threshold and region.
 * @returns `[n, 4]` boxes `[y0, x0, y1, x1]` in pixels, ends exclusive (the caller
 *   disposes of it).
 * @throws {RangeError} for a map that is not `[n, h, w]`, a fraction outside (0, 1]
 *   or an unknown region.
 */
export async function boxFromMap(
  map: tf.Tensor3D,
  options: BoxFromMapOptions = {},
): Promise<tf.Tensor2D> {
  const fraction = options.fraction ?? 0.5;
  const region = options.region ?? "largest";
  if (map.rank !== 3) {
    throw new RangeError(
      `boxFromMap: give maps [n, h, w], got [${map.shape}] (reduce an attribution with attributionMap)`,
    );
  }
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`boxFromMap: fraction ${fraction} must be in (0, 1], e.g. 0.5`);
  }
  if (!MAP_REGIONS.includes(region)) {
    throw new RangeError(
      `boxFromMap: unknown region "${region}"; use one of ${MAP_REGIONS.join(", ")}`,
    );
  }
  const [n, h, w] = map.shape;
  const mask = tf.tidy(() => {
    const top = map.max([1, 2], true);
    // A flat map (max <= 0) keeps every pixel: it points nowhere in particular.
    const threshold = tf.where(top.greater(0), top.mul(fraction), tf.fill(top.shape, -Infinity));
    return map.greaterEqual(threshold).toFloat();
  }) as tf.Tensor3D;
  let chosen = mask;
  try {
    if (region === "largest") {
      const labels = await labelRegions(mask);
      chosen = tf.tidy(() => {
        const flat = labels.reshape([n, h * w]).toInt() as tf.Tensor2D;
        const counts = tf.denseBincount(flat, mask.reshape([n, h * w]) as tf.Tensor2D, h * w + 1);
        const best = counts.argMax(1).reshape([n, 1, 1]).toFloat();
        return labels.equal(best).toFloat();
      }) as tf.Tensor3D;
      labels.dispose();
    }
    return tf.tidy(() => {
      const rows = chosen.max(2), cols = chosen.max(1); // [n, h], [n, w]
      const first = (t: tf.Tensor) => t.argMax(1).toFloat();
      const end = (t: tf.Tensor, size: number) => tf.sub(size, t.reverse(1).argMax(1).toFloat());
      return tf.stack([first(rows), first(cols), end(rows, h), end(cols, w)], 1) as tf.Tensor2D;
    });
  } finally {
    if (chosen !== mask) chosen.dispose();
    mask.dispose();
  }
}
