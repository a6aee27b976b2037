/**
 * The one optimization loop behind every image-optimizing plugin (class models,
 * regularized unit visualization, DeepDream, feature inversion), split as in
 * Lucid into composable parts: an objective to raise (`objectives.ts`), a
 * parameterization of the image (`param.ts`), transforms before each forward
 * pass (`transforms.ts`), step priors after each update (`priors.ts`) and an
 * optimizer (here: normalized gradient ascent, and ascending forms of the
 * momentum and Adam rules of `core/train/optimizers.ts`).
 *
 * Each step: image = param.toImage(p); g = d objective(net(T(image))) / d image
 * under the chosen ReLU rule; the optimizer moves p along d objective / dp (the
 * gradient carried back through the parameterization); the step priors map the
 * new image, which goes back to p. Every step runs inside `tf.tidy`; a batch of
 * images (several seeds, classes or units) runs as one batch, and each image's
 * gradient is its own because the objective is a sum of per-image values.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { type ReluRule, withReluRule } from "../../core/gradients.ts";
import { holdingWeightsConstant } from "../../core/folded_layers.ts";
import { type Random, seededRandom } from "../../core/random.ts";
import type { Objective } from "../../core/objective.ts";
import { type Parameterization, pixels } from "./param.ts";
import type { Transform } from "./transforms.ts";
import type { StepPrior } from "./priors.ts";
import { adamMoments, momentumVelocity } from "../../core/train/optimizers.ts";

/** Moves a parameter tensor up the gradient; state lives in tensors it owns. */
export interface Optimizer {
  /** Short name for captions. */
  readonly name: string;
  /** The initial state for a parameter tensor. */
  init(param: tf.Tensor): tf.Tensor[];
  /**
   * One ascent step (called inside `tf.tidy`; the loop keeps what it returns).
   * @param param The parameter.
   * @param grad d objective / d param.
   * @param state The state from `init` or the previous step.
   * @param step The step, from 1.
   */
  update(
    param: tf.Tensor,
    grad: tf.Tensor,
    state: tf.Tensor[],
    step: number,
  ): { param: tf.Tensor; state: tf.Tensor[] };
}

/** How {@linkcode ascent} scales each image's gradient. */
export type StepNormalization = "none" | "mean-abs" | "l2";

function checkRate(lr: number, who: string): void {
  if (!(lr > 0) || !Number.isFinite(lr)) {
    throw new RangeError(`${who}: the learning rate must be a number > 0, got ${lr}`);
  }
}

/** Per-image reduction over every axis but the first. */
function perItem(t: tf.Tensor, f: (flat: tf.Tensor2D) => tf.Tensor1D): tf.Tensor {
  const flat = t.reshape([t.shape[0], -1]) as tf.Tensor2D;
  return f(flat).reshape([t.shape[0], ...t.shape.slice(1).map(() => 1)]);
}

/**
 * Gradient ascent, p <- p + lr * g / norm(g), the gradient of each image
 * normalized on its own: by its mean absolute value (DeepDream's steps), its L2
 * norm, or not at all (Simonyan et al.'s plain ascent).
 *
 * @param lr Step size.
 * @param normalize How to normalize. @default "mean-abs"
 * @returns The optimizer.
 */
export function ascent(lr: number, normalize: StepNormalization = "mean-abs"): Optimizer {
  checkRate(lr, "ascent");
  if (!["none", "mean-abs", "l2"].includes(normalize)) {
    throw new RangeError(`ascent: normalize must be none, mean-abs or l2, got "${normalize}"`);
  }
  return {
    name: `ascent(${lr}${normalize === "none" ? "" : `, ${normalize}`})`,
    init: () => [],
    update(param, grad) {
      let g = grad;
      if (normalize === "mean-abs") g = grad.div(perItem(grad, (f) => f.abs().mean(1)).add(1e-8));
      if (normalize === "l2") {
        g = grad.div(perItem(grad, (f) => f.norm(2, 1) as tf.Tensor1D).add(1e-8));
      }
      return { param: param.add(g.mul(lr)), state: [] };
    },
  };
}

/**
 * SGD with momentum: v <- mu v + g; p <- p + lr v.
 *
 * @param lr Step size.
 * @param mu Momentum, in [0, 1).
 * @returns The optimizer.
 */
export function momentum(lr: number, mu = 0.9): Optimizer {
  checkRate(lr, "momentum");
  if (!(mu >= 0 && mu < 1)) throw new RangeError(`momentum: mu must be in [0, 1), got ${mu}`);
  return {
    name: `momentum(${lr}, ${mu})`,
    init: (p) => [tf.zerosLike(p)],
    update(param, grad, [v]) {
      const { velocity, direction } = momentumVelocity(v, grad, mu);
      return { param: param.add(direction.mul(lr)), state: [velocity] };
    },
  };
}

/**
 * Adam (Kingma & Ba), ascending.
 *
 * @param lr Step size.
 * @param beta1 First-moment decay.
 * @param beta2 Second-moment decay.
 * @param epsilon Added to the root of the second moment.
 * @returns The optimizer.
 */
export function adam(lr: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8): Optimizer {
  checkRate(lr, "adam");
  return {
    name: `adam(${lr})`,
    init: (p) => [tf.zerosLike(p), tf.zerosLike(p)],
    update(param, grad, [m, v], step) {
      const a = adamMoments(m, v, grad, step, beta1, beta2, epsilon);
      return { param: param.add(a.direction.mul(lr)), state: [a.m, a.v] };
    },
  };
}

/** What the per-step callback receives. */
export interface StepInfo {
  /** The step just taken, from 1. */
  step: number;
  /** Steps in all. */
  steps: number;
  /** The objective at this step, per image (under this step's transforms). */
  values: number[];
}

/** Options of {@linkcode render}. */
export interface RenderOptions {
  /** What to raise. */
  objective: Objective;
  /** Starting images `[n, h, w, c]` in model input space (one per seed, class or unit). */
  init: tf.Tensor4D;
  /** Number of steps (a whole number > 0). */
  steps: number;
  /** What the optimizer changes. @default pixels() */
  param?: Parameterization;
  /** The optimizer. @default adam(0.05) */
  optimizer?: Optimizer;
  /** Transforms before each forward pass, first applied first. @default [] */
  transforms?: readonly Transform[];
  /** Maps of the image after each update, in order. @default [] */
  priors?: readonly StepPrior[];
  /** Draws the transforms. @default seededRandom(0) */
  rng?: Random;
  /** ReLU backward rule. @default "plain" */
  rule?: ReluRule;
  /** Steps after which to keep a copy of the images (0: the start). @default [] */
  snapshots?: readonly number[];
  /** Called after every step, with the objective's values (costs a read-back). */
  onStep?: (info: StepInfo) => void;
  /** Called after every step with (done, total), e.g. `ctx.progress`. */
  progress?: (done: number, total: number) => void;
}

/** Images kept at one step. */
export interface Snapshot {
  /** After this many steps. */
  step: number;
  /** The images, model input space (owned by the caller). */
  images: tf.Tensor4D;
}

/** What {@linkcode render} returns; the caller owns every tensor. */
export interface RenderResult {
  /** The final images `[n, h, w, c]`, model input space. */
  images: tf.Tensor4D;
  /** The objective at the final images, per image, without transforms. */
  values: number[];
  /** The images at the steps asked for, in step order. */
  snapshots: Snapshot[];
}

/**
 * Runs the optimization loop.
 *
 * @param net The model.
 * @param options Objective, starting images, steps and the parts of the loop.
 * @returns The final images, their objective values and the snapshots.
 * @throws {RangeError} for a non-positive step count, starting images that do not
 *   fit the model, or an objective that does not fit it (unknown layer, index out
 *   of range).
 * @example Raise a class score for a few steps
 * ```ts ignore
 * import { tf } from "../../core/tf.ts";
 * import { classScore, l2, sum } from "./objectives.ts";
 * import { ascent, render } from "./loop.ts";
 * const r = await render(net, {
 *   objective: sum(classScore([0, 1]), l2(0.01)),
 *   init: tf.zeros([2, 28, 28, 1]),
 *   steps: 50,
 *   optimizer: ascent(0.1, "none"),
 * });
 * console.log(r.values);
 * tf.dispose([r.images]);
 * ```
 */
export async function render(net: Net, options: RenderOptions): Promise<RenderResult> {
  const {
    objective,
    init,
    steps,
    param = pixels(),
    optimizer = adam(0.05),
    transforms = [],
    priors = [],
    rng = seededRandom(0),
    rule = "plain",
    snapshots = [],
    onStep,
    progress,
  } = options;
  if (!Number.isInteger(steps) || steps <= 0) {
    throw new RangeError(`render: steps must be a whole number > 0, got ${steps}`);
  }
  for (const s of snapshots) {
    if (!Number.isInteger(s) || s < 0 || s > steps) {
      throw new RangeError(`render: snapshot step ${s} is not a step from 0 to ${steps}`);
    }
  }
  net.checkInput(init);
  objective.check?.(net);
  const taps = objective.taps;
  const wantLogits = objective.logits;
  // Layers past the taps (and logits) need not run unless the objective reads the output.
  const stopAtTaps = !objective.output;
  const kept: Snapshot[] = [];
  let p = tf.tidy(() => param.fromImage(init));
  let state = tf.tidy(() => optimizer.init(p));
  const snap = (step: number) => {
    if (snapshots.includes(step)) {
      kept.push({ step, images: tf.tidy(() => param.toImage(p)) });
    }
  };
  try {
    snap(0);
    for (let step = 1; step <= steps; step++) {
      const out = tf.tidy(() => {
        const image = param.toImage(p);
        const f = (im: tf.Tensor) => {
          let x = im as tf.Tensor4D;
          for (const t of transforms) x = t.apply(x, rng);
          // The gradient is the image's: the weights are constants.
          const result = net.forward(x, {
            taps,
            logits: wantLogits,
            stopAtTaps,
            constantWeights: true,
          });
          return objective.perImage({ result, input: x, image: im as tf.Tensor4D });
        };
        let values: tf.Tensor1D | undefined;
        const gImage = withReluRule(
          rule,
          () =>
            holdingWeightsConstant(() =>
              tf.grad((im: tf.Tensor) => {
                const v = f(im);
                values = tf.keep(v.clone());
                return v.sum();
              })(image)
            ),
        ) as tf.Tensor4D;
        const gParam = tf.grad((q: tf.Tensor) => param.toImage(q))(p, gImage);
        let { param: next, state: nextState } = optimizer.update(p, gParam, state, step);
        if (priors.length) {
          let im = param.toImage(next);
          for (const prior of priors) im = prior.apply(im, { step, grad: gImage });
          next = param.fromImage(im);
        }
        return { next, nextState, values: values! };
      });
      tf.dispose([p, ...state]);
      p = out.next;
      state = out.nextState;
      // Read asynchronously (WebGPU cannot read GPU data synchronously), then free.
      try {
        if (onStep) onStep({ step, steps, values: Array.from(await out.values.data()) });
      } finally {
        out.values.dispose();
      }
      snap(step);
      progress?.(step, steps);
    }
    const images = tf.tidy(() => param.toImage(p));
    let v: number[];
    try {
      const values = tf.tidy(() => {
        const result = net.forward(images, { taps, logits: wantLogits, stopAtTaps });
        return objective.perImage({ result, input: images, image: images });
      });
      try {
        v = Array.from(await values.data());
      } finally {
        values.dispose();
      }
    } catch (err) {
      images.dispose();
      throw err;
    }
    return { images, values: v, snapshots: kept.sort((a, b) => a.step - b.step) };
  } catch (err) {
    tf.dispose(kept.map((s) => s.images));
    throw err;
  } finally {
    tf.dispose([p, ...state]);
  }
}

/**
 * Random starting images: the middle of the valid range plus Gaussian noise of
 * `sd` times the range, per channel, in model input space.
 *
 * @param net The model.
 * @param n How many.
 * @param rng The generator.
 * @param sd Noise, as a share of the range.
 * @returns `[n, h, w, c]`.
 */
export function noiseImages(net: Net, n: number, rng: Random, sd = 0.1): tf.Tensor4D {
  const { height, width, channels } = net.input;
  const { lo, hi } = net.inputBounds();
  return tf.tidy(() => {
    const mid = tf.tensor1d(lo.map((l, i) => (l + hi[i]) / 2));
    const span = tf.tensor1d(lo.map((l, i) => hi[i] - l));
    const z = tf.randomNormal([n, height, width, channels], 0, sd, "float32", rng.seedForTf());
    return z.mul(span).add(mid) as tf.Tensor4D;
  });
}
