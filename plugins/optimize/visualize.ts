/**
 * `visualize` (optimize): regularized visualization of a class or of any
 * neuron or channel of any layer (Yosinski, Clune, Nguyen, Fuchs & Lipson,
 * "Understanding Neural Networks Through Deep Visualization", 2015): gradient
 * ascent from noise with jitter, L2 decay, Gaussian blur every k steps and
 * clipping of pixels with small norm or small contribution. Many units of one
 * layer run as one batch and show as a grid. Beyond the lecture, the image can
 * be parameterized in Fourier space with decorrelated colour (Olah et al.,
 * "Feature Visualization", 2017).
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
import type { Objective } from "../../core/objective.ts";
import { channel, classScore, neuron } from "./objectives.ts";
import { noiseImages, render } from "./loop.ts";
import { blur, clampRange, clipContribution, clipNorm, decay, type StepPrior } from "./priors.ts";
import { jitter } from "./transforms.ts";
import { fourier, type Parameterization, pixels } from "./param.ts";
import { displayPixels, optimizerByName, OPTIMIZERS } from "./_common.ts";

/** The parameters of the `visualize` plugin: its schema, declared once. */
export const VISUALIZE_PARAMS = {
  target: {
    type: "enum",
    choices: ["class", "channel", "neuron"] as const,
    default: "channel",
    help: "a class score, a channel's mean or one (centre) neuron",
  },
  layer: { type: "layer", help: "layer of the channel or neuron (default: last conv layer)" },
  units: {
    type: "numbers",
    default: [] as number[],
    help: "classes, channels or neurons (default: first 16)",
  },
  steps: { type: "integer", default: 150, min: 1, max: 100000, help: "steps" },
  lr: { type: "number", default: 0.02, min: 0, help: "step size" },
  optimizer: {
    type: "enum",
    choices: OPTIMIZERS,
    default: "ascent",
    help: "ascent (normalized steps), momentum or adam",
  },
  jitter: { type: "integer", default: 1, min: 0, max: 64, help: "largest jitter shift (pixels)" },
  decay: { type: "number", default: 0.01, min: 0, max: 0.99, help: "L2 decay per step" },
  blurEvery: {
    type: "integer",
    default: 4,
    min: 0,
    max: 1000,
    help: "blur every k steps (0: never)",
  },
  blurSigma: { type: "number", default: 0.5, min: 0, max: 10, help: "blur sigma (pixels)" },
  clipNorm: { type: "number", default: 0, min: 0, max: 100, help: "percentile clipped by norm" },
  clipContribution: {
    type: "number",
    default: 0,
    min: 0,
    max: 100,
    help: "percentile clipped by contribution",
  },
  param: {
    type: "enum",
    choices: ["pixels", "fourier"] as const,
    default: "pixels",
    help: "pixels, or a Fourier-space image (decorrelated colour)",
  },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of each tile" },
} as const;

/** The `visualize` plugin's parameter values, typed from {@linkcode VISUALIZE_PARAMS} (defaults there). */
export type VisualizeOptions = ParamValues<typeof VISUALIZE_PARAMS>;

interface Plan {
  layer: string;
  units: number[];
  objective: Objective;
  labels: string[];
}

function plan(net: Net, target: string, layerName: string | undefined, given: number[]): Plan {
  if (target === "class") {
    const units = given.length ? given : Array.from({ length: net.numClasses }, (_, i) => i);
    for (const u of units) net.checkClass(u);
    return {
      layer: "logits",
      units,
      objective: classScore(units),
      labels: units.map((u) => net.labels[u]),
    };
  }
  const layer = layerName ?? defaultSpatialLayer(net, "last") ??
    net.layers[net.layers.length - 1].name;
  const shape = net.layer(layer).outputShape;
  const k = shape[shape.length - 1];
  const units = given.length ? given : Array.from({ length: Math.min(16, k) }, (_, i) => i);
  for (const u of units) {
    if (!Number.isInteger(u) || u < 0 || u >= k) {
      throw new RangeError(
        `visualize: unit ${u} is outside layer "${layer}", which has ${k} ${
          shape.length === 3 ? "channels" : "units"
        } (0 to ${k - 1})`,
      );
    }
  }
  if (target === "channel") {
    return { layer, units, objective: channel(layer, units), labels: units.map(String) };
  }
  // One neuron per unit: the centre position of each channel (the unit itself in a
  // dense layer). Per-image neurons: a custom sum over the batch of one-neuron terms.
  const at = (u: number) =>
    shape.length === 3 ? [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), u] : [u];
  const objective: Objective = {
    name: `neuron(${layer}:${units.map((u) => at(u).join("/")).join(",")})`,
    taps: [layer],
    logits: false,
    check: (n) => units.forEach((u) => neuron(layer, at(u)).check?.(n)),
    perImage: (input) => {
      const values = units.map((u, i) => neuron(layer, at(u)).perImage(input).slice([i], [1]));
      return tf.concat(values) as tf.Tensor1D;
    },
  };
  return { layer, units, objective, labels: units.map((u) => at(u).join(",")) };
}

/** The `visualize` plugin. */
export const visualize: Plugin<typeof VISUALIZE_PARAMS> = definePlugin({
  name: "visualize",
  family: "optimize",
  summary: "Regularized image maximizing a class, channel or neuron, from noise (Yosinski)",
  params: VISUALIZE_PARAMS,
  resultShape(net, p) {
    const { height, width, channels } = net.input;
    const { units } = plan(net, p.target, p.layer, p.units);
    return { images: [units.length, height, width, channels] };
  },
  demo: [{ target: "class" }, { target: "channel" }, { target: "channel", param: "fourier" }],
  async run(ctx, p) {
    const { net } = ctx;
    const { layer, units, objective, labels } = plan(net, p.target, p.layer, p.units);
    const { height, width, channels } = net.input;
    const bounds = net.inputBounds();
    const priors: StepPrior[] = [];
    if (p.decay > 0) priors.push(decay(p.decay));
    if (p.blurEvery > 0 && p.blurSigma > 0) priors.push(blur(p.blurSigma, p.blurEvery));
    if (p.clipNorm > 0) priors.push(clipNorm(p.clipNorm));
    if (p.clipContribution > 0) priors.push(clipContribution(p.clipContribution));
    priors.push(clampRange(bounds));
    const param: Parameterization & { dispose?: () => void } = p.param === "fourier"
      ? fourier(height, width, channels, bounds)
      : pixels();
    const init = noiseImages(net, units.length, ctx.rng, 0.05);
    let out;
    try {
      out = await render(net, {
        objective,
        init,
        steps: p.steps,
        param,
        optimizer: optimizerByName(p.optimizer, p.lr),
        transforms: p.jitter > 0 ? [jitter(p.jitter)] : [],
        priors: p.param === "fourier" ? priors.filter((q) => q.name !== "clampRange") : priors,
        rng: ctx.rng,
        progress: (d, t) => ctx.progress(d, t),
      });
    } finally {
      init.dispose();
      param.dispose?.();
    }
    const shown = displayPixels(net, out.images);
    out.images.dispose();
    const what = p.target === "class" ? "class" : `${p.target} of ${layer}`;
    const picture = tf.tidy(() =>
      grid(shown, { scale: p.scale, cols: Math.ceil(Math.sqrt(units.length)) })
    );
    const r = new Result("visualize", `Regularized ${what} visualization (Yosinski et al. 2015)`);
    r.tensor("images", shown);
    r.figure("target", p.target).figure("layer", layer).figure("units", units.length);
    r.figure("param", param.name).figure("steps", p.steps);
    r.figure("meanObjective", out.values.reduce((a, b) => a + b, 0) / out.values.length);
    r.table(
      `${objective.name.slice(0, 60)} at the final images`,
      ["unit", "objective"],
      units.map((_, i) => [labels[i], out.values[i]]),
    );
    await r.addImage(
      `${p.target}-${layer}`,
      picture,
      `${what} from noise: jitter ${p.jitter}, decay ${p.decay}, blur ${p.blurSigma} every ${p.blurEvery}, ` +
        `clip ${p.clipNorm}% by norm, ${p.clipContribution}% by contribution, ${param.name}; ` +
        "labelled by unit",
      { tiles: labels, cols: Math.ceil(Math.sqrt(units.length)) },
    );
    picture.dispose();
    return r;
  },
});
