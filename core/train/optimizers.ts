/**
 * The optimizers of convlens, one module for every loop that takes gradient
 * steps (training, and the image optimizations of the plugins): SGD with
 * momentum (Nesterov optional), Adam (Kingma and Ba 2015) and AdamW
 * (Loshchilov and Hutter 2019, weight decay decoupled from the gradient).
 *
 * Written here rather than taken from `tf.train` because a training loop
 * needs what tfjs's optimizers do not give: a learning rate set per step by a
 * schedule, AdamW, and a state that can be saved with a checkpoint and loaded
 * again, so that a resumed run repeats an uninterrupted one bit for bit.
 *
 * @example A few Adam steps lower a quadratic
 * ```ts
 * import { tf } from "../tf.ts";
 * import { makeOptimizer } from "./optimizers.ts";
 * const w = tf.variable(tf.tensor1d([3, -2]));
 * const opt = makeOptimizer({ name: "adam" });
 * for (let i = 0; i < 50; i++) {
 *   const { grads } = tf.variableGrads(() => w.square().sum() as tf.Scalar, [w]);
 *   opt.step([[w, grads[w.name]]], 0.1);
 *   tf.dispose(grads);
 * }
 * if (w.square().sum().dataSync()[0] > 1) throw new Error("not lower");
 * opt.dispose();
 * w.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";

/** Which update rule. */
export type OptimizerName = "sgd" | "adam" | "adamw";

/** The optimizers' names, for schemas and messages. */
export const OPTIMIZERS: readonly OptimizerName[] = ["sgd", "adam", "adamw"];

/** Options of {@linkcode makeOptimizer}. */
export interface OptimizerOptions {
  /** The update rule. */
  name: OptimizerName;
  /** SGD: momentum (0: plain SGD). @default 0.9 */
  momentum?: number;
  /** SGD: Nesterov's momentum. @default false */
  nesterov?: boolean;
  /** Adam/AdamW: decay of the first moment. @default 0.9 */
  beta1?: number;
  /** Adam/AdamW: decay of the second moment. @default 0.999 */
  beta2?: number;
  /** Adam/AdamW: added to the root of the second moment. @default 1e-7 */
  epsilon?: number;
  /**
   * Weight decay. SGD and Adam add `weightDecay * w` to the gradient (L2);
   * AdamW subtracts `lr * weightDecay * w` after the step. Either applies to
   * kernels (rank 2 and more), not to biases or batch-norm parameters.
   * @default 0 (0.01 for AdamW)
   */
  weightDecay?: number;
}

/** Adam's moments and the direction they give (call inside `tf.tidy`). */
export interface AdamMoments {
  /** The new first moment. */
  m: tf.Tensor;
  /** The new second moment. */
  v: tf.Tensor;
  /** The step direction, bias-corrected: to subtract (descend) or add (ascend) times lr. */
  direction: tf.Tensor;
}

/**
 * One Adam update of the moments: the rule every Adam in convlens takes, so
 * that training, image optimization and attacks agree with tfjs's and
 * PyTorch's Adam step for step (epsilon added after the bias correction).
 *
 * @param m The first moment (zeros at first).
 * @param v The second moment (zeros at first).
 * @param grad The gradient.
 * @param step The step, from 1.
 * @param beta1 Decay of the first moment.
 * @param beta2 Decay of the second moment.
 * @param epsilon Added to the root of the second moment.
 * @returns The new moments and the direction.
 */
export function adamMoments(
  m: tf.Tensor,
  v: tf.Tensor,
  grad: tf.Tensor,
  step: number,
  beta1 = 0.9,
  beta2 = 0.999,
  epsilon = 1e-7,
): AdamMoments {
  const m2 = m.mul(beta1).add(grad.mul(1 - beta1));
  const v2 = v.mul(beta2).add(grad.square().mul(1 - beta2));
  const mHat = m2.div(1 - beta1 ** step), vHat = v2.div(1 - beta2 ** step);
  return { m: m2, v: v2, direction: mHat.div(vHat.sqrt().add(epsilon)) };
}

/**
 * One heavy-ball momentum update: `velocity = mu * velocity + grad`, and the
 * direction to step along (Nesterov's looks one velocity ahead).
 *
 * @param velocity The velocity (zeros at first).
 * @param grad The gradient.
 * @param mu The momentum.
 * @param nesterov Nesterov's variant.
 * @returns The new velocity and the direction.
 */
export function momentumVelocity(
  velocity: tf.Tensor,
  grad: tf.Tensor,
  mu: number,
  nesterov = false,
): { velocity: tf.Tensor; direction: tf.Tensor } {
  const v2 = velocity.mul(mu).add(grad);
  return { velocity: v2, direction: nesterov ? grad.add(v2.mul(mu)) : v2 };
}

/** A variable and its gradient. */
export type Gradient = readonly [tf.Variable, tf.Tensor];

/** An optimizer with a state that can be saved and loaded. */
export interface Optimizer {
  /** The options it was made with, defaults filled in. */
  readonly options: Required<OptimizerOptions>;
  /** Steps taken. */
  readonly steps: number;
  /** Updates each variable in place from its gradient, at learning rate `lr`. */
  step(gradients: readonly Gradient[], lr: number): void;
  /**
   * Its state, copied out: the step count and the moments of each of
   * `variables`, in that order (variable names are not stable across
   * processes in tfjs, the order of a model's weights is).
   */
  getState(variables: readonly tf.Variable[]): Promise<OptimizerState>;
  /** Restores a state from {@linkcode Optimizer.getState} for the same variables, in order. */
  setState(state: OptimizerState, variables: readonly tf.Variable[]): void;
  /** Frees its moment tensors. */
  dispose(): void;
}

/** The saved state of an optimizer. */
export interface OptimizerState {
  /** Steps taken. */
  steps: number;
  /** Moment arrays of each variable in order, by slot (`m`, `v`). */
  slots: Record<string, { shape: number[]; values: Float32Array }>[];
}

/**
 * Makes an optimizer.
 *
 * @param options The update rule and its constants.
 * @returns The optimizer (dispose of it when done).
 * @throws {RangeError} for an unknown name or constants out of range.
 */
export function makeOptimizer(options: OptimizerOptions): Optimizer {
  if (!OPTIMIZERS.includes(options.name)) {
    throw new RangeError(
      `optimizer "${options.name}" is unknown; give one of ${OPTIMIZERS.join(", ")}`,
    );
  }
  const o: Required<OptimizerOptions> = {
    name: options.name,
    momentum: options.momentum ?? 0.9,
    nesterov: options.nesterov ?? false,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    epsilon: options.epsilon ?? 1e-7,
    weightDecay: options.weightDecay ?? (options.name === "adamw" ? 0.01 : 0),
  };
  for (const k of ["momentum", "beta1", "beta2"] as const) {
    if (!(o[k] >= 0 && o[k] < 1)) throw new RangeError(`${k} ${o[k]} is invalid: give [0, 1)`);
  }
  if (!(o.weightDecay >= 0)) {
    throw new RangeError(`weightDecay ${o.weightDecay} is invalid: give 0 or more`);
  }
  const slots = new Map<tf.Variable, Record<string, tf.Variable>>();
  let steps = 0;
  const slot = (v: tf.Variable, name: string): tf.Variable => {
    let s = slots.get(v);
    if (!s) slots.set(v, s = {});
    return s[name] ??= tf.variable(tf.zerosLike(v), false);
  };
  const decays = (v: tf.Variable) => o.weightDecay > 0 && v.rank >= 2;
  return {
    options: o,
    get steps() {
      return steps;
    },
    step(gradients, lr) {
      steps++;
      tf.tidy(() => {
        for (const [v, g0] of gradients) {
          const g = o.name !== "adamw" && decays(v) ? g0.add(v.mul(o.weightDecay)) : g0;
          if (o.name === "sgd") {
            if (o.momentum === 0) {
              v.assign(v.sub(g.mul(lr)));
              continue;
            }
            const m = slot(v, "m");
            const { velocity, direction } = momentumVelocity(m, g, o.momentum, o.nesterov);
            m.assign(velocity);
            v.assign(v.sub(direction.mul(lr)));
            continue;
          }
          const m = slot(v, "m"), s = slot(v, "v");
          const a = adamMoments(m, s, g, steps, o.beta1, o.beta2, o.epsilon);
          m.assign(a.m);
          s.assign(a.v);
          let next = v.sub(a.direction.mul(lr));
          if (o.name === "adamw" && decays(v)) next = next.sub(v.mul(lr * o.weightDecay));
          v.assign(next);
        }
      });
    },
    async getState(variables) {
      const out: OptimizerState = { steps, slots: [] };
      for (const v of variables) {
        const saved: OptimizerState["slots"][number] = {};
        for (const [k, t] of Object.entries(slots.get(v) ?? {})) {
          saved[k] = { shape: t.shape, values: (await t.data()) as Float32Array };
        }
        out.slots.push(saved);
      }
      return out;
    },
    setState(state, variables) {
      if (state.slots.length !== variables.length) {
        throw new RangeError(
          `optimizer state holds ${state.slots.length} variables, the model ${variables.length}: ` +
            "it belongs to another model",
        );
      }
      for (const s of slots.values()) tf.dispose(Object.values(s));
      slots.clear();
      steps = state.steps;
      state.slots.forEach((saved, i) => {
        const vars: Record<string, tf.Variable> = {};
        for (const [k, t] of Object.entries(saved)) {
          const init = tf.tensor(t.values, t.shape);
          vars[k] = tf.variable(init, false);
          init.dispose();
        }
        slots.set(variables[i], vars);
      });
    },
    dispose() {
      for (const s of slots.values()) tf.dispose(Object.values(s));
      slots.clear();
    },
  };
}
