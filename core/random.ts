/**
 * A small seeded random number generator, so that every run is repeatable under
 * a seed: uniform, integer, normal draws and shuffles, plus seeds for tf ops.
 *
 * @module
 */

/** A seeded source of random numbers. */
export interface Random {
  /** The seed it started from. */
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Standard normal. */
  normal(): number;
  /** A fresh 31-bit seed, e.g. for `tf.randomNormal(shape, 0, 1, "float32", seed)`. */
  seedForTf(): number;
  /** A shuffled copy of an array. */
  shuffle<T>(items: readonly T[]): T[];
  /** An independent generator derived from this one. */
  fork(): Random;
}

/**
 * Creates a generator (mulberry32).
 *
 * @param seed Any integer.
 * @returns The generator.
 * @example Same seed, same numbers
 * ```ts
 * import { seededRandom } from "./random.ts";
 * const a = seededRandom(7), b = seededRandom(7);
 * if (a.next() !== b.next()) throw new Error("not deterministic");
 * ```
 */
export function seededRandom(seed: number): Random {
  let state = Math.trunc(seed) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  const rng: Random = {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    normal() {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      // Box-Muller; 1 - u keeps the log finite.
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    seedForTf: () => Math.floor(next() * 2147483647),
    shuffle<T>(items: readonly T[]): T[] {
      const a = [...items];
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [a[i], a[j]] = [a[j], a[i]];
      }
      return a;
    },
    fork: () => seededRandom(Math.floor(next() * 4294967296)),
  };
  return rng;
}

/**
 * Mixes several integers into one 32-bit seed, so that a generator for one
 * item (an epoch, a step, an image) depends on its coordinates alone and not
 * on what ran before it: what makes a resumed run repeat an uninterrupted one.
 *
 * @param parts Integers, e.g. a seed, an epoch and a step.
 * @returns A 32-bit unsigned seed.
 * @example Same parts, same seed
 * ```ts
 * import { mixSeed } from "./random.ts";
 * if (mixSeed(1, 2) !== mixSeed(1, 2) || mixSeed(1, 2) === mixSeed(2, 1)) throw new Error();
 * ```
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (Math.trunc(p) >>> 0), 0x01000193) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0x5bd1e995) >>> 0;
    h ^= h >>> 15;
  }
  return h >>> 0;
}
