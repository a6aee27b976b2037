/**
 * `adversarial` (fool): adversarial examples, the lecture's "x, r, x + r" figure,
 * and {@linkcode attack}, which runs any of the attacks (FGSM and PGD in
 * `fgsm_pgd.ts`, Szegedy's in `szegedy.ts`):
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
import { batchSizeFor } from "../../core/memory_budget.ts";
import { tf } from "../../core/tf.ts";
import { definePlugin, type InputImages, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import type { ParamValues } from "../../core/params.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { grid } from "../../core/images/grids.ts";
import { linePlot } from "../../core/plots/plot.ts";
import { seededRandom } from "../../core/random.ts";
import type { DataSource } from "../../core/data/source.ts";
import {
  argmax,
  checkClassifier,
  mean,
  norms,
  pct,
  pixelProbabilities,
  pngRoundTrip,
  rows,
} from "./_common.ts";
import { type AttackOptions, checkAttackOptions, defaultEpsilon } from "./attack_options.ts";
import { ballAttack } from "./fgsm_pgd.ts";
import { szegedyAttack } from "./szegedy.ts";

// shallow_fooling and users sweep FGSM over epsilon through this module.
export { fgsmDirection } from "./fgsm_pgd.ts";

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
  const o = checkAttackOptions(net, n, options);
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

/** The parameters of the `adversarial` plugin. */
export const ADVERSARIAL_PARAMS = {
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
  epsilon: {
    type: "number",
    min: 0,
    help: "radius of the ball in pixel units, the model's value range as [0, 1] " +
      "(default: a tenth of the range, 0.1 for linf, 0.1 x sqrt(pixels) for l2)",
  },
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
    help: "also attack this many images of the run's data set (--data, or a built-in " +
      "model's own test images) for the success rates",
  },
  batchSize: {
    type: "integer",
    min: 1,
    help: "images per pass (default: what fits the memory budget, at most 100)",
  },
  show: { type: "integer", default: 6, min: 1, max: 64, help: "images shown in the figure" },
  sweep: {
    type: "numbers",
    help: "also attack at each of these epsilons (same method and ball) and plot the " +
      "success rate against epsilon",
  },
} as const;

/** The schema type of the `adversarial` plugin's parameters. */
export type AdversarialParams = typeof ADVERSARIAL_PARAMS;

/** The `adversarial` plugin's parameter values (see {@linkcode ADVERSARIAL_PARAMS} for defaults). */
export type AdversarialOptions = ParamValues<AdversarialParams>;

function targetsFor(net: Net, p: { method: string; target: number }, labels: number[]): number[] {
  let mode = p.target;
  if (mode >= 0) net.checkClass(mode);
  if (p.method === "szegedy" && mode === -1) mode = -2;
  return labels.map((l) => (mode === -2 ? (l + 1) % net.numClasses : mode));
}

function describe(p: { method: string; norm: string; epsilon: number; steps: number }): string {
  if (p.method === "szegedy") return `Szegedy smallest targeted r`;
  const ball = `${p.norm === "linf" ? "L-inf" : "L2"} eps ${+p.epsilon.toFixed(4)}`;
  return p.method === "fgsm" ? `FGSM ${ball}` : `PGD ${ball}, ${p.steps} steps`;
}

function summaryFigures(r: Result, prefix: string, s: AttackSummary): void {
  for (const [k, v] of Object.entries(s)) r.figure(prefix ? `${prefix}.${k}` : k, v);
}

/** The `adversarial` plugin. */
export const adversarial: Plugin<AdversarialParams> = definePlugin({
  name: "adversarial",
  family: "fool",
  summary: "Adversarial examples x + r: FGSM, PGD (L-inf/L2) and Szegedy's smallest targeted r",
  params: ADVERSARIAL_PARAMS,
  resultShape(net: Net, _p, images: InputImages) {
    const { height, width, channels } = net.input;
    const shape = [images.pixels.shape[0], height, width, channels];
    return { adversarial: shape, perturbation: shape };
  },
  demo: [
    { method: "fgsm", sweep: [0.02, 0.05, 0.1, 0.2] },
    { method: "pgd", evaluate: 300 },
    { method: "pgd", norm: "l2", epsilon: 2 },
    { method: "pgd", target: -2 },
    { method: "szegedy", steps: 100 },
  ],
  async run(ctx, p) {
    const { net, images } = ctx;
    checkClassifier(net, "adversarial");
    const q = { ...p, epsilon: p.epsilon ?? defaultEpsilon(net, p.norm) };
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
      epsilon: q.epsilon,
      steps: p.steps,
      stepSize: p.stepSize,
      randomStart: p.randomStart,
      searchSteps: p.searchSteps,
      initialC: p.initialC,
      learningRate: p.learningRate,
      batchSize: p.batchSize ?? batchSizeFor(net, 100, { memoryMB: ctx.memoryMB }),
      rng: ctx.rng,
    };
    // Success rates over the run's data set (--data, or a built-in model's own
    // test images), beside the inputs.
    let evalData: DataSource | undefined;
    if (p.evaluate > 0) {
      try {
        evalData = await ctx.data();
      } catch (err) {
        ctx.warn(`evaluate: skipped: ${(err as Error).message}`);
      }
    }
    // The epsilons of the success curve, checked before any attack runs.
    const sweep = p.method === "szegedy" || !p.sweep?.length
      ? []
      : [...new Set([...p.sweep, q.epsilon])].sort((a, b) => a - b);
    if (p.method === "szegedy" && p.sweep?.length) {
      ctx.warn("sweep: skipped: szegedy finds the smallest r and takes no epsilon");
    }
    for (const e of sweep) checkAttackOptions(net, n, { ...options, epsilon: e });
    const evalCount = evalData ? Math.min(p.evaluate, evalData.size) : 0;
    const total = n + evalCount;
    const adv = await attack(net, images.pixels, labels, {
      ...options,
      targets,
      onProgress: (d) => ctx.progress(d, total),
    });
    const result = new Result("adversarial", `Adversarial examples: ${describe(q)}`);
    try {
      const records = await evaluateAttack(net, images.pixels, adv, labels, targets);
      const summary = summarizeAttack(records);
      summaryFigures(result, "", summary);
      result.figure("method", p.method).figure("norm", p.norm).figure("epsilon", q.epsilon)
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
        return { figure: grid(tiles as tf.Tensor4D, { cols: 3, scale }), labelsShown };
      });
      await result.addImage(
        "examples",
        picture.figure,
        `${describe(q)}. Per image: the clean image x with its class and confidence, the ` +
          `perturbation r (mean over channels, amplified by the factor shown to fill the ` +
          `colour range, blue < 0 < red) and x + r with the new class (* : no longer fools ` +
          `after the PNG round trip)`,
        {
          tiles: picture.labelsShown,
          cols: 3,
          colorbar: {
            colormap: "coolwarm",
            min: -1,
            max: 1,
            label: "r / each image's max |r| (mean over channels)",
          },
        },
      );
      picture.figure.dispose();
      if (evalData && evalCount > 0) {
        const batch = await evalData.batch(Array.from({ length: evalCount }, (_, i) => i));
        const d = { images: batch.x, labels: Array.from(await batch.y.data() as Int32Array) };
        batch.y.dispose();
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
      }
      if (sweep.length > 1) {
        const rates: number[] = [];
        for (const e of sweep) {
          if (e === q.epsilon) {
            rates.push(summary.successRate);
            continue;
          }
          const advE = await attack(net, images.pixels, labels, {
            ...options,
            epsilon: e,
            targets,
            rng: ctx.rng.fork(),
          });
          const rec = await evaluateAttack(net, images.pixels, advE, labels, targets);
          advE.dispose();
          rates.push(summarizeAttack(rec).successRate);
        }
        const ball = p.norm === "linf" ? "L-inf" : "L2";
        result.table(
          `Success rate against epsilon (${p.method}, ${ball} ball, the ${n} inputs)`,
          ["epsilon", "success rate"],
          sweep.map((e, i) => [e, rates[i]]),
        );
        result.addPlot(
          "success",
          linePlot([{ name: "inputs", x: sweep, y: rates.map((v) => 100 * v) }], {
            title: `${p.method.toUpperCase()} success against epsilon`,
            xLabel: `epsilon (${ball}, pixel units, inputs in [0, 1])`,
            yLabel: "attack success (%)",
            yDomain: [0, 100],
          }),
          `Attack success against epsilon: the fraction of the correctly classified inputs ` +
            `that ${p.method.toUpperCase()} fools within an ${ball} ball of each radius`,
        );
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
