/** Closeness of kernel results, relative to the largest expected magnitude. */
import assert from "node:assert/strict";

/**
 * Asserts `got` equals `want` to within `tol` times the largest |want| (NaN
 * where a number is expected fails).
 */
export function assertClose(
  got: Float32Array,
  want: Float32Array,
  what: string,
  tol = 1e-4,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 1e-6, err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  assert.ok(err <= tol * scale, `${what}: max error ${err} vs scale ${scale}`);
}
