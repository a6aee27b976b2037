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
            m.assign(m.mul(o.momentum).add(g));
            const dir = o.nesterov ? g.add(m.mul(o.momentum)) : m;
            v.assign(v.sub(dir.mul(lr)));
            continue;
          }
          const m = slot(v, "m"), s = slot(v, "v");
          m.assign(m.mul(o.beta1).add(g.mul(1 - o.beta1)));
          s.assign(s.mul(o.beta2).add(g.square().mul(1 - o.beta2)));
          // Bias-corrected moments with epsilon added after the correction, as
          // tfjs's and PyTorch's Adam do, so the three agree step for step.
          const mHat = m.div(1 - o.beta1 ** steps), vHat = s.div(1 - o.beta2 ** steps);
          let next = v.sub(mHat.div(vHat.sqrt().add(o.epsilon)).mul(lr));
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
