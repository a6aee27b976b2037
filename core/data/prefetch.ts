/**
 * Bounded read-ahead: while a batch is being used, the next ones are already
 * being read (files fetched and decoded as their reads complete), but never
 * more than `depth` of them, so memory stays at most `depth + 1` batches
 * whatever the size of the data set. A read that fails is reported when its
 * turn comes, not before; a consumer that stops early (break, error) has the
 * reads still in flight awaited and their results disposed.
 *
 * @example Three reads, at most one ahead of the one in use
 * ```ts
 * import { readAhead } from "./prefetch.ts";
 * let inFlight = 0, most = 0;
 * const read = async (i: number) => {
 *   most = Math.max(most, ++inFlight);
 *   await new Promise((r) => setTimeout(r, 1));
 *   return i;
 * };
 * const got: number[] = [];
 * for await (const v of readAhead(3, read, { depth: 1 })) {
 *   got.push(v);
 *   inFlight--;
 * }
 * if (got.join() !== "0,1,2" || most > 2) throw new Error(`${got} ${most}`);
 * ```
 *
 * @module
 */

/** Options of {@linkcode readAhead}. */
export interface ReadAheadOptions<T> {
  /** Reads started ahead of the one in use (0: one at a time). @default 1 */
  depth?: number;
  /** Frees a result that will not be used (the consumer stopped early). @default nothing */
  dispose?: (value: T) => void;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Yields `read(0), read(1), ..., read(count - 1)` in order, starting each read
 * up to `depth` turns before it is used.
 *
 * @param count How many reads.
 * @param read Starts read `i`.
 * @param options Depth and disposal.
 * @returns The results, in order.
 * @throws {RangeError} for a depth that is not a whole number >= 0.
 */
export async function* readAhead<T>(
  count: number,
  read: (i: number) => Promise<T>,
  options: ReadAheadOptions<T> = {},
): AsyncGenerator<T> {
  const depth = options.depth ?? 1;
  if (!(Number.isInteger(depth) && depth >= 0)) {
    throw new RangeError(`prefetch depth ${depth} is invalid: give a whole number, 0 or more`);
  }
  // Settled promises: a failed read ahead of its turn is not an unhandled rejection.
  const pending: Promise<Settled<T>>[] = [];
  let next = 0;
  const start = () => {
    const i = next++;
    pending.push(
      read(i).then((value) => ({ ok: true as const, value }), (error) => ({ ok: false, error })),
    );
  };
  try {
    while (next < Math.min(count, depth + 1)) start();
    while (pending.length) {
      const got = await pending.shift()!;
      if (!got.ok) throw got.error;
      yield got.value;
      // The consumer is done with this one: the next read takes its place.
      if (next < count) start();
    }
  } finally {
    for (const p of pending.splice(0)) {
      const got = await p;
      if (got.ok) options.dispose?.(got.value);
    }
  }
}
