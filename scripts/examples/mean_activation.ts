/**
 * A user's plugin module, loadable with `deno task lens mean-activation --plugin
 * scripts/examples/mean_activation.ts`: the mean activation of each channel of a layer
 * over the input images.
 *
 * @module
 */
import { definePlugin, type Plugin, Result } from "../../mod.ts";

/** Options of `mean-activation`. */
export type MeanActivationOptions = {
  /** Layer to read. */
  layer: { type: "layer"; default: "conv1"; help: string };
};

/** The `mean-activation` plugin. */
export const meanActivation: Plugin<MeanActivationOptions> = definePlugin({
  name: "mean-activation",
  family: "inspect",
  summary: "Mean activation of each channel of a layer",
  params: { layer: { type: "layer", default: "conv1", help: "layer to read" } },
  async run(ctx, p) {
    const r = ctx.net.forward(ctx.images.x, { taps: [p.layer] });
    const means = r.taps[p.layer].mean([0, 1, 2]);
    const result = new Result("mean-activation", `Mean activation of ${p.layer}`);
    result.table("per channel", ["channel", "mean"], [...await means.data()].map((v, i) => [i, v]));
    r.output.dispose();
    r.taps[p.layer].dispose();
    means.dispose();
    return result;
  },
});
