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
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { subset } from "../../../core/data/source.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { FEATURE_POOLINGS, layerFeatures, pooledGrid, probeableLayers } from "./features.ts";
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
    const options = { layers, pool: p.pool, dims: p.dims, memoryMB: ctx.memoryMB };
    const train = await layerFeatures(net, subset(data, split.train, "training draw"), options);
    const valid = await layerFeatures(net, subset(data, val, "validation"), options);
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
  },
});
