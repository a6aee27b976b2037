/**
 * Example: a custom plugin that composes two built-in ones through `ctx.run`:
 * for one layer, its filters and its activations on an image, and how many of its
 * channels are silent (never positive) on that image.
 *
 * `deno run -A scripts/examples/custom_plugin.ts [out-dir]`
 *
 * @module
 */
import { activations, definePlugin, filters, Lens, type Plugin, Result } from "../../mod.ts";

/** Options of `layer-portrait`. */
export type LayerPortraitOptions = {
  /** Conv layer. */
  layer: { type: "layer"; default: "conv2"; help: string };
  /** Input image index. */
  image: { type: "integer"; default: 0; min: 0; help: string };
};

/** Filters and activations of one layer, side by side, with its silent channels. */
export const layerPortrait: Plugin<LayerPortraitOptions> = definePlugin({
  name: "layer-portrait",
  family: "inspect",
  summary: "Filters and activations of one layer, with its silent channels",
  params: {
    layer: { type: "layer", default: "conv2", help: "conv layer" },
    image: { type: "integer", default: 0, min: 0, help: "input image index" },
  },
  async run(ctx, p) {
    const w = await ctx.run(filters, { layer: p.layer, maxFilters: 16 });
    const a = await ctx.run(activations, { layer: p.layer, image: p.image });
    try {
      const result = new Result("layer-portrait", `Portrait of ${p.layer}`);
      result.figure("filters", w.figures.filters);
      result.figure("silentChannels", a.figures.deadChannels);
      result.figure(
        "silentFraction",
        Number(a.figures.deadChannels) / Number(a.figures.channels),
      );
      result.images.push(...w.images, ...a.images);
      return result;
    } finally {
      w.dispose();
      a.dispose();
    }
  },
});

if (import.meta.main) {
  const out = Deno.args[0] ?? "out/example_custom";
  const lens = await Lens.open({ model: "mnist", count: 1 });
  try {
    lens.use(layerPortrait);
    const r = await lens.run("layer-portrait", { layer: "conv2" });
    await r.save(out);
    console.log(`silent channels of conv2: ${r.figures.silentChannels} of ${r.figures.filters}`);
    r.dispose();
  } finally {
    lens.dispose();
  }
}
