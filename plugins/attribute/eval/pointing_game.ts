/**
 * `pointing-game` (attribute, evaluation): the pointing game of Zhang, Bargal,
 * Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by Excitation
 * Backprop" (ECCV 2016), on the built-in held-out canvases: each canvas holds one
 * digit among faint fragments of others, with the digit's box known. A method
 * scores a hit when the maximum of its map (for the digit's true class) falls
 * inside the box (grown by `tolerance` pixels). The baseline points at a random
 * pixel: its hit rate is the box's share of the canvas on average, reported both
 * as drawn with the run's seed and as expected. A second reference needs no model:
 * the brightest pixel of the canvas (the digit is drawn brighter than the
 * clutter), which says how much of a hit rate class-agnostic edge or intensity
 * detectors get for free.
 *
 * With `clutter` 1 the fragments are as bright as the digit, so that intensity
 * alone no longer finds it.
 *
 * Attribution methods are attribution plugins named in `methods` and run through
 * `ctx.runOn`, so user plugins take part like built-in ones. The model must take
 * 64x64x1 canvases (the built-in canvas model); for other models the result only
 * says so.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { CANVAS_SIZE } from "../../../core/datasets.ts";
import type { Box } from "../../../core/images/grids.ts";
import { attributionMap } from "../attribution.ts";
import { chunks, readOnce } from "../batches.ts";
import { batchSizeFor } from "../../../core/memory_budget.ts";

/** The most canvases one attribution call takes, whatever the budget allows. */
const MAX_BATCH = 50;
import {
  attributeChunk,
  disposeEvaluationImages,
  EVALUATION_PARAMS,
  evaluationImages,
  methodList,
  parseMethodParams,
} from "./evaluation.ts";
import { attributionColorbar, attributionTiles, renderAttribution } from "../figures.ts";

/** The methods scored by default. */
export const POINTING_METHODS =
  "saliency,guided-backprop,grad-cam,guided-grad-cam,integrated-gradients,smoothgrad,deconvnet";

/** The parameters of the `pointing-game` plugin: its schema, declared once. */
export const POINTING_GAME_PARAMS = {
  methods: { ...EVALUATION_PARAMS.methods, default: POINTING_METHODS },
  methodParams: EVALUATION_PARAMS.methodParams,
  count: { type: "integer", default: 200, min: 1, max: 2000, help: "held-out canvases" },
  tolerance: { type: "integer", default: 0, min: 0, max: 64, help: "pixels a box is grown by" },
  batchSize: {
    type: "integer",
    min: 1,
    max: 2000,
    help: `canvases per call (default: what fits the memory budget, at most ${MAX_BATCH})`,
  },
  clutter: {
    type: "number",
    default: 0.5,
    min: 0,
    max: 1,
    help: "clutter brightness vs the digit (0.5: built-in canvases; 1: as bright)",
  },
  show: { type: "integer", default: 6, min: 0, max: 32, help: "canvases drawn per method" },
} as const;

/** The schema type of the `pointing-game` plugin's parameters. */
export type PointingGameParams = typeof POINTING_GAME_PARAMS;

/**
 * Whether each point falls in its box grown by `tolerance`.
 *
 * @param points `[row, col]` per image.
 * @param boxes One box per image.
 * @param tolerance Pixels added on every side.
 * @returns One boolean per image.
 */
export function pointHits(
  points: readonly (readonly [number, number])[],
  boxes: readonly Box[],
  tolerance = 0,
): boolean[] {
  return points.map(([r, c], i) => {
    const b = boxes[i];
    return r >= b.y0 - tolerance && r < b.y1 + tolerance && c >= b.x0 - tolerance &&
      c < b.x1 + tolerance;
  });
}

/** The `pointing-game` plugin. */
export const pointingGame: Plugin<typeof POINTING_GAME_PARAMS> = definePlugin({
  name: "pointing-game",
  family: "attribute",
  summary: "Pointing game: does each method's map peak inside the digit's box? (Zhang et al.)",
  params: POINTING_GAME_PARAMS,
  resultShape(net, p): Record<string, number[]> {
    const fits = net.sidecar.name === "canvas";
    return fits ? { hits: [methodList(p.methods, "pointing-game").length + 1] } : {};
  },
  demo: [{}, { clutter: 1 }],
  async run(ctx, p) {
    const { net } = ctx;
    const batchSize = p.batchSize ?? batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB });
    const methods = methodList(p.methods, "pointing-game");
    const extra = parseMethodParams(p.methodParams, "pointing-game");
    const { height, width, channels } = net.input;
    const r = new Result("pointing-game", "Pointing game on held-out canvases");
    // The canvases, whose digit boxes are known, serve the canvas model only.
    if (net.sidecar.name !== "canvas") {
      const why = `pointing-game plays on the built-in ${CANVAS_SIZE}x${CANVAS_SIZE} canvases, ` +
        `whose digit boxes are known, with the built-in canvas model; this model ` +
        `(${height}x${width}x${channels}) has no such images. Run it with --model canvas.`;
      ctx.warn(why);
      return r.figure("skipped", true).note(why);
    }
    const data = await evaluationImages(ctx, p.count, "pointing-game", true, p.clutter);
    try {
      const { images } = data;
      const boxes = data.boxes!;
      const n = images.x.shape[0];
      const classes = images.labels;
      const rates: number[] = [];
      const rows: (string | number)[][] = [];
      const figures: { method: string; picture: tf.Tensor3D; tiles: string[] }[] = [];
      // The random baseline: the argmax of a map of i.i.d. noise is a uniform pixel.
      const randomPoints = Array.from(
        { length: n },
        () => [ctx.rng.int(height), ctx.rng.int(width)] as [number, number],
      );
      const randomHits = pointHits(randomPoints, boxes, p.tolerance);
      const randomRate = randomHits.filter(Boolean).length / n;
      const expected = boxes.reduce((s, b) => {
        const t = p.tolerance;
        const h = Math.min(height, b.y1 + t) - Math.max(0, b.y0 - t);
        const w = Math.min(width, b.x1 + t) - Math.max(0, b.x0 - t);
        return s + (h * w) / (height * width);
      }, 0) / n;
      // A class-agnostic reference: the brightest pixel of the canvas (the digit is
      // drawn brighter than the clutter), which needs no model at all.
      const bright = tf.tidy(() => images.pixels.sum(3).reshape([n, -1]).argMax(1));
      const brightPoints = Array.from(
        await readOnce(bright),
        (v) => [Math.floor(v / width), v % width] as [number, number],
      );
      const brightRate = pointHits(brightPoints, boxes, p.tolerance).filter(Boolean).length / n;
      let done = 0;
      for (const method of methods) {
        const points: [number, number][] = [];
        let shown: tf.Tensor4D | undefined;
        for (const [start, count] of chunks(n, batchSize)) {
          const a = await attributeChunk(ctx, images, classes, start, count, method, extra[method]);
          try {
            const best = tf.tidy(() => attributionMap(a).reshape([count, -1]).argMax(1));
            for (const v of await readOnce(best)) points.push([Math.floor(v / width), v % width]);
            if (start === 0 && p.show > 0) {
              shown = a.slice([0, 0, 0, 0], [Math.min(p.show, count), -1, -1, -1]);
            }
          } finally {
            a.dispose();
          }
          ctx.progress(++done, methods.length * Math.ceil(n / batchSize));
        }
        const hits = pointHits(points, boxes, p.tolerance);
        const rate = hits.filter(Boolean).length / n;
        rates.push(rate);
        rows.push([
          method,
          hits.filter(Boolean).length,
          n,
          rate,
          rate / Math.max(randomRate, 1e-9),
        ]);
        r.figure(method, rate);
        if (shown) {
          const k = shown.shape[0];
          const picture = tf.tidy(() => {
            const map = attributionMap(shown!);
            return renderAttribution(
              images.pixels.slice([0, 0, 0, 0], [k, -1, -1, -1]),
              shown!,
              map,
              { boxes, points },
            );
          });
          shown.dispose();
          const labels = images.names.slice(0, k).map((s, i) => `${hits[i] ? "hit" : "miss"} ${s}`);
          figures.push({ method, picture, tiles: attributionTiles(labels, Math.min(k, 16)) });
        }
      }
      rows.push(["random pixel", randomHits.filter(Boolean).length, n, randomRate, 1]);
      rows.push([
        "brightest pixel (no model)",
        Math.round(brightRate * n),
        n,
        brightRate,
        brightRate / Math.max(randomRate, 1e-9),
      ]);
      r.figure("random", randomRate).figure("brightest", brightRate).figure(
        "randomExpected",
        expected,
      ).figure("canvases", n)
        .figure("tolerance", p.tolerance);
      r.table(
        `Pointing game on ${data.source} (true class; hit: map maximum inside the digit's box` +
          `${p.tolerance ? ` grown by ${p.tolerance}px` : ""})`,
        ["method", "hits", "canvases", "hit rate", "x random"],
        rows,
      );
      r.tensor("hits", tf.tensor1d([...rates, randomRate]));
      for (const { method, picture, tiles } of figures) {
        try {
          await r.addImage(
            method,
            picture,
            `Pointing game, ${method}: per canvas the input, the signed attribution, the map ` +
              "and the map over the input with its maximum (cyan) and the digit's box (green)",
            { tiles, cols: 4, colorbar: attributionColorbar("max over channels of |attribution|") },
          );
        } finally {
          picture.dispose();
        }
      }
      return r;
    } finally {
      disposeEvaluationImages(data);
    }
  },
});
