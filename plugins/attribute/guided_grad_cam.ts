/**
 * `guided-grad-cam` (attribute): Guided Grad-CAM of Selvaraju et al., "Grad-CAM:
 * Visual Explanations from Deep Networks via Gradient-based Localization" (ICCV
 * 2017): the elementwise product of guided backpropagation (fine detail, not
 * class-discriminative) and the Grad-CAM map upsampled to the input (coarse,
 * class-discriminative). The plugin composes the two plugins through `ctx.run`.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { type Attribution, ATTRIBUTION_PARAMS, takeAttribution } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import { resolveClasses, type ScoreKind, TARGET_PARAM } from "./targets.ts";
import { gradCam, gradCamAttribution, gradCamLayer } from "./grad_cam.ts";
import { guidedBackprop, guidedBackpropAttribution } from "./guided_backprop.ts";

/** Options of {@linkcode guidedGradCamAttribution}. */
export interface GuidedGradCamOptions {
  /** Grad-CAM layer. @default the last layer with a spatial grid */
  layer?: string;
  /** Which class score. @default "logit" */
  target?: ScoreKind;
}

/** Guided backprop times the upsampled Grad-CAM map, for each image. */
export const guidedGradCamAttribution: Attribution<GuidedGradCamOptions> = {
  name: "guided-grad-cam",
  async attribute(net, x, target, options = {}) {
    const guided = await guidedBackpropAttribution.attribute(net, x, target, {
      target: options.target,
    });
    try {
      const cam = await gradCamAttribution.attribute(net, x, target, options);
      try {
        return tf.mul(guided, cam) as tf.Tensor4D;
      } finally {
        cam.dispose();
      }
    } finally {
      guided.dispose();
    }
  },
};

/** The parameters of the `guided-grad-cam` plugin: its schema, declared once. */
export const GUIDED_GRAD_CAM_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  layer: { type: "layer", help: "Grad-CAM layer (default: the last layer with a grid)" },
  target: TARGET_PARAM,
} as const;

/** The schema type of the `guided-grad-cam` plugin's parameters. */
export type GuidedGradCamParams = typeof GUIDED_GRAD_CAM_PARAMS;

/** The `guided-grad-cam` plugin. */
export const guidedGradCam: Plugin<typeof GUIDED_GRAD_CAM_PARAMS> = definePlugin({
  name: "guided-grad-cam",
  family: "attribute",
  summary: "Guided Grad-CAM: guided backprop times the Grad-CAM map (Selvaraju et al.)",
  params: GUIDED_GRAD_CAM_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net, images } = ctx;
    const layer = gradCamLayer(net, p.layer);
    const classes = await resolveClasses(net, images.x, p.class, "guided-grad-cam");
    const common = { class: classes, render: false, target: p.target };
    const cam = takeAttribution(await ctx.run(gradCam, { ...common, layer }), "grad-cam");
    let attribution: tf.Tensor4D;
    try {
      const guided = takeAttribution(await ctx.run(guidedBackprop, common), "guided-backprop");
      attribution = tf.mul(guided, cam) as tf.Tensor4D;
      guided.dispose();
    } finally {
      cam.dispose();
    }
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "guided-grad-cam",
      title: `Guided Grad-CAM (${layer})`,
      attribution,
      classes,
      render: p.render,
      mapLabel: "|guided backprop x Grad-CAM| (max over channels)",
    });
    return r.figure("layer", layer);
  },
});
