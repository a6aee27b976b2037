/**
 * Reading tensors back and working through a batch in chunks, as every method of
 * the `attribute` family does: values are read asynchronously (on WebGPU under
 * Deno, `dataSync()` of a GPU-resident tensor fails) and large batches of samples
 * are split so that they fit in memory.
 *
 * @example Chunks of a batch of 10 by 4
 * ```ts
 * import { chunks } from "./batches.ts";
 * if (chunks(10, 4).join(";") !== "0,4;4,4;8,2") throw new Error("chunks");
 * ```
 *
 * @module
 */
import type { tf } from "../../core/tf.ts";

/**
 * Reads a tensor's values asynchronously and disposes of it. Plugins never read
 * synchronously: on WebGPU under Deno, `dataSync()` of a GPU-resident tensor fails.
 *
 * @param t A tensor the caller owns (disposed, whether the read succeeds or not).
 * @returns Its values.
 */
export async function readOnce<R extends tf.Rank>(
  t: tf.Tensor<R>,
): Promise<tf.TypedArray> {
  try {
    return await t.data() as tf.TypedArray;
  } finally {
    t.dispose();
  }
}

/**
 * Splits `count` items into consecutive chunks of at most `size`.
 *
 * @param count Number of items.
 * @param size Chunk size.
 * @returns `[start, length]` pairs.
 */
export function chunks(count: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < count; i += size) out.push([i, Math.min(size, count - i)]);
  return out;
}
