/**
 * `grad-cam` (attribute): Gradient-weighted Class Activation Mapping of Selvaraju
 * et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
 * Localization" (ICCV 2017). For a conv layer's activation `A` (`[h, w, K]`) the
 * weight of channel `k` is the spatial mean of `d s_y / d A_k`; the map is
 * `relu(sum_k alpha_k A_k)`, upsampled (bilinear) to the input size. Works on any
 * layer with a spatial grid, in Sequential and functional models alike (the
 * gradient is taken with respect to the tapped activation).
 *
 * As an attribution the map is repeated over the input's channels, so it has the
 * input's shape like every other method.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import { gradient } from "../../core/gradients.ts";
import type { Net } from "../../core/net.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { spatialLayer } from "../_layers.ts";
import { resize } from "../../core/images/display.ts";
import { type Attribution, ATTRIBUTION_PARAMS } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import {
  checkTarget,
  classObjective,
  resolveClasses,
  type ScoreKind,
  TARGET_PARAM,
} from "./targets.ts";

/** Options of {@linkcode gradCamAttribution}. */
export interface GradCamOptions {
  /** Layer with a spatial grid. @default the last layer with a spatial grid */
  layer?: string;
  /** Which class score. @default "logit" */
  target?: ScoreKind;
}

/**
 * The Grad-CAM layer: the one asked for, checked to have a spatial grid, or the
 * last layer that has one.
 *
 * @param net The model.
 * @param name The layer asked for.
 * @returns The layer's name.
 * @throws {RangeError} for a layer without a spatial grid, naming those with one.
 */
export function gradCamLayer(net: Net, name: string | undefined): string {
  return spatialLayer(net, name, "grad-cam", "last", "any", ", so it has no map to weight");
}

/**
 * The layer's Grad-CAM map before upsampling, `[n, h, w]`.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param options Layer and score.
 * @returns A new `[n, h, w]` tensor.
 */
export function gradCamMap(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  options: GradCamOptions = {},
): tf.Tensor3D {
  checkTarget(net, x, target, "grad-cam");
  const layer = gradCamLayer(net, options.layer);
  const objective = classObjective(target, options.target ?? "logit");
  const { grad, value, activation } = gradient(net, x, objective, {
    wrt: layer,
    activation: true,
  });
  value.dispose();
  return tf.tidy(() => {
    const alpha = tf.mean(grad, [1, 2], true);
    grad.dispose();
    const cam = tf.relu(tf.sum(tf.mul(activation!, alpha), 3)) as tf.Tensor3D;
    activation!.dispose();
    return cam;
  });
}

/**
 * A layer's map upsampled (bilinear) to the input size and repeated over its
 * channels, as an attribution.
 *
 * @param cam `[n, h, w]`.
 * @param x The batch it explains.
 * @returns A new tensor shaped like `x`.
 */
export function upsampleToInput(cam: tf.Tensor3D, x: tf.Tensor4D): tf.Tensor4D {
  const [, height, width, channels] = x.shape;
  return tf.tidy(() => {
    const up = resize(cam.expandDims(3) as tf.Tensor4D, height, width, "bilinear");
    return (channels === 1 ? up : tf.tile(up, [1, 1, 1, channels])) as tf.Tensor4D;
  });
}

/** Grad-CAM of the target class, upsampled to the input and repeated over its channels. */
export const gradCamAttribution: Attribution<GradCamOptions> = {
  name: "grad-cam",
  attribute(net, x, target, options = {}) {
    const cam = gradCamMap(net, x, target, options);
    try {
      return Promise.resolve(upsampleToInput(cam, x));
    } finally {
      cam.dispose();
    }
  },
};

/** The parameters of the `grad-cam` plugin: its schema, declared once. */
export const GRAD_CAM_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  layer: { type: "layer", help: "layer with a spatial grid (default: the last one)" },
  target: TARGET_PARAM,
} as const;

/** The schema type of the `grad-cam` plugin's parameters. */
export type GradCamParams = typeof GRAD_CAM_PARAMS;

/** The `grad-cam` plugin. */
export const gradCam: Plugin<typeof GRAD_CAM_PARAMS> = definePlugin({
  name: "grad-cam",
  family: "attribute",
  summary: "Grad-CAM: gradient-weighted class activation map of a conv layer (Selvaraju et al.)",
  params: GRAD_CAM_PARAMS,
  resultShape(net, p, images) {
    const [n, h, w, c] = images.x.shape;
    const grid = net.layer(gradCamLayer(net, p.layer)).outputShape.slice(0, 2);
    return { attribution: [n, h, w, c], map: [n, h, w], cam: [n, ...grid] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net, images } = ctx;
    const layer = gradCamLayer(net, p.layer);
    const classes = await resolveClasses(net, images.x, p.class, "grad-cam");
    const cam = gradCamMap(net, images.x, classes, { layer, target: p.target });
    const attribution = upsampleToInput(cam, images.x);
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "grad-cam",
      title: `Grad-CAM of ${layer}`,
      attribution,
      classes,
      render: p.render,
      mapLabel: "Grad-CAM: ReLU of gradient-weighted activations",
    });
    r.tensor("cam", cam);
    r.figure("layer", layer);
    return r;
  },
});
