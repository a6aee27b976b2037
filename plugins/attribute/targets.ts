/**
 * The targets of an attribution: which class each image is explained for (the
 * `class` parameter, -1 for the predicted class), checked against the batch and
 * the model, and the class scores (logit `s_y` as in Simonyan et al. 2014, the
 * probability or its log) whose gradients the methods take.
 *
 * @example The predicted class of each image, and its score
 * ```ts ignore
 * import { classScores, resolveClasses } from "./targets.ts";
 * const target = await resolveClasses(net, x, undefined); // predicted classes
 * const scores = await classScores(net, x, target, "logit");
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import type { Objective } from "../../core/objective.ts";
import { readOnce } from "./batches.ts";
import { classScore, classScoresOf, type ScoreKind } from "../optimize/objectives.ts";

// One class-score family serves attributions, class models and attacks alike.
export { SCORE_KINDS, type ScoreKind } from "../optimize/objectives.ts";

/** The class-score parameter of the gradient attributions. */
export const TARGET_PARAM = {
  type: "enum",
  choices: ["logit", "prob", "logprob"] as const,
  default: "logit",
  help: "score to differentiate: logit (s_y), prob or logprob",
} as const;

/** The type of {@linkcode TARGET_PARAM}. */
export type TargetParam = typeof TARGET_PARAM;

/**
 * Checks that a batch is a live tensor the model takes.
 *
 * @param net The model.
 * @param x The batch.
 * @param what The caller, for messages.
 * @throws {TypeError} for a disposed tensor or a non-tensor.
 */
export function checkBatch(net: Net, x: tf.Tensor, what: string): void {
  if (!(x instanceof tf.Tensor) || x.isDisposed) {
    throw new TypeError(`${what}: expected a live [n, h, w, c] tensor as input`);
  }
  net.checkInput(x);
}

/**
 * The predicted class of each image.
 *
 * @param net The model.
 * @param x A batch in model input space.
 * @returns The argmax of the logits, one per image.
 */
export async function predictedClasses(net: Net, x: tf.Tensor4D): Promise<number[]> {
  return Array.from(await readOnce(tf.tidy(() => net.logits(x).argMax(1))));
}

/**
 * The class to explain for each image: `given` has one class for all images or
 * one per image; -1 (or nothing given) stands for the predicted class.
 *
 * @param net The model.
 * @param x The batch.
 * @param given Classes asked for.
 * @param what The caller, for messages.
 * @returns One checked class per image.
 * @throws {RangeError} for a class out of range or a list of the wrong length
 *   (the promise rejects).
 */
export async function resolveClasses(
  net: Net,
  x: tf.Tensor4D,
  given: readonly number[] | undefined,
  what = "attribution",
): Promise<number[]> {
  const n = x.shape[0];
  const list = given ?? [];
  if (list.length > 1 && list.length !== n) {
    throw new RangeError(
      `${what}: ${list.length} classes given for ${n} images; give one class for all images or one per image`,
    );
  }
  const wanted = Array.from(
    { length: n },
    (_, i) => list.length === 0 ? -1 : list[list.length === 1 ? 0 : i],
  );
  for (const c of wanted) {
    if (c !== -1) {
      try {
        net.checkClass(c);
      } catch (err) {
        throw new RangeError(`${what}: ${(err as Error).message}`);
      }
    }
  }
  if (!wanted.includes(-1)) return wanted;
  const predicted = await predictedClasses(net, x);
  return wanted.map((c, i) => (c === -1 ? predicted[i] : c));
}

/**
 * Checks a target list against the batch and the model's classes.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param what The caller, for messages.
 * @throws {RangeError} for a wrong count or a class out of range.
 */
export function checkTarget(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  what: string,
): void {
  checkBatch(net, x, what);
  if (!Array.isArray(target) || target.length !== x.shape[0]) {
    throw new RangeError(
      `${what}: give one target class per image (${x.shape[0]}), got ${
        Array.isArray(target) ? target.length : typeof target
      }`,
    );
  }
  for (const c of target) {
    try {
      net.checkClass(c);
    } catch (err) {
      throw new RangeError(`${what}: ${(err as Error).message}`);
    }
  }
}

/**
 * Each image's class score `score_i[target_i]`, where the score is the logit
 * (unnormalized, Simonyan's `s_y`), the probability or its log: the class-score
 * objective of the optimize family. `gradient` differentiates their sum, so each
 * image's gradient is its own score's gradient.
 *
 * @param target One class per image.
 * @param kind Which score.
 * @returns The objective, for {@linkcode gradient}.
 */
export function classObjective(target: readonly number[], kind: ScoreKind = "logit"): Objective {
  return classScore([...target], kind);
}

/**
 * Each image's class score, as numbers.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param kind Which score.
 * @returns One score per image.
 */
export async function classScores(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  kind: ScoreKind = "logit",
): Promise<number[]> {
  if (kind !== "logit") net.checkClassOutput(`class ${kind} scores`);
  const t = tf.tidy(() => classScoresOf(net.logits(x), [...target], kind, net.probability));
  return Array.from(await readOnce(t));
}
