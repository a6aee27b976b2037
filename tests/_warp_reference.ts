/**
 * The naive reference for warps: bilinear at input index coordinates, 0
 * outside, one pixel at a time in double precision.
 *
 * @module
 */

/** An affine map from output index coordinates to input ones. */
export type Map6 = readonly number[];

/**
 * Warps `x` (`[n, h, w, c]` values) under per-image maps to `H x W`.
 *
 * @returns The `[n, H, W, c]` values.
 */
export function naiveWarp(
  x: Float32Array,
  shape: number[],
  maps: readonly Map6[],
  H: number,
  W: number,
): Float32Array {
  const [n, h, w, c] = shape;
  const out = new Float32Array(n * H * W * c);
  const at = (b: number, yy: number, xx: number, k: number) =>
    yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : x[((b * h + yy) * w + xx) * c + k];
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < H; oy++) {
      for (let ox = 0; ox < W; ox++) {
        const m = maps[b];
        const sx = m[0] * ox + m[1] * oy + m[2], sy = m[3] * ox + m[4] * oy + m[5];
        const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
        for (let k = 0; k < c; k++) {
          out[((b * H + oy) * W + ox) * c + k] =
            (1 - fy) * ((1 - fx) * at(b, y0, x0, k) + fx * at(b, y0, x0 + 1, k)) +
            fy * ((1 - fx) * at(b, y0 + 1, x0, k) + fx * at(b, y0 + 1, x0 + 1, k));
        }
      }
    }
  }
  return out;
}
