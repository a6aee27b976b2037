/**
 * `filters` (inspect): the raw weights of a conv layer as tiles. First-layer
 * filters of an RGB model show as colour tiles (the lecture's "only interpretable
 * on the first layer"); deeper layers show each filter's slices over its first
 * input channels, as in the ConvNetJS figures of layer 2 and 3 weights.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { Result } from "../../core/result.ts";
import { toDisplay } from "../../core/images/display.ts";
import { grid } from "../../core/images/grids.ts";

/** The parameters of the `filters` plugin: its schema, declared once. */
export const FILTERS_PARAMS = {
  layer: { type: "layer", help: "conv layer (default: first conv layer)" },
  maxFilters: { type: "integer", default: 64, min: 1, max: 4096, help: "most filters shown" },
  maxInputs: {
    type: "integer",
    default: 8,
    min: 1,
    max: 512,
    help: "most input channels shown per filter",
  },
  scale: { type: "integer", default: 8, min: 1, max: 64, help: "upscaling of each tile" },
} as const;

/** The `filters` plugin's parameter values, typed from {@linkcode FILTERS_PARAMS} (defaults there). */
export type FiltersOptions = ParamValues<typeof FILTERS_PARAMS>;

/** The `filters` plugin. */
export const filters: Plugin<typeof FILTERS_PARAMS> = definePlugin({
  name: "filters",
  family: "inspect",
  summary: "The weights of a conv layer as tiles (RGB for 3-channel first layers)",
  params: FILTERS_PARAMS,
  resultShape(net, p) {
    const name = p.layer ?? net.convLayers()[0].name;
    const w = net.kernel(name);
    const [kh, kw, c, m] = w.shape;
    w.dispose();
    const info = net.layer(name);
    const depthwise = info.role === "depthwise" || info.type === "SeparableConv2D";
    return { weights: depthwise ? [kh, kw, 1, c * m] : [kh, kw, c, m] };
  },
  async run(ctx, p) {
    const net = ctx.net;
    const convs = net.convLayers().map((l) => l.name);
    const name = p.layer ?? convs[0];
    if (!name || !convs.includes(name)) {
      throw new RangeError(
        `filters: layer "${name}" is not a conv layer; give one of: ${
          convs.join(", ") || "(none)"
        }`,
      );
    }
    const info = net.layer(name);
    const raw = net.kernel(name);
    // A depthwise kernel [kh, kw, C, m] holds C * m filters of one input channel
    // each, output channel c * m + j being filter j of channel c.
    const depthwise = info.role === "depthwise" || info.type === "SeparableConv2D";
    const w = depthwise
      ? tf.tidy(() => {
        const [h, v, c, m] = raw.shape as [number, number, number, number];
        return raw.reshape([h, v, 1, c * m]);
      })
      : raw;
    if (w !== raw) raw.dispose();
    const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
    const nf = Math.min(cout, p.maxFilters);
    const rgb = cin === 3;
    const ni = rgb ? 1 : Math.min(cin, p.maxInputs);
    // One row per filter when there are slices to compare; a square otherwise.
    const cols = rgb || ni === 1 ? Math.ceil(Math.sqrt(nf)) : ni;
    const labels: string[] = [];
    if (rgb || ni === 1) { for (let f = 0; f < nf; f++) labels.push(String(f)); }
    else for (let f = 0; f < nf; f++) for (let i = 0; i < ni; i++) labels.push(`${f}.${i}`);
    const picture = tf.tidy(() => {
      // One scale for the whole layer, 0 at mid-gray, so signs read alike across tiles.
      const shown = toDisplay(w, { mode: "symmetric" });
      let tiles: tf.Tensor4D;
      if (rgb) {
        tiles = shown.slice([0, 0, 0, 0], [-1, -1, -1, nf]).transpose([3, 0, 1, 2]) as tf.Tensor4D;
      } else {
        // [kh, kw, ni, nf] -> [nf * ni, kh, kw, 1], row f holds filter f's slices.
        tiles = shown.slice([0, 0, 0, 0], [-1, -1, ni, nf]).transpose([3, 2, 0, 1])
          .reshape([nf * ni, kh, kw, 1]) as tf.Tensor4D;
      }
      return grid(tiles, { cols, scale: p.scale });
    });
    // Read after the tidy, asynchronously (WebGPU cannot read GPU data synchronously).
    const statTensors = tf.tidy(() => [w.abs().mean(), w.max(), w.min()]);
    let values: number[];
    try {
      values = (await Promise.all(statTensors.map((t) => t.data()))).map((v) => v[0]);
    } catch (err) {
      tf.dispose([w, picture]);
      throw err;
    } finally {
      tf.dispose(statTensors);
    }
    const stats = { meanAbs: values[0], max: values[1], min: values[2] };
    const r = new Result("filters", `Filters of ${name}`);
    r.tensor("weights", w);
    r.figure("layer", name).figure("kernel", `${kh}x${kw}`).figure("inputChannels", cin)
      .figure("filters", cout).figure("shown", nf).figure("meanAbsWeight", stats.meanAbs)
      .figure("minWeight", stats.min).figure("maxWeight", stats.max);
    const top = Math.max(Math.abs(stats.min), Math.abs(stats.max), 1e-12);
    await r.addImage(
      name,
      picture,
      `${name}: ${nf} of ${cout} filters ${kh}x${kw}x${cin}` +
        (depthwise ? " (depthwise: each filter sees one input channel). " : ". ") +
        (rgb
          ? `The first ${nf} filters as RGB tiles (gray = 0), labelled by filter`
          : `One row per filter, its first ${ni} input-channel slices (gray = 0), labelled ` +
            "filter.slice"),
      {
        tiles: labels,
        cols,
        // Gray tiles share one symmetric scale; RGB tiles mix three channels, which one bar can't key.
        ...(rgb ? {} : { colorbar: { colormap: "gray", min: -top, max: top, label: "weight" } }),
      },
    );
    picture.dispose();
    return r;
  },
});
