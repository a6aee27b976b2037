/**
 * `saliency` (attribute): the image-specific class saliency map of Simonyan,
 * Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
 * Classification Models and Saliency Maps" (ICLR workshop 2014): the gradient of
 * the unnormalized class score `s_y` with respect to the input (the lecture's
 * "data gradient"), one backward pass, shown as `G_ij = max_k |d s_y / d X_ijk|`.
 * The probability or log-probability can be explained instead.
 *
 * @module
 */
import type { tf } from "../../core/tf.ts";
import { gradient } from "../../core/gradients.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { type Attribution, ATTRIBUTION_PARAMS } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import { describeUnits, projectBack, UNIT_PARAMS } from "./unit_projection.ts";
import {
  checkTarget,
  classObjective,
  resolveClasses,
  type ScoreKind,
  TARGET_PARAM,
} from "./targets.ts";

/** Options of {@linkcode saliencyAttribution}. */
export interface SaliencyOptions {
  /** Which score to differentiate. @default "logit" */
  target?: ScoreKind;
}

/**
 * The data gradient `d score_y / d x` of each image, signed, shaped like `x`.
 *
 * @example Saliency of class 3 for a batch
 * ```ts ignore
 * const g = await saliencyAttribution.attribute(net, x, [3, 3]);
 * g.dispose();
 * ```
 */
export const saliencyAttribution: Attribution<SaliencyOptions> = {
  name: "saliency",
  attribute(net, x, target, options = {}) {
    checkTarget(net, x, target, "saliency");
    const objective = classObjective(target, options.target ?? "logit");
    const { grad, value } = gradient(net, x, objective, { rule: "plain" });
    value.dispose();
    return Promise.resolve(grad as tf.Tensor4D);
  },
};

/** The parameters of the `saliency` plugin: its schema, declared once. */
export const SALIENCY_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  ...UNIT_PARAMS,
  layer: {
    type: "layer",
    help: "differentiate a unit of this layer instead of a class score (--mode, --channel)",
  },
  target: TARGET_PARAM,
} as const;

/** The schema type of the `saliency` plugin's parameters. */
export type SaliencyParams = typeof SALIENCY_PARAMS;

/** The `saliency` plugin. */
export const saliency: Plugin<typeof SALIENCY_PARAMS> = definePlugin({
  name: "saliency",
  family: "attribute",
  summary:
    "Class saliency map max_k |d s_y / d X_ijk| (Simonyan et al. 2014), or of a unit of any layer",
  params: SALIENCY_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w] };
  },
  demo: [{}, { target: "prob" }],
  async run(ctx, p) {
    const { net, images } = ctx;
    const classes = await resolveClasses(net, images.x, p.class, "saliency");
    if (p.layer !== undefined) {
      // The data gradient of one unit of any layer (a feature extractor's channel,
      // a hidden neuron): the plain-rule projection of that unit.
      const unit = { layer: p.layer, mode: p.mode, channel: p.channel, row: p.row, col: p.col };
      const { attribution, choices } = await projectBack(
        net,
        images.x,
        classes,
        "plain",
        { unit },
        "saliency",
      );
      const units = describeUnits(choices!);
      const r = await attributionResult(images, {
        net: ctx.net,
        plugin: "saliency",
        title: `Saliency of a unit of ${unit.layer} (${p.mode}), its activation back to pixels`,
        attribution,
        render: p.render,
        mapLabel: "|plain-rule projection of the unit| (max over channels)",
        columns: { unit: units, activation: choices!.map((c) => c.value) },
      });
      return r.figure("layer", unit.layer).figure("units", units.join("; "));
    }
    const attribution = await saliencyAttribution.attribute(net, images.x, classes, {
      target: p.target,
    });
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "saliency",
      title: `Saliency (d ${p.target}_y / d x, max over channels)`,
      attribution,
      classes,
      render: p.render,
      mapLabel: `|d ${p.target}_y / dx| (max over channels)`,
    });
    if (net.head === "features") {
      r.note(
        "This model has no class output: class c is the mean of its output's channel c " +
          "(give --layer and --channel to differentiate a unit of any layer)",
      );
    }
    return r;
  },
});
