/**
 * The data splits transfer learning needs: some classes of a source as a task
 * of their own (labels renumbered from 0), and a seeded draw of k examples
 * per class with the rest held out for validation. Index lists only: no
 * image is decoded here.
 *
 * @example Classes 5-9 of a ten-class source as a five-class task
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { tensorSource } from "../../../core/data/source.ts";
 * import { classSubset } from "./splits.ts";
 * const x = tf.zeros([10, 2, 2, 1]) as tf.Tensor4D;
 * const all = tensorSource(x, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 * const top = classSubset(all, [5, 6, 7, 8, 9]);
 * if (top.size !== 5 || top.labelOf(0) !== 0 || top.classes[0] !== "5") throw new Error();
 * x.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { checkIndices, type DataSource } from "../../../core/data/source.ts";
import { seededRandom } from "../../../core/random.ts";

/**
 * The examples of `source` whose class is among `classes`, relabelled
 * `classes[k]` -> k, class names kept.
 *
 * @param source The whole source.
 * @param classes Class indices to keep, in the new label order.
 * @param name What the task is.
 * @returns The task's source.
 * @throws {RangeError} for an unknown or repeated class, or none.
 */
export function classSubset(
  source: DataSource,
  classes: readonly number[],
  name = `${source.name}, classes ${classes.join(",")}`,
): DataSource {
  if (
    classes.length === 0 || new Set(classes).size !== classes.length ||
    classes.some((c) => !(Number.isInteger(c) && c >= 0 && c < source.classes.length))
  ) {
    throw new RangeError(
      `Classes ${classes.join(",")} are invalid for ${source.name}: give distinct ` +
        `indices from 0 to ${source.classes.length - 1}`,
    );
  }
  const newLabel = new Map(classes.map((c, k) => [c, k]));
  const at: number[] = [];
  for (let i = 0; i < source.size; i++) if (newLabel.has(source.labelOf(i))) at.push(i);
  const sub: DataSource = {
    name,
    size: at.length,
    shape: source.shape,
    classes: classes.map((c) => source.classes[c]),
    range: source.range,
    labelOf: (i) => newLabel.get(source.labelOf(at[i]))!,
    async batch(indices) {
      checkIndices(sub, indices);
      const b = await source.batch(indices.map((i) => at[i]));
      b.y.dispose();
      return { x: b.x, y: tf.tensor1d(indices.map((i) => sub.labelOf(i)), "int32") };
    },
  };
  return sub;
}

/** A draw of training examples and the held-out rest. */
export interface PerClassSplit {
  /** `perClass` examples of each class (fewer where a class has fewer), in draw order. */
  train: number[];
  /** The other examples, in draw order. */
  rest: number[];
  /** The fewest examples any class got. */
  smallestClass: number;
}

/**
 * Draws `perClass` examples of each class in a seeded order, so that seeds
 * give different small training sets of the same size.
 *
 * @param source The source.
 * @param perClass Examples per class.
 * @param seed Seed of the order.
 * @returns The drawn indices and the rest.
 * @throws {RangeError} for `perClass` below 1.
 */
export function drawPerClass(source: DataSource, perClass: number, seed: number): PerClassSplit {
  if (!(Number.isInteger(perClass) && perClass >= 1)) {
    throw new RangeError(`perClass ${perClass} is invalid: give a positive integer`);
  }
  const order = seededRandom(seed).shuffle(Array.from({ length: source.size }, (_, i) => i));
  const taken = new Array(source.classes.length).fill(0);
  const train: number[] = [], rest: number[] = [];
  for (const i of order) {
    const c = source.labelOf(i);
    if (taken[c] < perClass) {
      taken[c]++;
      train.push(i);
    } else rest.push(i);
  }
  return { train, rest, smallestClass: Math.min(...taken) };
}
