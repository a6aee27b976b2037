/**
 * `fooling-images` (fool): images a person cannot recognize that the net labels
 * with near certainty, after Nguyen, Yosinski & Clune, "Deep Neural Networks are
 * Easily Fooled: High Confidence Predictions for Unrecognizable Images" (CVPR 2015).
 * The lecture's two recipes:
 *
 * - `gradient`: start from the mean image plus noise and climb the gradient of the
 *   class's log-probability until it passes 99.99% (the lecture's slide);
 * - `evolution`: an evolutionary algorithm on a direct pixel encoding (uniform random
 *   pixels; each child mutates each pixel with some probability by Gaussian noise)
 *   until the class passes 99.5%. Selection keeps, for every class, the best
 *   `population` images seen so far whatever class they were bred for (as the
 *   paper's MAP-Elites does); every generation's children are scored as one batch,
 *   and the generations and net evaluations each class needed are reported.
 *
 * Both work in display-pixel space [0, 1].
 *
 * @module
 */
import { batchSizeFor } from "../../core/memory_budget.ts";
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { grid } from "../../core/images/grids.ts";
import { type Random, seededRandom } from "../../core/random.ts";
import {
  checkClassifier,
  logProbObjective,
  mean,
  normalNoise,
  pct,
  pixelGradient,
  pixelProbabilities,
} from "./_common.ts";

/** What both recipes return. */
export interface FoolingOutcome {
  /** One image per class asked for, `[k, h, w, c]` in [0, 1]; the caller owns it. */
  images: tf.Tensor4D;
  /** The net's probability of each class on its image. */
  confidence: number[];
  /** Gradient steps or generations each class needed to pass the threshold (-1: never). */
  iterations: number[];
  /** Images the net evaluated for each class (evolution) or steps x 1 (gradient). */
  evaluations: number[];
  /** Images the net evaluated in all. */
  totalEvaluations: number;
}

/** Options of {@linkcode foolByGradient}. */
export interface GradientFoolingOptions {
  /** Stop a class once its probability passes this. @default 0.9999 */
  confidence?: number;
  /** Most ascent steps. @default 300 */
  steps?: number;
  /** Largest change of any pixel per step (the gradient is scaled to it). @default 0.01 */
  stepSize?: number;
  /** Start: this mean pixel value (per channel) ... @default [0.5] */
  mean?: readonly number[];
  /** ... plus Gaussian noise of this standard deviation. @default 0.1 */
  noise?: number;
  /** Seeded randomness. @default seededRandom(0) */
  rng?: Random;
}

function checkClasses(net: Net, classes: readonly number[]): void {
  if (classes.length === 0) throw new RangeError("Give at least one class to fool the net with");
  for (const c of classes) net.checkClass(c);
}

function checkConfidence(v: number): void {
  if (!(v > 0 && v < 1)) {
    throw new RangeError(`Confidence must be a probability in (0, 1), got ${v}: give e.g. 0.9999`);
  }
}

function checkPositiveInteger(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
}

/**
 * Gradient ascent on `log p(class)` from the mean image plus noise, one image per
 * class, all classes in one batch; a class stops moving once it passes the
 * threshold.
 *
 * @param net The model.
 * @param classes Classes to fool the net with.
 * @param options Threshold, steps, step size, start.
 * @returns The images, their confidences and the steps each class needed.
 */
export async function foolByGradient(
  net: Net,
  classes: readonly number[],
  options: GradientFoolingOptions = {},
): Promise<FoolingOutcome> {
  checkClassifier(net, "fooling-images");
  checkClasses(net, classes);
  const confidence = options.confidence ?? 0.9999;
  checkConfidence(confidence);
  const steps = options.steps ?? 300;
  checkPositiveInteger("Steps", steps);
  const stepSize = options.stepSize ?? 0.01;
  if (!(stepSize > 0 && stepSize <= 1)) {
    throw new RangeError(`Step size must be in (0, 1] pixel units, got ${stepSize}`);
  }
  const rng = options.rng ?? seededRandom(0);
  const { height, width, channels } = net.input;
  const k = classes.length;
  const means = options.mean ?? [0.5];
  const shape = [k, height, width, channels];
  let x = tf.tidy(() =>
    normalNoise(rng, shape, options.noise ?? 0.1)
      .add(tf.tensor1d(Array.from({ length: channels }, (_, i) => means[i % means.length])))
      .clipByValue(0, 1)
  ) as tf.Tensor4D;
  const { objective, dispose } = logProbObjective(classes, classes.map(() => 1), net.numClasses);
  const iterations = Array(k).fill(-1);
  const conf = Array(k).fill(0);
  try {
    for (let s = 0; s <= steps; s++) {
      const probs = pixelProbabilities(net, x);
      const pr = (await probs.array()) as number[][];
      probs.dispose();
      classes.forEach((c, i) => {
        conf[i] = pr[i][c];
        if (iterations[i] < 0 && conf[i] >= confidence) iterations[i] = s;
      });
      if (s === steps || iterations.every((v) => v >= 0)) break;
      const g = pixelGradient(net, x, objective);
      const active = tf.tensor(iterations.map((v) => Number(v < 0)), [k, 1, 1, 1]);
      const next = tf.tidy(() => {
        const m = g.abs().max([1, 2, 3], true).maximum(1e-20);
        return x.add(g.div(m).mul(active).mul(stepSize)).clipByValue(0, 1);
      }) as tf.Tensor4D;
      tf.dispose([g, active, x]);
      x = next;
    }
  } catch (err) {
    x.dispose();
    throw err;
  } finally {
    dispose();
  }
  const done = iterations.map((v) => (v < 0 ? steps : v));
  return {
    images: x,
    confidence: conf,
    iterations,
    evaluations: done,
    totalEvaluations: done.reduce((a, b) => a + b, 0),
  };
}

/** Options of {@linkcode foolByEvolution}. */
export interface EvolutionFoolingOptions {
  /** Stop a class once its best image passes this. @default 0.995 */
  confidence?: number;
  /** Most generations. @default 300 */
  generations?: number;
  /** Elites kept per class, and children bred per class each generation. @default 16 */
  population?: number;
  /** Probability that a child's pixel mutates. @default 0.02 */
  mutationRate?: number;
  /** Standard deviation of a mutation, pixel units (clipped to [0, 1] after). @default 1 */
  mutationStrength?: number;
  /** Uniform crossover of two parents of the class before mutation. @default true */
  crossover?: boolean;
  /** Truncation selection: parents are drawn from the best this many elites. @default population */
  parents?: number;
  /**
   * Images per forward pass.
   * @default what fits the memory budget (`core/memory_budget.ts`), at most 512
   */
  batchSize?: number;
  /** Seeded randomness. @default seededRandom(0) */
  rng?: Random;
  /** Called after each generation. */
  onGeneration?: (generation: number, total: number) => void;
}

/**
 * An evolutionary algorithm with a direct pixel encoding, one niche of elites per
 * class (MAP-Elites style): each generation breeds `population` mutated children
 * per unfinished class, scores all of them in one batch, and lets every class keep
 * its `population` best images among its elites and all the children.
 *
 * @param net The model.
 * @param classes Classes to fool the net with.
 * @param options Threshold, budget (generations x population), mutation.
 * @returns The best image per class, its confidence, and the generations and
 *   evaluations each class needed.
 */
export async function foolByEvolution(
  net: Net,
  classes: readonly number[],
  options: EvolutionFoolingOptions = {},
): Promise<FoolingOutcome> {
  checkClassifier(net, "fooling-images");
  checkClasses(net, classes);
  const confidence = options.confidence ?? 0.995;
  checkConfidence(confidence);
  const generations = options.generations ?? 300;
  checkPositiveInteger("Generations", generations);
  const pop = options.population ?? 16;
  checkPositiveInteger("Population", pop);
  const batchSize = options.batchSize ?? batchSizeFor(net, 512, { pass: "forward" });
  checkPositiveInteger("Batch size", batchSize);
  const rate = options.mutationRate ?? 0.02;
  const strength = options.mutationStrength ?? 1;
  if (!(rate > 0 && rate <= 1)) {
    throw new RangeError(`Mutation rate must be in (0, 1], got ${rate}`);
  }
  if (!(strength > 0)) throw new RangeError(`Mutation strength must be > 0, got ${strength}`);
  const rng = options.rng ?? seededRandom(0);
  const crossover = options.crossover ?? true;
  const parents = Math.max(1, Math.min(pop, options.parents ?? pop));
  const { height, width, channels } = net.input;
  const d = height * width * channels;
  const k = classes.length;
  const elites = classes.map(() => new Float32Array(pop * d));
  const fitness = classes.map(() => new Float64Array(pop).fill(-1));
  const iterations = Array(k).fill(-1);
  const evaluations = Array(k).fill(0);
  let total = 0;

  const score = async (batch: Float32Array, count: number): Promise<number[][]> => {
    const t = tf.tensor4d(batch.subarray(0, count * d), [count, height, width, channels]);
    const probs = pixelProbabilities(net, t, batchSize);
    const out = (await probs.array()) as number[][];
    tf.dispose([t, probs]);
    total += count;
    return out;
  };
  // Each class keeps its best `pop` among its elites and every child.
  const select = (children: Float32Array, probs: number[][]) => {
    classes.forEach((c, i) => {
      const cand = [
        ...Array.from(fitness[i], (f, j) => ({ f, from: -1, j })),
        ...probs.map((p, j) => ({ f: p[c], from: 1, j })),
      ].sort((a, b) => b.f - a.f || a.from - b.from || a.j - b.j).slice(0, pop);
      const next = new Float32Array(pop * d);
      cand.forEach((e, slot) => {
        const src = e.from < 0 ? elites[i] : children;
        next.set(src.subarray(e.j * d, (e.j + 1) * d), slot * d);
        fitness[i][slot] = e.f;
      });
      elites[i] = next;
    });
  };

  // Generation 0: uniform random images.
  const first = new Float32Array(k * pop * d);
  for (let i = 0; i < first.length; i++) first[i] = rng.next();
  select(first, await score(first, k * pop));
  for (let i = 0; i < k; i++) evaluations[i] += pop;
  const children = new Float32Array(k * pop * d);
  for (let g = 0; g <= generations; g++) {
    classes.forEach((_, i) => {
      if (iterations[i] < 0 && fitness[i][0] >= confidence) iterations[i] = g;
    });
    if (g === generations || iterations.every((v) => v >= 0)) break;
    let count = 0;
    classes.forEach((_, i) => {
      if (iterations[i] >= 0) return;
      for (let j = 0; j < pop; j++) {
        const parent = elites[i].subarray(rng.int(parents) * d);
        const other = elites[i].subarray(rng.int(parents) * d);
        const o = count * d;
        for (let q = 0; q < d; q++) {
          let v = crossover && rng.next() < 0.5 ? other[q] : parent[q];
          if (rng.next() < rate) v = Math.min(1, Math.max(0, v + strength * rng.normal()));
          children[o + q] = v;
        }
        count++;
      }
      evaluations[i] += pop;
    });
    select(children.subarray(0, count * d), await score(children, count));
    options.onGeneration?.(g + 1, generations);
  }
  const best = new Float32Array(k * d);
  classes.forEach((_, i) => best.set(elites[i].subarray(0, d), i * d));
  return {
    images: tf.tensor4d(best, [k, height, width, channels]),
    confidence: fitness.map((f) => f[0]),
    iterations,
    evaluations,
    totalEvaluations: total,
  };
}

/** The parameters of the `fooling-images` plugin: its schema, declared once. */
export const FOOLING_IMAGES_PARAMS = {
  method: {
    type: "enum",
    choices: ["gradient", "evolution"] as const,
    default: "gradient",
    help: "gradient (ascent from mean + noise) or evolution (direct pixel encoding)",
  },
  classes: { type: "numbers", default: [] as number[], help: "classes to fool with (empty: all)" },
  confidence: {
    type: "number",
    default: 0,
    min: 0,
    max: 1,
    help: "threshold (0: 0.9999 for gradient, 0.995 for evolution)",
  },
  steps: { type: "integer", default: 300, min: 1, help: "gradient: most ascent steps" },
  stepSize: {
    type: "number",
    default: 0.01,
    min: 0,
    max: 1,
    help: "gradient: largest pixel change per step",
  },
  noise: { type: "number", default: 0.1, min: 0, help: "gradient: noise around the mean" },
  generations: { type: "integer", default: 300, min: 1, help: "evolution: most generations" },
  population: {
    type: "integer",
    default: 16,
    min: 1,
    help: "evolution: elites and children per class",
  },
  mutationRate: {
    type: "number",
    default: 0.02,
    min: 0,
    max: 1,
    help: "evolution: probability that a pixel mutates",
  },
  mutationStrength: {
    type: "number",
    default: 1,
    min: 0,
    help: "evolution: standard deviation of a mutation, pixel units",
  },
  crossover: { type: "boolean", default: true, help: "evolution: uniform crossover of parents" },
  parents: {
    type: "integer",
    default: 0,
    min: 0,
    help: "evolution: parents drawn from the best this many elites (0: all)",
  },
} as const;

/** The `fooling-images` plugin's parameter values, typed from {@linkcode FOOLING_IMAGES_PARAMS} (defaults there). */
export type FoolingImagesOptions = ParamValues<typeof FOOLING_IMAGES_PARAMS>;

/** The `fooling-images` plugin. */
export const foolingImages: Plugin<typeof FOOLING_IMAGES_PARAMS> = definePlugin({
  name: "fooling-images",
  family: "fool",
  summary: "Unrecognizable images the net labels with >99% confidence (gradient or evolution)",
  params: FOOLING_IMAGES_PARAMS,
  resultShape(net: Net, p) {
    const k = p.classes.length || net.numClasses;
    const { height, width, channels } = net.input;
    return { images: [k, height, width, channels], confidence: [k] };
  },
  demo: [{ method: "gradient" }, { method: "evolution" }],
  async run(ctx, p) {
    const { net, images } = ctx;
    const classes = p.classes.length
      ? p.classes
      : Array.from({ length: net.numClasses }, (_, i) => i);
    const confidence = p.confidence || (p.method === "gradient" ? 0.9999 : 0.995);
    let out: FoolingOutcome;
    if (p.method === "gradient") {
      const meanT = images.pixels.mean([0, 1, 2]);
      const channelMean = Array.from(await meanT.data(), Number);
      meanT.dispose();
      out = await foolByGradient(net, classes, {
        confidence,
        steps: p.steps,
        stepSize: p.stepSize,
        noise: p.noise,
        mean: channelMean,
        rng: ctx.rng,
      });
    } else {
      out = await foolByEvolution(net, classes, {
        confidence,
        generations: p.generations,
        population: p.population,
        mutationRate: p.mutationRate,
        mutationStrength: p.mutationStrength,
        crossover: p.crossover,
        parents: p.parents || p.population,
        rng: ctx.rng,
        onGeneration: (g, n) => ctx.progress(g, n),
      });
    }
    const k = classes.length;
    const reached = out.confidence.filter((c) => c >= confidence).length;
    const unit = p.method === "gradient" ? "steps" : "generations";
    const r = new Result(
      "fooling-images",
      `Fooling images by ${p.method === "gradient" ? "gradient ascent" : "evolution"}`,
    );
    try {
      r.figure("method", p.method).figure("threshold", confidence).figure("classes", k)
        .figure("classesReached", reached).figure("meanConfidence", mean(out.confidence))
        .figure("minConfidence", Math.min(...out.confidence))
        .figure("totalEvaluations", out.totalEvaluations);
      if (p.method === "gradient") r.figure("budgetSteps", p.steps);
      else {
        r.figure("budgetGenerations", p.generations).figure("population", p.population)
          .figure("budgetEvaluations", k * p.population * (p.generations + 1));
      }
      r.table(
        `Per class: confidence, ${unit} to pass ${
          pct(confidence)
        } (-1: not within the budget), net evaluations`,
        ["class", "label", "confidence", unit, "evaluations"],
        classes.map((
          c,
          i,
        ) => [c, net.labels[c], out.confidence[i], out.iterations[i], out.evaluations[i]]),
      );
      const picture = tf.tidy(() => {
        const h = net.input.height;
        const scale = Math.max(1, Math.min(8, Math.floor(112 / h)));
        return grid(out.images, { cols: Math.min(k, 5), scale });
      });
      await r.addImage(
        p.method,
        picture,
        `${p.method}: ${reached}/${k} classes at ${pct(confidence)}. One image per class, ` +
          "labelled by the class and the net's confidence in it",
        {
          tiles: classes.map((c, i) => `${net.labels[c]} ${pct(out.confidence[i])}`),
          cols: Math.min(k, 5),
        },
      );
      picture.dispose();
      r.tensor("images", out.images);
      r.tensor("confidence", tf.tensor1d(out.confidence));
      return r;
    } catch (err) {
      out.images.dispose();
      r.dispose();
      throw err;
    }
  },
});
