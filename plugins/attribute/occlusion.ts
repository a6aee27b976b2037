/**
 * `occlusion` (attribute): occlusion experiments (Zeiler & Fergus, "Visualizing
 * and Understanding Convolutional Networks", 2013). A grey square slides over
 * the image; for every position of the square the net sees the occluded image,
 * and three maps record (a) the probability of the true (or a chosen) class,
 * (b) the total activation of the strongest feature map of a layer (strongest in
 * the unoccluded image) and (c) the most likely class. Where the probability
 * drops, the net was looking; where the class changes, the occluder hid what
 * decided it.
 *
 * All occluded images are built with tensor ops (the squares as outer products
 * of row and column masks, no loop over pixels) and run through the net in
 * batches, so the sweep costs about as much as a plain batched forward pass of
 * the same number of images.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { toRgb } from "../../core/images/display.ts";
import { colormap, overlay } from "../../core/images/colormaps.ts";
import { grid } from "../../core/images/grids.ts";
import { spatialLayer } from "../_layers.ts";
import { readOnce } from "./batches.ts";
import { batchSizeFor } from "../../core/memory_budget.ts";

/** The most occluded images one pass takes, whatever the memory budget allows. */
const MAX_BATCH = 64;

/** The parameters of the `occlusion` plugin: its schema, declared once. */
export const OCCLUSION_PARAMS = {
  image: { type: "integer", default: 0, min: 0, help: "index of the input image" },
  size: { type: "integer", default: 8, min: 1, help: "side of the square in pixels" },
  stride: { type: "integer", default: 2, min: 1, help: "step between positions in pixels" },
  fill: {
    type: "number",
    min: 0,
    max: 1,
    help: "grey value of the square in pixel space (default: the image's mean)",
  },
  class: {
    type: "integer",
    default: -1,
    min: -1,
    help: "class to map (-1: the true class if known, else the predicted one)",
  },
  layer: {
    type: "layer",
    help: "layer whose strongest feature map to follow (default: last conv)",
  },
  batchSize: {
    type: "integer",
    min: 1,
    max: 4096,
    help:
      `occluded images per forward pass (default: what fits the memory budget, at most ${MAX_BATCH})`,
  },
  alpha: { type: "number", default: 0.6, min: 0, max: 1, help: "weight of the heatmaps" },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of the figure" },
} as const;

/** The `occlusion` plugin's parameter values, typed from {@linkcode OCCLUSION_PARAMS} (defaults there). */
export type OcclusionOptions = ParamValues<typeof OCCLUSION_PARAMS>;

/** Positions of the square per axis: it always lies wholly inside the image. */
function positions(extent: number, size: number, stride: number): number {
  return Math.floor((extent - size) / stride) + 1;
}

function checkPatch(net: Net, size: number, stride: number): [number, number] {
  const { height, width } = net.input;
  if (size > height || size > width) {
    throw new RangeError(
      `occlusion: the ${size}x${size} patch is larger than the ${height}x${width} image; ` +
        `give --size at most ${Math.min(height, width)}`,
    );
  }
  return [positions(height, size, stride), positions(width, size, stride)];
}

/** The occlusion maps of one image, as tensors the caller owns. */
export interface OcclusionMaps {
  /** Probability of the class at each position of the square, `[gh, gw]`. */
  probability: tf.Tensor2D;
  /** Total activation of the feature map at each position, `[gh, gw]`. */
  activation: tf.Tensor2D;
  /** Most likely class at each position, `[gh, gw]` int32. */
  classes: tf.Tensor2D;
}

/**
 * Slides a square over one image and runs every occluded copy through the net,
 * in batches: the core of the `occlusion` plugin, for scripts that want the maps
 * without a figure.
 *
 * @param net The model.
 * @param pixels One image `[1, h, w, c]` in display pixels [0, 1].
 * @param options Square, class, layer and feature map to follow, batch size.
 * @returns The three maps, `[gh, gw]` with `gh = floor((h - size) / stride) + 1`.
 * @throws {RangeError} When the square is larger than the image.
 * @example Occlusion maps of a zero image
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { initBackend } from "../../backends/mod.ts";
 * import { Net } from "../../core/net.ts";
 * import { occlusionMaps } from "./occlusion.ts";
 * await initBackend("cpu", { quiet: true });
 * const net = Net.fromModel(tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: "c" }),
 *   tf.layers.flatten({}),
 *   tf.layers.dense({ units: 3, activation: "softmax" }),
 * ] }));
 * const image = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
 * const maps = occlusionMaps(net, image, {
 *   size: 4, stride: 2, fill: [0.5], classIndex: 0, layer: "c", channel: 0, batchSize: 16,
 * });
 * if (maps.probability.shape[0] !== 3) throw new Error("3x3 positions");
 * tf.dispose([image, maps.probability, maps.activation, maps.classes]);
 * ```
 */
export function occlusionMaps(
  net: Net,
  pixels: tf.Tensor4D,
  options: {
    size: number;
    stride: number;
    fill: number[];
    classIndex: number;
    layer: string;
    channel: number;
    batchSize: number;
  },
): OcclusionMaps {
  const { size, stride, classIndex, layer, channel, batchSize } = options;
  const [gh, gw] = checkPatch(net, size, stride);
  const [, h, w, c] = pixels.shape;
  const total = gh * gw;
  // inRows[i, y] = 1 where the square at grid row i covers image row y.
  const band = (cells: number, extent: number) =>
    tf.tidy(() => {
      const y = tf.range(0, extent, 1, "int32").reshape([1, extent]);
      const start = tf.range(0, cells * stride, stride, "int32").reshape([cells, 1]);
      return tf.logicalAnd(tf.greaterEqual(y, start), tf.less(y, start.add(size))).toFloat();
    });
  const inRows = band(gh, h);
  const inCols = band(gw, w);
  const fill = options.fill.length === 1 ? Array(c).fill(options.fill[0]) : options.fill;
  // In model input space: occluded = x + mask * (fill - x), two ops on the batch.
  const [x, toFill] = tf.tidy(() => {
    const x = net.fromPixels(pixels);
    return [x, net.fromPixels(tf.tensor4d(fill, [1, 1, 1, c])).sub(x)];
  });
  const parts: tf.Tensor[][] = [];
  try {
    for (let start = 0; start < total; start += batchSize) {
      const b = Math.min(batchSize, total - start);
      parts.push(tf.tidy(() => {
        const at = tf.range(start, start + b, 1, "int32");
        const cols = tf.scalar(gw, "int32");
        const my = tf.gather(inRows, tf.floorDiv(at, cols)).reshape([b, h, 1, 1]);
        const mx = tf.gather(inCols, tf.mod(at, cols)).reshape([b, 1, w, 1]);
        const mask = my.mul(mx); // [b, h, w, 1]
        const r = net.forward(x.add(mask.mul(toFill)), { taps: [layer], logits: true });
        const probs = net.probabilitiesOf(r.logits!);
        const act = r.taps[layer];
        const [, lh, lw] = act.shape;
        return [
          probs.slice([0, classIndex], [b, 1]).reshape([b]),
          act.slice([0, 0, 0, channel], [b, lh, lw, 1]).sum([1, 2, 3]),
          probs.argMax(1),
        ];
      }));
    }
    return tf.tidy(() => ({
      probability: tf.concat(parts.map((p) => p[0])).reshape([gh, gw]) as tf.Tensor2D,
      activation: tf.concat(parts.map((p) => p[1])).reshape([gh, gw]) as tf.Tensor2D,
      classes: tf.concat(parts.map((p) => p[2])).reshape([gh, gw]) as tf.Tensor2D,
    }));
  } finally {
    tf.dispose([inRows, inCols, x, toFill, ...parts.flat()]);
  }
}

/** For each image pixel, the grid cell whose square is centred nearest to it. */
function nearestCell(extent: number, cells: number, size: number, stride: number): number[] {
  return Array.from(
    { length: extent },
    (_, y) => Math.min(cells - 1, Math.max(0, Math.round((y - (size - 1) / 2) / stride))),
  );
}

/** The `occlusion` plugin. */
export const occlusion: Plugin<typeof OCCLUSION_PARAMS> = definePlugin({
  name: "occlusion",
  family: "attribute",
  summary:
    "Occlusion maps: class probability, feature-map activation and top class (Zeiler & Fergus)",
  params: OCCLUSION_PARAMS,
  resultShape(net, p) {
    const [gh, gw] = checkPatch(net, p.size, p.stride);
    return { probability: [gh, gw], activation: [gh, gw], classes: [gh, gw] };
  },
  demo: [{}, { size: 6, stride: 1, fill: 0.5 }],
  async run(ctx, p) {
    const { net, images } = ctx;
    const n = images.pixels.shape[0];
    if (p.image >= n) {
      throw new RangeError(
        `occlusion: image ${p.image} does not exist; there are ${n} input images`,
      );
    }
    const [gh, gw] = checkPatch(net, p.size, p.stride);
    const layer = spatialLayer(net, p.layer, "occlusion", "last");
    const { height: h, width: w } = net.input;
    const pixels = images.pixels.slice([p.image, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
    try {
      // The unoccluded image: the class, and the layer's strongest feature map.
      // Computed in a tidy, read after it (asynchronously: WebGPU cannot read synchronously).
      const parts = tf.tidy(() => {
        const r = net.forward(net.fromPixels(pixels), { taps: [layer], logits: true });
        const probs = net.probabilitiesOf(r.logits!).reshape([-1]);
        const act = r.taps[layer];
        const strongest = act.max([0, 1, 2]).argMax();
        return [probs, strongest, act.sum([0, 1, 2]).gather(strongest), pixels.mean([0, 1, 2])];
      });
      const [probs, channel, total, mean] = await Promise.all(
        parts.map((t) => readOnce(t).then((v) => Array.from(v))),
      );
      const base = { probs, channel: channel[0], total: total[0], mean };
      const predicted = base.probs.indexOf(Math.max(...base.probs));
      const label = images.labels[p.image] ?? -1;
      const classIndex = p.class >= 0 ? net.checkClass(p.class) : label >= 0 ? label : predicted;
      const classFrom = p.class >= 0 ? "chosen" : label >= 0 ? "true" : "predicted";
      const fill = p.fill !== undefined ? [p.fill] : base.mean;
      const maps = occlusionMaps(net, pixels, {
        size: p.size,
        stride: p.stride,
        fill,
        classIndex,
        layer,
        channel: base.channel,
        batchSize: p.batchSize ??
          batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB, pass: "forward" }),
      });
      ctx.progress(1, 1);
      const r = new Result(
        "occlusion",
        `Occlusion of ${images.names[p.image]} (${p.size}x${p.size} square, stride ${p.stride})`,
      );
      r.tensor("probability", maps.probability);
      r.tensor("activation", maps.activation);
      r.tensor("classes", maps.classes);
      try {
        const prob = await maps.probability.data();
        const cls = Array.from(await maps.classes.data());
        let lowest = 0;
        for (let i = 1; i < prob.length; i++) if (prob[i] < prob[lowest]) lowest = i;
        const changed = cls.reduce((a, v) => a + (v !== predicted ? 1 : 0), 0) / cls.length;
        const cy = Math.floor(lowest / gw) * p.stride, cx = (lowest % gw) * p.stride;
        r.figure("class", classIndex).figure("classLabel", net.labels[classIndex])
          .figure("classFrom", classFrom).figure("predicted", predicted)
          .figure("probability", base.probs[classIndex])
          .figure("lowestProbability", prob[lowest])
          .figure("lowestAt", `rows ${cy}-${cy + p.size - 1}, cols ${cx}-${cx + p.size - 1}`)
          .figure("changedClassFraction", changed)
          .figure("layer", layer).figure("strongestChannel", base.channel)
          .figure("activation", base.total)
          .figure("positions", gh * gw)
          .figure("fill", fill.length === 1 ? fill[0] : fill.map((v) => v.toFixed(3)).join(","));
        const picture = tf.tidy(() => {
          const rows = tf.tensor1d(nearestCell(h, gh, p.size, p.stride), "int32");
          const cols = tf.tensor1d(nearestCell(w, gw, p.size, p.stride), "int32");
          const spread = (m: tf.Tensor2D) => m.gather(rows, 0).gather(cols, 1) as tf.Tensor2D;
          const image = pixels.squeeze([0]) as tf.Tensor3D;
          const probHeat = colormap(spread(maps.probability), "inferno", { min: 0, max: 1 });
          const actHeat = colormap(spread(maps.activation), "viridis");
          const classHeat = colormap(spread(maps.classes.toFloat() as tf.Tensor2D), "viridis", {
            min: 0,
            max: Math.max(1, net.numClasses - 1),
          });
          return grid([
            toRgb(image),
            overlay(image, probHeat, p.alpha),
            overlay(image, actHeat, p.alpha),
            overlay(image, classHeat, p.alpha),
          ], { cols: 4, scale: p.scale });
        });
        await r.addImage(
          "occlusion",
          picture,
          `${images.names[p.image]}: (a) probability of class ${
            net.labels[classIndex]
          } (${classFrom}; inferno, 0 to 1), (b) total activation of ${layer} feature map ${base.channel} ` +
            `(viridis), (c) most likely class (viridis over classes), as the ${p.size}x${p.size} square ` +
            `(fill ${
              fill.length === 1 ? fill[0].toFixed(3) : "image mean"
            }) is centred on each pixel`,
          {
            tiles: [
              "image",
              `(a) p(${net.labels[classIndex]})`,
              `(b) map ${base.channel}`,
              "(c) top class",
            ],
            cols: 4,
            colorbar: {
              colormap: "inferno",
              min: 0,
              max: 1,
              label: `(a) p(${net.labels[classIndex]}) with the square centred there`,
            },
          },
        );
        picture.dispose();
        const seen = [...new Set(cls)].sort((a, b) => a - b);
        r.table(
          "Most likely class under occlusion",
          ["class", "label", "positions"],
          seen.map((k) => [k, net.labels[k], cls.reduce((a, v) => a + (v === k ? 1 : 0), 0)]),
        );
      } catch (err) {
        r.dispose();
        throw err;
      }
      return r;
    } finally {
      pixels.dispose();
    }
  },
});
