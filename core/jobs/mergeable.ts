/**
 * The mergeable-state contract of a data-set-wide job: each shard reduces its
 * slice of the data set to a state, and `merge(a, b)` combines two states into
 * the state of their union, exactly and associatively, so that any split into
 * shards, merged in any grouping, gives the single run's state. Top-k lists
 * are ordered by a total order (value, then the global example index), sums
 * are kept as float64 and concatenations by global index.
 *
 * A state travels as a {@linkcode StatePayload}: JSON plus named typed arrays,
 * which `state_file.ts` writes as a JSON file and a binary file.
 *
 * @example Top-3 by value, ties to the lower index, merged in either grouping
 * ```ts
 * import { mergeTopK } from "./mergeable.ts";
 * const key = (h: { v: number; i: number }) => [-h.v, h.i];
 * const a = [{ v: 2, i: 0 }], b = [{ v: 2, i: 5 }, { v: 1, i: 6 }], c = [{ v: 3, i: 9 }];
 * const left = mergeTopK(mergeTopK(a, b, 3, key), c, 3, key);
 * const right = mergeTopK(a, mergeTopK(b, c, 3, key), 3, key);
 * if (JSON.stringify(left) !== JSON.stringify(right)) throw new Error("not associative");
 * ```
 *
 * @module
 */

/** The typed arrays a state may carry in its binary part. */
export type StateArray = Float32Array | Float64Array | Int32Array;

/** A state as written to disk: JSON and named typed arrays. */
export interface StatePayload {
  /** The JSON part (numbers in it round-trip exactly: JSON writes the shortest exact form). */
  json: unknown;
  /** The binary part, by name. */
  arrays: Record<string, StateArray>;
}

/**
 * A job's state type with its merge and its encoding.
 *
 * `merge` must be exact and associative (and order-free), and must not change
 * its arguments: `merge(a, merge(b, c))` equals `merge(merge(a, b), c)`.
 */
export interface Mergeable<T> {
  /**
   * The state of the union of two disjoint parts of the data set.
   * @param a One part's state.
   * @param b The other part's.
   * @returns Their union's state.
   */
  merge(a: T, b: T): T;
  /**
   * The state as JSON and arrays, for its state file.
   * @param state The state.
   * @returns Its payload.
   */
  encode(state: T): StatePayload;
  /**
   * The state back from its payload.
   * @param payload What `encode` gave.
   * @returns The state.
   * @throws {RangeError} for a payload of another shape.
   */
  decode(payload: StatePayload): T;
}

/**
 * Lexicographic comparison of sort keys (numbers, smallest first).
 *
 * @param a One key.
 * @param b The other.
 * @returns Negative, zero or positive.
 */
export function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/**
 * The `k` first items of two lists by `key` (a total order: ties broken by a
 * global index in the key, so that the result does not depend on which shard
 * an item came from). Exact and associative.
 *
 * @param a One list.
 * @param b The other.
 * @param k How many to keep.
 * @param key Sort key of an item, smallest first (e.g. `[-value, image]`).
 * @returns A new list of at most `k` items.
 */
export function mergeTopK<T>(
  a: readonly T[],
  b: readonly T[],
  k: number,
  key: (item: T) => readonly number[],
): T[] {
  return [...a, ...b].sort((x, y) => compareKeys(key(x), key(y))).slice(0, k);
}

/**
 * Elementwise sums of two float64 arrays (sums for means, curves, histograms,
 * confusion matrices). Associative up to float64 rounding: a merged sum of `n`
 * terms differs from the single run's by at most about `n * 2^-53` of the sum
 * of the terms' magnitudes.
 *
 * @param a One part's sums.
 * @param b The other's, of the same length.
 * @returns A new array.
 * @throws {RangeError} when the lengths differ.
 */
export function addSums(a: Float64Array, b: Float64Array): Float64Array {
  if (a.length !== b.length) {
    throw new RangeError(`Cannot add sums of ${a.length} and ${b.length} entries`);
  }
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/**
 * Merges many states with `m.merge`, left to right.
 *
 * @param m The state type.
 * @param states At least one state.
 * @returns Their merge.
 * @throws {RangeError} for no states.
 */
export function mergeAll<T>(m: Mergeable<T>, states: readonly T[]): T {
  if (states.length === 0) throw new RangeError("Nothing to merge: give at least one state");
  return states.slice(1).reduce((acc, s) => m.merge(acc, s), states[0]);
}
