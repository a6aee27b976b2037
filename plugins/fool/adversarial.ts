/**
 * `adversarial` (fool): adversarial examples, the lecture's "x, r, x + r" figure.
 *
 * - FGSM, the fast gradient sign method of Goodfellow, Shlens & Szegedy,
 *   "Explaining and Harnessing Adversarial Examples" (ICLR 2015):
 *   `x + eps * sign(d loss / dx)` (or the L2 step `eps * g / |g|`).
 * - Iterative FGSM / projected gradient descent (Kurakin et al. 2017; Madry et al.,
 *   "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018):
 *   steps of size `alpha` projected back onto the L-inf or L2 ball of radius `eps`
 *   around `x` and onto the box [0, 1], from a random start inside the ball.
 * - The smallest targeted perturbation of Szegedy et al., "Intriguing Properties of
 *   Neural Networks" (ICLR 2014): minimize `c * |r|^2 + loss_target(x + r)` under the
 *   box constraint `x + r in [0, 1]` (here by projected Adam instead of L-BFGS-B),
 *   with a per-image search on `c` for the largest `c` (smallest `r`) that still
 *   reaches the target.
 *
 * Everything works in display-pixel space [0, 1] (via `net.fromPixels`), so an
 * epsilon is in pixel units whatever the model's own normalization, and it is
 * batched over images. Each result reports the success rate, the L0/L2/L-inf
 * norms of `r`, the confidence before and after, and whether the example still
 * fools the net once saved as an 8-bit PNG and read back.
 *
 * @example Attack two images with PGD
 * ```ts ignore
 * import { attack, evaluateAttack } from "./adversarial.ts";
 * const adv = await attack(net, pixels, labels, { method: "pgd", epsilon: 0.3, steps: 40 });
 * const records = await evaluateAttack(net, pixels, adv, labels);
 * console.log(records.map((r) => r.success));
 * adv.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import { definePlugin, type InputImages, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { grid } from "../../core/images/grids.ts";
import { type Random, seededRandom } from "../../core/random.ts";
import { heldOutDigits } from "../../core/datasets.ts";
import {
  argmax,
  checkClassifier,
  l2PerImage,
  logProbObjective,
  mean,
  normalNoise,
  norms,
  pct,
  pixelGradient,
  pixelProbabilities,
  pngRoundTrip,
  rows,
  signOf,
  uniformNoise,
} from "./_common.ts";

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
  /** Radius of the ball in pixel units (FGSM and PGD). @default 0.3 */
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
  /** Images per forward/backward pass. @default 100 */
  batchSize?: number;
  /** Called after each batch with images done and total. */
  onProgress?: (done: number, total: number) => void;
}

/** Largest epsilon of a norm on `[h, w, c]` pixels in [0, 1]: the diameter of the box. */
export function maxEpsilon(net: Net, norm: AttackNorm): number {
  const { height, width, channels } = net.input;
  return norm === "linf" ? 1 : Math.sqrt(height * width * channels);
}

function checkOptions(net: Net, n: number, o: AttackOptions):
  & Required<
    Omit<AttackOptions, "onProgress" | "rng" | "targets">
  >
  & { targets: number[] } {
  const method = o.method ?? "pgd";
  const norm = o.norm ?? "linf";
  if (!["fgsm", "pgd", "szegedy"].includes(method)) {
    throw new RangeError(`Unknown attack method "${method}": use fgsm, pgd or szegedy`);
  }
  if (norm !== "linf" && norm !== "l2") {
    throw new RangeError(`Unknown norm "${norm}": use linf or l2`);
  }
  const epsilon = o.epsilon ?? 0.3;
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
  const batchSize = o.batchSize ?? 100;
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

/** Projects `adv` onto the ball around `x` and onto the box [0, 1]. */
function project(adv: tf.Tensor, x: tf.Tensor, norm: AttackNorm, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    let d = adv.sub(x);
    if (norm === "linf") d = d.clipByValue(-eps, eps);
    else d = d.mul(tf.minimum(1, tf.div(eps, l2PerImage(d))));
    return x.add(d).clipByValue(0, 1) as tf.Tensor4D;
  });
}

/** The step direction: sign of g (L-inf) or g / |g| (L2). */
function direction(g: tf.Tensor, norm: AttackNorm): tf.Tensor {
  return tf.tidy(() => (norm === "linf" ? signOf(g) : g.div(l2PerImage(g))));
}

function ballAttack(
  net: Net,
  x: tf.Tensor4D,
  labels: number[],
  targets: number[],
  o: ReturnType<typeof checkOptions>,
  rng: Random,
): tf.Tensor4D {
  const k = net.numClasses;
  const cls = labels.map((l, i) => (targets[i] >= 0 ? targets[i] : l));
  const w = targets.map((t) => (t >= 0 ? 1 : -1));
  const { objective, dispose } = logProbObjective(cls, w, k);
  try {
    if (o.method === "fgsm") {
      const g = pixelGradient(net, x, objective);
      const out = tf.tidy(() =>
        x.add(direction(g, o.norm).mul(o.epsilon)).clipByValue(0, 1)
      ) as tf.Tensor4D;
      g.dispose();
      return out;
    }
    let adv: tf.Tensor4D;
    if (o.randomStart && o.epsilon > 0) {
      adv = tf.tidy(() => {
        if (o.norm === "linf") {
          return x.add(uniformNoise(rng, x.shape, o.epsilon)).clipByValue(0, 1);
        }
        // Uniform in the L2 ball: a normal direction, radius eps * u^(1/d).
        const d = x.size / x.shape[0];
        const dir = normalNoise(rng, x.shape);
        const radius = Array.from({ length: x.shape[0] }, () => o.epsilon * rng.next() ** (1 / d));
        const r = dir.div(l2PerImage(dir)).mul(tf.tensor(radius, [x.shape[0], 1, 1, 1]));
        return x.add(r).clipByValue(0, 1);
      }) as tf.Tensor4D;
    } else {
      adv = x.clone();
    }
    for (let s = 0; s < o.steps; s++) {
      const g = pixelGradient(net, adv, objective);
      const next = tf.tidy(() =>
        project(adv.add(direction(g, o.norm).mul(o.stepSize)), x, o.norm, o.epsilon)
      );
      tf.dispose([g, adv]);
      adv = next;
    }
    return adv;
  } finally {
    dispose();
  }
}

async function szegedyAttack(
  net: Net,
  x: tf.Tensor4D,
  targets: number[],
  o: ReturnType<typeof checkOptions>,
): Promise<tf.Tensor4D> {
  const n = x.shape[0];
  const { objective, dispose } = logProbObjective(targets, targets.map(() => 1), net.numClasses);
  const c = Array(n).fill(o.initialC);
  const lo = Array(n).fill(0);
  const hi = Array(n).fill(Infinity);
  const bestL2 = Array(n).fill(Infinity);
  let best = x.clone();
  let last: tf.Tensor4D | undefined;
  const b1 = 0.9, b2 = 0.999;
  // Checking every few iterations keeps the smallest successful r seen, at a forward
  // pass per check.
  const checkEvery = Math.max(1, Math.floor(o.steps / 8));
  try {
    for (let s = 0; s < o.searchSteps; s++) {
      const cT = tf.tensor(c, [n, 1, 1, 1]);
      let r = tf.zerosLike(x) as tf.Tensor4D;
      let m: tf.Tensor = tf.zerosLike(x);
      let v: tf.Tensor = tf.zerosLike(x);
      const succeeded = Array(n).fill(false);
      for (let t = 1; t <= o.steps; t++) {
        const adv = tf.tidy(() => x.add(r)) as tf.Tensor4D;
        const g = pixelGradient(net, adv, objective);
        adv.dispose();
        const [nr, nm, nv] = tf.tidy(() => {
          // Descend c |r|^2 - log p_target(x + r).
          const grad = g.neg().add(r.mul(cT).mul(2));
          const m2 = m.mul(b1).add(grad.mul(1 - b1));
          const v2 = v.mul(b2).add(grad.square().mul(1 - b2));
          const step = m2.div(1 - b1 ** t).div(v2.div(1 - b2 ** t).sqrt().add(1e-8));
          const r2 = x.add(r.sub(step.mul(o.learningRate))).clipByValue(0, 1).sub(x);
          return [r2, m2, v2];
        });
        tf.dispose([g, r, m, v]);
        r = nr as tf.Tensor4D;
        m = nm;
        v = nv;
        if (t % checkEvery === 0 || t === o.steps) {
          const adv2 = tf.tidy(() => x.add(r)) as tf.Tensor4D;
          const probs = pixelProbabilities(net, adv2);
          const p = probs.argMax(1);
          const pred = Array.from(await p.data(), Number);
          const l2T = l2PerImage(r, 0);
          const l2 = Array.from(await l2T.data(), Number);
          tf.dispose([probs, p, l2T]);
          const better = pred.map((q, i) => q === targets[i] && l2[i] < bestL2[i]);
          if (better.some(Boolean)) {
            const mask = tf.tensor(better.map(Number), [n, 1, 1, 1]);
            const nb = tf.tidy(() => tf.where(mask.cast("bool"), adv2, best)) as tf.Tensor4D;
            tf.dispose([mask, best]);
            best = nb;
            better.forEach((b, i) => b && (bestL2[i] = l2[i]));
          }
          pred.forEach((q, i) => q === targets[i] && (succeeded[i] = true));
          adv2.dispose();
        }
      }
      last?.dispose();
      last = tf.tidy(() => x.add(r)) as tf.Tensor4D;
      tf.dispose([cT, r, m, v]);
      // The line search on c: success means c can grow (a smaller r may do).
      for (let i = 0; i < n; i++) {
        if (succeeded[i]) {
          lo[i] = c[i];
          c[i] = Number.isFinite(hi[i]) ? (lo[i] + hi[i]) / 2 : c[i] * 10;
        } else {
          hi[i] = c[i];
          c[i] = lo[i] > 0 ? (lo[i] + hi[i]) / 2 : c[i] / 10;
        }
      }
    }
    // Images never fooled show their last attempt.
    const failed = tf.tensor(bestL2.map((d) => Number(!Number.isFinite(d))), [n, 1, 1, 1]);
    const out = tf.tidy(() => tf.where(failed.cast("bool"), last!, best)) as tf.Tensor4D;
    failed.dispose();
    return out;
  } finally {
    tf.dispose([best, ...(last ? [last] : [])]);
    dispose();
  }
}

/**
 * Runs an attack on display pixels.
 *
 * @param net The model.
 * @param pixels Images `[n, h, w, c]` in [0, 1].
 * @param labels The class each image is taken to be (its true label, or the
 *   model's prediction where unknown); untargeted attacks push away from it.
 * @param options Method, norm, epsilon, steps, targets, seed.
 * @returns The adversarial images `x + r` in [0, 1]; the caller owns them.
 * @throws {RangeError} on an epsilon outside [0, the box's diameter], non-positive
 *   steps, a bad target class or a Szegedy attack without targets.
 */
export async function attack(
  net: Net,
  pixels: tf.Tensor4D,
  labels: readonly number[],
  options: AttackOptions = {},
): Promise<tf.Tensor4D> {
  checkClassifier(net, "attack");
  const n = pixels.shape[0];
  if (labels.length !== n) {
    throw new RangeError(`Got ${labels.length} labels for ${n} images: give one per image`);
  }
  for (const l of labels) net.checkClass(l);
  const o = checkOptions(net, n, options);
  const rng = options.rng ?? seededRandom(0);
  const parts: tf.Tensor4D[] = [];
  try {
    for (let i = 0; i < n; i += o.batchSize) {
      const m = Math.min(o.batchSize, n - i);
      const x = pixels.slice([i, 0, 0, 0], [m, -1, -1, -1]);
      const lab = labels.slice(i, i + m);
      const tgt = o.targets.slice(i, i + m);
      try {
        parts.push(
          o.method === "szegedy"
            ? await szegedyAttack(net, x, tgt, o)
            : ballAttack(net, x, [...lab], tgt, o, rng),
        );
      } finally {
        x.dispose();
      }
      options.onProgress?.(i + m, n);
      // Lets other work (and a progress bar) run between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return parts.length === 1 ? parts[0].clone() : tf.concat(parts);
  } finally {
    tf.dispose(parts);
  }
}

/**
 * The untargeted FGSM direction, `sign(d loss / dx)` (L-inf) or `g / |g|` (L2), in
 * batches: FGSM at any epsilon is `clip(x + eps * direction, 0, 1)`, so one gradient
 * serves a whole sweep over epsilon.
 *
 * @param net The model.
 * @param pixels Images `[n, h, w, c]` in [0, 1].
 * @param labels The class each image is taken to be.
 * @param norm `linf` or `l2`. @default "linf"
 * @param batchSize Images per pass. @default 100
 * @returns The direction, shaped like `pixels`; the caller owns it.
 */
export function fgsmDirection(
  net: Net,
  pixels: tf.Tensor4D,
  labels: readonly number[],
  norm: AttackNorm = "linf",
  batchSize = 100,
): tf.Tensor4D {
  checkClassifier(net, "fgsmDirection");
  const n = pixels.shape[0];
  if (labels.length !== n) {
    throw new RangeError(`Got ${labels.length} labels for ${n} images: give one per image`);
  }
  for (const l of labels) net.checkClass(l);
  checkOptions(net, n, { norm, batchSize });
  const parts: tf.Tensor4D[] = [];
  try {
    for (let i = 0; i < n; i += batchSize) {
      const m = Math.min(batchSize, n - i);
      const lab = labels.slice(i, i + m);
      const { objective, dispose } = logProbObjective(lab, lab.map(() => -1), net.numClasses);
      const x = pixels.slice([i, 0, 0, 0], [m, -1, -1, -1]);
      try {
        const g = pixelGradient(net, x, objective);
        parts.push(direction(g, norm) as tf.Tensor4D);
        g.dispose();
      } finally {
        x.dispose();
        dispose();
      }
    }
    return parts.length === 1 ? parts[0].clone() : tf.concat(parts);
  } finally {
    tf.dispose(parts);
  }
}

/** How one image fared under an attack. */
export interface AttackRecord {
  /** The class the image was taken to be (label, or prediction where unknown). */
  label: number;
  /** Target class, or -1 for an untargeted attack. */
  target: number;
  /** Prediction on the clean image. */
  before: number;
  /** Its probability. */
  confidenceBefore: number;
  /** Whether the clean image was classified as `label` (only those count as attacked). */
  correct: boolean;
  /** Prediction on `x + r`. */
  after: number;
  /** Its probability. */
  confidenceAfter: number;
  /** Probability of `label` on `x + r`. */
  labelProbabilityAfter: number;
  /** Pixels changed (more than 1e-6). */
  l0: number;
  /** L2 norm of r in pixel units. */
  l2: number;
  /** L-inf norm of r in pixel units. */
  linf: number;
  /** Untargeted: `after != label`; targeted: `after == target`. */
  success: boolean;
  /** Prediction on `x + r` saved as an 8-bit PNG and read back. */
  afterPng: number;
  /** Whether the reloaded PNG still fools the net. */
  successPng: boolean;
}

/**
 * Measures an attack: predictions and confidences before, after, and after an
 * 8-bit PNG round trip, and the norms of the perturbation.
 *
 * @param net The model.
 * @param clean Clean images `[n, h, w, c]` in [0, 1].
 * @param adversarial Their adversarial versions.
 * @param labels The class each image is taken to be.
 * @param targets Target classes (-1: untargeted). @default all -1
 * @returns One record per image.
 */
export async function evaluateAttack(
  net: Net,
  clean: tf.Tensor4D,
  adversarial: tf.Tensor4D,
  labels: readonly number[],
  targets?: readonly number[],
): Promise<AttackRecord[]> {
  const reloaded = await pngRoundTrip(adversarial);
  const r = tf.sub(adversarial, clean);
  const [p0, p1, p2] = [clean, adversarial, reloaded].map((t) => pixelProbabilities(net, t));
  try {
    const [b, a, png] = [await rows(p0), await rows(p1), await rows(p2)];
    const nr = await norms(r);
    return labels.map((label, i) => {
      const target = targets?.[i] ?? -1;
      const before = argmax(b[i]);
      const after = argmax(a[i]);
      const afterPng = argmax(png[i]);
      const fooled = (q: number) => (target >= 0 ? q === target : q !== label);
      return {
        label,
        target,
        before,
        confidenceBefore: b[i][before],
        correct: before === label,
        after,
        confidenceAfter: a[i][after],
        labelProbabilityAfter: a[i][label],
        l0: nr.l0[i],
        l2: nr.l2[i],
        linf: nr.linf[i],
        success: fooled(after),
        afterPng,
        successPng: fooled(afterPng),
      };
    });
  } finally {
    tf.dispose([reloaded, r, p0, p1, p2]);
  }
}

/** Summary figures of attack records, over the correctly classified images. */
export interface AttackSummary {
  /** Images given. */
  images: number;
  /** Of them, correctly classified before the attack (the ones attacked). */
  attacked: number;
  /** Fraction of attacked images fooled. */
  successRate: number;
  /** Fraction of attacked images still fooling after the 8-bit PNG round trip. */
  pngSuccessRate: number;
  /** Mean L0 of r over attacked images. */
  meanL0: number;
  /** Mean L2 of r over attacked images. */
  meanL2: number;
  /** Mean L-inf of r over attacked images. */
  meanLinf: number;
  /** Mean L2 of r over successful attacks. */
  meanL2Successful: number;
  /** Mean probability of the true class on the clean attacked images. */
  confidenceBefore: number;
  /** Mean probability of the (wrong or target) predicted class on successful attacks. */
  confidenceAfter: number;
  /** Mean probability of the true class after the attack. */
  labelProbabilityAfter: number;
}

/**
 * Summarizes attack records.
 *
 * @param records From {@linkcode evaluateAttack}.
 * @returns Rates, mean norms and mean confidences over the correctly classified images.
 */
export function summarizeAttack(records: readonly AttackRecord[]): AttackSummary {
  const att = records.filter((r) => r.correct && r.label !== r.target);
  const ok = att.filter((r) => r.success);
  return {
    images: records.length,
    attacked: att.length,
    successRate: att.length ? ok.length / att.length : 0,
    pngSuccessRate: att.length ? att.filter((r) => r.successPng).length / att.length : 0,
    meanL0: mean(att.map((r) => r.l0)),
    meanL2: mean(att.map((r) => r.l2)),
    meanLinf: mean(att.map((r) => r.linf)),
    meanL2Successful: mean(ok.map((r) => r.l2)),
    confidenceBefore: mean(att.map((r) => r.confidenceBefore)),
    confidenceAfter: mean(ok.map((r) => r.confidenceAfter)),
    labelProbabilityAfter: mean(att.map((r) => r.labelProbabilityAfter)),
  };
}

/** Options of the `adversarial` plugin. */
export type AdversarialOptions = {
  /** `fgsm`, `pgd` or `szegedy`. */
  method: {
    type: "enum";
    choices: readonly ["fgsm", "pgd", "szegedy"];
    default: "pgd";
    help: string;
  };
  /** Ball of FGSM and PGD. */
  norm: { type: "enum"; choices: readonly ["linf", "l2"]; default: "linf"; help: string };
  /** Radius in pixel units. */
  epsilon: { type: "number"; default: 0.3; min: 0; help: string };
  /** PGD steps / Szegedy Adam iterations per c. */
  steps: { type: "integer"; default: 40; min: 1; help: string };
  /** PGD step size (0: 2.5 * epsilon / steps). */
  stepSize: { type: "number"; default: 0; min: 0; help: string };
  /** Random start inside the ball. */
  randomStart: { type: "boolean"; default: true; help: string };
  /** -1 untargeted, -2 the next class (label + 1), k >= 0 that class. */
  target: { type: "integer"; default: -1; min: -2; help: string };
  /** Szegedy: values of c tried. */
  searchSteps: { type: "integer"; default: 6; min: 1; max: 30; help: string };
  /** Szegedy: first c. */
  initialC: { type: "number"; default: 0.1; min: 0; help: string };
  /** Szegedy: Adam learning rate. */
  learningRate: { type: "number"; default: 0.01; min: 0; help: string };
  /** Also attack this many held-out MNIST digits (28x28x1 models) for the rates. */
  evaluate: { type: "integer"; default: 0; min: 0; max: 2000; help: string };
  /** Images per pass. */
  batchSize: { type: "integer"; default: 100; min: 1; help: string };
  /** Images shown in the figure. */
  show: { type: "integer"; default: 6; min: 1; max: 64; help: string };
};

function targetsFor(net: Net, p: { method: string; target: number }, labels: number[]): number[] {
  let mode = p.target;
  if (mode >= 0) net.checkClass(mode);
  if (p.method === "szegedy" && mode === -1) mode = -2;
  return labels.map((l) => (mode === -2 ? (l + 1) % net.numClasses : mode));
}

function describe(p: { method: string; norm: string; epsilon: number; steps: number }): string {
  if (p.method === "szegedy") return `Szegedy smallest targeted r`;
  const ball = `${p.norm === "linf" ? "L-inf" : "L2"} eps ${p.epsilon}`;
  return p.method === "fgsm" ? `FGSM ${ball}` : `PGD ${ball}, ${p.steps} steps`;
}

function summaryFigures(r: Result, prefix: string, s: AttackSummary): void {
  for (const [k, v] of Object.entries(s)) r.figure(prefix ? `${prefix}.${k}` : k, v);
}

/** The `adversarial` plugin. */
export const adversarial: Plugin<AdversarialOptions> = definePlugin({
  name: "adversarial",
  family: "fool",
  summary: "Adversarial examples x + r: FGSM, PGD (L-inf/L2) and Szegedy's smallest targeted r",
  params: {
    method: {
      type: "enum",
      choices: ["fgsm", "pgd", "szegedy"] as const,
      default: "pgd",
      help: "fgsm (one step), pgd (projected steps) or szegedy (smallest targeted r)",
    },
    norm: {
      type: "enum",
      choices: ["linf", "l2"] as const,
      default: "linf",
      help: "ball of fgsm/pgd: linf or l2",
    },
    epsilon: { type: "number", default: 0.3, min: 0, help: "radius of the ball, pixel units" },
    steps: { type: "integer", default: 40, min: 1, help: "pgd steps / szegedy Adam steps per c" },
    stepSize: {
      type: "number",
      default: 0,
      min: 0,
      help: "pgd step size, pixel units (0: 2.5 * epsilon / steps)",
    },
    randomStart: {
      type: "boolean",
      default: true,
      help: "pgd starts at a random point of the ball",
    },
    target: {
      type: "integer",
      default: -1,
      min: -2,
      help: "-1 untargeted (szegedy: next class), -2 next class (label + 1), k: class k",
    },
    searchSteps: {
      type: "integer",
      default: 6,
      min: 1,
      max: 30,
      help: "szegedy: values of c tried",
    },
    initialC: { type: "number", default: 0.1, min: 0, help: "szegedy: first c of the search" },
    learningRate: { type: "number", default: 0.01, min: 0, help: "szegedy: Adam learning rate" },
    evaluate: {
      type: "integer",
      default: 0,
      min: 0,
      max: 2000,
      help: "also attack this many held-out MNIST digits for the rates (28x28x1 models)",
    },
    batchSize: { type: "integer", default: 100, min: 1, help: "images per pass" },
    show: { type: "integer", default: 6, min: 1, max: 64, help: "images shown in the figure" },
  },
  resultShape(net: Net, _p, images: InputImages) {
    const { height, width, channels } = net.input;
    const shape = [images.pixels.shape[0], height, width, channels];
    return { adversarial: shape, perturbation: shape };
  },
  demo: [
    { method: "fgsm" },
    { method: "pgd", evaluate: 2000 },
    { method: "pgd", norm: "l2", epsilon: 2 },
    { method: "pgd", target: -2 },
    { method: "szegedy", steps: 100 },
  ],
  async run(ctx, p) {
    const { net, images } = ctx;
    checkClassifier(net, "adversarial");
    if (p.target >= 0) net.checkClass(p.target);
    const n = images.pixels.shape[0];
    // Images without a known label are taken to be what the model says they are.
    const clean0 = pixelProbabilities(net, images.pixels);
    const predicted = (await rows(clean0)).map(argmax);
    clean0.dispose();
    const labels = images.labels.map((l, i) => (l >= 0 ? l : predicted[i]));
    const targets = targetsFor(net, p, labels);
    const options: AttackOptions = {
      method: p.method,
      norm: p.norm,
      epsilon: p.epsilon,
      steps: p.steps,
      stepSize: p.stepSize,
      randomStart: p.randomStart,
      searchSteps: p.searchSteps,
      initialC: p.initialC,
      learningRate: p.learningRate,
      batchSize: p.batchSize,
      rng: ctx.rng,
    };
    const evalCount = p.evaluate;
    const mnist = net.input.height === 28 && net.input.width === 28 && net.input.channels === 1 &&
      net.numClasses === 10;
    const total = n + (mnist ? evalCount : 0);
    const adv = await attack(net, images.pixels, labels, {
      ...options,
      targets,
      onProgress: (d) => ctx.progress(d, total),
    });
    const result = new Result("adversarial", `Adversarial examples: ${describe(p)}`);
    try {
      const records = await evaluateAttack(net, images.pixels, adv, labels, targets);
      const summary = summarizeAttack(records);
      summaryFigures(result, "", summary);
      result.figure("method", p.method).figure("norm", p.norm).figure("epsilon", p.epsilon)
        .figure("steps", p.method === "fgsm" ? 1 : p.steps);
      result.table(
        "Each image: class and confidence before, after, and after saving as 8-bit PNG",
        [
          "image",
          "label",
          "target",
          "before",
          "conf before",
          "after",
          "conf after",
          "L0",
          "L2",
          "Linf",
          "fooled",
          "PNG",
        ],
        records.map((r, i) => [
          images.names[i],
          r.label,
          r.target,
          r.before,
          r.confidenceBefore,
          r.after,
          r.confidenceAfter,
          r.l0,
          r.l2,
          r.linf,
          r.success ? "yes" : "no",
          r.successPng ? `yes (${r.afterPng})` : `no (${r.afterPng})`,
        ]),
      );
      const shown = Math.min(p.show, n);
      const ampT = tf.tidy(() =>
        adv.slice([0, 0, 0, 0], [shown, -1, -1, -1]).sub(
          images.pixels.slice([0, 0, 0, 0], [shown, -1, -1, -1]),
        ).mean(3).abs().max([1, 2]).maximum(1e-12)
      );
      const amps = Array.from(await ampT.data(), Number);
      ampT.dispose();
      const picture = tf.tidy(() => {
        const x = images.pixels.slice([0, 0, 0, 0], [shown, -1, -1, -1]);
        const a = adv.slice([0, 0, 0, 0], [shown, -1, -1, -1]);
        const r = a.sub(x);
        // r amplified to the full diverging range, image by image (gray = 0).
        const rGray = r.mean(3) as tf.Tensor3D;
        const maxAbs = rGray.abs().max([1, 2]).maximum(1e-12).reshape([-1, 1, 1]);
        const rShown = colormap(rGray.div(maxAbs) as tf.Tensor3D, "coolwarm", { min: -1, max: 1 });
        const rgb = (t: tf.Tensor) => (t.shape[3] === 1 ? t.tile([1, 1, 1, 3]) : t);
        const tiles = tf.stack([rgb(x), rShown, rgb(a)], 1).reshape([
          shown * 3,
          ...rShown.shape.slice(1),
        ]);
        const labelsShown: string[] = [];
        for (let i = 0; i < shown; i++) {
          const rec = records[i];
          labelsShown.push(
            `${net.labels[rec.before]} ${pct(rec.confidenceBefore)}`,
            `r x${(1 / amps[i]).toFixed(1)}`,
            `${net.labels[rec.after]} ${pct(rec.confidenceAfter)}${rec.successPng ? "" : "*"}`,
          );
        }
        const h = net.input.height;
        const scale = Math.max(1, Math.min(8, Math.floor(112 / h)));
        return grid(tiles as tf.Tensor4D, {
          cols: 3,
          scale,
          labels: h * scale >= 20 ? labelsShown : undefined,
          title: describe(p),
        });
      });
      await result.addImage(
        "examples",
        picture,
        `Clean image x with its class and confidence, the perturbation r (amplified, ` +
          `blue < 0 < red) and x + r with the new class (* : no longer fools after the PNG round trip)`,
      );
      picture.dispose();
      if (mnist && evalCount > 0) {
        const d = await heldOutDigits({ count: evalCount });
        try {
          const p0 = pixelProbabilities(net, d.images);
          const pred = (await rows(p0)).map(argmax);
          p0.dispose();
          const tgt = targetsFor(net, p, d.labels);
          const advEval = await attack(net, d.images, d.labels, {
            ...options,
            targets: tgt,
            rng: ctx.rng.fork(),
            onProgress: (k) => ctx.progress(n + k, total),
          });
          const rec = await evaluateAttack(net, d.images, advEval, d.labels, tgt);
          advEval.dispose();
          summaryFigures(result, "heldOut", summarizeAttack(rec));
          result.figure(
            "heldOut.cleanAccuracy",
            pred.filter((q, i) => q === d.labels[i]).length / pred.length,
          );
        } finally {
          d.images.dispose();
        }
      } else if (evalCount > 0) {
        ctx.warn("evaluate: held-out digits are used only for 28x28x1, 10-class models; skipped");
      }
      result.tensor("adversarial", adv);
      result.tensor("perturbation", tf.sub(adv, images.pixels));
      return result;
    } catch (err) {
      adv.dispose();
      result.dispose();
      throw err;
    }
  },
});
