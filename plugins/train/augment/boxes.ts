/**
 * Boxes that travel with the pixels: a box `x, y, w, h` (pixels, edge
 * coordinates) goes through each geometric transform as points on its outline
 * (its corners for an affine map, 8 points per side for a curved warp), is
 * re-boxed around them, clipped to the output and dropped when too little of it
 * is left inside.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { type Affine, applyAffine } from "./transform.ts";

/** A box in pixels: left `x`, top `y`, width `w`, height `h` (edge coordinates). */
export interface PixelBox {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  w: number;
  /** Height. */
  h: number;
  /** A class or id carried along unchanged. */
  label?: number;
}

/** Options of {@linkcode mapBox}. */
export interface MapBoxOptions {
  /** Points per side sampled for a curved map (affine maps use the corners). @default 8 */
  pointsPerSide?: number;
  /** A box whose clipped width or height is below this many pixels is dropped. @default 1 */
  minSize?: number;
}

/** A box on its way through transforms: its outline as a polygon (index coordinates), and its label. */
export interface BoxOutline {
  /** Vertices in order around the box. */
  points: [number, number][];
  /** The box's label, carried along. */
  label?: number;
}

/**
 * The outline of a box as a polygon in index coordinates (edge `e` is index
 * `e - 0.5`), `k` points per side, in order around it.
 *
 * @param box The box.
 * @param k Points per side (1: the corners).
 * @returns The outline.
 */
export function boxOutline(box: PixelBox, k = 1): BoxOutline {
  const x0 = box.x - 0.5, y0 = box.y - 0.5, x1 = box.x + box.w - 0.5, y1 = box.y + box.h - 0.5;
  const points: [number, number][] = [];
  for (let j = 0; j < k; j++) points.push([x0 + (j / k) * (x1 - x0), y0]);
  for (let j = 0; j < k; j++) points.push([x1, y0 + (j / k) * (y1 - y0)]);
  for (let j = 0; j < k; j++) points.push([x1 - (j / k) * (x1 - x0), y1]);
  for (let j = 0; j < k; j++) points.push([x0, y1 - (j / k) * (y1 - y0)]);
  return box.label === undefined ? { points } : { points, label: box.label };
}

/**
 * Moves an outline through a point map and clips it to the view: what is left
 * in view stays a polygon, so that the box at the end is the box of what is
 * visible (re-boxing after every step would grow it at each rotation).
 *
 * @param outline The outline.
 * @param map Input index coordinates to output ones (`undefined`: leaves the view).
 * @param outSize Output `[height, width]`.
 * @returns The moved, clipped outline (no points when nothing is in view).
 */
export function moveOutline(
  outline: BoxOutline,
  map: (x: number, y: number) => [number, number] | undefined,
  outSize: readonly [number, number],
): BoxOutline {
  const moved = outline.points.flatMap(([x, y]) => {
    const q = map(x, y);
    return q ? [q] : [];
  });
  const [H, W] = outSize;
  const points = clipPolygon(moved, -0.5, -0.5, W - 0.5, H - 0.5);
  return outline.label === undefined ? { points } : { points, label: outline.label };
}

/**
 * The box around an outline, or `undefined` when less than `minSize` of it is in view.
 *
 * @param outline The outline (clipped to the view).
 * @param minSize Smallest width and height kept, in pixels.
 * @returns The box in edge coordinates.
 */
export function outlineBox(outline: BoxOutline, minSize = 1): PixelBox | undefined {
  if (outline.points.length === 0) return undefined;
  let lx = Infinity, ly = Infinity, hx = -Infinity, hy = -Infinity;
  for (const [qx, qy] of outline.points) {
    lx = Math.min(lx, qx), hx = Math.max(hx, qx), ly = Math.min(ly, qy), hy = Math.max(hy, qy);
  }
  const w = hx - lx, h = hy - ly;
  if (w < minSize || h < minSize) return undefined;
  const out: PixelBox = { x: lx + 0.5, y: ly + 0.5, w, h };
  if (outline.label !== undefined) out.label = outline.label;
  return out;
}

/**
 * Moves one box through one point map: outline, map, clip, re-box.
 *
 * @param box The box (edge coordinates of the input).
 * @param map Input index coordinates to output index coordinates (`undefined`
 *   for a point that leaves the view).
 * @param outSize Output `[height, width]`.
 * @param curved Whether the map bends lines (then the sides are sampled).
 * @param options Sampling and the drop threshold.
 * @returns The moved box, or `undefined` when it is dropped.
 */
export function mapBox(
  box: PixelBox,
  map: (x: number, y: number) => [number, number] | undefined,
  outSize: readonly [number, number],
  curved: boolean,
  options: MapBoxOptions = {},
): PixelBox | undefined {
  const outline = boxOutline(box, curved ? options.pointsPerSide ?? 8 : 1);
  return outlineBox(moveOutline(outline, map, outSize), options.minSize ?? 1);
}

/**
 * Sutherland-Hodgman clipping of a polygon to an axis-aligned rectangle.
 *
 * @param polygon Vertices in order.
 * @param xmin Left.
 * @param ymin Top.
 * @param xmax Right.
 * @param ymax Bottom.
 * @returns The clipped polygon's vertices (empty when nothing is inside).
 */
export function clipPolygon(
  polygon: readonly (readonly [number, number])[],
  xmin: number,
  ymin: number,
  xmax: number,
  ymax: number,
): [number, number][] {
  let pts = polygon.map(([x, y]) => [x, y] as [number, number]);
  const sides: [(p: [number, number]) => number][] = [
    [(p) => p[0] - xmin],
    [(p) => xmax - p[0]],
    [(p) => p[1] - ymin],
    [(p) => ymax - p[1]],
  ];
  for (const [inside] of sides) {
    if (pts.length === 0) break;
    const next: [number, number][] = [];
    for (let i = 0; i < pts.length; i++) {
      const a = pts[i], b = pts[(i + 1) % pts.length];
      const da = inside(a), db = inside(b);
      if (da >= 0) next.push(a);
      if ((da >= 0) !== (db >= 0)) {
        const t = da / (da - db);
        next.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
      }
    }
    pts = next;
  }
  return pts;
}

/**
 * Moves boxes through an affine map (forward: input to output index coordinates).
 *
 * @param boxes The boxes of one image.
 * @param forward The map.
 * @param outSize Output `[height, width]`.
 * @param options The drop threshold.
 * @returns The boxes kept.
 */
export function affineBoxes(
  boxes: readonly PixelBox[],
  forward: Affine,
  outSize: readonly [number, number],
  options: MapBoxOptions = {},
): PixelBox[] {
  return boxes.flatMap((b) =>
    mapBox(b, (x, y) => applyAffine(forward, x, y), outSize, false, options) ?? []
  );
}

/**
 * Checks boxes against a batch.
 *
 * @param boxes Per image, its boxes.
 * @param n The batch's size.
 * @throws {RangeError} for a count that does not match or a box that is not finite and positive.
 */
export function checkBoxes(boxes: readonly (readonly PixelBox[])[], n: number): void {
  if (!Array.isArray(boxes) || boxes.length !== n) {
    throw new RangeError(
      `Boxes must be given per image: ${
        Array.isArray(boxes) ? boxes.length : "no"
      } lists for ${n} images`,
    );
  }
  for (const list of boxes) {
    for (const b of list) {
      if (![b?.x, b?.y, b?.w, b?.h].every(Number.isFinite) || !(b.w > 0 && b.h > 0)) {
        throw new RangeError(
          `Box ${JSON.stringify(b)} is invalid: give finite x, y and positive w, h in pixels`,
        );
      }
    }
  }
}

/**
 * Masks of boxes: 1 inside each box (pixels whose centre lies in it), 0 outside.
 *
 * @param boxes One box per mask.
 * @param height Mask height.
 * @param width Mask width.
 * @returns A new `[boxes, height, width, 1]` tensor.
 */
export function boxMasks(boxes: readonly PixelBox[], height: number, width: number): tf.Tensor4D {
  const n = boxes.length;
  return tf.tidy(() => {
    const col = (f: (b: PixelBox) => number) => tf.tensor1d(boxes.map(f));
    const cx = tf.range(0, width).add(0.5).reshape([1, 1, width, 1]);
    const cy = tf.range(0, height).add(0.5).reshape([1, height, 1, 1]);
    const inX = cx.greaterEqual(col((b) => b.x).reshape([n, 1, 1, 1]))
      .logicalAnd(cx.less(col((b) => b.x + b.w).reshape([n, 1, 1, 1])));
    const inY = cy.greaterEqual(col((b) => b.y).reshape([n, 1, 1, 1]))
      .logicalAnd(cy.less(col((b) => b.y + b.h).reshape([n, 1, 1, 1])));
    return inX.logicalAnd(inY).toFloat() as tf.Tensor4D;
  });
}
