/**
 * Seeds of a sharded job, derived from the global example index: the random
 * numbers example `i` gets depend on the run's seed, a stream (which use of
 * randomness) and `i` only, never on which shard read it or how many examples
 * came before it, so that shards never repeat or skip randomness.
 *
 * @example The same example draws the same numbers in any shard
 * ```ts
 * import { exampleRandom } from "./seeds.ts";
 * if (exampleRandom(0, 1, 42).next() !== exampleRandom(0, 1, 42).next()) throw new Error();
 * ```
 *
 * @module
 */
import { mixSeed, type Random, seededRandom } from "../random.ts";

/**
 * The seed of one example in one stream.
 *
 * @param seed The run's seed.
 * @param stream Which use of randomness (e.g. a method's position).
 * @param index The example's global index.
 * @returns A 32-bit seed.
 */
export function exampleSeed(seed: number, stream: number, index: number): number {
  return mixSeed(seed, stream, index);
}

/**
 * A generator for one example in one stream.
 *
 * @param seed The run's seed.
 * @param stream Which use of randomness.
 * @param index The example's global index.
 * @returns A fresh generator.
 */
export function exampleRandom(seed: number, stream: number, index: number): Random {
  return seededRandom(exampleSeed(seed, stream, index));
}
