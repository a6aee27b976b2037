/**
 * `integrated-gradients` (attribute): Integrated Gradients of Sundararajan, Taly &
 * Yan, "Axiomatic Attribution for Deep Networks" (ICML 2017). The attribution of
 * input value `x_i` is `(x_i - x'_i) * integral_0^1 d F(x' + a (x - x')) / d x_i da`
 * for a baseline `x'`, so that the attributions add up to `F(x) - F(x')`
 * (completeness). The integral is a Riemann sum (trapezoid or midpoint) over
 * `steps` points of the straight path; the points of all images are run through
 * the net in batches. The result reports each image's completeness error
 * `|sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')|`.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import { gradient } from "../../core/gradients.ts";
import type { Net } from "../../core/net.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { seededRandom } from "../../core/random.ts";
import { type Attribution, ATTRIBUTION_PARAMS } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import {
  checkTarget,
  classObjective,
  classScores,
  resolveClasses,
  type ScoreKind,
  TARGET_PARAM,
} from "./targets.ts";
import { chunks, readOnce } from "./batches.ts";
import { batchSizeFor } from "../../core/memory_budget.ts";

/** The most path points one pass takes, whatever the memory budget allows. */
const MAX_BATCH = 64;

/** The baseline `x'`: all zeros in model input space, a black image, or uniform noise pixels. */
export type Baseline = "zeros" | "black" | "uniform";

/** How the path integral is summed. */
export type RiemannRule = "trapezoid" | "midpoint";

/** Options of {@linkcode integrateGradients}. */
export interface IntegratedGradientsOptions {
  /** Intervals of the Riemann sum. @default 64 */
  steps?: number;
  /** The baseline. @default "zeros" */
  baseline?: Baseline;
  /** Trapezoid (`steps + 1` points) or midpoint (`steps` points). @default "trapezoid" */
  rule?: RiemannRule;
  /**
   * Path points per forward/backward pass.
   * @default as many as fit the memory budget (`core/memory_budget.ts`), at most 64
   */
  batchSize?: number;
  /** Which class score `F`. @default "logit" */
  target?: ScoreKind;
  /** Seed of the `uniform` baseline. @default 0 */
  seed?: number;
  /** Called after each batch of path points with the points done and their number. @default none */
  onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode integrateGradients} returns; the caller owns the tensors. */
export interface IntegratedGradients {
  /** The attribution, shaped like the input. */
  attribution: tf.Tensor4D;
  /** The baseline used, shaped like the input. */
  baseline: tf.Tensor4D;
  /** `F(x)` per image. */
  scores: number[];
  /** `F(x')` per image. */
  baselineScores: number[];
  /** `sum(attribution)` per image. */
  totals: number[];
  /** `|sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')|` per image. */
  completenessError: number[];
}

/**
 * The baseline of a batch.
 *
 * @param net The model.
 * @param x The batch.
 * @param kind Which baseline.
 * @param seed Seed of the `uniform` baseline.
 * @returns A new tensor shaped like `x`.
 */
export function baselineFor(net: Net, x: tf.Tensor4D, kind: Baseline, seed = 0): tf.Tensor4D {
  if (kind === "zeros") return tf.zerosLike(x);
  return tf.tidy(() => {
    const pixels = kind === "black"
      ? tf.zerosLike(x)
      : tf.randomUniform(x.shape, 0, 1, "float32", seededRandom(seed).seedForTf());
    return net.fromPixels(pixels) as tf.Tensor4D;
  });
}

/** The points `a_k` of the path and their weights. */
export function riemann(steps: number, rule: RiemannRule): { alphas: number[]; weights: number[] } {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`integrated-gradients: steps must be an integer >= 1, got ${steps}`);
  }
  if (rule === "midpoint") {
    return {
      alphas: Array.from({ length: steps }, (_, k) => (k + 0.5) / steps),
      weights: Array(steps).fill(1 / steps),
    };
  }
  if (rule !== "trapezoid") {
    throw new RangeError(`integrated-gradients: unknown rule "${rule}"; use trapezoid or midpoint`);
  }
  return {
    alphas: Array.from({ length: steps + 1 }, (_, k) => k / steps),
    weights: Array.from(
      { length: steps + 1 },
      (_, k) => (k === 0 || k === steps ? 0.5 : 1) / steps,
    ),
  };
}

/**
 * Integrated gradients of each image's class score, with the completeness check.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param options Steps, baseline, rule, batch size, score.
 * @returns The attribution, the baseline and the figures.
 */
export async function integrateGradients(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  options: IntegratedGradientsOptions = {},
): Promise<IntegratedGradients> {
  checkTarget(net, x, target, "integrated-gradients");
  const kind = options.target ?? "logit";
  const batchSize = options.batchSize ?? batchSizeFor(net, MAX_BATCH);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `integrated-gradients: batchSize must be an integer >= 1, got ${batchSize}`,
    );
  }
  const { alphas, weights } = riemann(options.steps ?? 64, options.rule ?? "trapezoid");
  const n = x.shape[0];
  const m = alphas.length;
  const baseline = baselineFor(net, x, options.baseline ?? "zeros", options.seed ?? 0);
  const size = x.size / n;
  // Rows are (image, point) pairs, image-major; each batch is a run of rows.
  let sum = tf.zeros([n, size]);
  try {
    const diff = tf.sub(x, baseline);
    try {
      for (const [start, count] of chunks(n * m, batchSize)) {
        const rows = Array.from({ length: count }, (_, r) => start + r);
        const image = rows.map((r) => Math.floor(r / m));
        const point = rows.map((r) => r % m);
        const next = tf.tidy(() => {
          const idx = tf.tensor1d(image, "int32");
          const a = tf.tensor1d(point.map((k) => alphas[k])).reshape([count, 1, 1, 1]);
          const xs = tf.add(tf.gather(baseline, idx), tf.mul(tf.gather(diff, idx), a));
          const { grad, value } = gradient(
            net,
            xs,
            classObjective(image.map((i) => target[i]), kind),
          );
          value.dispose();
          // Weighted sum of each image's rows, as one matmul: S[i, r] = w_r if row r is image i's.
          const s = tf.buffer([n, count]);
          rows.forEach((_, r) => s.set(weights[point[r]], image[r], r));
          return tf.add(sum, tf.matMul(s.toTensor(), grad.reshape([count, size])));
        });
        sum.dispose();
        sum = next;
        options.onProgress?.(start + count, n * m);
      }
      const attribution = tf.tidy(() => tf.mul(diff, sum.reshape(x.shape))) as tf.Tensor4D;
      let scores: number[], baselineScores: number[], totals: number[];
      try {
        scores = await classScores(net, x, target, kind);
        baselineScores = await classScores(net, baseline, target, kind);
        totals = Array.from(await readOnce(tf.tidy(() => attribution.reshape([n, -1]).sum(1))));
      } catch (err) {
        attribution.dispose();
        throw err;
      }
      const completenessError = totals.map((s, i) => {
        const delta = scores[i] - baselineScores[i];
        return Math.abs(s - delta) / Math.max(Math.abs(delta), 1e-12);
      });
      return { attribution, baseline, scores, baselineScores, totals, completenessError };
    } finally {
      diff.dispose();
    }
  } catch (err) {
    baseline.dispose();
    throw err;
  } finally {
    sum.dispose();
  }
}

/** Integrated gradients of the target class score for each image. */
export const integratedGradientsAttribution: Attribution<IntegratedGradientsOptions> = {
  name: "integrated-gradients",
  async attribute(net, x, target, options = {}) {
    const r = await integrateGradients(net, x, target, options);
    r.baseline.dispose();
    return r.attribution;
  },
};

/** The parameters of the `integrated-gradients` plugin: its schema, declared once. */
export const INTEGRATED_GRADIENTS_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  steps: {
    type: "integer",
    default: 64,
    min: 1,
    max: 4096,
    help: "intervals of the Riemann sum",
  },
  baseline: {
    type: "enum",
    choices: ["zeros", "black", "uniform"] as const,
    default: "zeros",
    help: "baseline: zeros (model input space), black (pixels 0) or uniform noise pixels",
  },
  rule: {
    type: "enum",
    choices: ["trapezoid", "midpoint"] as const,
    default: "trapezoid",
    help: "Riemann rule of the path integral",
  },
  batchSize: {
    type: "integer",
    min: 1,
    max: 4096,
    help: `path points per pass (default: as many as fit the memory budget, at most ${MAX_BATCH})`,
  },
  target: TARGET_PARAM,
} as const;

/** The schema type of the `integrated-gradients` plugin's parameters. */
export type IntegratedGradientsParams = typeof INTEGRATED_GRADIENTS_PARAMS;

/** The `integrated-gradients` plugin. */
export const integratedGradients: Plugin<typeof INTEGRATED_GRADIENTS_PARAMS> = definePlugin({
  name: "integrated-gradients",
  family: "attribute",
  summary: "Integrated gradients along a straight path from a baseline (Sundararajan et al. 2017)",
  params: INTEGRATED_GRADIENTS_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w], baseline: [n, h, w, c] };
  },
  demo: [{}, { baseline: "uniform", rule: "midpoint" }],
  async run(ctx, p) {
    const { net, images } = ctx;
    const classes = await resolveClasses(net, images.x, p.class, "integrated-gradients");
    const ig = await integrateGradients(net, images.x, classes, {
      steps: p.steps,
      baseline: p.baseline,
      rule: p.rule,
      batchSize: p.batchSize ?? batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB }),
      target: p.target,
      seed: ctx.rng.seedForTf(),
      onProgress: ctx.progress,
    });
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "integrated-gradients",
      title: `Integrated gradients (${p.baseline} baseline, ${p.steps} steps, ${p.rule})`,
      attribution: ig.attribution,
      classes,
      render: p.render,
      reduce: "max-abs",
      mapLabel: "|integrated gradients| (max over channels)",
      columns: {
        "F(x)": ig.scores,
        "F(baseline)": ig.baselineScores,
        "completeness error": ig.completenessError,
      },
    });
    r.tensor("baseline", ig.baseline);
    const errs = ig.completenessError;
    r.figure("steps", p.steps).figure("baseline", p.baseline).figure("rule", p.rule)
      .figure("meanCompletenessError", errs.reduce((a, b) => a + b, 0) / errs.length)
      .figure("maxCompletenessError", Math.max(...errs));
    return r;
  },
});
