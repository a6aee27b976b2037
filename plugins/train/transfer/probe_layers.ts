/**
 * `probe-layers` (train): "linear classifier from different stages". Every
 * layer's features (the input pixels, each conv, pool and dense layer,
 * nested layers included), computed once over the run's data set, are read
 * by two linear probes, softmax regression and a Crammer-Singer linear SVM,
 * trained on `perClass` examples per class drawn under the seed and measured
 * on `valCount` held-out ones: the accuracy against depth shows where the
 * features stop being generic and start being specific to the model's task
 * (Yosinski et al. 2014; Razavian et al. 2014 probed one layer this way).
 *
 * Maps are average-pooled to a grid of at most `dims` features (see
 * `features.ts` for why not global pooling), then standardized.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { ParamValues } from "../../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { type DataSource, subset } from "../../../core/data/source.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import type { Mergeable } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
import {
  FEATURE_POOLINGS,
  featureSources,
  layerFeatureArrays,
  pooledGrid,
  probeableLayers,
} from "./features.ts";
import { bestProbeRow, probeEveryLayer } from "./probes.ts";
import { drawPerClass } from "./splits.ts";

/** The parameters of `probe-layers`. */
export const PROBE_LAYERS_PARAMS = {
  layers: {
    type: "string",
    default: "auto",
    help:
      "comma-separated layers to probe (paths like base/conv2), or auto: input, convs, pools, dense",
  },
  pool: {
    type: "enum",
    choices: FEATURE_POOLINGS,
    default: "grid",
    help: "grid (average-pool to at most dims features), gap (global average) or flatten",
  },
  dims: { type: "integer", default: 1024, min: 1, help: "most features per layer under grid" },
  perClass: {
    type: "integer",
    default: 300,
    min: 1,
    help: "training examples per class, drawn from the data set",
  },
  valCount: {
    type: "integer",
    default: 2000,
    min: 1,
    help: "held-out examples the accuracy is measured on",
  },
  steps: { type: "integer", default: 300, min: 1, help: "full-batch Adam steps per probe" },
  l2: { type: "number", default: 0.001, min: 0, help: "L2 strength on the probe's weights" },
} as const;

/** The `probe-layers` plugin's parameter values, typed from {@linkcode PROBE_LAYERS_PARAMS}. */
export type ProbeLayersOptions = ParamValues<typeof PROBE_LAYERS_PARAMS>;

/** The layers, the data set and its draw: training examples per class, then held-out ones. */
async function probeSetup(ctx: Context, p: ProbeLayersOptions) {
  const { net } = ctx;
  const layers = p.layers === "auto"
    ? probeableLayers(net)
    : p.layers.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const l of layers) net.layer(l);
  const data = await ctx.data();
  if (data.classes.length < 2) {
    throw new RangeError(`probe-layers: ${data.name} has one class; give data with two or more`);
  }
  const split = drawPerClass(data, p.perClass, ctx.seed);
  const val = split.rest.slice(0, p.valCount);
  if (val.length === 0) {
    throw new RangeError(
      `probe-layers: ${data.name} (${data.size} examples) leaves nothing to validate on after ` +
        `${p.perClass} per class; lower --perClass`,
    );
  }
  return { layers, data, split, val };
}

/** One part's features (training draw or held-out examples) over a slice of it. */
export interface ProbeFeaturePart {
  /** Examples in the whole part. */
  total: number;
  /** Per layer, the smallest and largest feature of the slices held. */
  ranges: [number, number][];
  /** Features of examples `first ..` of the part, one array per layer. */
  segments: { first: number; count: number; features: Float32Array[] }[];
}

/**
 * The mergeable state of `probe-layers`' feature extraction: every probed
 * layer's pooled features of a slice of the training draw and of the held-out
 * examples (the shard files of the issue: float32 arrays in the state's
 * binary part), by first index, and their value ranges. Merging concatenates
 * by index and takes the min and max of the ranges: exact, so the probes fit
 * on merged features see the single run's numbers.
 */
export interface ProbeLayersState {
  /** The probed layers. */
  layers: string[];
  /** Each layer's feature shape. */
  shapes: [number, number, number][];
  /** The training draw's features. */
  train: ProbeFeaturePart;
  /** The held-out examples' features. */
  val: ProbeFeaturePart;
}

function mergePart(a: ProbeFeaturePart, b: ProbeFeaturePart): ProbeFeaturePart {
  return {
    total: a.total,
    ranges: a.ranges.map((
      [lo, hi],
      k,
    ) => [Math.min(lo, b.ranges[k][0]), Math.max(hi, b.ranges[k][1])]),
    segments: [...a.segments, ...b.segments].sort((x, y) => x.first - y.first),
  };
}

/** The state type of `probe-layers`: features concatenated by index, ranges by min and max. */
export const PROBE_LAYERS_STATE: Mergeable<ProbeLayersState> = {
  merge(a, b) {
    if (a.layers.join() !== b.layers.join() || a.train.total !== b.train.total) {
      throw new RangeError("probe-layers: cannot merge features of other layers or another draw");
    }
    return { ...a, train: mergePart(a.train, b.train), val: mergePart(a.val, b.val) };
  },
  encode(s) {
    const arrays: Record<string, Float32Array> = {};
    const part = (name: "train" | "val") => {
      const q = s[name];
      for (const g of q.segments) {
        g.features.forEach((f, k) => (arrays[`${name}@${g.first}@${k}`] = f));
      }
      return {
        total: q.total,
        // JSON has no Infinity: an empty slice's range is written as null.
        ranges: q.ranges.map(([lo, hi]) => (lo <= hi ? [lo, hi] : null)),
        segments: q.segments.map((g) => ({ first: g.first, count: g.count })),
      };
    };
    return {
      json: { layers: s.layers, shapes: s.shapes, train: part("train"), val: part("val") },
      arrays,
    };
  },
  decode({ json, arrays }) {
    type Part = {
      total: number;
      ranges: ([number, number] | null)[];
      segments: { first: number; count: number }[];
    };
    const j = json as {
      layers: string[];
      shapes: [number, number, number][];
      train: Part;
      val: Part;
    };
    if (!j || !Array.isArray(j.layers) || !j.train?.segments || !j.val?.segments) {
      throw new RangeError("probe-layers: the state file holds no layer features");
    }
    const part = (name: "train" | "val"): ProbeFeaturePart => ({
      total: j[name].total,
      ranges: j[name].ranges.map((r) => r ?? [Infinity, -Infinity]),
      segments: j[name].segments.map((g) => ({
        ...g,
        features: j.layers.map((_, k) => {
          const f = arrays[`${name}@${g.first}@${k}`];
          if (!(f instanceof Float32Array)) {
            throw new RangeError(
              `probe-layers: the state file lacks ${name} features of ${j.layers[k]}`,
            );
          }
          return f;
        }),
      })),
    });
    return { layers: j.layers, shapes: j.shapes, train: part("train"), val: part("val") };
  },
};

/** The features of shard `shard` of the training draw and of the held-out examples. */
async function scan(
  ctx: Context,
  p: ProbeLayersOptions,
  shard: ShardSpec,
): Promise<ScanResult<ProbeLayersState>> {
  const { net } = ctx;
  const { layers, data, split, val } = await probeSetup(ctx, p);
  const options = { layers, pool: p.pool, dims: p.dims, memoryMB: ctx.memoryMB };
  const part = async (all: readonly number[], name: string): Promise<ProbeFeaturePart> => {
    const [lo, hi] = shardRange(all.length, shard);
    const f = await layerFeatureArrays(net, subset(data, all.slice(lo, hi), name), options);
    return {
      total: all.length,
      ranges: f.ranges,
      segments: hi > lo ? [{ first: lo, count: hi - lo, features: f.arrays }] : [],
    };
  };
  const train = await part(split.train, "training draw");
  const valid = await part(val, "validation");
  // The shapes need no images: the same formula as the features'.
  const shapes = layers.map((l): [number, number, number] => {
    const s = net.layer(l).outputShape;
    const [gh, gw] = pooledGrid(s, p.pool, p.dims);
    return [gh, gw, s.length === 3 ? s[2] : s.reduce((a, b) => a * b, 1)];
  });
  return {
    value: { layers, shapes, train, val: valid },
    data: {
      name: drawName(data, split.train.length, val.length),
      size: split.train.length + val.length,
    },
  };
}

function drawName(data: DataSource, train: number, val: number): string {
  return `${data.name}: ${train} drawn for training, ${val} held out`;
}

/** One part's features, concatenated, as data sources. */
function partSources(
  s: ProbeLayersState,
  part: ProbeFeaturePart,
  of: DataSource,
): Map<string, DataSource> {
  const per = s.shapes.map(([a, b, c]) => a * b * c);
  const arrays = per.map((d) => new Float32Array(part.total * d));
  for (const g of part.segments) {
    g.features.forEach((f, k) => arrays[k].set(f, g.first * per[k]));
  }
  return featureSources({ names: s.layers, shapes: s.shapes, arrays, ranges: part.ranges }, of);
}

/** The probes fit on the merged features, and the table, plot and figures. */
async function finish(
  ctx: Context,
  p: ProbeLayersOptions,
  s: ProbeLayersState,
): Promise<Result> {
  const { net } = ctx;
  const { data, split, val } = await probeSetup(ctx, p);
  const train = partSources(s, s.train, subset(data, split.train, "training draw"));
  const valid = partSources(s, s.val, subset(data, val, "validation"));
  const rows = await probeEveryLayer(train, valid, { steps: p.steps, l2: p.l2 }, ctx.progress);
  const best = bestProbeRow(rows);
  const bestKind = best.svm > best.softmax ? "svm" : "softmax";
  const r = new Result("probe-layers", "Linear classifiers from different stages");
  r.figure("bestLayer", best.layer)
    .figure("bestAccuracy", Math.max(best.softmax, best.svm))
    .figure("bestProbe", bestKind)
    .figure("layers", rows.length)
    .figure("trainExamples", split.train.length)
    .figure("valExamples", val.length);
  const pct = (v: number) => Number((100 * v).toFixed(2));
  r.table(
    `Validation accuracy (%) of linear probes per layer: ${split.train.length} training and ` +
      `${val.length} held-out examples of ${data.name}, ${p.pool} pooling (<= ${p.dims} ` +
      "features), standardized, full-batch Adam",
    [
      "depth",
      "layer",
      "type",
      "shape",
      "pooled",
      "features",
      "softmax",
      "svm",
      "softmax train",
      "svm train",
    ],
    rows.map((row) => {
      const info = net.layer(row.layer);
      const [gh, gw] = pooledGrid(info.outputShape, p.pool, p.dims);
      return [
        row.depth,
        row.layer,
        info.type,
        info.outputShape.join("x"),
        info.outputShape.length === 3 ? `${gh}x${gw}x${info.outputShape[2]}` : "-",
        row.dims,
        pct(row.softmax),
        pct(row.svm),
        pct(row.softmaxTrain),
        pct(row.svmTrain),
      ];
    }),
  );
  const x = rows.map((row) => row.layer);
  r.addPlot(
    "accuracy-vs-depth",
    linePlot([
      { name: "softmax regression", x, y: rows.map((row) => 100 * row.softmax) },
      { name: "linear SVM", x, y: rows.map((row) => 100 * row.svm), dashed: true },
    ], {
      xLabel: "layer (input to output)",
      yLabel: "validation accuracy (%)",
      title: `Linear probes on ${net.sidecar.name ?? "the model"}'s layers`,
    }),
    `Best: ${best.layer} (${pct(Math.max(best.softmax, best.svm))}%, ${bestKind})`,
  );
  r.tensor("accuracy", tf.tensor2d(rows.map((row) => [row.softmax, row.svm]), [rows.length, 2]));
  if (split.smallestClass < p.perClass) {
    r.note(`A class of ${data.name} has only ${split.smallestClass} examples for training.`);
  }
  return r;
}

/**
 * `probe-layers` as a sharded job: each shard extracts the features of its
 * slice of the training draw and of the held-out examples and writes them;
 * the merge concatenates them and fits the probes.
 */
export const probeLayersJob: ShardedJob<typeof PROBE_LAYERS_PARAMS, ProbeLayersState> = {
  get plugin() {
    return probeLayers;
  },
  state: PROBE_LAYERS_STATE,
  async dataOf(ctx, p) {
    const { data, split, val } = await probeSetup(ctx, p);
    return {
      name: drawName(data, split.train.length, val.length),
      size: split.train.length + val.length,
    };
  },
  scan,
  finish,
};

/** The `probe-layers` plugin. */
export const probeLayers: Plugin<typeof PROBE_LAYERS_PARAMS> = definePlugin({
  name: "probe-layers",
  family: "train",
  summary: "Linear probes (softmax, SVM) on every layer's features: accuracy against depth",
  params: PROBE_LAYERS_PARAMS,
  needsImages: false,
  // The defaults take minutes on two cores; the demo report shows a quick version.
  demo: [{ perClass: 30, valCount: 300, steps: 100 }],
  resultShape(net, p) {
    const n = p.layers === "auto" ? probeableLayers(net).length : p.layers.split(",").length;
    return { accuracy: [n, 2] };
  },
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});
