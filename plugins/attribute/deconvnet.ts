/**
 * `deconvnet` (attribute): the DeconvNet projection of Zeiler & Fergus,
 * "Visualizing and Understanding Convolutional Networks" (ECCV 2014). One
 * activation of a layer (a neuron, a whole channel, or by default the strongest
 * neuron of a channel) is kept, every other activation of that layer zeroed, and
 * the result is mapped back to pixel space by the net's operations in reverse:
 * unpooling through the max-pool switches, rectification of the reconstruction
 * (`relu(dy)` at every ReLU, whatever the forward pass did) and filtering with the
 * transposed filters: the backward pass under the `deconv` ReLU rule.
 *
 * @module
 */
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { defaultSpatialLayer } from "../_layers.ts";
import { type Attribution, ATTRIBUTION_PARAMS } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import {
  describeUnits,
  projectBack,
  type ProjectionOptions,
  UNIT_PARAMS,
} from "./unit_projection.ts";
import { resolveClasses } from "./targets.ts";

/** Options of {@linkcode deconvnetAttribution}: the unit (default: the target class score). */
export type DeconvnetOptions = ProjectionOptions;

/**
 * The DeconvNet projection of a layer unit (or, without a unit, of the target
 * class score) for each image.
 */
export const deconvnetAttribution: Attribution<DeconvnetOptions> = {
  name: "deconvnet",
  async attribute(net, x, target, options = {}) {
    return (await projectBack(net, x, target, "deconv", options, "deconvnet")).attribution;
  },
};

/** The parameters of the `deconvnet` plugin: its schema, declared once. */
export const DECONVNET_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  ...UNIT_PARAMS,
  layer: { type: "layer", help: "layer of the unit (default: the last layer with a grid)" },
} as const;

/** The schema type of the `deconvnet` plugin's parameters. */
export type DeconvnetParams = typeof DECONVNET_PARAMS;

/** The `deconvnet` plugin. */
export const deconvnet: Plugin<typeof DECONVNET_PARAMS> = definePlugin({
  name: "deconvnet",
  family: "attribute",
  summary: "Project one activation of a layer back to pixels with a DeconvNet (Zeiler & Fergus)",
  params: DECONVNET_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w] };
  },
  demo: [{}, { mode: "channel" }],
  async run(ctx, p) {
    const { net, images } = ctx;
    const layer = p.layer !== undefined
      ? net.layer(p.layer).name
      : defaultSpatialLayer(net, "last", "any");
    if (!layer) throw new RangeError("deconvnet: this model has no layer with a spatial grid");
    // The class is only reported: a DeconvNet projects a unit, not a class score.
    const classes = await resolveClasses(net, images.x, p.class, "deconvnet");
    const unit = { layer, mode: p.mode, channel: p.channel, row: p.row, col: p.col };
    const { attribution, choices } = await projectBack(
      net,
      images.x,
      classes,
      "deconv",
      { unit },
      "deconvnet",
    );
    const units = describeUnits(choices!);
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "deconvnet",
      title: `DeconvNet projection of ${layer} (${p.mode})`,
      attribution,
      render: p.render,
      mapLabel: "|DeconvNet projection| (max over channels)",
      columns: { unit: units, activation: choices!.map((c) => c.value) },
    });
    r.figure("layer", layer).figure("mode", p.mode).figure("units", units.join("; "));
    return r;
  },
});
