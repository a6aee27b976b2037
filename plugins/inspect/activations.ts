/**
 * `activations` (inspect): every channel of one layer's response volume for one
 * image, as a labelled grid of feature maps (Yosinski et al., "Understanding Neural
 * Networks Through Deep Visualization", 2015): the lecture's 13x13 activations of
 * one conv5 channel, here for every channel of any layer with a spatial grid.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { Result } from "../../core/result.ts";
import { toDisplay } from "../../core/images/display.ts";
import { grid } from "../../core/images/grids.ts";
import { spatialLayer } from "../_layers.ts";

/** The parameters of the `activations` plugin: its schema, declared once. */
export const ACTIVATIONS_PARAMS = {
  layer: { type: "layer", help: "layer to show (default: first conv layer)" },
  image: { type: "integer", default: 0, min: 0, help: "index of the input image" },
  normalize: {
    type: "enum",
    choices: ["each", "layer"] as const,
    default: "layer",
    help: "scale each channel on its own, or the whole layer alike",
  },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of each map" },
} as const;

/** The `activations` plugin's parameter values, typed from {@linkcode ACTIVATIONS_PARAMS} (defaults there). */
export type ActivationsOptions = ParamValues<typeof ACTIVATIONS_PARAMS>;

/** The `activations` plugin. */
export const activations: Plugin<typeof ACTIVATIONS_PARAMS> = definePlugin({
  name: "activations",
  family: "inspect",
  summary: "Every channel of a layer's response to one image, as a labelled grid",
  params: ACTIVATIONS_PARAMS,
  resultShape(net, p) {
    const l = net.layer(spatialLayer(net, p.layer, "activations"));
    return { activations: l.outputShape };
  },
  async run(ctx, p) {
    const { net, images } = ctx;
    const layer = spatialLayer(net, p.layer, "activations");
    if (p.image >= images.x.shape[0]) {
      throw new RangeError(
        `activations: image ${p.image} does not exist; there are ${images.x.shape[0]} input images`,
      );
    }
    const act = tf.tidy(() => {
      const x = images.x.slice([p.image, 0, 0, 0], [1, -1, -1, -1]);
      const r = net.forward(x, { taps: [layer], stopAtTaps: true });
      return r.taps[layer].squeeze([0]) as tf.Tensor3D;
    });
    const [h, w, c] = act.shape;
    // Read after the tidy, asynchronously (WebGPU cannot read GPU data synchronously).
    const statTensors = tf.tidy(() => {
      const perChannel = act.reshape([h * w, c]);
      return [
        perChannel.max(),
        perChannel.mean(),
        perChannel.max(0).lessEqual(0).sum(),
        perChannel.mean(0).argMax(),
        perChannel.min(),
      ];
    });
    let values: number[];
    try {
      values = (await Promise.all(statTensors.map((t) => t.data()))).map((v) => v[0]);
    } catch (err) {
      act.dispose();
      throw err;
    } finally {
      tf.dispose(statTensors);
    }
    const stats = {
      max: values[0],
      mean: values[1],
      dead: values[2],
      strongest: values[3],
      min: values[4],
    };
    const cols = Math.ceil(Math.sqrt(c));
    const picture = tf.tidy(() => {
      const maps = act.transpose([2, 0, 1]).expandDims(3) as tf.Tensor4D;
      const shown = toDisplay(maps, { mode: "minmax", perItem: p.normalize === "each" });
      return grid(shown, { scale: p.scale, cols });
    });
    const r = new Result("activations", `Activations of ${layer} for ${images.names[p.image]}`);
    r.tensor("activations", act);
    r.figure("layer", layer).figure("channels", c).figure("height", h).figure("width", w)
      .figure("maxActivation", stats.max).figure("meanActivation", stats.mean)
      .figure("deadChannels", stats.dead).figure("strongestChannel", stats.strongest);
    await r.addImage(
      `${layer}`,
      picture,
      `${layer}: all ${c} channels of ${h}x${w} for ${images.names[p.image]}, labelled by ` +
        `channel (normalized per ${
          p.normalize === "each"
            ? "channel, black its min and white " +
              "its max"
            : "layer"
        })`,
      {
        tiles: Array.from({ length: c }, (_, i) => String(i)),
        cols,
        // One shared scale has values to show; per-channel scales have none in common.
        ...(p.normalize !== "each" && stats.max > stats.min
          ? { colorbar: { colormap: "gray", min: stats.min, max: stats.max, label: "activation" } }
          : {}),
      },
    );
    picture.dispose();
    return r;
  },
});
