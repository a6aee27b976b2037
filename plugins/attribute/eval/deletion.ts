/**
 * `deletion` (attribute, evaluation): the deletion metric of Petsiuk, Das &
 * Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models"
 * (BMVC 2018), after the pixel-perturbation test of Samek et al. (2017). Pixels
 * are deleted (set to black) in the order of a method's map, most important
 * first, and the probability of the explained class is measured after each
 * `1/steps` of the image; the area under that curve is small when the map puts
 * what the net needs first. The same is done in a random order as the baseline.
 * Reported: each method's AUC averaged over held-out images, and the random one.
 *
 * @module
 */
import { BUILTIN_NAMES } from "../../../core/builtin/mod.ts";
import { tf } from "../../../core/tf.ts";
import type { Net } from "../../../core/net.ts";
import type { Random } from "../../../core/random.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { attributionMap } from "../attribution.ts";
import { chunks, readOnce } from "../batches.ts";
import { batchSizeFor } from "../../../core/memory_budget.ts";

/** The most images one attribution or forward pass takes, whatever the budget allows. */
const MAX_BATCH = 100;
import {
  attributeChunk,
  EVALUATION_PARAMS,
  evaluationSet,
  methodList,
  parseMethodParams,
} from "./evaluation.ts";
import { predictedClasses } from "../targets.ts";
import type { Context } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import { addSums, type Mergeable } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
// The sharded-job types this module's exports are made of, public beside them.
export type { Mergeable, StateArray, StatePayload } from "../../../core/jobs/mergeable.ts";
export type { ShardSpec } from "../../../core/jobs/shard_spec.ts";
export type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
import { exampleRandom } from "../../../core/jobs/seeds.ts";

/** The methods scored by default. */
export const DELETION_METHODS = "saliency,guided-backprop,grad-cam,integrated-gradients,smoothgrad";

/** The parameters of the `deletion` plugin: its schema, declared once. */
export const DELETION_PARAMS = {
  methods: { ...EVALUATION_PARAMS.methods, default: DELETION_METHODS },
  methodParams: EVALUATION_PARAMS.methodParams,
  count: { type: "integer", default: 200, min: 1, max: 2000, help: "held-out images" },
  steps: { type: "integer", default: 20, min: 1, max: 1000, help: "deletion steps" },
  batchSize: {
    type: "integer",
    min: 1,
    max: 4096,
    help: `images per pass (default: what fits the memory budget, at most ${MAX_BATCH})`,
  },
} as const;

/** The schema type of the `deletion` plugin's parameters. */
export type DeletionParams = typeof DELETION_PARAMS;

/** The `deletion` plugin's parameter values, typed from {@linkcode DELETION_PARAMS}. */
export type DeletionOptions = ParamValues<typeof DELETION_PARAMS>;

/**
 * The deletion order of each image's pixels: rank 0 is deleted first. Higher
 * map values come first; ties are broken at random so that flat regions are not
 * deleted in scan order.
 *
 * @param map `[n, h, w]` (omit for a random order).
 * @param n Images.
 * @param pixels Pixels per image.
 * @param rng Tie-breaking (and the random order).
 * @returns `n * pixels` ranks, image after image.
 */
export function deletionRanks(
  map: Float32Array | undefined,
  n: number,
  pixels: number,
  rng: Random,
): Int32Array {
  const out = new Int32Array(n * pixels);
  const tie = new Float64Array(pixels);
  const order = new Int32Array(pixels);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < pixels; j++) {
      tie[j] = rng.next();
      order[j] = j;
    }
    const v = map?.subarray(i * pixels, (i + 1) * pixels);
    order.sort((a, b) => (v ? v[b] - v[a] : 0) || tie[a] - tie[b]);
    for (let r = 0; r < pixels; r++) out[i * pixels + order[r]] = r;
  }
  return out;
}

/**
 * The deletion curve of each image: the probability of its class after deleting
 * (setting to black) the pixels of rank below `round(t / steps * pixels)`, for
 * `t = 0..steps`.
 *
 * @param net The model.
 * @param pixels Display pixels `[n, h, w, c]`.
 * @param classes The class of each image.
 * @param ranks Deletion order from {@linkcode deletionRanks}.
 * @param steps Steps of the curve.
 * @param batchSize Images per forward pass.
 * @returns `n` curves of `steps + 1` probabilities.
 */
export async function deletionCurves(
  net: Net,
  pixels: tf.Tensor4D,
  classes: readonly number[],
  ranks: Int32Array,
  steps: number,
  batchSize: number,
): Promise<number[][]> {
  const [n, h, w] = pixels.shape;
  const area = h * w;
  const curves = Array.from({ length: n }, () => new Array<number>(steps + 1).fill(0));
  const all = tf.tensor2d(ranks, [n, area], "int32");
  try {
    // Rows are (image, step) pairs, image-major.
    for (const [start, count] of chunks(n * (steps + 1), batchSize)) {
      const rows = Array.from({ length: count }, (_, r) => start + r);
      const image = rows.map((r) => Math.floor(r / (steps + 1)));
      const step = rows.map((r) => r % (steps + 1));
      const probs = tf.tidy(() => {
        const idx = tf.tensor1d(image, "int32");
        const rank = tf.gather(all, idx);
        const cut = tf.tensor2d(
          step.map((t) => Math.round((t / steps) * area)),
          [count, 1],
          "int32",
        );
        const keep = tf.cast(tf.greaterEqual(rank, cut), "float32").reshape([count, h, w, 1]);
        const x = net.fromPixels(tf.mul(tf.gather(pixels, idx), keep));
        const p = net.probabilities(x);
        const pick = tf.oneHot(tf.tensor1d(image.map((i) => classes[i]), "int32"), p.shape[1]);
        return tf.sum(tf.mul(p, pick), 1);
      });
      const v = await readOnce(probs);
      rows.forEach((_, k) => (curves[image[k]][step[k]] = v[k]));
    }
  } finally {
    all.dispose();
  }
  return curves;
}

/** Area under a curve sampled at `0, 1/steps, ..., 1` (trapezoid rule). */
export function curveArea(curve: readonly number[]): number {
  const steps = curve.length - 1;
  let s = 0;
  for (let t = 0; t < steps; t++) s += (curve[t] + curve[t + 1]) / 2;
  return s / steps;
}

/** The model-free deletion orders reported beside the methods. */
export const MODEL_FREE = ["brightness", "edges"] as const;

/**
 * A model-free importance map `[n, h, w]` of display pixels: their brightness
 * (summed over channels), or the magnitude of their Sobel gradient.
 *
 * @param pixels `[n, h, w, c]` in [0, 1].
 * @param order Which map.
 * @returns The map.
 */
export function modelFreeMap(
  pixels: tf.Tensor4D,
  order: typeof MODEL_FREE[number],
): tf.Tensor3D {
  return tf.tidy(() => {
    const gray = pixels.mean(3, true) as tf.Tensor4D;
    if (order === "brightness") return gray.squeeze([3]) as tf.Tensor3D;
    const sx = tf.tensor4d([-1, 0, 1, -2, 0, 2, -1, 0, 1], [3, 3, 1, 1]);
    const sy = tf.tensor4d([-1, -2, -1, 0, 0, 0, 1, 2, 1], [3, 3, 1, 1]);
    const gx = tf.conv2d(gray, sx, 1, "same"), gy = tf.conv2d(gray, sy, 1, "same");
    return gx.square().add(gy.square()).sqrt().squeeze([3]) as tf.Tensor3D;
  });
}

/**
 * The mergeable state of `deletion` over a slice of the held-out images: per
 * order (the methods, the model-free orders, random) the sum of the images'
 * AUCs and of their curves, the image count, and the per-image curves of each
 * contiguous run of global image indices (the result's `curves` tensor).
 * Sums add (float64: a merged AUC differs from the single run's by float64
 * rounding only); curve segments are concatenated in index order.
 */
export interface DeletionState {
  /** The orders: methods, model-free orders, "random". */
  names: string[];
  /** Steps of each curve. */
  steps: number;
  /** What the images are, for the title. */
  source: string;
  /** Images summed. */
  count: number;
  /** Per order, the sum of the images' AUCs. */
  aucSum: Float64Array;
  /** Per order and step, the sum of the images' probabilities (`[orders, steps + 1]`). */
  curveSum: Float64Array;
  /** Per-image curves `[orders, count, steps + 1]` of images `first ..`, by first index. */
  segments: { first: number; count: number; curves: Float32Array }[];
}

/** The state type of `deletion`: sums added, curve segments concatenated by index. */
export const DELETION_STATE: Mergeable<DeletionState> = {
  merge(a, b) {
    if (a.steps !== b.steps || a.names.join() !== b.names.join()) {
      throw new RangeError("deletion: cannot merge states of other methods or steps");
    }
    return {
      ...a,
      count: a.count + b.count,
      aucSum: addSums(a.aucSum, b.aucSum),
      curveSum: addSums(a.curveSum, b.curveSum),
      segments: [...a.segments, ...b.segments].sort((x, y) => x.first - y.first),
    };
  },
  encode(s) {
    const arrays: Record<string, Float32Array | Float64Array> = {
      aucSum: s.aucSum,
      curveSum: s.curveSum,
    };
    for (const g of s.segments) arrays[`curves@${g.first}`] = g.curves;
    return {
      json: {
        names: s.names,
        steps: s.steps,
        source: s.source,
        count: s.count,
        segments: s.segments.map((g) => ({ first: g.first, count: g.count })),
      },
      arrays,
    };
  },
  decode({ json, arrays }) {
    const j = json as Omit<DeletionState, "aucSum" | "curveSum" | "segments"> & {
      segments: { first: number; count: number }[];
    };
    if (!j || !Array.isArray(j.names) || !(arrays.aucSum instanceof Float64Array)) {
      throw new RangeError("deletion: the state file holds no deletion sums");
    }
    return {
      ...j,
      aucSum: arrays.aucSum as Float64Array,
      curveSum: arrays.curveSum as Float64Array,
      segments: j.segments.map((g) => ({
        ...g,
        curves: arrays[`curves@${g.first}`] as Float32Array,
      })),
    };
  },
};

/**
 * Deletion ranks of images `first ..` whose tie-breaking (and random order)
 * is seeded by the global image index and the order's stream, so that a shard
 * draws what the single run draws for the same image.
 */
function seededRanks(
  map: Float32Array | undefined,
  n: number,
  pixels: number,
  seed: number,
  stream: number,
  first: number,
): Int32Array {
  const out = new Int32Array(n * pixels);
  for (let i = 0; i < n; i++) {
    const one = deletionRanks(
      map?.subarray(i * pixels, (i + 1) * pixels),
      1,
      pixels,
      exampleRandom(seed, stream, first + i),
    );
    out.set(one, i * pixels);
  }
  return out;
}

/**
 * The curves of shard `shard` of the held-out images, reduced to sums. The
 * images are read from the source a batch at a time (each batch's maps,
 * orders and curves made before the next is read), so memory is bounded by
 * the batch, not by the number of images.
 */
async function scan(
  ctx: Context,
  p: DeletionOptions,
  shard: ShardSpec,
): Promise<ScanResult<DeletionState>> {
  const { net } = ctx;
  const batchSize = p.batchSize ?? batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB });
  const methods = methodList(p.methods, "deletion");
  const extra = parseMethodParams(p.methodParams, "deletion");
  // Two model-free orders beside random: the brightest pixels first (deleting
  // to black removes most there), and the strongest edges first. A map that
  // explains the model should beat what needs no model.
  const names = [...methods, ...MODEL_FREE, "random"];
  const set = await evaluationSet(ctx, p.count, "deletion");
  const total = set.count;
  const [lo, hi] = shardRange(total, shard);
  const n = hi - lo;
  const state: DeletionState = {
    names,
    steps: p.steps,
    source: set.source,
    count: n,
    aucSum: new Float64Array(names.length),
    curveSum: new Float64Array(names.length * (p.steps + 1)),
    segments: [],
  };
  const data = { name: set.source, size: total };
  if (n === 0) return { value: state, data };
  // Per order, the curves of the shard's images in index order.
  const curves: number[][][] = names.map(() => []);
  let done = 0;
  const work = Math.ceil(n / batchSize) * names.length;
  for (const [start, count] of chunks(n, batchSize)) {
    const first = lo + start;
    const { images } = await set.read(first, first + count);
    try {
      const [, h, w] = images.x.shape;
      const classes = await predictedClasses(net, images.x);
      const curvesOf = async (ranks: Int32Array, order: number) => {
        curves[order].push(
          ...await deletionCurves(net, images.pixels, classes, ranks, p.steps, batchSize),
        );
        ctx.progress(++done, work);
      };
      for (const [j, method] of methods.entries()) {
        const a = await attributeChunk(ctx, images, classes, 0, count, method, extra[method]);
        const m = attributionMap(a);
        a.dispose();
        const maps = await readOnce(m) as Float32Array;
        await curvesOf(seededRanks(maps, count, h * w, ctx.seed, j, first), j);
      }
      for (const [j, order] of MODEL_FREE.entries()) {
        const map = tf.tidy(() => modelFreeMap(images.pixels, order));
        const values = (await readOnce(map)) as Float32Array;
        const k = methods.length + j;
        await curvesOf(seededRanks(values, count, h * w, ctx.seed, k, first), k);
      }
      const k = names.length - 1;
      await curvesOf(seededRanks(undefined, count, h * w, ctx.seed, k, first), k);
    } finally {
      tf.dispose([images.pixels, images.x]);
    }
  }
  // Sums in image order, as the single run adds them.
  curves.forEach((cs, m) => {
    for (const c of cs) {
      state.aucSum[m] += curveArea(c);
      for (let t = 0; t <= p.steps; t++) state.curveSum[m * (p.steps + 1) + t] += c[t];
    }
  });
  state.segments.push({ first: lo, count: n, curves: Float32Array.from(curves.flat(2)) });
  return { value: state, data };
}

/** The AUCs, tables, curves tensor and plot of the merged sums. */
function finish(_ctx: Context, p: DeletionOptions, s: DeletionState): Promise<Result> {
  const { names, count: n } = s;
  const steps = p.steps;
  const aucs = names.map((_, m) => s.aucSum[m] / n);
  const mean = names.map((_, m) =>
    Array.from({ length: steps + 1 }, (_, t) => s.curveSum[m * (steps + 1) + t] / n)
  );
  // [orders, n, steps + 1] from segments of [orders, count, steps + 1].
  const all = new Float32Array(names.length * n * (steps + 1));
  let at = 0;
  for (const g of s.segments) {
    for (let m = 0; m < names.length; m++) {
      const row = g.count * (steps + 1);
      all.set(g.curves.subarray(m * row, (m + 1) * row), (m * n + at) * (steps + 1));
    }
    at += g.count;
  }
  const r = new Result("deletion", `Deletion metric on ${s.source}`);
  names.forEach((m, i) => r.figure(m, aucs[i]));
  r.figure("images", n).figure("steps", steps);
  r.table(
    "AUC of the explained (predicted) class's probability as pixels are deleted " +
      "(set to black) in the map's order; lower is better",
    ["method", "AUC", "AUC / random"],
    names.map((m, i) => [m, aucs[i], aucs[i] / aucs[aucs.length - 1]]),
  );
  const shownSteps = Array.from({ length: steps + 1 }, (_, t) => t)
    .filter((t) => t % Math.max(1, Math.round(steps / 10)) === 0 || t === steps);
  r.table(
    "Mean probability of the class after deleting a fraction of the pixels",
    ["method", ...shownSteps.map((t) => `${Math.round((100 * t) / steps)}%`)],
    names.map((m, i) => [m, ...shownSteps.map((t) => mean[i][t])]),
  );
  r.tensor("auc", tf.tensor1d(aucs));
  r.tensor("curves", tf.tensor3d(all, [names.length, n, steps + 1]));
  const fractions = Array.from({ length: steps + 1 }, (_, t) => t / steps);
  r.addPlot(
    "curves",
    linePlot(
      names.map((m, i) => ({
        name: m,
        x: fractions,
        y: mean[i],
        ...(i === names.length - 1 ? { color: "#888", dashed: true } : {}),
      })),
      {
        title: "Deletion curves",
        xLabel: "fraction of pixels deleted (most relevant first)",
        yLabel: "mean probability of the class",
        xDomain: [0, 1],
        yDomain: [0, 1],
        legend: true,
      },
    ),
    `Mean deletion curves over ${n} images: ${names.join(", ")} ` +
      "(dashed gray: pixels deleted in random order); lower is better",
  );
  return Promise.resolve(r);
}

/** `deletion` as a sharded job: each shard scores its slice; sums merge. */
export const deletionJob: ShardedJob<typeof DELETION_PARAMS, DeletionState> = {
  get plugin() {
    return deletion;
  },
  state: DELETION_STATE,
  settings: ["batchSize"],
  async dataOf(ctx, p) {
    const set = await evaluationSet(ctx, p.count, "deletion");
    return { name: set.source, size: set.count };
  },
  scan,
  finish,
};

/** The `deletion` plugin. */
export const deletion: Plugin<typeof DELETION_PARAMS> = definePlugin({
  name: "deletion",
  family: "attribute",
  summary:
    "Deletion metric: class probability as pixels go in map order vs model-free and random orders (AUC)",
  params: DELETION_PARAMS,
  resultShape(net, p, images): Record<string, number[]> {
    // A built-in model reads its own test data, which holds at least `count` images.
    const builtIn = (BUILTIN_NAMES as readonly string[]).includes(net.sidecar.name ?? "");
    const n = builtIn ? p.count : Math.min(p.count, images.x.shape[0]);
    const m = methodList(p.methods, "deletion").length + MODEL_FREE.length + 1;
    return { auc: [m], curves: [m, n, p.steps + 1] };
  },
  demo: [{ count: 16 }],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});
