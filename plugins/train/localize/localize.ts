/**
 * `localize` (train): classification + localization on the built-in canvases,
 * whose digit boxes are known. The lecture's simple recipe: keep the trained
 * canvas classifier frozen, attach a regression head for the box `(x, y, w, h)`,
 * train the head only (L2 loss by default; smooth-L1 or GIoU), and at test time
 * read class and box from both heads in one pass. Scored with Intersection over
 * Union on held-out canvases: mean IoU and the share above 0.5.
 *
 * It answers the lecture's "where to attach the regression head?" with a sweep
 * over every conv, pool and dense stage, class-agnostic and per-class heads
 * each, trained on a smaller budget (`sweepTrain` canvases, `sweepEpochs`); the
 * stage and head with the best mean IoU on validation canvases (training
 * canvases no head trained on, so that the choice does not peek at the held-out
 * set) is trained again on `train` canvases for `epochs`, and that final head
 * gives the figures `meanIoU` and `iouAbove05`. The head's design (pooling to a
 * coarse grid, an optional 1x1 squeeze, flatten, dense layers) is explained in
 * `box_head.ts`.
 *
 * Beside the trained heads, boxes read off attribution maps with no box
 * training at all (Simonyan et al. 2014 localized objects from saliency): the
 * Grad-CAM, saliency or occlusion map of the predicted class, thresholded at a
 * fraction of its maximum, boxed around its largest connected region (or all
 * pixels above), scored with the same IoU on the same canvases.
 *
 * The model must be the built-in canvas model (`--model canvas`); on other
 * models the result only says so.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { type Context, definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { Net } from "../../../core/net.ts";
import type { ParamValues } from "../../../core/params.ts";
import { Result } from "../../../core/result.ts";
import { CANVAS_SIZE, type CanvasArrays, canvasArrays } from "../../../core/datasets.ts";
import { arraySource, type DataSource } from "../../../core/data/source.ts";
import { imagesFromPixels } from "../../../core/inputs.ts";
import { type Box, drawBox, grid, type Rgb } from "../../../core/images/grids.ts";
import { linePlot, type PlotSeries } from "../../../core/plots/plot.ts";
import { attributionMap } from "../../attribute/attribution.ts";
import { attributeChunk } from "../../attribute/eval/evaluation.ts";
import { occlusionMaps } from "../../attribute/occlusion.ts";
import { boxFeatures, type BoxHead, trainBoxHead } from "./box_head.ts";
import { BOX_LOSSES } from "./box_loss.ts";
import { boxFromMap, MAP_REGIONS } from "./box_from_map.ts";
import { boxesToCorners, cornersToBoxes, iouSummary, xywhToCorners } from "./iou.ts";

/** Where the validation canvases start in the training part (no head trains on them). */
const VALIDATION_OFFSET = 1_000_000;

/** The attribution methods scored by default. */
export const LOCALIZE_METHODS = "grad-cam,saliency,occlusion";

/** The parameters of the `localize` plugin: its schema, declared once. */
export const LOCALIZE_PARAMS = {
  layers: {
    type: "string",
    default: "",
    help: "attach layers, comma-separated (default: every conv, pool and dense stage)",
  },
  heads: {
    type: "enum",
    choices: ["both", "agnostic", "per-class"],
    default: "both",
    help: "class-agnostic (4 outputs), per-class (4 per class) or both",
  },
  loss: { type: "enum", choices: BOX_LOSSES, default: "l2", help: "box loss" },
  train: {
    type: "integer",
    default: 4000,
    min: 16,
    max: 100000,
    help: "training canvases of the final head",
  },
  sweepTrain: {
    type: "integer",
    default: 1500,
    min: 16,
    max: 100000,
    help: "training canvases of each sweep head",
  },
  validation: {
    type: "integer",
    default: 300,
    min: 1,
    max: 10000,
    help: "validation canvases (pick the attach layer)",
  },
  count: { type: "integer", default: 500, min: 1, max: 2000, help: "held-out canvases scored" },
  epochs: { type: "integer", default: 15, min: 1, max: 500, help: "epochs of the final head" },
  sweepEpochs: { type: "integer", default: 8, min: 1, max: 500, help: "epochs of each sweep head" },
  batchSize: { type: "integer", default: 64, min: 1, max: 4096, help: "canvases per step" },
  hidden: { type: "integer", default: 128, min: 0, max: 4096, help: "hidden units (0: linear)" },
  squeeze: {
    type: "integer",
    default: 16,
    min: 0,
    max: 1024,
    help: "channels of a 1x1 conv squeezing a grid before flattening (0: none)",
  },
  grid: { type: "integer", default: 8, min: 1, max: 64, help: "grids are pooled to this size" },
  learningRate: { type: "number", default: 0.002, min: 0, max: 1, help: "peak learning rate" },
  optimizer: { type: "enum", choices: ["adam", "sgd"], default: "adam", help: "update rule" },
  methods: {
    type: "string",
    default: LOCALIZE_METHODS,
    help: "attribution maps to box (grad-cam, saliency, occlusion, or any attribution plugin)",
  },
  fraction: { type: "number", default: 0.5, min: 0.01, max: 1, help: "map threshold / max" },
  region: { type: "enum", choices: MAP_REGIONS, default: "largest", help: "region boxed" },
  mapCount: {
    type: "integer",
    default: 100,
    min: 1,
    max: 2000,
    help: "held-out canvases scored by the map boxes (occlusion runs one pass per square)",
  },
  occlusionStride: { type: "integer", default: 6, min: 1, max: 32, help: "occlusion step" },
  show: { type: "integer", default: 8, min: 0, max: 32, help: "canvases drawn" },
} as const;

/** The `localize` plugin's parameter values (defaults in {@linkcode LOCALIZE_PARAMS}). */
export type LocalizeOptions = ParamValues<typeof LOCALIZE_PARAMS>;

/** The stages a sweep attaches to: conv, pool and dense layers (global pooling included). */
export function attachStages(net: Net): string[] {
  return net.layers.filter((l) => ["conv", "depthwise", "pool", "global", "dense"].includes(l.role))
    .map((l) => l.name);
}

/** A canvas window as a source plus its boxes. */
function canvasData(a: CanvasArrays, net: Net, name: string, indices?: number[]): DataSource {
  return arraySource({
    name,
    pixels: a.pixels,
    labels: a.labels,
    shape: [a.size, a.size, 1],
    classes: net.labels,
    indices,
  });
}

/** One row of the sweep. */
interface SweepRow {
  layer: string;
  head: "agnostic" | "per-class";
  params: number;
  valIoU: number;
  meanIoU: number;
  iouAbove05: number;
  seconds: number;
}

/**
 * Occlusion maps of the given class for canvases, as image-sized maps of the
 * probability drop `relu(p0 - p)` (each pixel takes the square centred nearest it).
 */
async function occlusionDrop(
  net: Net,
  pixels: tf.Tensor4D,
  classes: readonly number[],
  stride: number,
  layer: string,
): Promise<tf.Tensor3D> {
  const [n, h, w] = pixels.shape;
  const size = 8;
  const p0 = tf.tidy(() => net.probabilities(net.fromPixels(pixels)));
  const base = await p0.array();
  p0.dispose();
  const drops: tf.Tensor2D[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const one = pixels.slice([i, 0, 0, 0], [1, -1, -1, -1]);
      const fill = tf.tidy(() => one.mean());
      const maps = occlusionMaps(net, one, {
        size,
        stride,
        fill: [(await fill.data())[0]],
        classIndex: classes[i],
        layer,
        channel: 0,
        batchSize: 64,
      });
      drops.push(tf.tidy(() => tf.relu(tf.sub(base[i][classes[i]], maps.probability))));
      tf.dispose([one, fill, maps.probability, maps.activation, maps.classes]);
    }
    const [gh, gw] = drops[0].shape;
    const cell = (extent: number, cells: number) =>
      Int32Array.from(
        { length: extent },
        (_, y) => Math.min(cells - 1, Math.max(0, Math.round((y - (size - 1) / 2) / stride))),
      );
    return tf.tidy(() =>
      tf.gather(tf.gather(tf.stack(drops), cell(h, gh), 1), cell(w, gw), 2)
    ) as tf.Tensor3D;
  } finally {
    tf.dispose(drops);
  }
}

/** One method's maps `[n, h, w]` of the given classes for the canvases. */
async function methodMaps(
  ctx: Context,
  method: string,
  pixels: tf.Tensor4D,
  classes: number[],
  p: LocalizeOptions,
): Promise<tf.Tensor3D> {
  const { net } = ctx;
  if (method === "occlusion") {
    const layer = net.convLayers().at(-1)?.name ?? net.spatialLayers().at(-1)!.name;
    return await occlusionDrop(net, pixels, classes, p.occlusionStride, layer);
  }
  const images = imagesFromPixels(net, pixels.clone(), classes);
  const parts: tf.Tensor3D[] = [];
  try {
    for (let start = 0; start < classes.length; start += 50) {
      const count = Math.min(50, classes.length - start);
      const a = await attributeChunk(ctx, images, classes, start, count, method);
      parts.push(attributionMap(a));
      a.dispose();
    }
    return tf.concat(parts) as tf.Tensor3D;
  } finally {
    tf.dispose([images.pixels, images.x, ...parts]);
  }
}

/** The colours of the drawn boxes: truth, the head, then each method. */
const COLORS: Rgb[] = [[0, 0.8, 0], [1, 0, 0], [0.2, 0.4, 1], [1, 0.8, 0], [1, 0, 1], [0, 1, 1]];
const COLOR_NAMES = ["green", "red", "blue", "yellow", "magenta", "cyan"];

/** The `localize` plugin. */
export const localize: Plugin<typeof LOCALIZE_PARAMS> = definePlugin({
  name: "localize",
  family: "train",
  summary: "Classification + localization: a box regression head at each layer, IoU on canvases",
  params: LOCALIZE_PARAMS,
  needsImages: false,
  // The sweep takes minutes; the demo report trains one head at conv4 on fewer canvases.
  demo: [{
    layers: "conv4",
    heads: "agnostic",
    train: 1000,
    sweepTrain: 300,
    epochs: 8,
    sweepEpochs: 1,
    count: 200,
    mapCount: 20,
  }],
  resultShape(net, p): Record<string, number[]> {
    return net.sidecar.name === "canvas" ? { ious: [p.count] } : {};
  },
  async run(ctx, p) {
    const { net } = ctx;
    const r = new Result("localize", "Classification + localization: a box regression head");
    const { height, width, channels } = net.input;
    if (net.sidecar.name !== "canvas") {
      const why = `localize trains and scores box heads on the built-in ${CANVAS_SIZE}x` +
        `${CANVAS_SIZE} canvases, whose digit boxes are known, with the built-in canvas model; ` +
        `this model (${height}x${width}x${channels}) has no such images. Run it with --model canvas.`;
      ctx.warn(why);
      return r.figure("skipped", true).note(why);
    }
    const t0 = performance.now();
    const layers = p.layers.trim() === ""
      ? attachStages(net)
      : p.layers.split(",").map((s) => s.trim()).filter((s) => s !== "");
    for (const l of layers) net.layer(l); // unknown layers fail before any work
    const methods = p.methods.split(",").map((s) => s.trim()).filter((s) => s !== "");
    const kinds = p.heads === "both" ? [false, true] : [p.heads === "per-class"];
    const [train, val, test] = await Promise.all([
      canvasArrays({ part: "train", count: Math.max(p.train, p.sweepTrain) }),
      canvasArrays({ part: "train", count: p.validation, offset: VALIDATION_OFFSET }),
      canvasArrays({ part: "heldOut", count: p.count }),
    ]);
    const first = (n: number) => Array.from({ length: n }, (_, i) => i);
    // The sweep heads train on the first sweepTrain canvases, the final head on train.
    const sources = [
      canvasData(train, net, `${p.sweepTrain} training canvases`, first(p.sweepTrain)),
      canvasData(val, net, `${p.validation} validation canvases`),
      canvasData(test, net, `${p.count} held-out canvases`),
    ];
    const headOptions = {
      loss: p.loss,
      hidden: p.hidden,
      squeeze: p.squeeze,
      batchSize: p.batchSize,
      learningRate: p.learningRate,
      optimizer: p.optimizer,
      seed: ctx.seed,
    };
    const pixels = tf.tensor4d(test.pixels, [p.count, test.size, test.size, 1]);
    const trueCorners = boxesToCorners(test.boxes);
    const valCorners = boxesToCorners(val.boxes);
    const kept: tf.Tensor[] = [pixels, trueCorners, valCorners];
    let best: BoxHead | undefined;
    let bestRow: SweepRow | undefined;
    try {
      // The Net's own classes, which per-class heads read their box by.
      const predictedOf = async (x: tf.Tensor4D) => {
        const c = tf.tidy(() => net.predictInBatches(net.fromPixels(x) as tf.Tensor4D).argMax(1));
        const v = Array.from(await c.data());
        c.dispose();
        return v;
      };
      const valX = tf.tensor4d(val.pixels, [p.validation, val.size, val.size, 1]);
      const valClasses = await predictedOf(valX);
      valX.dispose();
      const testClasses = await predictedOf(pixels);
      const rows: SweepRow[] = [];
      let done = 0;
      for (const layer of layers) {
        const feats = await Promise.all(
          sources.map((s) => boxFeatures(net, s, [layer], { grid: p.grid }).then((f) => f[0])),
        );
        try {
          for (const perClass of kinds) {
            const t = performance.now();
            const head = await trainBoxHead(net, feats[0], train.boxes.slice(0, p.sweepTrain), {
              ...headOptions,
              perClass,
              epochs: p.sweepEpochs,
            });
            const seconds = (performance.now() - t) / 1000;
            const score = async (f: tf.Tensor4D, classes: number[], truth: tf.Tensor2D) => {
              const c = tf.tidy(() =>
                xywhToCorners(head.boxesOf(f, classes)).mul([height, width, height, width])
              );
              const s = await iouSummary(c as tf.Tensor2D, truth);
              c.dispose();
              return s;
            };
            const v = await score(feats[1].features, valClasses, valCorners);
            const s = await score(feats[2].features, testClasses, trueCorners);
            const row: SweepRow = {
              layer: head.layer,
              head: perClass ? "per-class" : "agnostic",
              params: head.params,
              valIoU: v.meanIoU,
              meanIoU: s.meanIoU,
              iouAbove05: s.iouAbove05,
              seconds,
            };
            rows.push(row);
            head.dispose();
            if (!bestRow || row.valIoU > bestRow.valIoU) bestRow = row;
            ctx.progress(++done, layers.length * kinds.length + 1);
          }
        } finally {
          for (const f of feats) f.features.dispose();
        }
      }
      // The chosen attach layer and head, trained again on all training canvases.
      const t1 = performance.now();
      const all = canvasData(train, net, `${p.train} training canvases`, first(p.train));
      const [feats] = await boxFeatures(net, all, [bestRow!.layer], { grid: p.grid });
      try {
        best = await trainBoxHead(net, feats, train.boxes.slice(0, p.train), {
          ...headOptions,
          perClass: bestRow!.head === "per-class",
          epochs: p.epochs,
        });
      } finally {
        feats.features.dispose();
      }
      const finalSeconds = (performance.now() - t1) / 1000;
      ctx.progress(++done, layers.length * kinds.length + 1);
      // The final head, as it runs at test time: one pass gives class and box.
      const pred = await best.predict(pixels);
      const headCorners = tf.tidy(() =>
        xywhToCorners(pred.boxes).mul([height, width, height, width])
      ) as tf.Tensor2D;
      kept.push(pred.probs, pred.boxes, headCorners);
      const final = await iouSummary(headCorners, trueCorners);
      const right = pred.classes.map((c, i) => c === test.labels[i]);
      const accuracy = right.filter(Boolean).length / p.count;
      const both = final.ious.filter((v, i) => v > 0.5 && right[i]).length / p.count;
      r.figure("meanIoU", final.meanIoU).figure("iouAbove05", final.iouAbove05)
        .figure("bestLayer", bestRow!.layer).figure("bestHead", bestRow!.head)
        .figure("loss", p.loss).figure("classAccuracy", accuracy)
        .figure("classAndBox", both).figure("canvases", p.count);
      r.tensor("ious", tf.tensor1d(final.ious));

      // Boxes from the attribution maps, on the first mapCount canvases.
      const m = Math.min(p.mapCount, p.count);
      const sub = pixels.slice([0, 0, 0, 0], [m, -1, -1, -1]);
      kept.push(sub);
      const subTruth = trueCorners.slice([0, 0], [m, 4]);
      const subHead = headCorners.slice([0, 0], [m, 4]);
      kept.push(subTruth, subHead);
      const headOnSub = await iouSummary(subHead, subTruth);
      const mapRows: (string | number)[][] = [];
      const drawn: Box[][] = [test.boxes.slice(0, m), await cornersToBoxes(subHead)];
      const mapScores: { method: string; meanIoU: number }[] = [];
      for (const method of methods) {
        const map = await methodMaps(ctx, method, sub, testClasses.slice(0, m), p);
        kept.push(map);
        // Both regions are cheap once the map is there; the figures take p.region's.
        for (const region of [p.region, ...MAP_REGIONS.filter((g) => g !== p.region)]) {
          const boxes = await boxFromMap(map, { fraction: p.fraction, region });
          kept.push(boxes);
          const s = await iouSummary(boxes, subTruth);
          const what = region === "largest" ? "largest region" : "all pixels";
          mapRows.push([
            `${method} map`,
            `box of the ${what} >= ${p.fraction} max`,
            0,
            "",
            s.meanIoU,
            s.iouAbove05,
            "",
          ]);
          if (region !== p.region) continue;
          mapScores.push({ method, meanIoU: s.meanIoU });
          r.figure(`meanIoU ${method}`, s.meanIoU).figure(`iouAbove05 ${method}`, s.iouAbove05);
          drawn.push(await cornersToBoxes(boxes));
        }
      }
      const fmt = (v: number) => Number(v.toFixed(4));
      r.table(
        `Where to attach the regression head? Box heads (${p.loss} loss, base frozen) at each ` +
          `stage, ${p.sweepEpochs} epochs on ${p.sweepTrain} training canvases, IoU on ${p.count} ` +
          `held-out canvases; the best on ${p.validation} validation canvases, ` +
          `${bestRow!.layer} ${bestRow!.head}, trained again for ${p.epochs} epochs on ` +
          `${p.train} canvases (final row). Map rows: boxes from attribution maps of the ` +
          `predicted class on the first ${m} held-out canvases (the chosen head there: mean IoU ` +
          `${headOnSub.meanIoU.toFixed(3)})`,
        ["attach", "head", "params", "val mean IoU", "mean IoU", "IoU > 0.5", "train s"],
        [
          ...rows.map((w) => [
            w.layer,
            w.head,
            w.params,
            fmt(w.valIoU),
            fmt(w.meanIoU),
            fmt(w.iouAbove05),
            Number(w.seconds.toFixed(1)),
          ]),
          [
            bestRow!.layer,
            `${bestRow!.head} (final)`,
            best.params,
            "",
            fmt(final.meanIoU),
            fmt(final.iouAbove05),
            Number(finalSeconds.toFixed(1)),
          ],
          ...mapRows.map((row) => row.map((v) => typeof v === "number" ? fmt(v) : v)),
        ],
      );
      r.figure("meanIoU head on map canvases", headOnSub.meanIoU);
      const series: PlotSeries[] = kinds.map((perClass) => {
        const name = perClass ? "per-class" : "agnostic";
        const mine = rows.filter((w) => w.head === name);
        return { name: `${name} head`, x: mine.map((w) => w.layer), y: mine.map((w) => w.meanIoU) };
      });
      for (const { method, meanIoU } of mapScores) {
        series.push({
          name: `${method} map box`,
          x: layers.map((l) => net.canonicalLayer(l)),
          y: layers.map(() => meanIoU),
          dashed: true,
        });
      }
      r.addPlot(
        "attach_sweep",
        linePlot(series, {
          xLabel: "attach layer",
          yLabel: "mean IoU (held-out canvases)",
          title: "Where to attach the regression head?",
        }),
        "Mean IoU of box heads attached at each stage (map boxes: dashed, no training)",
      );

      // A few canvases with the true box and each prediction drawn.
      const show = Math.min(p.show, m);
      if (show > 0) {
        const tiles = tf.tidy(() =>
          tf.stack(Array.from({ length: show }, (_, i) => {
            let im = tf.image.resizeNearestNeighbor(
              sub.slice([i, 0, 0, 0], [1, -1, -1, -1]),
              [height * 2, width * 2],
            ).squeeze([0]) as tf.Tensor3D;
            drawn.forEach((boxes, k) => {
              const b = boxes[i];
              const scaled = { y0: b.y0 * 2, x0: b.x0 * 2, y1: b.y1 * 2, x1: b.x1 * 2 };
              im = drawBox(im, scaled, COLORS[k % COLORS.length], 1);
            });
            return im;
          }))
        ) as tf.Tensor4D;
        const picture = grid(tiles, { cols: Math.min(4, show) });
        tiles.dispose();
        const legend = ["true box", `head (${bestRow!.layer}, ${bestRow!.head})`, ...methods]
          .map((n, k) => `${COLOR_NAMES[k % COLOR_NAMES.length]}: ${n}`).join("; ");
        const labels = Array.from(
          { length: show },
          (_, i) =>
            `canvas ${i} (${test.labels[i]}, predicted ${pred.classes[i]}): IoU ${
              final.ious[i].toFixed(2)
            }`,
        );
        try {
          await r.addImage("boxes", picture, `Held-out canvases with boxes, ${legend}`, {
            tiles: labels,
            cols: Math.min(4, show),
          });
        } finally {
          picture.dispose();
        }
      }
      r.figure("seconds", (performance.now() - t0) / 1000);
      return r;
    } finally {
      best?.dispose();
      tf.dispose(kept);
    }
  },
});
