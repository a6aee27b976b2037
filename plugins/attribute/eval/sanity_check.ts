/**
 * `sanity-check` (attribute, evaluation): the model-randomization test of
 * Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency
 * Maps" (NeurIPS 2018). The weights of the layers are re-initialized in cascade,
 * from the top layer down, and after each step every method's maps are compared
 * with the trained model's by Spearman rank correlation (of `max_k |a|`, per
 * image, averaged). A method that explains the model should lose its maps as the
 * model loses its weights; one whose maps survive (guided backprop is the
 * paper's example) shows the input more than the model. As a reference, the
 * correlation between the trained model's maps of two different held-out inputs
 * of the same class says how much two maps share just by being maps of digits.
 *
 * Each weight is redrawn from a normal distribution with the standard deviation
 * of the trained values (batch-norm moving statistics are kept: they are not
 * learnt by gradient and a random variance could be negative).
 *
 * The randomization works on the user's model in place and restores every weight
 * afterwards, also when a method fails: the model is left as it was.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { layerAt } from "../../../core/layers_adapter.ts";
import { type Context, definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import { addSums, type Mergeable } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
import { Result } from "../../../core/result.ts";
import { toDisplay } from "../../../core/images/display.ts";
import { colormap } from "../../../core/images/colormaps.ts";
import { grid } from "../../../core/images/grids.ts";
import type { InputImages } from "../../../core/plugin.ts";
import { attributionMap, takeAttribution } from "../attribution.ts";
import {
  EVALUATION_PARAMS,
  evaluationSet,
  methodList,
  parseMethodParams,
  spearman,
} from "./evaluation.ts";
import { predictedClasses } from "../targets.ts";

/** Pool images read at a time while pairing by class. */
const POOL_BATCH = 256;
import { readOnce } from "../batches.ts";

/** The methods checked by default. */
export const SANITY_METHODS = "saliency,guided-backprop,integrated-gradients,grad-cam,deconvnet";

/** The parameters of the `sanity-check` plugin: its schema, declared once. */
export const SANITY_CHECK_PARAMS = {
  methods: { ...EVALUATION_PARAMS.methods, default: SANITY_METHODS },
  methodParams: EVALUATION_PARAMS.methodParams,
  count: { type: "integer", default: 8, min: 1, max: 500, help: "held-out images compared" },
} as const;

/** The schema type of the `sanity-check` plugin's parameters. */
export type SanityCheckParams = typeof SANITY_CHECK_PARAMS;

/** The `sanity-check` plugin's parameter values, typed from {@linkcode SANITY_CHECK_PARAMS}. */
export type SanityCheckOptions = ParamValues<typeof SANITY_CHECK_PARAMS>;

/**
 * The mergeable state of `sanity-check` over a slice of the image pairs: per
 * cascade step and method the sum of the rank correlations with the trained
 * model's maps, per method the sum of the two-input reference correlations,
 * the number of pairs, and (in the shard holding pair 0) the drawn maps.
 * Sums add (float64: merged means differ from the single run's by rounding).
 */
export interface SanityCheckState {
  /** The methods. */
  methods: string[];
  /** The randomized layers, top first. */
  cascade: string[];
  /** What the images are, for the table. */
  source: string;
  /** Pairs summed. */
  count: number;
  /** Map height and width. */
  size: [number, number];
  /** Per method, the sum of the reference correlations. */
  reference: Float64Array;
  /** `[steps + 1, methods]` sums of the correlations (row 0: the trained model). */
  sums: Float64Array;
  /** Pair 0's maps `[methods, steps + 1, h, w]` and its name (one shard has them). */
  shown?: { name: string; maps: Float32Array };
}

/** The state type of `sanity-check`: sums added, pair 0's maps kept. */
export const SANITY_CHECK_STATE: Mergeable<SanityCheckState> = {
  merge(a, b) {
    if (a.methods.join() !== b.methods.join() || a.cascade.join() !== b.cascade.join()) {
      throw new RangeError("sanity-check: cannot merge states of other methods or layers");
    }
    return {
      ...a,
      count: a.count + b.count,
      reference: addSums(a.reference, b.reference),
      sums: addSums(a.sums, b.sums),
      shown: a.shown ?? b.shown,
    };
  },
  encode(s) {
    const arrays: Record<string, Float32Array | Float64Array> = {
      reference: s.reference,
      sums: s.sums,
    };
    if (s.shown) arrays.shown = s.shown.maps;
    return {
      json: {
        methods: s.methods,
        cascade: s.cascade,
        source: s.source,
        count: s.count,
        size: s.size,
        shownName: s.shown?.name,
      },
      arrays,
    };
  },
  decode({ json, arrays }) {
    const j = json as Omit<SanityCheckState, "reference" | "sums" | "shown"> & {
      shownName?: string;
    };
    if (!j || !Array.isArray(j.methods) || !(arrays.sums instanceof Float64Array)) {
      throw new RangeError("sanity-check: the state file holds no correlation sums");
    }
    const { shownName, ...rest } = j;
    return {
      ...rest,
      reference: arrays.reference as Float64Array,
      sums: arrays.sums as Float64Array,
      ...(shownName !== undefined
        ? { shown: { name: shownName, maps: arrays.shown as Float32Array } }
        : {}),
    };
  },
};

/** The model as a LayersModel, or the error saying why it cannot be randomized. */
function layersModel(net: Context["net"]): tf.LayersModel {
  if (net.kind !== "layers") {
    throw new RangeError(
      "sanity-check re-initializes layer weights, which needs a LayersModel; this model is a " +
        "GraphModel (convert it with its Keras/Layers topology)",
    );
  }
  return net.model as tf.LayersModel;
}

/**
 * The held-out pool and its pairs of one class (the first `count`, each image
 * once). Only the labels are kept: the pool is read a batch at a time (its
 * predicted classes where it has no labels).
 */
async function pairsOf(ctx: Context, p: SanityCheckOptions) {
  const { net } = ctx;
  // A pool of held-out images; each of the first `count` gets a partner of its class.
  const pool = await evaluationSet(ctx, Math.min(2000, p.count * 8), "sanity-check");
  const n0 = pool.count;
  const labels: number[] = [];
  for (let lo = 0; lo < n0; lo += POOL_BATCH) {
    const { images } = await pool.read(lo, Math.min(n0, lo + POOL_BATCH));
    try {
      labels.push(...images.labels);
    } finally {
      tf.dispose([images.pixels, images.x]);
    }
  }
  if (labels.some((l) => l < 0)) {
    labels.length = 0;
    for (let lo = 0; lo < n0; lo += POOL_BATCH) {
      const { images } = await pool.read(lo, Math.min(n0, lo + POOL_BATCH));
      try {
        labels.push(...await predictedClasses(net, images.x));
      } finally {
        tf.dispose([images.pixels, images.x]);
      }
    }
  }
  const firsts: number[] = [], partners: number[] = [];
  for (let i = 0; i < n0 && firsts.length < p.count; i++) {
    if (partners.includes(i)) continue;
    let j = -1;
    for (let k = i + 1; k < n0; k++) {
      if (labels[k] === labels[i] && !firsts.includes(k) && !partners.includes(k)) {
        j = k;
        break;
      }
    }
    if (j < 0) continue;
    firsts.push(i);
    partners.push(j);
  }
  if (firsts.length === 0) {
    throw new RangeError(
      "sanity-check needs at least two input images of one class to compare; give more images",
    );
  }
  return { pool, labels, firsts, partners };
}

/** The correlation sums of shard `shard` of the pairs. */
async function scan(
  ctx: Context,
  p: SanityCheckOptions,
  shard: ShardSpec,
): Promise<ScanResult<SanityCheckState>> {
  const { net } = ctx;
  const methods = methodList(p.methods, "sanity-check");
  const extra = parseMethodParams(p.methodParams, "sanity-check");
  const model = layersModel(net);
  // Top layer first: the cascade randomizes from the output down.
  const cascade = net.layers.filter((l) => l.params > 0).map((l) => l.name).reverse();
  const { pool, labels, firsts: allFirsts, partners: allPartners } = await pairsOf(ctx, p);
  const [lo, hi] = shardRange(allFirsts.length, shard);
  const firsts = allFirsts.slice(lo, hi), partners = allPartners.slice(lo, hi);
  const { height: h, width: w } = net.input;
  const state: SanityCheckState = {
    methods,
    cascade,
    source: pool.source,
    count: hi - lo,
    size: [h, w],
    reference: new Float64Array(methods.length),
    sums: new Float64Array((cascade.length + 1) * methods.length),
  };
  const data = { name: pool.source, size: allFirsts.length };
  if (hi === lo) return { value: state, data };
  // Only the shard's pairs are read; labels are the pool's (or its predicted classes).
  const pick = async (idx: number[]): Promise<InputImages> => {
    const { images } = await pool.readAt(idx);
    return { ...images, labels: idx.map((i) => labels[i]) };
  };
  const a = await pick(firsts);
  let b: InputImages;
  try {
    b = await pick(partners);
  } catch (err) {
    tf.dispose([a.pixels, a.x]);
    throw err;
  }
  const n = firsts.length;
  const classes = await predictedClasses(net, a.x);
  const mapsOf = async (images: InputImages, method: string): Promise<Float32Array[]> => {
    const attr = takeAttribution(
      await ctx.runOn(images, method, { ...extra[method], class: classes, render: false }),
      method,
    );
    const m = attributionMap(attr);
    attr.dispose();
    const v = await readOnce(m) as Float32Array;
    return Array.from({ length: n }, (_, i) => v.slice(i * h * w, (i + 1) * h * w));
  };
  const sumCorrelation = (x: Float32Array[], y: Float32Array[]) =>
    x.reduce((s, xi, i) => s + spearman(xi, y[i]), 0);
  const m = methods.length;
  const saved = new Map<string, tf.Tensor[]>();
  const shownMaps: Float32Array[][] = methods.map(() => []);
  try {
    const original: Float32Array[][] = [];
    for (const [k, method] of methods.entries()) {
      const mapsA = await mapsOf(a, method);
      original.push(mapsA);
      state.reference[k] = sumCorrelation(mapsA, await mapsOf(b, method));
      state.sums[k] = n;
    }
    methods.forEach((_, k) => shownMaps[k].push(original[k][0]));
    let step = 0;
    for (const layerName of cascade) {
      const layer = layerAt(model, layerName);
      const weights = layer.getWeights();
      saved.set(layerName, weights.map((w) => w.clone()));
      const names = layer.weights.map((v) => v.originalName ?? v.name);
      const fresh: tf.Tensor[] = [];
      try {
        // In order, one seed per re-initialized weight: the same in every shard.
        for (let i = 0; i < weights.length; i++) {
          const w = weights[i];
          // Batch-norm statistics describe the data, not learnt weights: kept.
          if (/moving_(mean|variance)/.test(names[i])) {
            fresh.push(w.clone());
            continue;
          }
          const [variance] = await readOnce(tf.tidy(() => tf.moments(w).variance));
          const sd = Math.sqrt(variance) || 0.05;
          fresh.push(tf.randomNormal(w.shape, 0, sd, "float32", ctx.rng.seedForTf()));
        }
        layer.setWeights(fresh);
      } finally {
        tf.dispose(fresh);
      }
      step++;
      for (let k = 0; k < m; k++) {
        const maps = await mapsOf(a, methods[k]);
        state.sums[step * m + k] = sumCorrelation(original[k], maps);
        shownMaps[k].push(maps[0]);
      }
      ctx.progress(step, cascade.length);
    }
    if (lo === 0) {
      state.shown = {
        name: a.names[0],
        maps: Float32Array.from(shownMaps.flatMap((ms) => ms.flatMap((x) => Array.from(x)))),
      };
    }
    return { value: state, data };
  } finally {
    for (const [name, ws] of saved) {
      layerAt(model, name).setWeights(ws);
      tf.dispose(ws);
    }
    tf.dispose([a.pixels, a.x, b.pixels, b.x]);
  }
}

/** The correlation table, figures and drawn cascade of the merged sums. */
async function finish(
  _ctx: Context,
  _p: SanityCheckOptions,
  s: SanityCheckState,
): Promise<Result> {
  const { methods, cascade, count: n } = s;
  const m = methods.length;
  const rows = Array.from(
    { length: cascade.length + 1 },
    (_, i) => methods.map((_, k) => s.sums[i * m + k] / n),
  );
  const reference = methods.map((_, k) => s.reference[k] / n);
  const [h, w] = s.size;
  const shownMaps = s.shown!.maps;
  const r = new Result("sanity-check", "Sanity check: cascading model randomization");
  methods.forEach((m, k) => {
    r.figure(`${m}.top`, rows[1]?.[k] ?? 1);
    r.figure(`${m}.all`, rows[rows.length - 1][k]);
    r.figure(`${m}.reference`, reference[k]);
  });
  r.figure("images", n).figure("layers", cascade.join(","));
  if (methods.includes("integrated-gradients")) {
    r.note(
      "Integrated gradients from a zero baseline multiply the gradient by the input: its map " +
        "is zero wherever the input is, whatever the weights, so its rank correlation keeps " +
        "the input's structure (Adebayo et al. report the same of gradient x input).",
    );
  }
  r.table(
    `Spearman rank correlation of max_k |a| maps with the trained model's (mean over ${n} ` +
      `${s.source.replace(/^\d+ /, "")}), re-initializing layers from the top down`,
    ["randomized down to", ...methods],
    [
      ["(trained)", ...rows[0]],
      ...cascade.map((l, i) => [l, ...rows[i + 1]]),
      ["reference: two inputs of one class, trained", ...reference],
    ],
  );
  r.tensor("correlations", tf.tensor2d(rows));
  const picture = tf.tidy(() => {
    const tiles = tf.tensor3d(shownMaps, [
      methods.length * (cascade.length + 1),
      h,
      w,
    ]);
    const heat = colormap(toDisplay(tiles, { mode: "percentile", perItem: true }), "inferno", {
      min: 0,
      max: 1,
    });
    return grid(heat, {
      cols: cascade.length + 1,
      scale: Math.max(1, Math.floor(64 / Math.max(h, w))),
    });
  });
  try {
    await r.addImage(
      "cascade",
      picture,
      `${s.shown!.name}: max_k |a| maps as layers are randomized from the top down. Each row ` +
        "one method; the first column the trained model, each next one with one more " +
        "layer re-initialized (-layer)",
      {
        tiles: methods.flatMap((m) => [`${m} (trained)`, ...cascade.map((l) => `-${l}`)]),
        cols: cascade.length + 1,
        colorbar: {
          colormap: "inferno",
          min: 0,
          max: 1,
          label: "max_k |a| / each map's 99th pct",
        },
      },
    );
  } finally {
    picture.dispose();
  }
  return r;
}

/** `sanity-check` as a sharded job: each shard correlates its pairs' maps; sums add. */
export const sanityCheckJob: ShardedJob<typeof SANITY_CHECK_PARAMS, SanityCheckState> = {
  get plugin() {
    return sanityCheck;
  },
  state: SANITY_CHECK_STATE,
  async dataOf(ctx, p) {
    layersModel(ctx.net);
    const { pool, firsts } = await pairsOf(ctx, p);
    return { name: pool.source, size: firsts.length };
  },
  scan,
  finish,
};

/** The `sanity-check` plugin. */
export const sanityCheck: Plugin<typeof SANITY_CHECK_PARAMS> = definePlugin({
  name: "sanity-check",
  family: "attribute",
  summary: "Cascading model randomization: do the maps change with the weights? (Adebayo et al.)",
  params: SANITY_CHECK_PARAMS,
  resultShape(net, p) {
    const steps = net.layers.filter((l) => l.params > 0).length;
    return { correlations: [steps + 1, methodList(p.methods, "sanity-check").length] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});
