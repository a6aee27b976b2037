/**
 * Argument checks shared by the image modules, so that every image function
 * rejects a bad tensor or size with the same clear message.
 *
 * @module
 */
import { tf } from "../tf.ts";

/** Throws unless `t` is a live `[height, width, 1 | 3]` (or `| 4` with alpha) tensor. */
export function checkImageTensor(t: tf.Tensor, what: string, allowAlpha = false): void {
  const ok = allowAlpha ? [1, 3, 4] : [1, 3];
  if (!(t instanceof tf.Tensor) || t.isDisposed) {
    throw new TypeError(`${what}: expected a live tf.Tensor, got ${describeValue(t)}.`);
  }
  const shape = t.shape as number[];
  if (t.rank !== 3 || !ok.includes(shape[2]) || shape[0] < 1 || shape[1] < 1) {
    throw new RangeError(
      `${what}: expected an image tensor of shape [height, width, ${ok.join(" or ")}], ` +
        `got shape [${t.shape.join(", ")}]. Squeeze a batch dimension with ` +
        "t.squeeze([0]) or pick one channel with t.slice().",
    );
  }
}

/** Names a value that is not a live tensor, for error messages. */
export function describeValue(v: unknown): string {
  if (v instanceof tf.Tensor) return "a disposed tensor";
  if (v === null) return "null";
  return typeof v;
}

/** Throws unless `height` and `width` are positive integers. */
export function checkSize(height: number, width: number, what: string): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`${what}: size must be positive integers, got ${height}x${width}.`);
  }
}
