/**
 * `guided-backprop` (attribute): guided backpropagation of Springenberg,
 * Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity: The All Convolutional
 * Net" (ICLR workshop 2015). The gradient of a class score (or of one layer unit,
 * as the DeconvNet projects it) with respect to the input, where every ReLU lets
 * through only positive gradients at positive inputs (`relu(dy) * (x > 0)`): the
 * backward ReLU of ordinary backprop and the DeconvNet's combined, which drops the
 * signals that would lower the unit being visualized.
 *
 * @module
 */
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { type Attribution, ATTRIBUTION_PARAMS } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import { resolveClasses, TARGET_PARAM } from "./targets.ts";
import {
  describeUnits,
  projectBack,
  type ProjectionOptions,
  UNIT_PARAMS,
} from "./unit_projection.ts";

/** Options of {@linkcode guidedBackpropAttribution}: a unit, or the score kind. */
export type GuidedBackpropOptions = ProjectionOptions;

/** Guided backprop of the target class score (or of a layer unit) for each image. */
export const guidedBackpropAttribution: Attribution<GuidedBackpropOptions> = {
  name: "guided-backprop",
  async attribute(net, x, target, options = {}) {
    return (await projectBack(net, x, target, "guided", options, "guided-backprop")).attribution;
  },
};

/** The parameters of the `guided-backprop` plugin: its schema, declared once. */
export const GUIDED_BACKPROP_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  ...UNIT_PARAMS,
  layer: { type: "layer", help: "layer of a unit to visualize (default: the class score)" },
  target: TARGET_PARAM,
} as const;

/** The schema type of the `guided-backprop` plugin's parameters. */
export type GuidedBackpropParams = typeof GUIDED_BACKPROP_PARAMS;

/** The `guided-backprop` plugin. */
export const guidedBackprop: Plugin<typeof GUIDED_BACKPROP_PARAMS> = definePlugin({
  name: "guided-backprop",
  family: "attribute",
  summary: "Guided backpropagation of a class score or a layer unit (Springenberg et al. 2015)",
  params: GUIDED_BACKPROP_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net, images } = ctx;
    const classes = await resolveClasses(net, images.x, p.class, "guided-backprop");
    const unit = p.layer === undefined
      ? undefined
      : { layer: p.layer, mode: p.mode, channel: p.channel, row: p.row, col: p.col };
    const { attribution, choices } = await projectBack(
      net,
      images.x,
      classes,
      "guided",
      { unit, target: p.target },
      "guided-backprop",
    );
    const units = choices ? describeUnits(choices) : undefined;
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "guided-backprop",
      title: unit
        ? `Guided backprop of ${unit.layer} (${p.mode})`
        : `Guided backprop of the class ${p.target}`,
      attribution,
      classes: unit ? undefined : classes,
      render: p.render,
      mapLabel: "|guided-backprop gradient| (max over channels)",
      columns: units ? { unit: units, activation: choices!.map((c) => c.value) } : undefined,
    });
    if (unit) r.figure("layer", unit.layer).figure("units", units!.join("; "));
    return r;
  },
});
