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
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { toDisplay } from "../../../core/images/display.ts";
import { colormap } from "../../../core/images/colormaps.ts";
import { grid } from "../../../core/images/grids.ts";
import { imagesFromPixels } from "../../../core/inputs.ts";
import type { InputImages } from "../../../core/plugin.ts";
import { attributionMap, takeAttribution } from "../attribution.ts";
import {
  disposeEvaluationImages,
  EVALUATION_PARAMS,
  evaluationImages,
  methodList,
  parseMethodParams,
  spearman,
} from "./evaluation.ts";
import { predictedClasses } from "../targets.ts";
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
    const { net } = ctx;
    const methods = methodList(p.methods, "sanity-check");
    const extra = parseMethodParams(p.methodParams, "sanity-check");
    if (net.kind !== "layers") {
      throw new RangeError(
        "sanity-check re-initializes layer weights, which needs a LayersModel; this model is a " +
          "GraphModel (convert it with its Keras/Layers topology)",
      );
    }
    const model = net.model as tf.LayersModel;
    // Top layer first: the cascade randomizes from the output down.
    const cascade = net.layers.filter((l) => l.params > 0).map((l) => l.name).reverse();
    // A pool of held-out images; each of the first `count` gets a partner of its class.
    const pool = await evaluationImages(ctx, Math.min(2000, p.count * 8), "sanity-check");
    const n0 = pool.images.x.shape[0];
    const labels = pool.images.labels.some((l) => l < 0)
      ? await predictedClasses(net, pool.images.x)
      : pool.images.labels;
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
      disposeEvaluationImages(pool);
      throw new RangeError(
        "sanity-check needs at least two input images of one class to compare; give more images",
      );
    }
    const pick = (idx: number[]): InputImages => {
      const pixels = tf.tidy(() =>
        tf.gather(pool.images.pixels, tf.tensor1d(idx, "int32")) as tf.Tensor4D
      );
      return imagesFromPixels(
        net,
        pixels,
        idx.map((i) => labels[i]),
        idx.map((i) => pool.images.names[i]),
      );
    };
    const a = pick(firsts);
    const b = pick(partners);
    disposeEvaluationImages(pool);
    const n = firsts.length;
    const classes = await predictedClasses(net, a.x);
    const mapsOf = async (images: InputImages, method: string): Promise<Float32Array[]> => {
      const attr = takeAttribution(
        await ctx.runOn(images, method, { ...extra[method], class: classes, render: false }),
        method,
      );
      const m = attributionMap(attr);
      attr.dispose();
      const [, h, w] = m.shape;
      const v = await readOnce(m) as Float32Array;
      return Array.from({ length: n }, (_, i) => v.slice(i * h * w, (i + 1) * h * w));
    };
    const meanCorrelation = (x: Float32Array[], y: Float32Array[]) =>
      x.reduce((s, xi, i) => s + spearman(xi, y[i]), 0) / x.length;

    const saved = new Map<string, tf.Tensor[]>();
    const rows: number[][] = [];
    const shownMaps: Float32Array[][] = methods.map(() => []);
    try {
      const original: Float32Array[][] = [];
      const reference: number[] = [];
      for (const method of methods) {
        const mapsA = await mapsOf(a, method);
        original.push(mapsA);
        reference.push(meanCorrelation(mapsA, await mapsOf(b, method)));
      }
      methods.forEach((_, k) => shownMaps[k].push(original[k][0]));
      rows.push(methods.map(() => 1));
      let step = 0;
      for (const layerName of cascade) {
        const layer = layerAt(model, layerName);
        const weights = layer.getWeights();
        saved.set(layerName, weights.map((w) => w.clone()));
        const names = layer.weights.map((v) => v.originalName ?? v.name);
        const fresh: tf.Tensor[] = [];
        try {
          // In order, one seed per re-initialized weight.
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
        const row: number[] = [];
        for (let k = 0; k < methods.length; k++) {
          const maps = await mapsOf(a, methods[k]);
          row.push(meanCorrelation(original[k], maps));
          shownMaps[k].push(maps[0]);
        }
        rows.push(row);
        ctx.progress(++step, cascade.length);
      }
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
          `${pool.source.replace(/^\d+ /, "")}), re-initializing layers from the top down`,
        ["randomized down to", ...methods],
        [
          ["(trained)", ...rows[0]],
          ...cascade.map((l, i) => [l, ...rows[i + 1]]),
          ["reference: two inputs of one class, trained", ...reference],
        ],
      );
      r.tensor("correlations", tf.tensor2d(rows));
      const [h, w] = a.x.shape.slice(1, 3);
      const picture = tf.tidy(() => {
        const tiles = tf.tensor3d(shownMaps.flatMap((ms) => ms.flatMap((m) => Array.from(m))), [
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
          `${a.names[0]}: max_k |a| maps as layers are randomized from the top down. Each row ` +
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
    } finally {
      for (const [name, ws] of saved) {
        layerAt(model, name).setWeights(ws);
        tf.dispose(ws);
      }
      tf.dispose([a.pixels, a.x, b.pixels, b.x]);
    }
  },
});
