/**
 * `invert` (optimize): feature inversion (Mahendran & Vedaldi, "Understanding
 * Deep Image Representations by Inverting Them", 2015): from a layer's encoding
 * phi0 = phi(x0) of an image, find images x minimizing
 * ||phi(x) - phi0||^2 / ||phi0||^2 + alpha-norm + total variation, from several
 * random starts at once (the paper's multiple reconstructions, as one batch),
 * for every layer with weights. Reported per layer: the normalized feature
 * error, the pixel error ||x - x0|| / ||x0|| and the pixel correlation with the
 * original, which show how much of the image each depth still encodes.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { grid } from "../../core/images/grids.ts";
import { alphaNorm, featureMatch, totalVariation, weighted } from "./objectives.ts";
import { adam, noiseImages, render } from "./loop.ts";
import { clampRange } from "./priors.ts";
import type { Random } from "../../core/random.ts";
import { checkImage, displayPixels, layerList } from "./_common.ts";

/** The parameters of the `invert` plugin: its schema, declared once. */
export const INVERT_PARAMS = {
  layers: { type: "string", help: "comma-separated layers (default: every layer with weights)" },
  image: { type: "integer", default: 0, min: 0, help: "index of the input image" },
  starts: { type: "integer", default: 3, min: 1, max: 64, help: "random starts per layer" },
  steps: { type: "integer", default: 200, min: 1, max: 100000, help: "steps of Adam" },
  lr: { type: "number", default: 0.05, min: 0, help: "Adam's step size" },
  alphaWeight: { type: "number", default: 0.01, min: 0, help: "alpha-norm weight per pixel" },
  alpha: { type: "number", default: 6, min: 1, max: 20, help: "alpha of the alpha-norm" },
  tvWeight: { type: "number", default: 0.01, min: 0, help: "total variation weight per pixel" },
  beta: { type: "number", default: 2, min: 1, max: 4, help: "beta of total variation" },
  scale: { type: "integer", default: 3, min: 1, max: 32, help: "upscaling of each tile" },
} as const;

/** The `invert` plugin's parameter values, typed from {@linkcode INVERT_PARAMS} (defaults there). */
export type InvertOptions = ParamValues<typeof INVERT_PARAMS>;

/** Figures of one layer's inversion (means over the random starts). */
export interface InversionFigures {
  /** The layer inverted. */
  layer: string;
  /** ||phi(x) - phi0||^2 / ||phi0||^2. */
  featureError: number;
  /** ||x - x0|| / ||x0|| in display pixels. */
  pixelError: number;
  /** Pearson correlation of x and x0 pixels. */
  correlation: number;
}

/** Options of {@linkcode invertLayer}. */
export interface InvertLayerOptions {
  /** Random starts (one batch). */
  starts: number;
  /** Steps of Adam. */
  steps: number;
  /** Adam's step size. */
  lr: number;
  /** Weight of the alpha-norm per pixel. */
  alphaWeight: number;
  /** alpha. */
  alpha: number;
  /** Weight of total variation per pixel. */
  tvWeight: number;
  /** beta. */
  beta: number;
  /** Draws the starts. */
  rng: Random;
  /** Progress of the steps. */
  progress?: (done: number, total: number) => void;
}

/**
 * Reconstructs an image from one layer's encoding of it.
 *
 * @param net The model.
 * @param x0 One image `[1, h, w, c]` in model input space.
 * @param layer The layer whose encoding is inverted.
 * @param options Starts, steps and the priors' weights.
 * @returns The reconstructions `[starts, h, w, c]` (model space) and their figures.
 */
export async function invertLayer(
  net: Net,
  x0: tf.Tensor4D,
  layer: string,
  options: InvertLayerOptions,
): Promise<{ images: tf.Tensor4D; figures: InversionFigures; perStart: InversionFigures[] }> {
  const target = tf.tidy(() => net.forward(x0, { taps: [layer], stopAtTaps: true }).taps[layer]);
  const pixels = x0.size;
  const init = noiseImages(net, options.starts, options.rng, 0.1);
  try {
    const objective = weighted([
      [1, featureMatch(layer, target)],
      [options.alphaWeight / pixels, alphaNorm(1, options.alpha)],
      [options.tvWeight / pixels, totalVariation(1, options.beta)],
    ]);
    const r = await render(net, {
      objective,
      init,
      steps: options.steps,
      optimizer: adam(options.lr),
      priors: [clampRange(net.inputBounds())],
      rng: options.rng,
      progress: options.progress,
    });
    // Read after the tidy, asynchronously (WebGPU cannot read GPU data synchronously).
    const read = tf.tidy(() => {
      const a = net.forward(r.images, { taps: [layer], stopAtTaps: true }).taps[layer];
      const t = target.reshape([1, -1]);
      const featureErr = a.reshape([options.starts, -1]).sub(t).square().sum(1)
        .div(t.square().sum().add(1e-12));
      const x = net.toPixels(r.images).reshape([options.starts, -1]);
      const o = net.toPixels(x0).reshape([1, -1]);
      const err = x.sub(o).norm(2, 1).div(o.norm().add(1e-12));
      const xc = x.sub(x.mean(1, true)), oc = o.sub(o.mean());
      const corr = xc.mul(oc).sum(1).div(xc.norm(2, 1).mul(oc.norm()).add(1e-12));
      return [featureErr, err, corr];
    });
    let featureErrors: number[], pixelErrors: number[], correlations: number[];
    try {
      [featureErrors, pixelErrors, correlations] = (await Promise.all(read.map((t) => t.data())))
        .map((v) => Array.from(v));
    } catch (err) {
      r.images.dispose();
      throw err;
    } finally {
      tf.dispose(read);
    }
    const perStart = featureErrors.map((f, i) => ({
      layer,
      featureError: f,
      pixelError: pixelErrors[i],
      correlation: correlations[i],
    }));
    const mean = (k: "featureError" | "pixelError" | "correlation") =>
      perStart.reduce((s, v) => s + v[k], 0) / perStart.length;
    return {
      images: r.images,
      figures: {
        layer,
        featureError: mean("featureError"),
        pixelError: mean("pixelError"),
        correlation: mean("correlation"),
      },
      perStart,
    };
  } finally {
    tf.dispose([target, init]);
  }
}

function paramLayers(net: Net): string[] {
  return net.layers.filter((l) => l.params > 0).map((l) => l.name);
}

/** The `invert` plugin. */
export const invert: Plugin<typeof INVERT_PARAMS> = definePlugin({
  name: "invert",
  family: "optimize",
  summary: "Reconstruct an image from each layer's encoding, several random starts (Mahendran)",
  params: INVERT_PARAMS,
  resultShape(net, p) {
    const layers = layerList(net, p.layers, paramLayers(net), "invert");
    const { height, width, channels } = net.input;
    return { reconstructions: [layers.length, p.starts, height, width, channels] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net, images } = ctx;
    checkImage(p.image, images.x.shape[0], "invert");
    const layers = layerList(net, p.layers, paramLayers(net), "invert");
    const x0 = images.x.slice([p.image, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
    const recs: tf.Tensor4D[] = [];
    const figures: InversionFigures[] = [];
    try {
      for (const [i, layer] of layers.entries()) {
        const out = await invertLayer(net, x0, layer, {
          starts: p.starts,
          steps: p.steps,
          lr: p.lr,
          alphaWeight: p.alphaWeight,
          alpha: p.alpha,
          tvWeight: p.tvWeight,
          beta: p.beta,
          rng: ctx.rng,
          progress: (d, t) => ctx.progress(i * t + d, layers.length * t),
        });
        recs.push(displayPixels(net, out.images));
        out.images.dispose();
        figures.push(out.figures);
      }
    } catch (err) {
      tf.dispose([x0, ...recs]);
      throw err;
    }
    const all = tf.stack(recs) as tf.Tensor5D;
    const picture = tf.tidy(() => {
      const orig = displayPixels(net, x0);
      const tiles = recs.flatMap((r) => [orig, r]);
      return grid(tf.concat(tiles) as tf.Tensor4D, {
        scale: p.scale,
        cols: p.starts + 1,
      });
    });
    tf.dispose([x0, ...recs]);
    const r = new Result(
      "invert",
      `Feature inversion of ${images.names[p.image]} (Mahendran & Vedaldi)`,
    );
    r.tensor("reconstructions", all);
    r.figure("layers", layers.length).figure("starts", p.starts).figure("steps", p.steps);
    for (const f of figures) {
      r.figure(`featureError_${f.layer}`, f.featureError);
      r.figure(`pixelError_${f.layer}`, f.pixelError);
      r.figure(`correlation_${f.layer}`, f.correlation);
    }
    r.table(
      `Per layer, mean over ${p.starts} random starts`,
      ["layer", "feature error", "pixel error", "pixel correlation"],
      figures.map((f) => [f.layer, f.featureError, f.pixelError, f.correlation]),
    );
    await r.addImage(
      "reconstructions",
      picture,
      `${
        images.names[p.image]
      } and its reconstructions from each layer: one row per layer, the original then ` +
        `${p.starts} reconstructions from random starts (r: mean pixel correlation)`,
      {
        tiles: layers.flatMap((l, i) => [
          `${l}: original`,
          ...Array.from(
            { length: p.starts },
            (_, s) => (s === 0 ? `r ${figures[i].correlation.toFixed(2)}` : ""),
          ),
        ]),
        cols: p.starts + 1,
      },
    );
    picture.dispose();
    return r;
  },
});
