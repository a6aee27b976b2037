/**
 * The objectives of the optimization loop and of the gradient techniques: named
 * functions of one forward pass, to be *raised*, of the one
 * {@linkcode Objective} type of `core/objective.ts`. Each gives one value per
 * image of the batch (so that several units or seeds run as one batch and each
 * image's gradient is its own), carries the taps it reads, checks itself against
 * a model before the loop starts, and composes with {@linkcode sum} and
 * {@linkcode weighted}, as in Lucid
 * (`weighted([[0.8, channel("conv2", 7)], [0.2, l2()]])`).
 *
 * The class objectives are Simonyan et al.'s class model s_y (and p_y, log p_y);
 * `neuron` and `channel` are Yosinski et al.'s units; `layerEnergy` is DeepDream's
 * mean of squares; `featureMatch` is Mahendran & Vedaldi's normalized distance to
 * a target encoding (negated, since objectives are raised); `l2`,
 * `totalVariation` and `alphaNorm` are the image priors (negated penalties).
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import type { Objective, ObjectiveInput } from "../../core/objective.ts";

// The type and its combinators are core's; they are here too so that the optimize
// family's objectives and their composition come from one module.
export { type Objective, type ObjectiveInput, sum, weighted } from "../../core/objective.ts";

function indexList(unit: number | readonly number[], n: number, what: string): number[] {
  if (typeof unit === "number") return Array(n).fill(unit);
  if (unit.length === n) return [...unit];
  if (unit.length === 1) return Array(n).fill(unit[0]);
  throw new RangeError(
    `${what}: ${unit.length} indices given for a batch of ${n} images; give one index, or one per image`,
  );
}

function unitsOf(unit: number | readonly number[]): number[] {
  return typeof unit === "number" ? [unit] : [...unit];
}

function fmt(unit: number | readonly number[]): string {
  return typeof unit === "number" ? String(unit) : unit.join(",");
}

/** Picks `t[i, idx[i]]` for a `[n, k]` tensor. */
function pick(t: tf.Tensor, idx: readonly number[]): tf.Tensor1D {
  const k = t.shape[1] as number;
  const mask = tf.oneHot(tf.tensor1d([...idx], "int32"), k).toFloat();
  return t.mul(mask).sum(1) as tf.Tensor1D;
}

function checkClasses(
  net: Net,
  unit: number | readonly number[],
  kind: ScoreKind = "logit",
): void {
  if (kind !== "logit") net.checkClassOutput(`class ${OBJECTIVE_NAMES[kind]} scores`);
  for (const c of unitsOf(unit)) net.checkClass(c);
}

function checkLayer(net: Net, layer: string): number[] {
  return net.layer(layer).outputShape;
}

/** Which class score: the logit `s_y` (unnormalized), the probability `p_y` or its log. */
export type ScoreKind = "logit" | "prob" | "logprob";

/** The score kinds, for parameter schemas. */
export const SCORE_KINDS: readonly ScoreKind[] = ["logit", "prob", "logprob"];

/**
 * Each image's class score from the logits: `score_i[cls_i]`, where the score is
 * the logit, the softmax probability or the log-softmax. Every class-score
 * objective of the project (class models, attributions, attacks) reads this one.
 * A multi-label head (`probability` `sigmoid`) scores each class by its own
 * sigmoid: `sigmoid(z_y)` and `log sigmoid(z_y)`. A binary sigmoid head needs
 * nothing special: the Net's logits `[-z/2, z/2]` have the softmax `[1 - p, p]`.
 *
 * @param logits `[n, classes]`.
 * @param cls One class for all images, or one per image.
 * @param kind Which score.
 * @param probability How logits become probabilities (`ForwardResult.probability`).
 * @returns `[n]`; differentiable.
 * @throws {RangeError} for an unknown kind or a class list of the wrong length.
 */
export function classScoresOf(
  logits: tf.Tensor,
  cls: number | readonly number[],
  kind: ScoreKind = "logit",
  probability: "softmax" | "sigmoid" = "softmax",
): tf.Tensor1D {
  if (!SCORE_KINDS.includes(kind)) {
    throw new RangeError(`Unknown score "${kind}": use one of ${SCORE_KINDS.join(", ")}`);
  }
  const s = logits as tf.Tensor2D;
  const sigmoid = probability === "sigmoid";
  const scores = kind === "logit"
    ? s
    : kind === "prob"
    ? (sigmoid ? tf.sigmoid(s) : tf.softmax(s))
    : (sigmoid ? tf.logSigmoid(s) : tf.logSoftmax(s));
  return pick(scores, indexList(cls, s.shape[0], OBJECTIVE_NAMES[kind]));
}

const OBJECTIVE_NAMES: Record<ScoreKind, string> = {
  logit: "classScore",
  prob: "probability",
  logprob: "logProbability",
};

/**
 * A class score to raise: the unnormalized score s_y (Simonyan et al.'s class
 * model objective), the probability p_y or the log-probability log p_y.
 *
 * @param cls A class index, or one per image of the batch.
 * @param kind Which score. @default "logit"
 * @returns The objective.
 */
export function classScore(
  cls: number | readonly number[],
  kind: ScoreKind = "logit",
): Objective {
  const what = OBJECTIVE_NAMES[kind];
  if (!what) throw new RangeError(`Unknown score "${kind}": use one of ${SCORE_KINDS.join(", ")}`);
  return {
    name: `${what}(${fmt(cls)})`,
    taps: [],
    logits: true,
    check: (net) => checkClasses(net, cls, kind),
    perImage: ({ result }) => classScoresOf(result.logits!, cls, kind, result.probability),
  };
}

/**
 * The class probability p_y (softmax of the logits): `classScore(cls, "prob")`.
 *
 * @param cls A class index, or one per image of the batch.
 * @returns The objective.
 */
export function probability(cls: number | readonly number[]): Objective {
  return classScore(cls, "prob");
}

/**
 * The log-probability log p_y (log-softmax of the logits): `classScore(cls, "logprob")`.
 *
 * @param cls A class index, or one per image of the batch.
 * @returns The objective.
 */
export function logProbability(cls: number | readonly number[]): Objective {
  return classScore(cls, "logprob");
}

/**
 * One neuron of a layer: a unit of a dense layer (`[u]`) or one position of one
 * channel of a spatial layer (`[row, col, channel]`). A single number is a flat
 * index into the layer's output.
 *
 * @param layer The layer's name.
 * @param index The neuron's position, or its flat index.
 * @returns The objective.
 */
export function neuron(layer: string, index: number | readonly number[]): Objective {
  const flat = (shape: number[]): number => {
    const size = shape.reduce((a, b) => a * b, 1);
    let f: number;
    if (typeof index === "number") {
      f = index;
    } else {
      if (index.length !== shape.length) {
        throw new RangeError(
          `neuron: layer "${layer}" has output [${shape}], so a neuron is ${shape.length} ` +
            `indices [${shape.map((_, i) => ["row", "col", "channel"][i] ?? `i${i}`)}]; ` +
            `got [${index}]`,
        );
      }
      f = 0;
      for (let i = 0; i < shape.length; i++) {
        if (!Number.isInteger(index[i]) || index[i] < 0 || index[i] >= shape[i]) {
          throw new RangeError(
            `neuron: index [${index}] is outside layer "${layer}" of output [${shape}]: ` +
              `index ${i} must be from 0 to ${shape[i] - 1}`,
          );
        }
        f = f * shape[i] + index[i];
      }
    }
    if (!Number.isInteger(f) || f < 0 || f >= size) {
      throw new RangeError(
        `neuron: flat index ${f} is outside layer "${layer}" of output [${shape}] ` +
          `(${size} neurons, 0 to ${size - 1})`,
      );
    }
    return f;
  };
  return {
    name: `neuron(${layer}:${fmt(index)})`,
    taps: [layer],
    logits: false,
    check: (net) => void flat(checkLayer(net, layer)),
    perImage: ({ result }) => {
      const a = result.taps[layer];
      const f = flat(a.shape.slice(1));
      return a.reshape([a.shape[0], -1]).slice([0, f], [-1, 1]).reshape([-1]) as tf.Tensor1D;
    },
  };
}

/**
 * The mean of one channel of a layer over its spatial grid (the activation itself
 * for a dense layer's unit).
 *
 * @param layer The layer's name.
 * @param ch A channel index, or one per image of the batch.
 * @returns The objective.
 */
export function channel(layer: string, ch: number | readonly number[]): Objective {
  return {
    name: `channel(${layer}:${fmt(ch)})`,
    taps: [layer],
    logits: false,
    check(net) {
      const shape = checkLayer(net, layer);
      const k = shape[shape.length - 1];
      for (const c of unitsOf(ch)) {
        if (!Number.isInteger(c) || c < 0 || c >= k) {
          throw new RangeError(
            `channel: channel ${c} is outside layer "${layer}", which has ${k} channels ` +
              `(0 to ${k - 1})`,
          );
        }
      }
    },
    perImage: ({ result }) => {
      const a = result.taps[layer];
      const n = a.shape[0];
      const k = a.shape[a.rank - 1];
      const mean = a.reshape([n, -1, k]).mean(1);
      return pick(mean, indexList(ch, n, "channel"));
    },
  };
}

/**
 * DeepDream's objective: the mean of squares of a layer's activation.
 *
 * @param layer The layer's name.
 * @returns The objective.
 */
export function layerEnergy(layer: string): Objective {
  return {
    name: `layerEnergy(${layer})`,
    taps: [layer],
    logits: false,
    check: (net) => void checkLayer(net, layer),
    perImage: ({ result }) => {
      const a = result.taps[layer];
      return a.square().reshape([a.shape[0], -1]).mean(1) as tf.Tensor1D;
    },
  };
}

/**
 * Mahendran & Vedaldi's reconstruction term, negated so that it is raised:
 * -||phi(x) - phi0||^2 / ||phi0||^2, with phi the layer's activation.
 *
 * @param layer The layer's name.
 * @param target The encoding phi0 to match, `[1 | n, ...layer shape]`; the caller
 *   owns it and keeps it alive while the objective is used.
 * @returns The objective.
 */
export function featureMatch(layer: string, target: tf.Tensor): Objective {
  return {
    name: `featureMatch(${layer})`,
    taps: [layer],
    logits: false,
    check(net) {
      const shape = checkLayer(net, layer);
      const got = target.shape.slice(1);
      if (got.length !== shape.length || got.some((v, i) => v !== shape[i])) {
        throw new RangeError(
          `featureMatch: the target has shape [${target.shape}] but layer "${layer}" gives ` +
            `[batch, ${shape}]; take the target from the same layer`,
        );
      }
    },
    perImage: ({ result }) => {
      const a = result.taps[layer];
      const n = a.shape[0];
      const t = target.reshape([target.shape[0], -1]);
      const d = a.reshape([n, -1]).sub(t).square().sum(1);
      return d.div(t.square().sum(1).add(1e-12)).neg() as tf.Tensor1D;
    },
  };
}

/**
 * A user-written objective: any function of the forward pass giving one value
 * per image.
 *
 * @param name A name for captions.
 * @param taps The layers it reads.
 * @param fn The function; `input.result.taps` holds the tapped layers.
 * @param options Whether it reads the logits, and the output (`result.output`).
 * @returns The objective.
 * @example The mean of a layer's first two channels
 * ```ts
 * import { custom } from "./objectives.ts";
 * const twoChannels = custom("two", ["conv1"], ({ result }) =>
 *   result.taps.conv1.slice([0, 0, 0, 0], [-1, -1, -1, 2]).mean([1, 2, 3]));
 * if (twoChannels.taps?.[0] !== "conv1") throw new Error("taps");
 * ```
 */
export function custom(
  name: string,
  taps: readonly string[],
  fn: (input: ObjectiveInput) => tf.Tensor1D,
  options: { logits?: boolean; output?: boolean } = {},
): Objective {
  return {
    name,
    taps: [...taps],
    logits: options.logits ?? false,
    output: options.output ?? false,
    check(net) {
      for (const t of taps) net.layer(t);
    },
    perImage: fn,
  };
}

/**
 * The L2 prior, negated: -lambda ||X - center||^2 per image (Simonyan et al.'s
 * regularizer, whose X is mean-subtracted: the center is the mean image), on
 * the image before transforms.
 *
 * @param lambda Weight.
 * @param center The image the prior pulls toward (the caller keeps it alive). @default zeros
 * @returns The objective.
 */
export function l2(lambda = 1, center?: tf.Tensor): Objective {
  return {
    name: `l2(${lambda})`,
    taps: [],
    logits: false,
    check() {},
    perImage: ({ image }) =>
      (center ? image.sub(center) : image).square().reshape([image.shape[0], -1]).sum(1)
        .mul(-lambda) as tf.Tensor1D,
  };
}

/**
 * The total variation prior, negated: -weight * sum ((dx^2 + dy^2)^(beta/2)) per
 * image (Mahendran & Vedaldi's V^beta), on the image before transforms.
 *
 * @param weight Weight.
 * @param beta Exponent (2 gives the squared gradient; 1 the classic TV).
 * @returns The objective.
 */
export function totalVariation(weight = 1, beta = 2): Objective {
  if (!(beta > 0)) throw new RangeError(`totalVariation: beta must be > 0, got ${beta}`);
  return {
    name: `totalVariation(${weight},${beta})`,
    taps: [],
    logits: false,
    check() {},
    perImage: ({ image }) => {
      const [n, h, w, c] = image.shape;
      const dy = image.slice([0, 1, 0, 0], [n, h - 1, w - 1, c])
        .sub(image.slice([0, 0, 0, 0], [n, h - 1, w - 1, c]));
      const dx = image.slice([0, 0, 1, 0], [n, h - 1, w - 1, c])
        .sub(image.slice([0, 0, 0, 0], [n, h - 1, w - 1, c]));
      const sq = dy.square().add(dx.square());
      // A small floor keeps the gradient of a fractional power finite at 0.
      const v = beta === 2 ? sq : sq.add(1e-8).pow(beta / 2);
      return v.reshape([n, -1]).sum(1).mul(-weight) as tf.Tensor1D;
    },
  };
}

/**
 * The alpha-norm prior, negated: -weight * sum |x|^alpha per image (Mahendran &
 * Vedaldi), on the image before transforms.
 *
 * @param weight Weight.
 * @param alpha Exponent (6 in the paper).
 * @returns The objective.
 */
export function alphaNorm(weight = 1, alpha = 6): Objective {
  if (!(alpha > 0)) throw new RangeError(`alphaNorm: alpha must be > 0, got ${alpha}`);
  return {
    name: `alphaNorm(${weight},${alpha})`,
    taps: [],
    logits: false,
    check() {},
    perImage: ({ image }) =>
      image.abs().add(1e-8).pow(alpha).reshape([image.shape[0], -1]).sum(1)
        .mul(-weight) as tf.Tensor1D,
  };
}

/**
 * The per-image values of an objective at some images, without transforms.
 *
 * @param net The model.
 * @param objective The objective.
 * @param images Images in model input space.
 * @returns One number per image (read asynchronously, so that WebGPU can serve it).
 */
export async function evaluate(
  net: Net,
  objective: Objective,
  images: tf.Tensor4D,
): Promise<number[]> {
  objective.check?.(net);
  const v = tf.tidy(() => {
    const result = net.forward(images, {
      taps: objective.taps,
      logits: objective.logits,
      stopAtTaps: !objective.output,
    });
    return objective.perImage({ result, input: images, image: images });
  });
  try {
    return Array.from(await v.data());
  } finally {
    v.dispose();
  }
}
