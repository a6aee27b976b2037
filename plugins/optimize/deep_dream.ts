/**
 * `deep-dream` (optimize): DeepDream (Mordvintsev, Olah & Tyka, "Inceptionism:
 * Going Deeper into Neural Networks", 2015): feed the net an image, pick a
 * layer, and raise its activations (the mean of their squares) by gradient
 * ascent with normalized steps and random shifts, over octaves from coarse to
 * fine. A lower layer adds strokes and textures, a higher one parts and shapes;
 * the result shows both side by side.
 *
 * The net takes one input size, so an octave does not resize the image: it
 * optimizes detail at a lower resolution (1 / scale^k of the input), upsampled
 * bilinearly onto the image so far, the finest octave at full resolution.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { grid } from "../../core/images/grids.ts";
import { defaultSpatialLayer } from "../_layers.ts";
import { evaluate, layerEnergy } from "./objectives.ts";
import { ascent, render } from "./loop.ts";
import { clampRange } from "./priors.ts";
import { jitter } from "./transforms.ts";
import { lowres } from "./param.ts";
import type { Random } from "../../core/random.ts";
import { checkImage, displayPixels, layerList } from "./_common.ts";

/** The parameters of the `deep-dream` plugin: its schema, declared once. */
export const DEEP_DREAM_PARAMS = {
  layers: { type: "string", help: "comma-separated layers (default: first and last conv)" },
  image: { type: "integer", default: 0, min: 0, help: "index of the input image" },
  octaves: { type: "integer", default: 3, min: 1, max: 10, help: "number of octaves" },
  octaveScale: { type: "number", default: 1.4, min: 1, max: 4, help: "size ratio of octaves" },
  steps: { type: "integer", default: 20, min: 1, max: 10000, help: "steps per octave" },
  lr: { type: "number", default: 0.01, min: 0, help: "normalized step size" },
  jitter: { type: "integer", default: 2, min: 0, max: 64, help: "largest random shift" },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of each tile" },
} as const;

/** The `deep-dream` plugin's parameter values, typed from {@linkcode DEEP_DREAM_PARAMS} (defaults there). */
export type DeepDreamOptions = ParamValues<typeof DEEP_DREAM_PARAMS>;

/** Octave sizes from coarse to fine. */
function octaveSizes(h: number, w: number, count: number, ratio: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = count - 1; k >= 0; k--) {
    out.push([Math.max(1, Math.round(h / ratio ** k)), Math.max(1, Math.round(w / ratio ** k))]);
  }
  return out;
}

/**
 * DeepDream of a batch on one layer.
 *
 * @param net The model.
 * @param x Images in model input space.
 * @param layer The layer whose energy is raised.
 * @param options Octaves, steps, step size, jitter, the generator.
 * @returns The dreamed images (model input space).
 */
export async function dream(
  net: Net,
  x: tf.Tensor4D,
  layer: string,
  options: {
    octaves: number;
    octaveScale: number;
    steps: number;
    lr: number;
    jitter: number;
    rng: Random;
    progress?: (done: number, total: number) => void;
  },
): Promise<tf.Tensor4D> {
  const [, h, w] = x.shape;
  const sizes = octaveSizes(h, w, options.octaves, options.octaveScale);
  let current = x.clone();
  for (const [i, [oh, ow]] of sizes.entries()) {
    let param: ReturnType<typeof lowres>;
    try {
      param = lowres(oh, ow, h, w, current);
    } catch (err) {
      current.dispose();
      throw err;
    }
    try {
      const r = await render(net, {
        objective: layerEnergy(layer),
        init: current,
        steps: options.steps,
        param,
        optimizer: ascent(options.lr, "mean-abs"),
        transforms: options.jitter > 0 ? [jitter(options.jitter)] : [],
        priors: [clampRange(net.inputBounds())],
        rng: options.rng,
        progress: (d) => options.progress?.(i * options.steps + d, sizes.length * options.steps),
      });
      current.dispose();
      current = r.images;
    } catch (err) {
      current.dispose();
      throw err;
    } finally {
      param.dispose();
    }
  }
  return current;
}

/** The default layers of DeepDream: the first and the last conv layer (strokes, then parts). */
function dreamLayers(net: Net): string[] {
  const ends = [defaultSpatialLayer(net, "first"), defaultSpatialLayer(net, "last")];
  return [...new Set(ends.filter((l): l is string => l !== undefined))];
}

/** The `deep-dream` plugin. */
export const deepDream: Plugin<typeof DEEP_DREAM_PARAMS> = definePlugin({
  name: "deep-dream",
  family: "optimize",
  summary: "Raise a layer's activations in an input image, over octaves (DeepDream)",
  params: DEEP_DREAM_PARAMS,
  resultShape(net, p) {
    const layers = layerList(net, p.layers, dreamLayers(net), "deep-dream");
    const { height, width, channels } = net.input;
    return { dreams: [layers.length, height, width, channels] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net, images } = ctx;
    checkImage(p.image, images.x.shape[0], "deep-dream");
    const layers = layerList(net, p.layers, dreamLayers(net), "deep-dream");
    for (const l of layers) {
      if (l === "input") {
        throw new RangeError("deep-dream: dream on a layer of the net, not its input");
      }
    }
    const x = images.x.slice([p.image, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
    const dreams: tf.Tensor4D[] = [];
    const rows: (string | number)[][] = [];
    try {
      for (const [i, layer] of layers.entries()) {
        const before = (await evaluate(net, layerEnergy(layer), x))[0];
        const d = await dream(net, x, layer, {
          octaves: p.octaves,
          octaveScale: p.octaveScale,
          steps: p.steps,
          lr: p.lr,
          jitter: p.jitter,
          rng: ctx.rng,
          progress: (done, total) => ctx.progress(i * total + done, layers.length * total),
        });
        dreams.push(d);
        const after = (await evaluate(net, layerEnergy(layer), d))[0];
        // Read after the tidy, asynchronously (WebGPU cannot read GPU data synchronously).
        const changeT = tf.tidy(() => net.toPixels(d).sub(net.toPixels(x)).abs().mean());
        let change: number;
        try {
          change = (await changeT.data())[0];
        } finally {
          changeT.dispose();
        }
        rows.push([layer, before, after, after / Math.max(before, 1e-12), change]);
      }
    } catch (err) {
      tf.dispose([x, ...dreams]);
      throw err;
    }
    const shown = tf.tidy(() => displayPixels(net, tf.concat(dreams) as tf.Tensor4D));
    const picture = tf.tidy(() =>
      grid(tf.concat([displayPixels(net, x), shown]) as tf.Tensor4D, {
        scale: p.scale,
        cols: layers.length + 1,
      })
    );
    tf.dispose([x, ...dreams]);
    const r = new Result("deep-dream", `DeepDream of ${images.names[p.image]}`);
    r.tensor("dreams", shown);
    r.figure("layers", layers.join(",")).figure("octaves", p.octaves).figure("steps", p.steps);
    for (const row of rows) r.figure(`energyGain_${row[0]}`, row[3] as number);
    r.table(
      "Energy (mean of squares) of each layer before and after dreaming",
      ["layer", "energy before", "energy after", "ratio", "mean |pixel change|"],
      rows,
    );
    await r.addImage(
      "dreams",
      picture,
      `${images.names[p.image]} and its dreams on ${
        layers.join(" (lower), ")
      } (higher), side by side (DeepDream, ${p.octaves} octaves x ${p.steps} steps)`,
      { tiles: ["input", ...layers], cols: layers.length + 1 },
    );
    picture.dispose();
    return r;
  },
});
