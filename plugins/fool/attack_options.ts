/**
 * The options every attack of the `fool` family takes (method, ball, epsilon in
 * pixel units, steps, targets, seed), checked once against the model and the
 * batch before any gradient is taken.
 *
 * @example The largest L-inf epsilon is the box's diameter, 1
 * ```ts ignore
 * import { checkAttackOptions, maxEpsilon } from "./attack_options.ts";
 * const o = checkAttackOptions(net, 2, { method: "pgd", epsilon: 0.3 });
 * console.log(o.stepSize, maxEpsilon(net, "linf"));
 * ```
 *
 * @module
 */
import { batchSizeFor } from "../../core/memory_budget.ts";
import type { Net } from "../../core/net.ts";
import type { Random } from "../../core/random.ts";

/** The attacks `adversarial` runs. */
export type AttackMethod = "fgsm" | "pgd" | "szegedy";

/** The norm of the ball FGSM and PGD stay in. */
export type AttackNorm = "linf" | "l2";

/** Options of {@linkcode attack}. */
export interface AttackOptions {
  /** `fgsm` (one step), `pgd` (projected steps) or `szegedy` (smallest targeted r). @default "pgd" */
  method?: AttackMethod;
  /** Ball of FGSM and PGD: `linf` (each pixel moves at most eps) or `l2`. @default "linf" */
  norm?: AttackNorm;
  /**
   * Radius of the ball in pixel units (FGSM and PGD), where pixels span the model's
   * value range as [0, 1]. @default defaultEpsilon(net, norm): a tenth of the range
   */
  epsilon?: number;
  /** PGD steps, or Adam iterations per value of c for Szegedy. @default 40 */
  steps?: number;
  /** PGD step size in pixel units; 0 picks `2.5 * epsilon / steps`. @default 0 */
  stepSize?: number;
  /** PGD starts at a uniformly random point of the ball. @default true */
  randomStart?: boolean;
  /** Target class per image (-1: untargeted, away from the label). @default all -1 */
  targets?: readonly number[];
  /** Seeded randomness (random start). @default seededRandom(0) */
  rng?: Random;
  /** Szegedy: values of c tried per image (the line search on c). @default 6 */
  searchSteps?: number;
  /** Szegedy: first c of the search. @default 0.1 */
  initialC?: number;
  /** Szegedy: Adam learning rate in pixel units. @default 0.01 */
  learningRate?: number;
  /**
   * Images per forward/backward pass.
   * @default what fits the memory budget (`core/memory_budget.ts`), at most 100
   */
  batchSize?: number;
  /** Called after each batch with images done and total. */
  onProgress?: (done: number, total: number) => void;
}

/** Largest epsilon of a norm on `[h, w, c]` pixels in [0, 1]: the diameter of the box. */
export function maxEpsilon(net: Net, norm: AttackNorm): number {
  const { height, width, channels } = net.input;
  return norm === "linf" ? 1 : Math.sqrt(height * width * channels);
}

/** The share of the model's value range an attack's budget defaults to. */
export const EPSILON_SHARE = 0.1;

/**
 * The default radius of an attack's ball: {@linkcode EPSILON_SHARE} of the
 * model's value range, whatever that range is (pixel units map `[0, 1]` onto the
 * input contract's `[lo, hi]`, so this is `0.1 x (hi - lo)` in model units). For
 * L-inf each pixel moves by at most that share; for L2 the ball holds a move of
 * that share on every pixel at once.
 *
 * @param net The model.
 * @param norm The ball's norm.
 * @returns The radius in pixel units.
 */
export function defaultEpsilon(net: Net, norm: AttackNorm): number {
  return EPSILON_SHARE * maxEpsilon(net, norm);
}

/** {@linkcode AttackOptions} checked, with every default filled in. */
export type CheckedAttackOptions =
  & Required<Omit<AttackOptions, "onProgress" | "rng" | "targets">>
  & { targets: number[] };

/**
 * Checks attack options against the model and the batch and fills in defaults.
 *
 * @param net The model.
 * @param n Images in the batch.
 * @param o The options.
 * @returns The options with defaults (`stepSize` 0 resolved to `2.5 * epsilon / steps`).
 * @throws {RangeError} naming the option that is out of range.
 */
export function checkAttackOptions(net: Net, n: number, o: AttackOptions): CheckedAttackOptions {
  const method = o.method ?? "pgd";
  const norm = o.norm ?? "linf";
  if (!["fgsm", "pgd", "szegedy"].includes(method)) {
    throw new RangeError(`Unknown attack method "${method}": use fgsm, pgd or szegedy`);
  }
  if (norm !== "linf" && norm !== "l2") {
    throw new RangeError(`Unknown norm "${norm}": use linf or l2`);
  }
  const epsilon = o.epsilon ?? defaultEpsilon(net, norm);
  const top = maxEpsilon(net, norm);
  if (!(epsilon >= 0 && epsilon <= top)) {
    throw new RangeError(
      `Epsilon ${epsilon} is outside [0, ${+top.toFixed(3)}]: it is in pixel units, where images ` +
        `span [0, 1] (the ${norm} diameter of the box is ${+top.toFixed(3)}); ` +
        "give e.g. 0.3 for linf or 2 for l2 on 28x28 digits",
    );
  }
  const steps = o.steps ?? 40;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`Steps must be a positive integer, got ${steps}: give e.g. 40`);
  }
  const stepSize = o.stepSize ?? 0;
  if (!(stepSize >= 0) || !Number.isFinite(stepSize)) {
    throw new RangeError(`Step size must be >= 0 (0 picks 2.5 * epsilon / steps), got ${stepSize}`);
  }
  const searchSteps = o.searchSteps ?? 6;
  if (!Number.isInteger(searchSteps) || searchSteps < 1) {
    throw new RangeError(`Search steps must be a positive integer, got ${searchSteps}`);
  }
  const initialC = o.initialC ?? 0.1;
  const learningRate = o.learningRate ?? 0.01;
  for (const [k, v] of [["initialC", initialC], ["learningRate", learningRate]] as const) {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`${k} must be a positive number, got ${v}`);
    }
  }
  const batchSize = o.batchSize ?? batchSizeFor(net, 100);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`Batch size must be a positive integer, got ${batchSize}`);
  }
  const targets = o.targets ? [...o.targets] : Array(n).fill(-1);
  if (targets.length !== n) {
    throw new RangeError(`Got ${targets.length} targets for ${n} images: give one per image`);
  }
  for (const t of targets) if (t !== -1) net.checkClass(t);
  if (method === "szegedy" && targets.some((t) => t < 0)) {
    throw new RangeError(
      "The Szegedy attack is targeted: give a target class (>= 0) for every image",
    );
  }
  return {
    method,
    norm,
    epsilon,
    steps,
    stepSize: stepSize || 2.5 * epsilon / steps,
    randomStart: o.randomStart ?? true,
    searchSteps,
    initialC,
    learningRate,
    batchSize,
    targets,
  };
}
