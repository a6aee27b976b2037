/**
 * The lecture's transfer-learning advice as a function: from how much data
 * there is per class and how similar the new data set is to the base's, the
 * strategy of its 2x2 table:
 *
 * |                    | very similar data set        | very different data set                       |
 * | ------------------ | ---------------------------- | --------------------------------------------- |
 * | very little data   | linear classifier on top     | you're in trouble: linear classifiers from different stages |
 * | quite a lot of data| fine-tune a few layers       | fine-tune a larger number of layers           |
 *
 * Similarity is measured, not declared: {@linkcode measuredSimilarity} takes
 * linear probes of the base's layers on (a held-out part of) the new data and
 * compares the top layer's accuracy with the best layer's. Where the top
 * layer is about as good as any, the base's most specific features suit the
 * new task (similar); where an earlier stage beats it clearly, the top layer
 * is too specific to the old task (different).
 *
 * @example The four quadrants
 * ```ts
 * import { adviseTransfer } from "./advisor.ts";
 * if (adviseTransfer({ perClass: 10, similarity: 1 }).strategy !== "linear-top") throw new Error();
 * if (adviseTransfer({ perClass: 2000, similarity: 0.5 }).strategy !== "fine-tune-many") throw new Error();
 * ```
 *
 * @module
 */

/** A transfer strategy, named as the report's columns name them. */
export type TransferStrategy =
  | "scratch"
  | "linear-top"
  | "stages"
  | "fine-tune-few"
  | "fine-tune-many";

/** The strategies, in the report's order. */
export const TRANSFER_STRATEGIES: readonly TransferStrategy[] = [
  "scratch",
  "linear-top",
  "stages",
  "fine-tune-few",
  "fine-tune-many",
];

/** What each strategy is, in the lecture's words. */
export const STRATEGY_NAMES: Readonly<Record<TransferStrategy, string>> = {
  scratch: "train from scratch",
  "linear-top": "linear classifier on top layer",
  stages: "linear classifier from different stages",
  "fine-tune-few": "fine-tune a few layers",
  "fine-tune-many": "fine-tune a larger number of layers",
};

/** What the advisor is told. */
export interface AdviceInput {
  /** Training examples per class of the new task. */
  perClass: number;
  /** Measured similarity in [0, 1] (see {@linkcode measuredSimilarity}). */
  similarity: number;
  /** Examples per class from which data counts as "quite a lot". @default 500 */
  lotsPerClass?: number;
  /** Similarity from which the data sets count as "very similar". @default 0.97 */
  similarThreshold?: number;
}

/** The advisor's answer. */
export interface Advice {
  /** The strategy. */
  strategy: TransferStrategy;
  /** Whether the data sets counted as similar. */
  similar: boolean;
  /** Whether the data counted as a lot. */
  lots: boolean;
  /** The lecture's cell, in words. */
  reason: string;
}

/**
 * The lecture's strategy for a quadrant.
 *
 * @param input Data per class and measured similarity, with the thresholds.
 * @returns The strategy and why.
 * @throws {RangeError} for a negative data size or a similarity outside [0, 1].
 */
export function adviseTransfer(input: AdviceInput): Advice {
  const lotsPer = input.lotsPerClass ?? 500;
  const threshold = input.similarThreshold ?? 0.97;
  if (!(input.perClass >= 0 && Number.isFinite(input.perClass))) {
    throw new RangeError(`perClass ${input.perClass} is invalid: give a count >= 0`);
  }
  if (!(input.similarity >= 0 && input.similarity <= 1)) {
    throw new RangeError(
      `similarity ${input.similarity} is invalid: give a number in [0, 1] (measuredSimilarity)`,
    );
  }
  const lots = input.perClass >= lotsPer;
  const similar = input.similarity >= threshold;
  const strategy: TransferStrategy = similar
    ? (lots ? "fine-tune-few" : "linear-top")
    : (lots ? "fine-tune-many" : "stages");
  const data = lots ? "quite a lot of data" : "very little data";
  const set = similar ? "very similar data set" : "very different data set";
  const tail = strategy === "stages" ? " (you're in trouble)" : "";
  return { strategy, similar, lots, reason: `${data}, ${set}: ${STRATEGY_NAMES[strategy]}${tail}` };
}

/**
 * Similarity of a new data set to the base's: the top layer's probe accuracy
 * over the best probe accuracy of any layer (1 when the top layer is the best).
 *
 * @param topAccuracy Probe accuracy of the base's top layer on the new data.
 * @param layerAccuracies Probe accuracies of every probed layer, the top included.
 * @returns A number in [0, 1].
 * @throws {RangeError} for no accuracies or values outside [0, 1].
 */
export function measuredSimilarity(
  topAccuracy: number,
  layerAccuracies: readonly number[],
): number {
  const all = [topAccuracy, ...layerAccuracies];
  if (layerAccuracies.length === 0 || all.some((a) => !(a >= 0 && a <= 1))) {
    throw new RangeError("Give probe accuracies in [0, 1], the top layer's and every layer's");
  }
  const best = Math.max(...all);
  return best === 0 ? 0 : topAccuracy / best;
}
