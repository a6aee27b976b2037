/**
 * The figures of a classifier on labelled data: cross-entropy loss, accuracy
 * and top-k accuracy, computed in batches on the backend, for models whose
 * output is probabilities (softmax), logits, or one sigmoid unit (binary).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { batches, type DataSource } from "../data/source.ts";

/** What a model's output holds. */
export type OutputKind = "probs" | "logits" | "binary";

/**
 * What the model's output is, from its last layer: a softmax gives
 * probabilities, one sigmoid unit a binary probability, anything else is
 * taken for logits.
 *
 * @param model The model.
 * @returns Its output kind.
 * @throws {RangeError} for a sigmoid head of several units (multi-label), which
 *   a single-label loss does not fit.
 */
export function outputKind(model: tf.LayersModel): OutputKind {
  const last = model.layers.at(-1);
  const act = (last?.getConfig() as { activation?: string } | undefined)?.activation;
  const units = model.outputs[0].shape.at(-1);
  if (act === "softmax") return "probs";
  if (act === "sigmoid") {
    if (units === 1) return "binary";
    throw new RangeError(
      `the model ends in ${units} sigmoid units (multi-label); fit trains single-label ` +
        "classifiers: end it in a softmax, linear logits, or one sigmoid unit",
    );
  }
  return "logits";
}

const EPS = 1e-7;

/**
 * Mean cross-entropy of scores against class indices.
 *
 * @param scores `[n, classes]` (or `[n, 1]` for binary).
 * @param y `[n]` int32 classes.
 * @param kind What the scores are.
 * @returns A scalar.
 */
export function lossOf(scores: tf.Tensor, y: tf.Tensor1D, kind: OutputKind): tf.Scalar {
  return tf.tidy(() => {
    if (kind === "binary") {
      const p = scores.reshape([-1]).clipByValue(EPS, 1 - EPS);
      const t = y.toFloat();
      return t.mul(p.log()).add(tf.scalar(1).sub(t).mul(tf.scalar(1).sub(p).log())).mean().neg();
    }
    const n = scores.shape.at(-1)!;
    const hot = tf.oneHot(y, n);
    const logP = kind === "logits" ? tf.logSoftmax(scores) : scores.clipByValue(EPS, 1).log();
    return hot.mul(logP).sum(-1).mean().neg();
  }) as tf.Scalar;
}

/**
 * The class each row of scores picks.
 * @param scores Scores as from the model.
 * @param kind What they are.
 * @returns `[n]` int32 classes.
 */
export function predicted(scores: tf.Tensor, kind: OutputKind): tf.Tensor1D {
  return tf.tidy(() =>
    kind === "binary" ? scores.reshape([-1]).greater(0.5).toInt() : scores.argMax(-1)
  ) as tf.Tensor1D;
}

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** What the model's output is. @default from the model */
  kind?: OutputKind;
  /** k of the top-k accuracy. @default 5 */
  topK?: number;
  /** Examples per forward pass. @default 250 */
  batchSize?: number;
}

/** Figures of a classifier on a data set. */
export interface Evaluation {
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction classified right. */
  accuracy: number;
  /** Fraction whose class is among the k highest scores. */
  topK: number;
  /** Examples measured. */
  count: number;
}

/**
 * Loss, accuracy and top-k accuracy of `model` on `data` (inference mode).
 *
 * @param model The classifier.
 * @param data Labelled examples.
 * @param options Output kind, k, batch size.
 * @returns The figures.
 */
export async function evaluate(
  model: tf.LayersModel,
  data: DataSource,
  options: EvaluateOptions = {},
): Promise<Evaluation> {
  const kind = options.kind ?? outputKind(model);
  let loss = 0, right = 0, top = 0, count = 0;
  for await (const { x, y } of batches(data, options.batchSize ?? 250)) {
    const sums = tf.tidy(() => {
      const scores = model.predict(x) as tf.Tensor;
      const n = kind === "binary" ? 2 : scores.shape.at(-1)!;
      const k = Math.min(options.topK ?? 5, n);
      const inTop = kind === "binary"
        ? tf.onesLike(y)
        : tf.topk(scores, k).indices.equal(y.expandDims(1)).any(1);
      return tf.stack([
        lossOf(scores, y, kind).mul(y.shape[0]),
        predicted(scores, kind).equal(y).sum().toFloat(),
        inTop.sum().toFloat(),
      ]);
    });
    const [l, r, t] = await sums.data();
    tf.dispose([sums, x, y]);
    loss += l;
    right += r;
    top += t;
    count += y.shape[0];
  }
  return { loss: loss / count, accuracy: right / count, topK: top / count, count };
}
