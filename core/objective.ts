/**
 * The one objective type of convlens, as in Lucid: a named quantity of one
 * forward pass, one value per image of the batch, to be raised (by the
 * optimization loop) or differentiated (by {@linkcode gradient}, which takes the
 * gradient of the sum of the per-image values, so that each image's gradient is
 * its own). An objective says which taps, logits and output it reads, can check
 * itself against a model, and composes with {@linkcode sum} and
 * {@linkcode weighted}.
 *
 * The technique objectives (class scores, units, layer energy, feature
 * matching, image priors) live in the optimize plugin family; core knows only the
 * type and the combinators.
 *
 * @example A hand-written objective and a weighted sum of two
 * ```ts
 * import { tf } from "./tf.ts";
 * import { type Objective, weighted } from "./objective.ts";
 * const logit0: Objective = {
 *   name: "logit0",
 *   logits: true,
 *   perImage: ({ result }) => result.logits!.slice([0, 0], [-1, 1]).reshape([-1]) as tf.Tensor1D,
 * };
 * const both = weighted([[1, logit0], [0.5, logit0]]);
 * if (both.name !== "logit0 + 0.5*logit0" || !both.logits) throw new Error("weighted");
 * ```
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { ForwardResult, Net } from "./net.ts";

/** What an objective sees of one forward pass. */
export interface ObjectiveInput {
  /** The forward pass (output when read, logits when asked, taps). */
  result: ForwardResult;
  /** The batch the net saw (after any transforms), in model input space. */
  input: tf.Tensor4D;
  /**
   * The image being optimized, before transforms, in model input space (the
   * same as `input` outside the optimization loop).
   */
  image: tf.Tensor4D;
}

/**
 * A named quantity of one forward pass: one value per image.
 *
 * @example The mean of a layer's first two channels
 * ```ts
 * import { tf } from "./tf.ts";
 * import type { Objective } from "./objective.ts";
 * const twoChannels: Objective = {
 *   name: "two",
 *   taps: ["conv1"],
 *   perImage: ({ result }) =>
 *     result.taps.conv1.slice([0, 0, 0, 0], [-1, -1, -1, 2]).mean([1, 2, 3]) as tf.Tensor1D,
 * };
 * if (twoChannels.taps?.[0] !== "conv1") throw new Error("taps");
 * ```
 */
export interface Objective {
  /** Short name for captions and messages, e.g. `channel(conv2:7)`. */
  readonly name: string;
  /** Layers whose activations it reads (made available in `result.taps`). @default [] */
  readonly taps?: readonly string[];
  /** Whether it reads the logits (`result.logits`). @default false */
  readonly logits?: boolean;
  /**
   * Whether it reads `result.output`. Without it the forward pass stops at the
   * taps and logits, and reading the output throws. @default false
   */
  readonly output?: boolean;
  /**
   * Checks that it fits the model (layers exist, indices in range), before any
   * forward pass.
   * @throws {RangeError} naming the problem and the valid choices.
   */
  check?(net: Net): void;
  /** One value per image, shape `[n]`; differentiable. */
  perImage(input: ObjectiveInput): tf.Tensor1D;
}

/**
 * A weighted sum of objectives.
 *
 * @param terms `[weight, objective]` pairs.
 * @returns The objective; its taps are the union of the terms', and it reads the
 *   logits (or the output) when any term does.
 * @throws {RangeError} for no terms or a weight that is not a finite number.
 * @example Lucid's `weighted([[0.8, a], [0.2, b]])`
 * ```ts
 * import { tf } from "./tf.ts";
 * import { type Objective, weighted } from "./objective.ts";
 * await tf.setBackend("cpu");
 * const ones: Objective = {
 *   name: "ones",
 *   perImage: ({ input }) => tf.ones([input.shape[0]]) as tf.Tensor1D,
 * };
 * const w = weighted([[0.8, ones], [0.2, ones]]);
 * const x = tf.zeros([2, 1, 1, 1]) as tf.Tensor4D;
 * const v = w.perImage({ result: { output: x, taps: {} }, input: x, image: x });
 * const [a] = await v.data();
 * tf.dispose([x, v]);
 * if (Math.abs(a - 1) > 1e-6) throw new Error("0.8 + 0.2 is 1");
 * ```
 */
export function weighted(terms: readonly (readonly [number, Objective])[]): Objective {
  if (terms.length === 0) throw new RangeError("weighted: give at least one [weight, objective]");
  for (const [w, o] of terms) {
    if (!Number.isFinite(w)) throw new RangeError(`weighted: weight of ${o.name} is ${w}`);
  }
  return {
    name: terms.map(([w, o]) => (w === 1 ? o.name : `${w}*${o.name}`)).join(" + "),
    taps: [...new Set(terms.flatMap(([, o]) => o.taps ?? []))],
    logits: terms.some(([, o]) => o.logits ?? false),
    output: terms.some(([, o]) => o.output ?? false),
    check(net) {
      for (const [, o] of terms) o.check?.(net);
    },
    perImage(input) {
      let total: tf.Tensor1D | undefined;
      for (const [w, o] of terms) {
        const v = o.perImage(input);
        const term = w === 1 ? v : v.mul(w) as tf.Tensor1D;
        total = total ? total.add(term) : term;
      }
      return total!;
    },
  };
}

/**
 * The sum of objectives: `weighted` with every weight 1.
 *
 * @param objectives The terms.
 * @returns The objective.
 * @throws {RangeError} for no terms.
 * @example Two terms, one name
 * ```ts
 * import { tf } from "./tf.ts";
 * import { type Objective, sum } from "./objective.ts";
 * const zero: Objective = {
 *   name: "zero",
 *   perImage: ({ input }) => tf.zeros([input.shape[0]]) as tf.Tensor1D,
 * };
 * if (sum(zero, zero).name !== "zero + zero") throw new Error("name");
 * ```
 */
export function sum(...objectives: Objective[]): Objective {
  return weighted(objectives.map((o) => [1, o] as const));
}
