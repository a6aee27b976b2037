/**
 * The layer a plugin works on when none is asked for, and the check of one that
 * is: the lecture's techniques read a layer's grid of activations (height x width
 * x channels), so the choice is always among the layers that have one. Plugins
 * differ only in which end of the net they want: the first conv layer for its
 * edge-like filters, the last one for its object parts, or, for Grad-CAM and the
 * DeconvNet, the last grid of all (often a pooling layer after the last conv).
 *
 * @module
 */
import type { Net } from "../core/net.ts";

/** Which end of the net a default layer comes from. */
export type LayerEnd = "first" | "last";

/**
 * The default layer of a plugin: the first or last conv layer with a spatial
 * grid (`prefer: "conv"`), or the first or last layer with a grid of any kind
 * (`prefer: "any"`); a model without a conv layer with a grid gets its first or
 * last layer with one.
 *
 * @param net The model.
 * @param end Which end of the net.
 * @param prefer Whether conv layers come first.
 * @returns The layer's name, or undefined when the model has no spatial layer.
 */
export function defaultSpatialLayer(
  net: Net,
  end: LayerEnd,
  prefer: "conv" | "any" = "conv",
): string | undefined {
  const spatial = net.spatialLayers();
  const convs = spatial.filter((l) => l.role === "conv" || l.role === "depthwise");
  const pool = prefer === "conv" && convs.length ? convs : spatial;
  return (end === "first" ? pool[0] : pool[pool.length - 1])?.name;
}

/**
 * The layer a plugin works on: the one asked for, checked to have a spatial grid,
 * or by default {@linkcode defaultSpatialLayer}.
 *
 * @param net The model.
 * @param name The layer asked for, if any.
 * @param what The plugin, for messages.
 * @param end Which end of the net the default comes from.
 * @param prefer Whether the default prefers conv layers.
 * @param why What the plugin needs the grid for, for the message (e.g. ", so it
 *   has no map to weight").
 * @returns The layer name.
 * @throws {RangeError} for a layer without a spatial grid (naming those with one)
 *   or a model without any.
 */
export function spatialLayer(
  net: Net,
  name: string | undefined,
  what: string,
  end: LayerEnd = "first",
  prefer: "conv" | "any" = "conv",
  why = "",
): string {
  const spatial = net.spatialLayers().map((l) => l.name);
  if (name === undefined) {
    const chosen = defaultSpatialLayer(net, end, prefer);
    if (!chosen) throw new RangeError(`${what}: this model has no layer with a spatial grid`);
    return chosen;
  }
  if (!spatial.includes(name)) {
    const l = net.layer(name);
    throw new RangeError(
      `${what}: layer "${name}" has output [${l.outputShape}] with no spatial extent${why}; ` +
        `give a layer with a height x width x channels grid: ${spatial.join(", ")}`,
    );
  }
  return name;
}
